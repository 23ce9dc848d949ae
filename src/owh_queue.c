/* owh_queue.c — claim, complete, release. See owh_queue.h. Batches travel as
 * one JSON parameter (jsonb_to_recordset), so a batch of any size costs one
 * round trip and no SQL text is built from data. */
#include <apr_strings.h>
#include <apr_hash.h>
#include <jansson.h>

#include "owh_queue.h"
#include "owh_json.h"
#include "owh_log.h"
#include "owh_store_array.h"
#include "owh_listcache.h"

static const char *opt_value(const PGresult *res, int row, int col, apr_pool_t *p)
{
    return PQgetisnull(res, row, col) ? NULL : apr_pstrdup(p, PQgetvalue(res, row, col));
}

/* The claim's columns, found by name once per result. */
typedef struct claim_cols_t {
    int id, claim, attempts, webhook, event_type, object_key, object, connection, language, supplier,
        secret, secret_previous, previous, event_id, event_at, sample, repeat;
} claim_cols_t;

static apr_status_t claim_cols(claim_cols_t *c, const PGresult *res)
{
#define COL(f) if ((c->f = PQfnumber(res, #f)) < 0) return APR_EGENERAL
    COL(id); COL(claim); COL(attempts); COL(webhook); COL(event_type); COL(object_key); COL(object);
    COL(connection); COL(language); COL(supplier); COL(secret); COL(secret_previous); COL(previous);
    COL(event_id); COL(event_at); COL(sample); COL(repeat);
#undef COL
    return APR_SUCCESS;
}

/* A claim sends an event's object, previous state and supplier with its
 * first row only; the event's other rows ("repeat") share the first's. */
static apr_status_t claim_rows(const PGresult *res, apr_array_header_t *jobs, apr_pool_t *p)
{
    claim_cols_t c;
    apr_time_t now = apr_time_now();
    apr_hash_t *firsts;
    int i, n = PQntuples(res), repeats = 0;
    if (n == 0) return APR_SUCCESS;
    if (claim_cols(&c, res) != APR_SUCCESS) return APR_EGENERAL;
    firsts = apr_hash_make(p);
    for (i = 0; i < n; ++i) {
        owh_job_t *j = apr_pcalloc(p, sizeof(*j));
        j->delivery_id = apr_pstrdup(p, PQgetvalue(res, i, c.id));
        j->claim_id = apr_pstrdup(p, PQgetvalue(res, i, c.claim));
        j->attempts = atoi(PQgetvalue(res, i, c.attempts));
        j->webhook_json = apr_pstrdup(p, PQgetvalue(res, i, c.webhook));
        j->event_type = apr_pstrdup(p, PQgetvalue(res, i, c.event_type));
        j->object_key = apr_pstrdup(p, PQgetvalue(res, i, c.object_key));
        j->connection_id = apr_pstrdup(p, PQgetvalue(res, i, c.connection));
        j->language = opt_value(res, i, c.language, p);
        j->secret = opt_value(res, i, c.secret, p);
        j->secret_previous = opt_value(res, i, c.secret_previous, p);
        j->event_id = apr_pstrdup(p, PQgetvalue(res, i, c.event_id));
        j->event_at = apr_pstrdup(p, PQgetvalue(res, i, c.event_at));
        j->sample = !strcmp(PQgetvalue(res, i, c.sample), "t");
        j->claimed_at = now;
        if (strcmp(PQgetvalue(res, i, c.repeat), "t")) {
            j->object_json = apr_pstrdup(p, PQgetvalue(res, i, c.object));
            j->supplier_json = opt_value(res, i, c.supplier, p);
            j->previous_json = opt_value(res, i, c.previous, p);
            apr_hash_set(firsts, j->event_id, APR_HASH_KEY_STRING, j);
        }
        else repeats++;
        APR_ARRAY_PUSH(jobs, owh_job_t *) = j;
    }
    for (i = jobs->nelts - n; repeats && i < jobs->nelts; ++i) {
        owh_job_t *j = APR_ARRAY_IDX(jobs, i, owh_job_t *), *first;
        if (j->object_json) continue;
        if (!(first = apr_hash_get(firsts, j->event_id, APR_HASH_KEY_STRING))) return APR_EGENERAL;
        j->object_json = first->object_json;
        j->supplier_json = first->supplier_json;
        j->previous_json = first->previous_json;
        repeats--;
    }
    return APR_SUCCESS;
}

