/* owh_queue.c — claim, complete, release. See owh_queue.h. Batches travel as
 * one JSON parameter (jsonb_to_recordset), so a batch of any size costs one
 * round trip and no SQL text is built from data. */
#include <apr_strings.h>
#include <jansson.h>

#include "owh_queue.h"
#include "owh_json.h"
#include "owh_log.h"

static const char *opt_value(PGresult *res, int row, int col, apr_pool_t *p)
{
    return PQgetisnull(res, row, col) ? NULL : apr_pstrdup(p, PQgetvalue(res, row, col));
}

apr_status_t owh_queue_claim(owh_db_t *db, const owh_claim_params_t *cp, apr_array_header_t *jobs,
                             owh_claim_info_t *info, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { apr_itoa(p, cp->limit), owh_store_interval(cp->lease, p), cp->owner,
                           apr_itoa(p, cp->per_webhook), apr_itoa(p, cp->rate) };
    apr_time_t now = apr_time_now();
    apr_status_t rv;
    int i;

    rv = owh_store_query(&res, db, p,
        "SELECT * FROM octo_webhooks.claim($1::int, $2::interval, $3, $4::int, $5::int)", 5, args);
    if (rv != APR_SUCCESS) return rv;
    info->held = 0;
    info->next_in = -1;
    for (i = 0; i < PQntuples(res); ++i) {
        owh_job_t *j;
        if (PQgetisnull(res, i, 0)) {           /* the last row: when to look again */
            info->held = atoi(PQgetvalue(res, i, 12));
            if (!PQgetisnull(res, i, 13)) {
                double secs = atof(PQgetvalue(res, i, 13));
                info->next_in = secs > 0 ? (apr_interval_time_t)(secs * APR_USEC_PER_SEC) : 0;
            }
            continue;
        }
        j = apr_pcalloc(p, sizeof(*j));
        j->delivery_id = apr_pstrdup(p, PQgetvalue(res, i, 0));
        j->claim_id = apr_pstrdup(p, PQgetvalue(res, i, 1));
        j->attempts = atoi(PQgetvalue(res, i, 2));
        j->webhook_json = apr_pstrdup(p, PQgetvalue(res, i, 3));
        j->event_type = apr_pstrdup(p, PQgetvalue(res, i, 4));
        j->object_key = apr_pstrdup(p, PQgetvalue(res, i, 5));
        j->object_json = apr_pstrdup(p, PQgetvalue(res, i, 6));
        j->connection_id = apr_pstrdup(p, PQgetvalue(res, i, 7));
        j->language = opt_value(res, i, 8, p);
        j->supplier_json = opt_value(res, i, 9, p);
        j->secret = opt_value(res, i, 10, p);
        j->secret_previous = opt_value(res, i, 11, p);
        j->previous_json = opt_value(res, i, 14, p);
        j->event_id = apr_pstrdup(p, PQgetvalue(res, i, 15));
        j->event_at = apr_pstrdup(p, PQgetvalue(res, i, 16));
        j->sample = !strcmp(PQgetvalue(res, i, 17), "t");
        j->claimed_at = now;
        APR_ARRAY_PUSH(jobs, owh_job_t *) = j;
    }
    owh_log_perror(OWH_LOG_MARK, OWH_LOG_TRACE1, 0, p, OWHLOGNO(00601)
                   "claim: %d of at most %d, %d webhooks held by a cap, next due in %" APR_TIME_T_FMT " ms",
                   jobs->nelts, cp->limit, info->held, info->next_in < 0 ? -1 : info->next_in / 1000);
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

static const char *outcome_name(owh_outcome_e o)
{
    return o == OWH_OUTCOME_SUCCEEDED ? "succeeded" : o == OWH_OUTCOME_FAILED ? "failed" : "pending";
}

apr_status_t owh_queue_complete(owh_db_t *db, const apr_array_header_t *results, const char *owner,
                                apr_interval_time_t disable_after, apr_pool_t *p)
{
    json_t *arr;
    const char *args[3];
    apr_size_t len;
    int i;

    if (!results->nelts) return APR_SUCCESS;
    arr = owh_json_pool_own(json_array(), p);
    for (i = 0; i < results->nelts; ++i) {
        const owh_result_t *r = APR_ARRAY_IDX(results, i, owh_result_t *);
        json_t *o = json_pack("{s:s, s:s, s:i, s:f, s:i, s:i, s:s, s:f, s:b}",
            "id", r->delivery_id, "claim", r->claim_id, "attempt", r->attempt,
            "started", (double)r->started / APR_USEC_PER_SEC, "code", r->status_code,
            "latency", r->latency_ms, "status", outcome_name(r->outcome),
            "retry_in", (double)r->retry_in / APR_USEC_PER_SEC, "gone", r->gone);
        if (!o) return APR_ENOMEM;
        json_object_set_new(o, "excerpt", r->excerpt ? json_string(r->excerpt) : json_null());
        json_object_set_new(o, "error", r->error ? json_string(r->error) : json_null());
        if (!r->status_code) json_object_set_new(o, "code", json_null());
        json_array_append_new(arr, o);
    }
    args[0] = owh_json_dump(arr, &len, p);
    args[1] = owner;
    args[2] = owh_store_interval(disable_after, p);
    owh_log_perror(OWH_LOG_MARK, OWH_LOG_TRACE1, 0, p, OWHLOGNO(00602) "complete: %d outcomes", results->nelts);
    /* Outcomes apply only while our lease holds; the attempt is recorded
     * either way, because it happened. */
    return owh_store_query(NULL, db, p,
        "SELECT octo_webhooks.complete($1::jsonb, $2, $3::interval)", 3, args);
}

apr_status_t owh_queue_release(owh_db_t *db, const apr_array_header_t *jobs,
                               apr_interval_time_t delay, apr_pool_t *p)
{
    json_t *arr;
    const char *args[2];
    apr_size_t len;
    int i;
    if (!jobs->nelts) return APR_SUCCESS;
    arr = owh_json_pool_own(json_array(), p);
    for (i = 0; i < jobs->nelts; ++i) {
        const owh_job_t *j = APR_ARRAY_IDX(jobs, i, owh_job_t *);
        json_array_append_new(arr, json_pack("{s:s, s:s}", "id", j->delivery_id, "claim", j->claim_id));
    }
    args[0] = owh_json_dump(arr, &len, p);
    args[1] = owh_store_interval(delay, p);
    owh_log_perror(OWH_LOG_MARK, OWH_LOG_TRACE1, 0, p, OWHLOGNO(00603)
                   "release: %d claims handed back, due in %" APR_TIME_T_FMT " ms", jobs->nelts, delay / 1000);
    return owh_store_query(NULL, db, p,
        "UPDATE octo_webhooks.deliveries d"
        "   SET next_attempt_at = clock_timestamp() + $2::interval, claim_id = NULL"
        "  FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, claim uuid)"
        " WHERE d.id = r.id AND d.claim_id = r.claim AND d.status = 'pending'",
        2, args);
}

apr_status_t owh_queue_view_state(owh_db_t *db, const char *state_key, const char *event_id,
                                  const char *object_json, const char **pprevious, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { state_key, event_id, object_json };
    apr_status_t rv = owh_store_query(&res, db, p,
        "SELECT octo_webhooks.view_state($1, $2::bigint, $3::jsonb)", 3, args);
    if (rv != APR_SUCCESS) return rv;
    *pprevious = PQntuples(res) == 1 ? opt_value(res, 0, 0, p) : NULL;
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

apr_status_t owh_queue_listen(owh_db_t *db, apr_pool_t *p)
{
    return owh_store_query(NULL, db, p, "LISTEN octo_webhooks", 0, NULL);
}

apr_status_t owh_queue_notified(owh_db_t *db, int *wake)
{
    PGnotify *n;
    if (!PQconsumeInput(db->pg)) {
        db->broken = 1;
        return OWH_STORE_EUNAVAIL;
    }
    while ((n = PQnotifies(db->pg))) {
        *wake = 1;
        PQfreemem(n);
    }
    return APR_SUCCESS;
}
