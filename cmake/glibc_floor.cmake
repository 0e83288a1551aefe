# Linking against an older glibc's symbols (scripts/build-wheels, where this machine's glibc is
# newer than the wheel's manylinux tag): XPURUNTIME_GLIBC_FLOOR names a folder of stubs that
# scripts/glibc-floor wrote, which give each glibc call the version the older release defined.
# libstdc++, whose own versions (GLIBCXX_3.4.29) manylinux_2_28 lacks, is linked in, private to
# each library: the version scripts export only the entry points, and no exception leaves a
# library. ffi/compat/glibc_floor.cc defines the few glibc functions that this libstdc++.a calls
# and the older glibc lacks. libpthread, libdl and librt are needed by name: on glibc < 2.34,
# pthread_create, dlopen and shm_open live in them.
set(XPURUNTIME_GLIBC_FLOOR "" CACHE PATH
    "Link the shared libraries against the glibc stubs in this folder (scripts/glibc-floor) and libstdc++ statically (manylinux wheels built on a newer glibc)")
set(XPU_GLIBC_FLOOR_SHIMS "${CMAKE_CURRENT_LIST_DIR}/../ffi/compat/glibc_floor.cc")
if(XPURUNTIME_GLIBC_FLOOR)
  if(NOT EXISTS "${XPURUNTIME_GLIBC_FLOOR}/libc.so.6")
    message(FATAL_ERROR "XPURUNTIME_GLIBC_FLOOR: no stubs in ${XPURUNTIME_GLIBC_FLOOR} (scripts/glibc-floor DIR)")
  endif()
  message(STATUS "xpuruntime: glibc stubs of ${XPURUNTIME_GLIBC_FLOOR}, libstdc++ static")
endif()

# The shared library `target` linked as above where XPURUNTIME_GLIBC_FLOOR is set.
function(xpu_link_glibc_floor target)
  if(XPURUNTIME_GLIBC_FLOOR)
    target_sources(${target} PRIVATE "${XPU_GLIBC_FLOOR_SHIMS}")
    target_link_options(${target} PRIVATE -static-libstdc++ "-L${XPURUNTIME_GLIBC_FLOOR}"
      "LINKER:--push-state,--no-as-needed,-lpthread,-ldl,-lrt,--pop-state")
  endif()
endfunction()