/* held, next_in, asleep: what the claim saw behind its rows (octo_webhooks.claim_outlook). */
static apr_status_t claim_outlook(const PGresult *res, owh_claim_info_t *info)
{
    int held = PQfnumber(res, "held"), next_in = PQfnumber(res, "next_in"), asleep = PQfnumber(res, "asleep");
    info->held = 0;
    info->next_in = -1;
    info->restless = 0;
    if (held < 0 || next_in < 0 || asleep < 0 || PQntuples(res) != 1) return APR_EGENERAL;
    if (!PQgetisnull(res, 0, held)) info->held = atoi(PQgetvalue(res, 0, held));
    info->restless = PQgetisnull(res, 0, asleep) ? 2 : PQgetvalue(res, 0, asleep)[0] == 'f';
    if (!PQgetisnull(res, 0, next_in)) {
        double secs = atof(PQgetvalue(res, 0, next_in));
        info->next_in = secs > 0 ? (apr_interval_time_t)(secs * APR_USEC_PER_SEC) : 0;
    }
    return APR_SUCCESS;
}

#define CLAIM_SQL "SELECT * FROM octo_webhooks.claim($1::int, $2::interval, $3, $4::int, $5::int, $6::jsonb)"
#define OUTLOOK_SQL "SELECT held, next_in, asleep FROM octo_webhooks.claim_outlook()"

static void claim_args(const char **args, const owh_claim_params_t *cp, apr_pool_t *p)
{
    args[0] = apr_itoa(p, cp->limit);
    args[1] = owh_store_interval(cp->lease, p);
    args[2] = cp->owner;
    args[3] = apr_itoa(p, cp->per_webhook);
    args[4] = apr_itoa(p, cp->rate);
    args[5] = cp->hosts;
}

typedef struct claim_tx_t {
    const owh_claim_params_t *cp;
    apr_array_header_t *jobs;
    owh_claim_info_t *info;
} claim_tx_t;

/* claim_outlook() reads what claim() left in the transaction. */
static apr_status_t claim_in_tx(owh_db_t *db, void *baton, apr_pool_t *p)
{
    claim_tx_t *c = baton;
    PGresult *res, *out;
    const char *args[6];
    apr_status_t rv;
    claim_args(args, c->cp, p);
    if ((rv = owh_store_query(&res, db, p, CLAIM_SQL, 6, args)) != APR_SUCCESS
        || (rv = owh_store_query(&out, db, p, OUTLOOK_SQL, 0, NULL)) != APR_SUCCESS)
        return rv;
    if ((rv = claim_rows(res, c->jobs, p)) == APR_SUCCESS) rv = claim_outlook(out, c->info);
    owh_store_clear(res, p);
    owh_store_clear(out, p);
    return rv;
}

apr_status_t owh_queue_claim(owh_db_t *db, const owh_claim_params_t *cp, apr_array_header_t *jobs,
                             owh_claim_info_t *info, apr_pool_t *p)
{
    claim_tx_t c = { cp, jobs, info };
    apr_status_t rv = owh_store_tx(db, claim_in_tx, &c, p);
    if (rv == APR_SUCCESS)
        owh_log_perror(OWH_LOG_MARK, OWH_LOG_TRACE1, 0, p, OWHLOGNO(00601)
                       "claim: %d of at most %d, %d webhooks held by a cap, next due in %" APR_TIME_T_FMT " ms",
                       jobs->nelts, cp->limit, info->held, info->next_in < 0 ? -1 : info->next_in / 1000);
    return rv;
}

