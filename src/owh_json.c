/* owh_json.c — jansson values tied to APR pools, strict body parsing and
 * compact serialization into pool memory. See owh_json.h. */
#include <stdlib.h>
#include <apr_strings.h>

#include "owh_json.h"

static apr_status_t json_release(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *owh_json_pool_own(json_t *j, apr_pool_t *p)
{
    if (j) apr_pool_cleanup_register(p, j, json_release, apr_pool_cleanup_null);
    return j;
}

json_t *owh_json_parse(const char *data, apr_size_t len, const char **perr, apr_pool_t *p)
{
    json_error_t jerr;
    json_t *j;
    if (!len) {
        *perr = "The request body is empty";
        return NULL;
    }
    /* Duplicate keys are ambiguous (which one wins differs between parsers):
     * refuse them. NUL in strings stays refused (no JSON_ALLOW_NUL). */
    j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j) {
        /* jansson's text names the problem and the position, never the input */
        *perr = apr_psprintf(p, "The request body is not valid JSON: %.120s (line %d, column %d)",
                             jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    return owh_json_pool_own(j, p);
}

const char *owh_json_dump(const json_t *j, apr_size_t *plen, apr_pool_t *p)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *out;
    apr_size_t len;
    if (!s) {
        if (plen) *plen = 4;
        return "null";
    }
    len = strlen(s);
    out = apr_pstrmemdup(p, s, len);
    free(s);
    if (plen) *plen = len;
    return out;
}
