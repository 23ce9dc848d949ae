/* owh_store_ops.h — the operations statements (owh_store_ops.c): one
 * retention batch (octo_webhooks.prune()) and its dry run, the queue's
 * figures for /metrics and /status (stats()), the operator notices
 * (notices_take(), notice_done(), note_exhausted()). Results come back as
 * plain C values read by column name; no caller sees a PGresult.
 * APR + libpq only. */
#ifndef OWH_STORE_OPS_H
#define OWH_STORE_OPS_H

#include "owh_store.h"

/* ---- retention ----------------------------------------------------------- */
typedef struct owh_prune_result_t {
    int ran;            /* 0: another session holds the pruning lock, or the last round is recent */
    int more;           /* a batch (or the events tally) was full: call again soon */
    apr_int64_t deliveries, attempts, events, states;
} owh_prune_result_t;

/* One call of octo_webhooks.prune(): tallies new events, and (unless the last
 * round is younger than every) deletes up to batch rows of each kind that
 * ended longer ago than retention, under the advisory lock every host shares.
 * owner is recorded in prune_log. */
apr_status_t owh_store_prune(owh_db_t *db, apr_interval_time_t retention, apr_interval_time_t every,
                             int batch, const char *owner, owh_prune_result_t *out, apr_pool_t *p);

/* What rounds of prune() with this retention would delete now (the CLI's
 * --dry-run): out->ran is 0, the counts are set. */
apr_status_t owh_store_prune_preview(owh_db_t *db, apr_interval_time_t retention,
                                     owh_prune_result_t *out, apr_pool_t *p);

/* ---- the queue's figures --------------------------------------------------- */
/* octo_webhooks.stats() as its JSON text (in p): index probes under a cap and
 * planner estimates, never a count(*) over a big table. */
apr_status_t owh_store_stats(owh_db_t *db, const char **pjson, apr_pool_t *p);

/* ---- operator notices ----------------------------------------------------- */
typedef struct owh_notice_row_t {
    const char *id;             /* bigint as text */
    const char *claim;          /* the lease's uuid; NULL for a log-only row */
    const char *type;           /* webhook.disabled | delivery.exhausted */
    const char *webhook, *connection, *reason, *at;     /* at: ISO 8601 */
    int count, attempts;
    int log_only;               /* a disable not yet logged: log it, send nothing */
    apr_array_header_t *deliveries;     /* const char * uuids (delivery.exhausted) */
} owh_notice_row_t;

/* Disables not yet logged (each returned once, to whoever takes it) and, with
 * send, up to limit due notices claimed for lease. *prows: owh_notice_row_t *. */
apr_status_t owh_store_notices_take(owh_db_t *db, int send, int limit, apr_interval_time_t lease,
                                    apr_array_header_t **prows, apr_pool_t *p);

/* Records a notice's attempt: status "sent", "pending" (again after retry_in)
 * or "failed"; error NULL when sent. Ignored if the claim is no longer held. */
apr_status_t owh_store_notice_done(owh_db_t *db, const char *id, const char *claim, const char *status,
                                   apr_interval_time_t retry_in, const char *error, apr_pool_t *p);

typedef struct owh_exhausted_t {
    const char *webhook, *connection, *delivery, *reason;
} owh_exhausted_t;

/* After complete(): results_json is [{"id", "attempt", "status", "gone"}] of
 * the batch's failed outcomes; folds them into the operator's notices and
 * returns those that really ended (*prows: owh_exhausted_t *). */
apr_status_t owh_store_note_exhausted(owh_db_t *db, const char *results_json, apr_array_header_t **prows,
                                      apr_pool_t *p);

#endif
