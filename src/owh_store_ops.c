/* owh_store_ops.c — the operations statements (see owh_store_ops.h): the
 * retention batch and its dry run, the queue's figures, the operator
 * notices. Each is one call of a function of sql/functions/ (the logic lives
 * there, once); this file only passes parameters and reads the answer by
 * column name. Used by the dispatcher (owh_ops.c), the status handlers
 * (owh_status.c) and the CLI's prune. APR + libpq only. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "owh_store_ops.h"
#include "owh_store_array.h"

/* A column as a number; 0 for NULL or a missing column. */
static apr_int64_t num(const PGresult *res, int row, const char *column)
{
    const char *v = owh_store_value(res, row, column);
    return v ? apr_atoi64(v) : 0;
}

static int flag(const PGresult *res, int row, const char *column)
{
    const char *v = owh_store_value(res, row, column);
    return v && v[0] == 't';
}

static const char *str(const PGresult *res, int row, const char *column, apr_pool_t *p)
{
    const char *v = owh_store_value(res, row, column);
    return v ? apr_pstrdup(p, v) : NULL;
}

/* ---- retention ----------------------------------------------------------- */
apr_status_t owh_store_prune(owh_db_t *db, apr_interval_time_t retention, apr_interval_time_t every,
                             int batch, const char *owner, owh_prune_result_t *out, apr_pool_t *p)
{
    const char *args[] = { owh_store_interval(retention, p), owh_store_interval(every, p),
                           apr_itoa(p, batch), owner };
    PGresult *res;
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    rv = owh_store_query(&res, db, p,
        "SELECT coalesce((r->>'ran')::boolean, false) AS ran, coalesce((r->>'more')::boolean, false) AS more,"
        "       coalesce((r->>'deliveries')::bigint, 0) AS deliveries,"
        "       coalesce((r->>'attempts')::bigint, 0) AS attempts,"
        "       coalesce((r->>'events')::bigint, 0) AS events, coalesce((r->>'states')::bigint, 0) AS states"
        "  FROM octo_webhooks.prune($1::interval, $2::interval, $3::int, $4) r", 4, args);
    if (rv != APR_SUCCESS) return rv;
    out->ran = flag(res, 0, "ran");
    out->more = flag(res, 0, "more");
    out->deliveries = num(res, 0, "deliveries");
    out->attempts = num(res, 0, "attempts");
    out->events = num(res, 0, "events");
    out->states = num(res, 0, "states");
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

apr_status_t owh_store_prune_preview(owh_db_t *db, apr_interval_time_t retention,
                                     owh_prune_result_t *out, apr_pool_t *p)
{
    const char *args[] = { owh_store_interval(retention, p) };
    PGresult *res;
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    rv = owh_store_query(&res, db, p, "SELECT * FROM octo_webhooks.prune_preview($1::interval)", 1, args);
    if (rv != APR_SUCCESS) return rv;
    out->deliveries = num(res, 0, "deliveries");
    out->attempts = num(res, 0, "attempts");
    out->events = num(res, 0, "events");
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

/* ---- the queue's figures --------------------------------------------------- */
apr_status_t owh_store_stats(owh_db_t *db, const char **pjson, apr_pool_t *p)
{
    PGresult *res;
    apr_status_t rv = owh_store_query(&res, db, p, "SELECT octo_webhooks.stats() AS stats", 0, NULL);
    if (rv != APR_SUCCESS) return rv;
    *pjson = str(res, 0, "stats", p);
    owh_store_clear(res, p);
    return *pjson ? APR_SUCCESS : APR_EGENERAL;
}

/* ---- operator notices ----------------------------------------------------- */
apr_status_t owh_store_notices_take(owh_db_t *db, int send, int limit, apr_interval_time_t lease,
                                    apr_array_header_t **prows, apr_pool_t *p)
{
    const char *args[] = { send ? "true" : "false", apr_itoa(p, limit), owh_store_interval(lease, p) };
    apr_array_header_t *rows;
    PGresult *res;
    apr_status_t rv;
    int i;

    rv = owh_store_query(&res, db, p,
                         "SELECT * FROM octo_webhooks.notices_take($1::boolean, $2::int, $3::interval)", 3, args);
    if (rv != APR_SUCCESS) return rv;
    rows = apr_array_make(p, PQntuples(res) + 1, sizeof(owh_notice_row_t *));
    for (i = 0; i < PQntuples(res); ++i) {
        owh_notice_row_t *n = apr_pcalloc(p, sizeof(*n));
        const char *ids = owh_store_value(res, i, "o_deliveries");
        n->id = str(res, i, "o_id", p);
        n->claim = str(res, i, "o_claim", p);
        n->type = str(res, i, "o_type", p);
        n->webhook = str(res, i, "o_webhook", p);
        n->connection = str(res, i, "o_connection", p);
        n->reason = str(res, i, "o_reason", p);
        n->at = str(res, i, "o_at", p);
        n->count = (int)num(res, i, "o_count");
        n->attempts = (int)num(res, i, "o_attempts");
        n->log_only = flag(res, i, "o_log");
        if (!ids || owh_store_array_parse(&n->deliveries, ids, p) != APR_SUCCESS)
            n->deliveries = apr_array_make(p, 1, sizeof(const char *));
        if (!n->id || !n->type) continue;   /* the function's contract: never */
        APR_ARRAY_PUSH(rows, owh_notice_row_t *) = n;
    }
    owh_store_clear(res, p);
    *prows = rows;
    return APR_SUCCESS;
}

apr_status_t owh_store_notice_done(owh_db_t *db, const char *id, const char *claim, const char *status,
                                   apr_interval_time_t retry_in, const char *error, apr_pool_t *p)
{
    const char *args[] = { id, claim, status, owh_store_interval(retry_in, p), error };
    return owh_store_query(NULL, db, p,
                           "SELECT octo_webhooks.notice_done($1::bigint, $2::uuid, $3, $4::interval, $5)", 5, args);
}

apr_status_t owh_store_note_exhausted(owh_db_t *db, const char *results_json, apr_array_header_t **prows,
                                      apr_pool_t *p)
{
    apr_array_header_t *rows;
    PGresult *res;
    apr_status_t rv;
    int i;

    rv = owh_store_query(&res, db, p, "SELECT * FROM octo_webhooks.note_exhausted($1::jsonb)", 1, &results_json);
    if (rv != APR_SUCCESS) return rv;
    rows = apr_array_make(p, PQntuples(res) + 1, sizeof(owh_exhausted_t *));
    for (i = 0; i < PQntuples(res); ++i) {
        owh_exhausted_t *x = apr_pcalloc(p, sizeof(*x));
        x->webhook = str(res, i, "webhook_id", p);
        x->connection = str(res, i, "connection_id", p);
        x->delivery = str(res, i, "delivery_id", p);
        x->reason = str(res, i, "reason", p);
        APR_ARRAY_PUSH(rows, owh_exhausted_t *) = x;
    }
    owh_store_clear(res, p);
    *prows = rows;
    return APR_SUCCESS;
}
