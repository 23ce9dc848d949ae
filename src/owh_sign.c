/* owh_sign.c — Standard Webhooks signatures. See owh_sign.h. */
#include <apr_strings.h>
#include <apr_general.h>
#include <apr_base64.h>
#include <apr_lib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "owh_sign.h"
#include "owh_webhook.h"

/* The decoded key in key[] (room for KEY_ROOM bytes), or NULL: strict base64
 * (the alphabet, '=' only as padding at the end, length a multiple of 4). */
#define B64_MAX  (4 * ((OWH_SECRET_MAX_BYTES + 2) / 3))
#define KEY_ROOM (B64_MAX / 4 * 3 + 4)
static unsigned char *secret_key(const char *secret, int *plen, unsigned char key[KEY_ROOM])
{
    const char *b64;
    apr_size_t n, i, pad = 0;

    if (!secret || strncmp(secret, OWH_SECRET_PREFIX, sizeof(OWH_SECRET_PREFIX) - 1)) return NULL;
    b64 = secret + sizeof(OWH_SECRET_PREFIX) - 1;
    n = strlen(b64);
    if (n == 0 || n % 4 || n > B64_MAX) return NULL;
    for (i = 0; i < n; ++i) {
        char c = b64[i];
        if (c == '=') { if (i < n - 2) return NULL; ++pad; continue; }
        if (pad || !(apr_isalnum(c) || c == '+' || c == '/')) return NULL;
    }
    *plen = apr_base64_decode_binary(key, b64);
    return key;
}

apr_status_t owh_sign_secret_check(const char *secret, const char **perr)
{
    unsigned char buf[KEY_ROOM];
    int len = 0;
    if (!secret_key(secret, &len, buf) || len < OWH_SECRET_MIN_BYTES || len > OWH_SECRET_MAX_BYTES) {
        *perr = "secret must be \"whsec_\" followed by the base64 of 24 to 64 random bytes";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t owh_sign_secret_generate(const char **psecret, apr_pool_t *p)
{
    unsigned char raw[32];
    char *b64;
    apr_status_t rv = apr_generate_random_bytes(raw, sizeof(raw));
    if (rv != APR_SUCCESS) return rv;
    b64 = apr_palloc(p, apr_base64_encode_len(sizeof(raw)));
    apr_base64_encode_binary(b64, raw, sizeof(raw));
    *psecret = apr_pstrcat(p, OWH_SECRET_PREFIX, b64, NULL);
    return APR_SUCCESS;
}

const char *owh_sign_signature(const char *secret, const char *msg_id, const char *timestamp,
                               const char *body, apr_size_t len, apr_pool_t *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int keylen = 0;
    unsigned char buf[KEY_ROOM];
    unsigned char *key = secret_key(secret, &keylen, buf);
    const char *prefix;
    char *msg, *b64;
    apr_size_t plen;

    if (!key || keylen < OWH_SECRET_MIN_BYTES || keylen > OWH_SECRET_MAX_BYTES) return NULL;
    prefix = apr_pstrcat(p, msg_id, ".", timestamp, ".", NULL);
    plen = strlen(prefix);
    msg = apr_palloc(p, plen + len);
    memcpy(msg, prefix, plen);
    memcpy(msg + plen, body, len);
    if (!HMAC(EVP_sha256(), key, keylen, (unsigned char *)msg, plen + len, md, &mdlen)) return NULL;
    b64 = apr_palloc(p, apr_base64_encode_len((int)mdlen));
    apr_base64_encode_binary(b64, md, (int)mdlen);
    return apr_pstrcat(p, "v1,", b64, NULL);
}

apr_status_t owh_sign_headers(apr_array_header_t *headers, const char *delivery_id, apr_time_t now,
                              const char *secret, const char *secret_previous,
                              const char *body, apr_size_t len, apr_pool_t *p)
{
    const char *msg_id = apr_pstrcat(p, "msg_", delivery_id, NULL);
    const char *timestamp = apr_psprintf(p, "%" APR_TIME_T_FMT, apr_time_sec(now));
    owh_header_t *h;

    h = &APR_ARRAY_PUSH(headers, owh_header_t);
    h->name = "webhook-id";
    h->value = msg_id;
    h = &APR_ARRAY_PUSH(headers, owh_header_t);
    h->name = "webhook-timestamp";
    h->value = timestamp;
    if (secret) {
        /* During a rotation both secrets sign: receivers accept either. */
        const char *sig = owh_sign_signature(secret, msg_id, timestamp, body, len, p);
        const char *old = secret_previous
            ? owh_sign_signature(secret_previous, msg_id, timestamp, body, len, p) : NULL;
        if (!sig) return APR_EINVAL;
        h = &APR_ARRAY_PUSH(headers, owh_header_t);
        h->name = "webhook-signature";
        h->value = old ? apr_pstrcat(p, sig, " ", old, NULL) : sig;
    }
    return APR_SUCCESS;
}
