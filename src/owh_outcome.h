/* owh_outcome.h — owns what one delivery attempt's answer means: succeeded,
 * retry (and after how long) or failed, and the text recorded with it. Pure
 * APR: no httpd, no libpq, no libcurl; unit-tested in t/unit/test_outcome.c. */
#ifndef OWH_OUTCOME_H
#define OWH_OUTCOME_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef enum { OWH_OUTCOME_SUCCEEDED, OWH_OUTCOME_RETRY, OWH_OUTCOME_FAILED } owh_outcome_e;

/* One attempt as the queue records it. */
typedef struct owh_result_t {
    const char *delivery_id, *claim_id;
    const char *webhook_id;      /* for logs and metrics, or NULL */
    int attempt;                 /* 1-based number of this attempt */
    apr_time_t started;
    int status_code;             /* 0 when no HTTP answer */
    int latency_ms;
    const char *excerpt;         /* response body head, valid UTF-8, or NULL */
    const char *error;           /* or NULL */
    owh_outcome_e outcome;
    apr_interval_time_t retry_in;/* for OWH_OUTCOME_RETRY */
    int gone;                    /* the endpoint answered 410: deactivate the webhook */
} owh_result_t;

/* What decides an attempt's outcome besides its answer. */
typedef struct owh_outcome_policy_t {
    const apr_array_header_t *delays;   /* apr_interval_time_t per retry; NULL: none */
    int retry_on_error;                 /* the webhook's retryOnError */
    int sendable;                       /* 0: it can never be sent (no retry) */
    apr_interval_time_t max_retry_after;/* bound on an endpoint's Retry-After */
    apr_time_t now;
    double jitter;                      /* in [0, 1): spreads retries +-20% */
} owh_outcome_policy_t;

/* Fills r->outcome, r->retry_in, r->gone and r->error (an "HTTP nnn" when the
 * answer was not 2xx and no transport error is given) from r->attempt,
 * r->status_code and the answer's Retry-After (NULL: none). */
void owh_outcome_decide(owh_result_t *r, const owh_outcome_policy_t *pol, const char *retry_after,
                        apr_pool_t *p);

/* Retry-After (delay-seconds or an HTTP-date) as a delay from now, clamped to
 * [0, max]; APR_EINVAL if it is neither. */
apr_status_t owh_outcome_retry_after(const char *value, apr_time_t now, apr_interval_time_t max,
                                     apr_interval_time_t *pdelay);

/* len bytes as valid UTF-8 text: invalid sequences and NULs become '?'
 * (PostgreSQL text and JSON strings accept nothing else). */
const char *owh_outcome_clean_text(const char *s, apr_size_t len, apr_pool_t *p);

#endif
