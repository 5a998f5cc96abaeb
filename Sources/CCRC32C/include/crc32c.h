// CRC-32C (Castagnoli, RFC 3720 Appendix B.4): reflected polynomial 0x82F63B78, as HallwatchStorage's
// record format uses it. Hardware instructions where the CPU has them, else table-driven slice-by-8.
//
// The functions work on the running register (the pre-inverted CRC): start from 0xFFFFFFFF, feed the bytes
// in any number of calls, and invert the result (the checksum of "123456789" is 0xE3069283).
#ifndef HALLWATCH_CRC32C_H
#define HALLWATCH_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Adds `count` bytes at `bytes` to `reg`, the running register; returns the new register. Uses SSE4.2
/// `crc32` on x86-64 and the ARMv8 CRC32C instructions on aarch64 when the CPU reports them (checked at run
/// time), else hw_crc32c_update_portable. Thread-safe; `bytes` may be NULL when `count` is 0.
uint32_t hw_crc32c_update(uint32_t reg, const void *bytes, size_t count);

/// The same with the slice-by-8 tables only (8 KiB, built once): the fallback, and the reference tests
/// compare the hardware path with.
uint32_t hw_crc32c_update_portable(uint32_t reg, const void *bytes, size_t count);

/// 1 when hw_crc32c_update uses CPU instructions on this machine, 0 when it uses the tables.
int hw_crc32c_accelerated(void);

#endif
