/* owh_json.h — jansson glue: JSON values whose lifetime is tied to an APR pool
 * (a cleanup drops the reference), strict parsing of request bodies, and
 * serialization into pool memory. No httpd headers. */
#ifndef OWH_JSON_H
#define OWH_JSON_H

#include <apr_pools.h>
#include <jansson.h>

/* Hands the caller's reference of j to pool p: json_decref runs when p is
 * cleared. Returns j (NULL passes through). */
json_t *owh_json_pool_own(json_t *j, apr_pool_t *p);

/* Strict parse of a request body: duplicate keys rejected, no trailing data,
 * no NUL in strings. On failure returns NULL and sets *perr to a message that
 * names the position (never the body's content). The value is owned by p. */
json_t *owh_json_parse(const char *data, apr_size_t len, const char **perr, apr_pool_t *p);

/* Compact serialization into pool memory; *plen gets the length. */
const char *owh_json_dump(const json_t *j, apr_size_t *plen, apr_pool_t *p);

#endif
