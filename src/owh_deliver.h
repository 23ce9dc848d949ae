/* owh_deliver.h — owns outbound HTTP: concurrent POSTs on one libcurl multi
 * handle (trusted fetches in a connection cache of their own, every delivery's
 * peer judged by the SSRF guard, reused or not), with connect and total
 * timeouts, no redirects, http/https only,
 * no proxy from the environment, URL credentials sent as Basic auth (never
 * in the request line), and response bodies kept up to a cap. APR + libcurl. */
#ifndef OWH_DELIVER_H
#define OWH_DELIVER_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "owh_outcome.h"

typedef struct owh_deliver_t owh_deliver_t;

typedef struct owh_deliver_params_t {
    apr_interval_time_t connect_timeout;
    apr_interval_time_t timeout;
    apr_size_t response_cap;
    int max_per_host;               /* libcurl's own per-host connection cap */
    const char *user_agent;
    const struct owh_netguard_t *guard; /* SSRF rule applied to every connect */
} owh_deliver_params_t;

typedef struct owh_transfer_result_t {
    int status_code;                /* 0: no HTTP answer */
    const char *error;              /* transport error, or NULL */
    const char *excerpt;            /* response head (raw bytes, NUL-terminated) */
    apr_size_t excerpt_len;
    apr_time_t started;
    int latency_ms;
    const char *retry_after;        /* the response's Retry-After value, or NULL */
    int truncated;                  /* the body filled the cap (and may go on) */
} owh_transfer_result_t;

/* Called once per finished transfer; the transfer's pool is destroyed after. */
typedef void owh_deliver_done_fn(void *ctx, void *baton, const owh_transfer_result_t *res);

/* Retry-After parsing is part of an attempt's outcome (owh_outcome.h). */
#define owh_deliver_retry_after owh_outcome_retry_after

apr_status_t owh_deliver_create(owh_deliver_t **pd, const owh_deliver_params_t *params, apr_pool_t *p);

/* One request. A delivery is a POST of JSON to an endpoint a reseller named:
 * the SSRF guard judges its connects. A fetch from the supplier's own API
 * (resolve mode) is trusted: its URL comes from the configuration. */
typedef struct owh_request_t {
    const char *method;             /* "POST" (with body) or "GET" */
    const char *url;
    const apr_array_header_t *headers; /* owh_header_t, sent as given */
    const char *body;               /* JSON, POST only; must live as long as tpool */
    apr_size_t len;
    apr_size_t response_cap;        /* bytes of the answer kept; 0: the params' cap */
    int trusted;                    /* skip the SSRF guard */
    owh_deliver_done_fn *done;      /* NULL: the one owh_deliver_process is given */
} owh_request_t;

/* Starts a request; tpool is destroyed by owh_deliver_process after done()
 * ran. A body is sent with Content-Type: application/json. */
apr_status_t owh_deliver_request(owh_deliver_t *d, const owh_request_t *rq, void *baton, apr_pool_t *tpool);

/* Starts a delivery: a guarded POST of body. */
apr_status_t owh_deliver_start(owh_deliver_t *d, const char *url, const apr_array_header_t *headers,
                               const char *body, apr_size_t len, void *baton, apr_pool_t *tpool);

int owh_deliver_running(owh_deliver_t *d);

/* Waits up to timeout_ms for transfer activity or for one of nfds (at most
 * 2) sockets (-1: none) to become readable; ready[i] tells which. */
apr_status_t owh_deliver_wait(owh_deliver_t *d, const int *fds, int nfds, int timeout_ms, int *ready);

/* Drives the transfers and calls done() for each one that finished. */
void owh_deliver_process(owh_deliver_t *d, owh_deliver_done_fn *done, void *ctx);

#endif
