/* owh_crypto.c — SHA-256 (OpenSSL libcrypto). See owh_crypto.h. */
#include <openssl/evp.h>

#include "owh_crypto.h"

const char *owh_crypto_sha256_hex(const void *data, apr_size_t len, apr_pool_t *p)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char *out;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL)) return NULL;
    out = apr_palloc(p, mdlen * 2 + 1);
    for (i = 0; i < mdlen; ++i) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[mdlen * 2] = '\0';
    return out;
}
