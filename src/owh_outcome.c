/* owh_outcome.c — an attempt's answer to an outcome. See owh_outcome.h. */
#include <apr_strings.h>
#include <apr_date.h>
#include <stdlib.h>

#include "owh_outcome.h"

apr_status_t owh_outcome_retry_after(const char *value, apr_time_t now, apr_interval_time_t max,
                                     apr_interval_time_t *pdelay)
{
    apr_interval_time_t d;
    if (!value || !*value) return APR_EINVAL;
    if (strspn(value, "0123456789") == strlen(value)) {
        if (strlen(value) > 9) d = max;                     /* beyond any bound anyway */
        else d = apr_time_from_sec(atoi(value));
    }
    else {
        apr_time_t when = apr_date_parse_http(value);
        if (when == APR_DATE_BAD) return APR_EINVAL;
        d = when - now;
    }
    *pdelay = d < 0 ? 0 : d > max ? max : d;
    return APR_SUCCESS;
}

const char *owh_outcome_clean_text(const char *s, apr_size_t len, apr_pool_t *p)
{
    char *out = apr_palloc(p, len + 1);
    apr_size_t i = 0, o = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int k, ok = n > 0 && c != 0 && i + n <= len;
        for (k = 1; ok && k < n; ++k) ok = ((unsigned char)s[i + k] >> 6) == 2;
        if (ok && n == 2 && c < 0xc2) ok = 0;                       /* overlong */
        if (ok) { memcpy(out + o, s + i, n); o += n; i += n; }
        else { out[o++] = '?'; ++i; }
    }
    out[o] = '\0';
    return out;
}

void owh_outcome_decide(owh_result_t *r, const owh_outcome_policy_t *pol, const char *retry_after,
                        apr_pool_t *p)
{
    int code = r->status_code;
    int ok = !r->error && code >= 200 && code < 300;
    apr_interval_time_t after;

    r->gone = !r->error && code == 410;         /* the endpoint asks us to stop */
    r->retry_in = 0;
    if (!r->error && !ok) r->error = apr_psprintf(p, "HTTP %d", code);
    if (ok) r->outcome = OWH_OUTCOME_SUCCEEDED;
    else if (!pol->sendable || r->gone || !pol->retry_on_error || !pol->delays
             || r->attempt > pol->delays->nelts)
        r->outcome = OWH_OUTCOME_FAILED;
    else if ((code == 429 || code == 503)
             && owh_outcome_retry_after(retry_after, pol->now, pol->max_retry_after, &after) == APR_SUCCESS) {
        r->outcome = OWH_OUTCOME_RETRY;         /* the endpoint said when */
        r->retry_in = after;
    }
    else {
        apr_interval_time_t base = APR_ARRAY_IDX(pol->delays, r->attempt - 1, apr_interval_time_t);
        r->outcome = OWH_OUTCOME_RETRY;
        r->retry_in = (apr_interval_time_t)(base * (0.8 + 0.4 * pol->jitter));     /* +-20% */
    }
}
