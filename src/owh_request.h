/* owh_request.h — owns the pure parsing of the HTTP surface, apart from any
 * request_rec so it can be unit-tested and fuzzed without httpd: which base
 * routes resolve against, route matching, bearer tokens, query strings and
 * the attempt log's list parameters. APR only (core). */
#ifndef OWH_REQUEST_H
#define OWH_REQUEST_H

#include <apr_pools.h>
#include <apr_tables.h>

/* The longest of bases (const char *: <Location> paths without a trailing
 * slash, "" for the root) that is a prefix of uri at a segment boundary;
 * else fallback (the innermost <Location>) when it is a prefix of uri; else
 * "" (the root). */
const char *owh_request_base(const char *uri, const apr_array_header_t *bases, const char *fallback);

/* Index of the first of patterns (NULL-terminated; literal segments, "{id}"
 * and "{sub}" match one segment of 1-64 bytes) that the part of uri under
 * base matches — leading slashes and one trailing slash aside — or -1.
 * ids[0] and ids[1] get the {id} and {sub} segments. */
int owh_request_route(const char *uri, const char *base, const char *const *patterns, const char **ids,
                      apr_pool_t *p);

/* The token of an "Authorization: Bearer <b64token>" value (RFC 6750
 * characters, 1-512 of them), or NULL when the value is anything else. */
const char *owh_request_bearer(const char *authorization);

/* A query string as httpd's ap_args_to_table reads it: pairs split at '&',
 * key and value at the first '=', a key alone is "1", %XX decoded (a bad
 * escape is kept as it is; a decoded NUL ends the string); the last of a
 * repeated key wins. */
apr_table_t *owh_request_args(const char *query, apr_pool_t *p);

/* GET /webhooks/{id}/deliveries: status (pending, succeeded, failed or
 * absent), limit (1-100, default 20) and cursor (a UUID or absent) from args.
 * Returns NULL, or the message of a 400. */
const char *owh_request_list_params(const apr_table_t *args, const char **pstatus, int *plimit,
                                    const char **pcursor);

/* value without leading and trailing whitespace (the echoed Octo-Capabilities). */
const char *owh_request_trim(const char *value, apr_pool_t *p);

#endif
