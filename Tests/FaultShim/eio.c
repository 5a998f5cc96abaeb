/*
 * Hallwatch test fault shim: makes writes and syncs fail with EIO on one disk, on demand.
 *
 * LD_PRELOAD'ed into the processes under test (the end-to-end suite compiles it with cc). Two
 * environment variables arm it:
 *   HALLWATCH_FAULT_PREFIX   a directory; only file descriptors whose path starts with it fail
 *   HALLWATCH_FAULT_TRIGGER  a file; faults are injected only while it exists
 * so a test can fail one of two disks mid-run, which libfiu's fiu-run (process-wide failure points,
 * no path filter) cannot do. Writes, vectored writes and syncs fail the way a dying disk fails them:
 * -1 with errno EIO. Reads are left alone. Test-only code: never part of the appliance.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int should_fail(int fd) {
    const char *prefix = getenv("HALLWATCH_FAULT_PREFIX");
    const char *trigger = getenv("HALLWATCH_FAULT_TRIGGER");
    if (!prefix || !trigger || access(trigger, F_OK) != 0) return 0;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    return strncmp(target, prefix, strlen(prefix)) == 0;
}

#define NEXT(name) static __typeof__(name) *next_##name; if (!next_##name) next_##name = dlsym(RTLD_NEXT, #name)

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    NEXT(pwritev);
    if (should_fail(fd)) { errno = EIO; return -1; }
    return next_pwritev(fd, iov, cnt, off);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
    NEXT(pwritev64);
    if (should_fail(fd)) { errno = EIO; return -1; }
    return next_pwritev64(fd, iov, cnt, off);
}
ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) {
    NEXT(pwrite);
    if (should_fail(fd)) { errno = EIO; return -1; }
    return next_pwrite(fd, buf, len, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off) {
    NEXT(pwrite64);
    if (should_fail(fd)) { errno = EIO; return -1; }
    return next_pwrite64(fd, buf, len, off);
}
ssize_t write(int fd, const void *buf, size_t len) {
    NEXT(write);
    if (fd > 2 && should_fail(fd)) { errno = EIO; return -1; }
    return next_write(fd, buf, len);
}
int fdatasync(int fd) {
    NEXT(fdatasync);
    if (should_fail(fd)) { errno = EIO; return -1; }
    return next_fdatasync(fd);
}
int fsync(int fd) {
    NEXT(fsync);
    if (should_fail(fd)) { errno = EIO; return -1; }
    return next_fsync(fd);
}
