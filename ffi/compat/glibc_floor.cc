// Built into each shared library only where it is linked against an older glibc's symbols
// (CMake XPURUNTIME_GLIBC_FLOOR, scripts/glibc-floor) with libstdc++ linked statically: this
// machine's libstdc++.a (and its headers' inline code) was compiled against its own glibc and
// calls a few functions that the floor (2.28) lacks. Each is defined here over what 2.28 has,
// hidden, so only this library's copy of libstdc++ binds to it and no other library in the
// process sees it. auditwheel names any other such function a library comes to use: add it here.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
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

// GLIBC_2.30; std::condition_variable's waits on the steady clock. As libstdc++ does where it
// lacks this: the same distance ahead on the clock the condition variable waits on (the
// default, realtime); a caller that re-checks its deadline (libstdc++ does) absorbs clock jumps.
int pthread_cond_clockwait(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t clock,
                           const struct timespec* deadline) {
  if (clock == CLOCK_REALTIME) return pthread_cond_timedwait(cond, mutex, deadline);
  if (clock != CLOCK_MONOTONIC) return EINVAL;
  timespec monotonic, realtime;
  clock_gettime(CLOCK_MONOTONIC, &monotonic);
  clock_gettime(CLOCK_REALTIME, &realtime);
  long long ns = (deadline->tv_sec - monotonic.tv_sec + realtime.tv_sec) * 1000000000LL +
                 (deadline->tv_nsec - monotonic.tv_nsec + realtime.tv_nsec);
  timespec converted{static_cast<time_t>(ns / 1000000000LL), static_cast<long>(ns % 1000000000LL)};
  return pthread_cond_timedwait(cond, mutex, &converted);
}

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
