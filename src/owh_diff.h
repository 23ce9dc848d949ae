/* owh_diff.h — owns diff[]: the operations that turn the previous state of an
 * object, as last sent, into the current one (seed 000, WebhookDiffOperation):
 *   {"op": "add"|"remove"|"replace", "path": <RFC 6901 JSON Pointer>,
 *    "was": <old>, "value": <new>}   ("was" absent for add, "value" for remove)
 * Objects are compared key by key, arrays element by element by index; a
 * change of type, or of a scalar, is one "replace". Applied in order the
 * operations are a valid RFC 6902 patch (array removals come highest index
 * first). Also: stripping cardPayment session details. Core: APR + jansson. */
#ifndef OWH_DIFF_H
#define OWH_DIFF_H

#include <apr_pools.h>
#include <jansson.h>

/* The operations from was to now, as a new JSON array owned by p. was NULL
 * (the object's first event) gives []. */
json_t *owh_diff(const json_t *was, const json_t *now, apr_pool_t *p);

/* RFC 6901 escaping of one reference token ("~" -> "~0", "/" -> "~1"). */
const char *owh_diff_escape(const char *token, apr_pool_t *p);

/* Removes every "cardPayment" member at any depth (octo/cardPayments session
 * details are never delivered). Returns the number removed. */
int owh_diff_strip_card_payments(json_t *j);

#endif
