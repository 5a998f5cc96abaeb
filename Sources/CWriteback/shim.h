// sync_file_range(2) for Swift: Glibc's module declares it only under _GNU_SOURCE, which Swift's does not set.
// The evidence bundle's writer starts each chunk's writeback as soon as it is written (HashingFileWriter.swift).
#ifndef HALLWATCH_CWRITEBACK_SHIM_H
#define HALLWATCH_CWRITEBACK_SHIM_H
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/// SYNC_FILE_RANGE_WRITE (<linux/fs.h>): start writeback of the range's dirty pages, do not wait for it.
#define HW_SYNC_FILE_RANGE_WRITE 2u

/// sync_file_range(fd, offset, nbytes, flags) as the system call: 0, or -1 with errno (EBADF, EINVAL, EIO,
/// ENOMEM, ENOSPC, ESPIPE).
static inline int hw_sync_file_range(int fd, long long offset, long long nbytes, unsigned int flags) {
    return (int)syscall(SYS_sync_file_range, fd, (off_t)offset, (off_t)nbytes, flags);
}
#endif