static const char *outcome_name(owh_outcome_e o)
{
    return o == OWH_OUTCOME_SUCCEEDED ? "succeeded" : o == OWH_OUTCOME_FAILED ? "failed" : "pending";
}

/* The outcomes as the JSON array complete() takes. */
static const char *results_json(const apr_array_header_t *results, apr_pool_t *p)
{
    json_t *arr = owh_json_pool_own(json_array(), p);
    apr_size_t len;
    int i;
    for (i = 0; i < results->nelts; ++i) {
        const owh_result_t *r = APR_ARRAY_IDX(results, i, owh_result_t *);
        json_t *o = json_pack("{s:s, s:s, s:i, s:f, s:i, s:i, s:s, s:f, s:b}",
            "id", r->delivery_id, "claim", r->claim_id, "attempt", r->attempt,
            "started", (double)r->started / APR_USEC_PER_SEC, "code", r->status_code,
            "latency", r->latency_ms, "status", outcome_name(r->outcome),
            "retry_in", (double)r->retry_in / APR_USEC_PER_SEC, "gone", r->gone);
        if (!o) return NULL;
        json_object_set_new(o, "excerpt", r->excerpt ? json_string(r->excerpt) : json_null());
        json_object_set_new(o, "error", r->error ? json_string(r->error) : json_null());
        if (r->webhook_id) json_object_set_new(o, "webhook", json_string(r->webhook_id));
        if (!r->status_code) json_object_set_new(o, "code", json_null());
        json_array_append_new(arr, o);
    }
    return owh_json_dump(arr, &len, p);
}

#define COMPLETE_SQL "SELECT octo_webhooks.complete($1::jsonb, $2, $3::interval)"

apr_status_t owh_queue_complete(owh_db_t *db, const apr_array_header_t *results, const char *owner,
                                apr_interval_time_t disable_after, apr_pool_t *p)
{
    const char *args[3];
    if (!results->nelts) return APR_SUCCESS;
    if (!(args[0] = results_json(results, p))) return APR_ENOMEM;
    args[1] = owner;
    args[2] = owh_store_interval(disable_after, p);
    owh_log_perror(OWH_LOG_MARK, OWH_LOG_TRACE1, 0, p, OWHLOGNO(00602) "complete: %d outcomes", results->nelts);
    /* Outcomes apply only while our lease holds; the attempt is recorded
     * either way, because it happened. */
    return owh_store_query(NULL, db, p, COMPLETE_SQL, 3, args);
}

apr_status_t owh_queue_release(owh_db_t *db, const apr_array_header_t *jobs,
                               apr_interval_time_t delay, apr_pool_t *p)
{
    apr_array_header_t *ids, *claims;
    const char *args[3];
    int i;
    if (!jobs->nelts) return APR_SUCCESS;
    ids = apr_array_make(p, jobs->nelts, sizeof(const char *));
    claims = apr_array_make(p, jobs->nelts, sizeof(const char *));
    for (i = 0; i < jobs->nelts; ++i) {
        const owh_job_t *j = APR_ARRAY_IDX(jobs, i, owh_job_t *);
        APR_ARRAY_PUSH(ids, const char *) = j->delivery_id;
        APR_ARRAY_PUSH(claims, const char *) = j->claim_id;
    }
    args[0] = owh_store_array_format(ids, p);
    args[1] = owh_store_array_format(claims, p);
    args[2] = owh_store_interval(delay, p);
    owh_log_perror(OWH_LOG_MARK, OWH_LOG_TRACE1, 0, p, OWHLOGNO(00603)
                   "release: %d claims handed back, due in %" APR_TIME_T_FMT " ms", jobs->nelts, delay / 1000);
    return owh_store_query(NULL, db, p,
        "SELECT octo_webhooks.release($1::uuid[], $2::uuid[], $3::interval)", 3, args);
}

