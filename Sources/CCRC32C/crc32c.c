// CRC-32C for HallwatchStorage (include/crc32c.h). Three paths, one answer:
// - x86-64: SSE4.2 `crc32` (Intel SDM Vol. 2A, CRC32), 8 bytes per instruction, when
//   __builtin_cpu_supports("sse4.2");
// - aarch64: the ARMv8 CRC32CB/CRC32CD instructions (FEAT_CRC32, ACLE __crc32cb/__crc32cd), when the kernel
//   reports HWCAP_CRC32 (every Cortex-A76, the Raspberry Pi 5's core, has them);
// - anywhere else: slice-by-8 tables (eight 256-entry tables, 8 bytes per step).
// Each path takes single bytes until the pointer is 8-byte aligned, 8-byte words (read little-endian, the
// order the reflected CRC consumes them), then the tail.
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (int i = 0; i < 256; i++) {
        uint32_t c = table[0][i];
        for (int k = 1; k < 8; k++) {
            c = (c >> 8) ^ table[0][c & 0xFF];
            table[k][i] = c;
        }
    }
}

static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

uint32_t hw_crc32c_update_portable(uint32_t crc, const void *bytes, size_t n) {
    pthread_once(&table_once, build_table);
    const unsigned char *p = bytes;
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
        n--;
    }
    while (n >= 8) {
        uint64_t w = load_le64(p);
        uint32_t lo = (uint32_t)w ^ crc, hi = (uint32_t)(w >> 32);
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24]
            ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^ table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
        n--;
    }
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t update_hardware(uint32_t crc, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    uint64_t c = crc;
    while (n >= 8) {
        c = _mm_crc32_u64(c, load_le64(p));
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c;
    while (n > 0) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    return crc;
}

int hw_crc32c_accelerated(void) { return __builtin_cpu_supports("sse4.2") ? 1 : 0; }

#elif defined(__aarch64__)
__attribute__((target("crc"))) static uint32_t update_hardware(uint32_t crc, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        crc = __crc32cb(crc, *p++);
        n--;
    }
    while (n >= 8) {
        crc = __crc32cd(crc, load_le64(p));
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        crc = __crc32cb(crc, *p++);
        n--;
    }
    return crc;
}

int hw_crc32c_accelerated(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0; }

#else
static uint32_t update_hardware(uint32_t crc, const void *bytes, size_t n) {
    return hw_crc32c_update_portable(crc, bytes, n);
}

int hw_crc32c_accelerated(void) { return 0; }
#endif

// The CPU check, once: 0 unknown, 1 instructions, 2 tables (a benign race: every thread computes the same).
static int path;

uint32_t hw_crc32c_update(uint32_t crc, const void *bytes, size_t n) {
    if (n == 0) return crc;
    int chosen = __atomic_load_n(&path, __ATOMIC_RELAXED);
    if (chosen == 0) {
        chosen = hw_crc32c_accelerated() ? 1 : 2;
        __atomic_store_n(&path, chosen, __ATOMIC_RELAXED);
    }
    return chosen == 1 ? update_hardware(crc, bytes, n) : hw_crc32c_update_portable(crc, bytes, n);
}
