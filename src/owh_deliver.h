/* owh_deliver.h — owns outbound HTTP: concurrent POSTs on one libcurl multi
 * handle, with connect and total timeouts, no redirects, http/https only,
 * no proxy from the environment, URL credentials sent as Basic auth (never
 * in the request line), and response bodies kept up to a cap. APR + libcurl. */
#ifndef OWH_DELIVER_H
#define OWH_DELIVER_H

#include <apr_pools.h>
#include <apr_tables.h>

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
} owh_transfer_result_t;

/* Retry-After (delay-seconds or an HTTP-date) as a delay from now, clamped to
 * [0, max]; APR_EINVAL if it is neither. */
apr_status_t owh_deliver_retry_after(const char *value, apr_time_t now, apr_interval_time_t max,
                                     apr_interval_time_t *pdelay);

/* Called once per finished transfer; the transfer's pool is destroyed after. */
typedef void owh_deliver_done_fn(void *ctx, void *baton, const owh_transfer_result_t *res);

apr_status_t owh_deliver_create(owh_deliver_t **pd, const owh_deliver_params_t *params, apr_pool_t *p);

/* Starts a POST. headers: owh_header_t (name, value) sent as given, after
 * Content-Type: application/json. The body must live as long as tpool; tpool
 * is destroyed by owh_deliver_process after done() ran. */
apr_status_t owh_deliver_start(owh_deliver_t *d, const char *url, const apr_array_header_t *headers,
                               const char *body, apr_size_t len, void *baton, apr_pool_t *tpool);

int owh_deliver_running(owh_deliver_t *d);

/* Waits up to timeout_ms for transfer activity or for extra_fd (-1: none) to
 * become readable; *extra_ready tells which. */
apr_status_t owh_deliver_wait(owh_deliver_t *d, int extra_fd, int timeout_ms, int *extra_ready);

/* Drives the transfers and calls done() for each one that finished. */
void owh_deliver_process(owh_deliver_t *d, owh_deliver_done_fn *done, void *ctx);

#endif
