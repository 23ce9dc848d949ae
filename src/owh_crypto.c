/* owh_crypto.c — SHA-256 (OpenSSL libcrypto). See owh_crypto.h. */
#include <openssl/evp.h>

#include "owh_crypto.h"

/* SHA-256 fetched from the provider once per process: EVP_sha256() makes
 * OpenSSL 3 look the algorithm up again on every digest (a lock and a
 * provider walk per API request, for the token's hash). */
static const EVP_MD *sha256(void)
{
    static EVP_MD *volatile md;
    EVP_MD *m = md, *expected = NULL;
    if (m) return m;
    if (!(m = EVP_MD_fetch(NULL, "SHA256", NULL))) return EVP_sha256();
    if (!__atomic_compare_exchange_n(&md, &expected, m, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        EVP_MD_free(m);                 /* another thread fetched it first */
        m = expected;
    }
    return m;
}

const char *owh_crypto_sha256_hex(const void *data, apr_size_t len, apr_pool_t *p)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char *out;
    if (!EVP_Digest(data, len, md, &mdlen, sha256(), NULL)) return NULL;
    out = apr_palloc(p, mdlen * 2 + 1);
    for (i = 0; i < mdlen; ++i) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[mdlen * 2] = '\0';
    return out;
}