apr_status_t owh_queue_unlist(owh_db_t *db, const char *owner, apr_pool_t *p)
{
    const char *args[] = { owner };
    return owh_store_query(NULL, db, p,
        "DELETE FROM octo_webhooks.dispatcher_sleep WHERE owner = $1", 1, args);
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
    apr_status_t rv = owh_store_query(NULL, db, p, "LISTEN octo_webhooks", 0, NULL);
    if (rv == APR_SUCCESS) rv = owh_store_query(NULL, db, p, "LISTEN octo_webhooks_lists", 0, NULL);
    if (rv == APR_SUCCESS) owh_listcache_bump();
    return rv;
}

apr_status_t owh_queue_notified(owh_db_t *db, int *wake)
{
    int lists = 0;
    PGnotify *n;
    if (!PQconsumeInput(db->pg)) {
        db->broken = 1;
        return OWH_STORE_EUNAVAIL;
    }
    while ((n = PQnotifies(db->pg))) {
        if (!strcmp(n->relname, "octo_webhooks_lists")) lists = 1;
        else *wake = 1;
        PQfreemem(n);
    }
    if (lists) owh_listcache_bump();        /* this host's children drop their cached lists */
    return APR_SUCCESS;
}

/* ---- the asynchronous cycle ------------------------------------------------ */
enum { STEP_COMPLETE, STEP_UNPARK, STEP_CLAIM, STEP_OUTLOOK, STEP_SYNC };

struct owh_queue_cycle_t {
    owh_db_t *db;
    apr_pool_t *p;
    int steps[5], nsteps, at;       /* the statements sent, and which one is being read */
    int had_result;                 /* the current statement has given its result */
    int nulls;                      /* NULLs from PQgetResult without a result between */
    apr_status_t rv;                /* the first failure */
    const char *errmsg;
    PGresult *claim, *outlook;
    int nresults, limit;
};

static apr_status_t cycle_fail(owh_queue_cycle_t *c, apr_status_t rv, const char *msg)
{
    if (c->rv == APR_SUCCESS) {
        c->rv = rv;
        c->errmsg = apr_pstrdup(c->p, msg && *msg ? msg : "unknown error");
    }
    return rv;
}

static apr_status_t res_free(void *data)
{
    PQclear(data);
    return APR_SUCCESS;
}

apr_status_t owh_queue_cycle_send(owh_queue_cycle_t **pc, owh_db_t *db, const owh_cycle_req_t *rq,
                                  apr_pool_t *p)
{
    owh_queue_cycle_t *c = apr_pcalloc(p, sizeof(*c));
    PGconn *pg = db->pg;
    c->db = db;
    c->p = p;
    db->sqlstate = db->errmsg = NULL;
    if (!owh_store_usable(db)) return OWH_STORE_EUNAVAIL;
    if (!PQenterPipelineMode(pg)) goto broken;
    if (rq->results && rq->results->nelts) {
        const char *args[3];
        if (!(args[0] = results_json(rq->results, p))) return APR_ENOMEM;
        args[1] = rq->owner;
        args[2] = owh_store_interval(rq->disable_after, p);
        if (!PQsendQueryParams(pg, COMPLETE_SQL, 3, NULL, args, NULL, NULL, 0)) goto broken;
        c->steps[c->nsteps++] = STEP_COMPLETE;
        c->nresults = rq->results->nelts;
    }
    if (rq->unpark) {
        if (!PQsendQueryParams(pg, "SELECT octo_webhooks.unpark_orphans()", 0, NULL, NULL, NULL, NULL, 0))
            goto broken;
        c->steps[c->nsteps++] = STEP_UNPARK;
    }
    if (rq->claim) {
        const char *args[6];
        claim_args(args, rq->claim, p);
        if (!PQsendQueryParams(pg, CLAIM_SQL, 6, NULL, args, NULL, NULL, 0)
            || !PQsendQueryParams(pg, OUTLOOK_SQL, 0, NULL, NULL, NULL, NULL, 0)) goto broken;
        c->steps[c->nsteps++] = STEP_CLAIM;
        c->steps[c->nsteps++] = STEP_OUTLOOK;
        c->limit = rq->claim->limit;
    }
    if (!PQpipelineSync(pg)) goto broken;
    c->steps[c->nsteps++] = STEP_SYNC;
    *pc = c;
    return APR_SUCCESS;
broken:
    db->errmsg = apr_pstrdup(p, PQerrorMessage(pg));
    db->broken = 1;
    return OWH_STORE_EUNAVAIL;
}

