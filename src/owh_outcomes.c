/* owh_outcomes.c — the outcomes' own connection. See owh_outcomes.h.
 *
 * Why a second connection: one connection made every round trip wait for the
 * one before it. At the defaults a claim that routes events takes several
 * milliseconds, the outcomes gathered meanwhile waited for it, and the
 * claims waited for the outcomes: one PostgreSQL backend did all the work on
 * one core (bench/README, session 12). complete() takes the claims' lock
 * only for its last statement (webhook_flight), after its rows are written. */
#include <apr_strings.h>

#include "owh_outcomes.h"
#include "owh_log_httpd.h"
#include "owh_ops.h"

#define RECONNECT_AFTER apr_time_from_sec(1)

static void link_drop(loop_t *L)
{
    if (L->ocycle) {
        owh_outcomes_requeue(L, L->ocycle_results, L->ocyclepool);
        L->ocycle = NULL;
        L->ocyclepool = NULL;
    }
    if (L->odbpool) apr_pool_destroy(L->odbpool);
    L->odbpool = NULL;
    L->odb = NULL;
    L->oretry_at = apr_time_now() + RECONNECT_AFTER;
}

int owh_outcomes_up(loop_t *L)
{
    apr_status_t rv;
    if (L->odb && owh_store_usable(L->odb)) return 1;
    if (L->odb) link_drop(L);
    /* the claims' connection first: it migrates, this one only checks */
    if (!L->db || apr_time_now() < L->oretry_at) return 0;
    L->odbpool = owh_dsp_pool(L->pool, "owh_dsp_outcomes_db");
    rv = owh_store_connect_schema(&L->odb, L->sc->conninfo, L->sc->connect_timeout, OWH_SCHEMA_CHECK,
                                  L->odbpool);
    if (rv == APR_SUCCESS)      /* not "dispatcher ...": status counts those */
        rv = owh_store_set_application_name(L->odb, apr_pstrcat(L->odbpool, "octo-webhooks outcomes ",
                                                                 L->owner, NULL), L->odbpool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, L->s, OWHLOGNO(00515)
                     "dispatcher: the outcomes' connection failed (they go with the claims): %s",
                     L->odb && L->odb->errmsg ? L->odb->errmsg : "connection failed");
        link_drop(L);
        return 0;
    }
    return 1;
}

void owh_outcomes_send(loop_t *L)
{
    owh_cycle_req_t rq;
    apr_status_t rv;
    if (L->ocycle || !L->results->nelts || !owh_outcomes_up(L)) return;
    memset(&rq, 0, sizeof(rq));
    rq.results = L->results;
    rq.owner = L->owner;
    rq.disable_after = L->sc->disable_after;
    /* the outcomes move with the round trip; new ones gather meanwhile */
    L->ocyclepool = L->respool;
    L->ocycle_results = L->results;
    L->respool = owh_dsp_pool(L->pool, "owh_dsp_results");
    L->results = apr_array_make(L->respool, 64, sizeof(owh_result_t *));
    if ((rv = owh_queue_cycle_send(&L->ocycle, L->odb, &rq, L->ocyclepool)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, L->s, OWHLOGNO(00516)
                     "dispatcher: recording outcomes failed: %s",
                     L->odb->errmsg ? L->odb->errmsg : "unknown error");
        L->ocycle = NULL;
        owh_outcomes_requeue(L, L->ocycle_results, L->ocyclepool);
        L->ocyclepool = NULL;
        if (L->odb->broken) link_drop(L);
    }
}

void owh_outcomes_collect(loop_t *L, int block)
{
    apr_pool_t *tmp;
    apr_array_header_t *none;
    owh_claim_info_t info;
    int done = 0;
    apr_status_t rv;

    if (!L->ocycle) return;
    tmp = owh_dsp_pool(L->pool, "owh_dsp_tmp");
    none = apr_array_make(tmp, 1, sizeof(owh_job_t *));
    do rv = owh_queue_cycle_read(L->ocycle, block, &done, none, &info);
    while (block && !done);
    if (done) {
        L->ocycle = NULL;
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, L->s, OWHLOGNO(00517)
                         "dispatcher: recording %d outcomes failed: %s", L->ocycle_results->nelts,
                         L->odb->errmsg ? L->odb->errmsg : "unknown error");
            owh_outcomes_requeue(L, L->ocycle_results, L->ocyclepool);
            if (L->odb->broken) link_drop(L);
        }
        else {
            owh_ops_after_complete(L, L->ocycle_results);   /* warn lines and notices of failed ones */
            apr_pool_destroy(L->ocyclepool);
            L->freed = 1;       /* the caps see the slots these ended */
        }
        L->ocyclepool = NULL;
    }
    apr_pool_destroy(tmp);
}

int owh_outcomes_socket(loop_t *L)
{
    return L->odb ? owh_store_socket(L->odb) : -1;
}

int owh_outcomes_buffered(loop_t *L)
{
    return owh_queue_cycle_buffered(L->ocycle);
}

void owh_outcomes_requeue(loop_t *L, apr_array_header_t *results, apr_pool_t *pool)
{
    int i;
    for (i = 0; i < results->nelts; ++i) {
        owh_result_t *r = apr_pmemdup(L->respool, APR_ARRAY_IDX(results, i, owh_result_t *),
                                      sizeof(owh_result_t));
        r->delivery_id = apr_pstrdup(L->respool, r->delivery_id);
        r->claim_id = apr_pstrdup(L->respool, r->claim_id);
        r->webhook_id = r->webhook_id ? apr_pstrdup(L->respool, r->webhook_id) : NULL;
        r->excerpt = r->excerpt ? apr_pstrdup(L->respool, r->excerpt) : NULL;
        r->error = r->error ? apr_pstrdup(L->respool, r->error) : NULL;
        APR_ARRAY_PUSH(L->results, owh_result_t *) = r;
    }
    apr_pool_destroy(pool);
}
