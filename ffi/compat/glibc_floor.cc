// Built into each shared library only where it is linked against an older glibc's symbols
// (CMake XPURUNTIME_GLIBC_FLOOR, scripts/glibc-floor) with libstdc++ linked statically: this
// machine's libstdc++.a was compiled against its own glibc and calls a few functions that the
// floor (2.28) lacks. Each is defined here over what 2.28 has, hidden, so only this library's
// copy of libstdc++ binds to it and no other library in the process sees it.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/types.h>
#include <unistd.h>

struct stat;
struct stat64;

extern "C" {
// Before 2.33 stat and friends were inline wrappers over these (_STAT_VER 1 on x86_64).
int __xstat(int ver, const char* path, struct stat* buf);
int __lxstat(int ver, const char* path, struct stat* buf);
int __fxstat64(int ver, int fd, struct stat64* buf);

// GLIBC_2.32. Read by libstdc++ to skip atomic reference counts in a single-threaded
// process; 0 ("maybe threaded") is always correct, only not the fastest.
char __libc_single_threaded = 0;

int stat(const char* path, struct stat* buf) { return __xstat(1, path, buf); }
int lstat(const char* path, struct stat* buf) { return __lxstat(1, path, buf); }
int fstat64(int fd, struct stat64* buf) { return __fxstat64(1, fd, buf); }

// GLIBC_2.36; std::random_device's default source. As glibc's: the kernel's generator, which
// cannot fail once seeded; /dev/urandom where getrandom(2) is missing (kernels before 3.17).
uint32_t arc4random(void) noexcept {  // noexcept: as <stdlib.h> declares it
  uint32_t value;
  auto* bytes = reinterpret_cast<char*>(&value);
  for (size_t got = 0; got < sizeof value;) {
    ssize_t n = getrandom(bytes + got, sizeof value - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (errno == ENOSYS) {
      int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
      if (fd < 0 || read(fd, &value, sizeof value) != static_cast<ssize_t>(sizeof value)) abort();
      close(fd);
      return value;
    } else if (errno != EINTR) {
      abort();
    }
  }
  return value;
}
}