apr_status_t owh_queue_cycle_read(owh_queue_cycle_t *c, int block, int *done, apr_array_header_t *jobs,
                                  owh_claim_info_t *info)
{
    PGconn *pg = c->db->pg;
    *done = 0;
    if (c->db->broken) return OWH_STORE_EUNAVAIL;
    if (!block && !PQconsumeInput(pg)) goto broken;
    for (;;) {
        PGresult *res;
        if (!block && PQisBusy(pg)) return APR_SUCCESS;         /* more to come */
        res = PQgetResult(pg);
        if (!res) {
            /* the end of one statement's results; two in a row: lost */
            if (!c->had_result) {
                if (PQstatus(pg) != CONNECTION_OK || ++c->nulls > 1) goto broken;
                continue;
            }
            c->nulls = 0;
            c->at++;
            c->had_result = 0;
            continue;
        }
        c->had_result = 1;
        switch (PQresultStatus(res)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(res);
            if (c->steps[c->at] != STEP_SYNC) goto broken;
            PQexitPipelineMode(pg);
            goto finished;
        case PGRES_PIPELINE_ABORTED:
            cycle_fail(c, APR_EGENERAL, "an earlier statement of the cycle failed");
            PQclear(res);
            break;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (c->steps[c->at] == STEP_CLAIM) c->claim = res;
            else if (c->steps[c->at] == STEP_OUTLOOK) c->outlook = res;
            else PQclear(res);
            if (res == c->claim || res == c->outlook)
                apr_pool_cleanup_register(c->p, res, res_free, apr_pool_cleanup_null);
            break;
        default: {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            c->db->sqlstate = apr_pstrdup(c->p, state ? state : "XX000");
            cycle_fail(c, APR_EGENERAL, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
            PQclear(res);
            if (PQstatus(pg) != CONNECTION_OK) goto broken;
            break;
        }
        }
    }
finished:
    *done = 1;
    if (c->rv != APR_SUCCESS) {
        c->db->errmsg = c->errmsg;
        owh_log_perror(OWH_LOG_MARK, OWH_LOG_DEBUG, 0, c->p, OWHLOGNO(00604) "cycle failed (SQLSTATE %s): %s",
                       c->db->sqlstate ? c->db->sqlstate : "-", c->errmsg);
        return c->rv;
    }
    info->held = 0;
    info->next_in = -1;
    info->restless = 0;
    if (c->claim && (claim_rows(c->claim, jobs, c->p) != APR_SUCCESS
                     || claim_outlook(c->outlook, info) != APR_SUCCESS)) {
        c->db->errmsg = "the claim's result has an unexpected shape";
        return APR_EGENERAL;
    }
    owh_log_perror(OWH_LOG_MARK, OWH_LOG_TRACE1, 0, c->p, OWHLOGNO(00605)
                   "cycle: %d outcomes recorded; claimed %d of at most %d, %d webhooks held by a cap, "
                   "next due in %" APR_TIME_T_FMT " ms", c->nresults, jobs->nelts, c->limit, info->held,
                   info->next_in < 0 ? -1 : info->next_in / 1000);
    return APR_SUCCESS;
broken:
    c->db->broken = 1;
    c->db->errmsg = apr_pstrdup(c->p, PQerrorMessage(pg));
    *done = 1;
    return OWH_STORE_EUNAVAIL;
}

int owh_queue_cycle_buffered(owh_queue_cycle_t *c)
{
    return c && !c->db->broken && c->db->pg && !PQisBusy(c->db->pg);
}
