// libsodium (Debian libsodium-dev 1.0.18): Ed25519 (RFC 8032), BLAKE2b-512 (RFC 7693) and SHA-256 for the
// provisioner's minisign verification. The shim wraps the multi-part BLAKE2b state so Swift never sizes it.
#ifndef HALLWATCH_CSODIUM_SHIM_H
#define HALLWATCH_CSODIUM_SHIM_H
#include <sodium.h>
#include <stdlib.h>

/// A heap-allocated BLAKE2b state (libsodium wants it 64-byte aligned); NULL when out of memory.
static inline crypto_generichash_state *hw_blake2b_new(size_t outlen) {
    void *p = NULL;
    if (posix_memalign(&p, 64, crypto_generichash_statebytes()) != 0) { return NULL; }
    crypto_generichash_state *s = (crypto_generichash_state *)p;
    if (crypto_generichash_init(s, NULL, 0, outlen) != 0) { free(p); return NULL; }
    return s;
}
static inline void hw_blake2b_free(crypto_generichash_state *s) { free(s); }
#endif
