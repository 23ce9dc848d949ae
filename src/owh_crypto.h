/* owh_crypto.h — hashing and encoding helpers (OpenSSL libcrypto). No httpd. */
#ifndef OWH_CRYPTO_H
#define OWH_CRYPTO_H

#include <apr_pools.h>

/* Lower-case hex SHA-256 of data (64 characters). */
const char *owh_crypto_sha256_hex(const void *data, apr_size_t len, apr_pool_t *p);

#endif
