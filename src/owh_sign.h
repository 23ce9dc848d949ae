/* owh_sign.h — owns Standard Webhooks signing: whsec_ secrets (generated,
 * checked) and the webhook-signature value, v1,<base64 HMAC-SHA256 of
 * "{msg id}.{timestamp}.{body}"> keyed with the secret's decoded bytes.
 * APR + OpenSSL libcrypto; no httpd. Unit-tested in t/unit. */
#ifndef OWH_SIGN_H
#define OWH_SIGN_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#define OWH_SECRET_PREFIX     "whsec_"
#define OWH_SECRET_MIN_BYTES  24
#define OWH_SECRET_MAX_BYTES  64

/* A new secret of 32 random bytes. */
apr_status_t owh_sign_secret_generate(const char **psecret, apr_pool_t *p);

/* APR_SUCCESS if secret is whsec_ + padded base64 of 24 to 64 bytes;
 * otherwise APR_EINVAL and *perr (never echoing the secret). */
apr_status_t owh_sign_secret_check(const char *secret, const char **perr);

/* "v1,<base64>" for one secret, or NULL if the secret is malformed. */
const char *owh_sign_signature(const char *secret, const char *msg_id, const char *timestamp,
                               const char *body, apr_size_t len, apr_pool_t *p);

/* Appends the Standard Webhooks headers of a delivery to headers
 * (owh_header_t): webhook-id msg_<delivery_id>, webhook-timestamp of now, and
 * with a secret webhook-signature (both secrets during a rotation).
 * APR_EINVAL if a secret is malformed. */
apr_status_t owh_sign_headers(apr_array_header_t *headers, const char *delivery_id, apr_time_t now,
                              const char *secret, const char *secret_previous,
                              const char *body, apr_size_t len, apr_pool_t *p);

#endif
