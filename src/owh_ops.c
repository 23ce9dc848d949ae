/* owh_ops.c — retention and notices in the dispatcher (see owh_ops.h).
 *
 * Pruning: a thread of each dispatcher, on a connection of its own (a batch
 * must not stall deliveries), calls octo_webhooks.prune() every 5 s (or
 * min(60 s, retention / 2) when shorter); it takes a transaction-scoped
 * advisory lock and skips when another holds it, tallies new events, and
 * deletes only when the last round is min(60 s, retention / 2) old, so
 * across all hosts one batch runs at a time, about once per period. A batch
 * touches at most `batch` rows of each kind; a full one is followed by the
 * next after PRUNE_DUTY times its own duration (at least PRUNE_PAUSE), so a
 * backlog goes at about a fifth of one connection's time. The batch size
 * follows the time a batch takes (aiming at PRUNE_TARGET, between
 * PRUNE_BATCH_MIN and PRUNE_BATCH_MAX): on a busy database the bursts stay
 * short, which is what the deliveries' tail latency sees; the duty cycle
 * bounds the share.
 *
 * Notices: a round a second reads new disable notices (one warn line each,
 * by whichever dispatcher takes it) and, with OctoWebhooksOperatorWebhook,
 * claims due notices and sends them on the dispatcher's HTTP client, signed
 * with OctoWebhooksOperatorSecret, retried on OctoWebhooksRetrySchedule. */
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <jansson.h>

#include "owh_ops.h"
#include "owh_store_ops.h"
#include "owh_sign.h"
#include "owh_json.h"
#include "owh_metrics.h"

#define PRUNE_BATCH      500    /* the first batch's size */
#define PRUNE_BATCH_MIN  100
#define PRUNE_BATCH_MAX  1000
#define PRUNE_TARGET     apr_time_from_msec(25)    /* a batch's duration aimed at */
#define PRUNE_PAUSE      apr_time_from_msec(20)
#define PRUNE_DUTY       4      /* pause after a full batch: 4x its duration */
#define NOTICE_EVERY  apr_time_from_sec(1)
#define NOTICE_LIMIT  20
#define NOTICE_LEASE  apr_time_from_sec(60)

/* One loop per process: the ops state lives here, not in loop_t. */
static apr_time_t next_notices;
static int pruner_tried;

/* The events tally runs with every call; deletions every prune_every. */
#define TALLY_EVERY   apr_time_from_sec(5)

static apr_interval_time_t prune_every(const owh_srv_conf_t *sc)
{
    apr_interval_time_t every = sc->retention / 2;
    if (every > apr_time_from_sec(60)) every = apr_time_from_sec(60);
    if (every < apr_time_from_sec(1)) every = apr_time_from_sec(1);
    return every;
}

/* The pruner: a thread of the dispatcher with its own pool (own allocator)
 * and its own connection, so a batch never stalls the delivery loop. It
 * reads only what does not change (server, config, owner) and writes only
 * the shared counters. */
typedef struct pruner_t {
    server_rec *s;
    owh_srv_conf_t *sc;
    const char *owner;
    apr_pool_t *pool;
    apr_thread_t *thread;
    int batch;                  /* rows of each kind per call, adapted to its duration */
    volatile int stop;
} pruner_t;

static pruner_t *pruner;

/* One call of prune(); returns when to call again. */
static apr_interval_time_t prune_once(pruner_t *pr, owh_db_t *db, apr_pool_t *tmp)
{
    apr_interval_time_t every = prune_every(pr->sc);
    apr_interval_time_t next = every < TALLY_EVERY ? every : TALLY_EVERY;
    apr_time_t started = apr_time_now();
    apr_interval_time_t took;
    owh_prune_result_t r;

    if (owh_store_prune(db, pr->sc->retention, every, pr->batch, pr->owner, &r, tmp) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, pr->s, OWHLOGNO(00543)
                     "prune failed: %s", db->errmsg ? db->errmsg : "unknown error");
        return next;
    }
    if (r.ran) {
        owh_metrics_pruned((int)r.deliveries, (int)r.events);
        if (r.deliveries || r.events || r.states)
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, pr->s, OWHLOGNO(00542)
                         "prune: %" APR_INT64_T_FMT " deliveries, %" APR_INT64_T_FMT " attempts, %"
                         APR_INT64_T_FMT " events, %" APR_INT64_T_FMT " states beyond the retention",
                         r.deliveries, r.attempts, r.events, r.states);
    }
    /* A backlog is worked off at a pace that leaves PostgreSQL to the
     * deliveries: at most 1 / (1 + PRUNE_DUTY) of this connection's time. */
    if (r.more) {
        took = apr_time_now() - started;
        /* the next batch's size: as many rows as fit PRUNE_TARGET at this pace,
         * moving by at most half or double a step (only a call that deleted
         * says how long rows take) */
        if (took > 0 && r.ran) {
            apr_int64_t want = (apr_int64_t)pr->batch * PRUNE_TARGET / took;
            if (want < pr->batch / 2) want = pr->batch / 2;
            if (want > (apr_int64_t)pr->batch * 2) want = (apr_int64_t)pr->batch * 2;
            if (want < PRUNE_BATCH_MIN) want = PRUNE_BATCH_MIN;
            if (want > PRUNE_BATCH_MAX) want = PRUNE_BATCH_MAX;
            pr->batch = (int)want;
        }
        next = PRUNE_DUTY * took;
        if (next < PRUNE_PAUSE) next = PRUNE_PAUSE;
    }
    return next;
}

static void *APR_THREAD_FUNC prune_main(apr_thread_t *t, void *data)
{
    pruner_t *pr = data;
    apr_pool_t *dbpool = NULL, *tmp;
    owh_db_t *db = NULL;
    apr_time_t next = 0;

    while (!pr->stop) {
        apr_time_t now = apr_time_now();
        if (now < next) {               /* short naps: a stop is seen within 50 ms */
            apr_sleep(next - now < apr_time_from_msec(50) ? next - now : apr_time_from_msec(50));
            continue;
        }
        if (!db || !owh_store_usable(db)) {
            if (dbpool) apr_pool_destroy(dbpool);
            apr_pool_create(&dbpool, pr->pool);
            if (owh_store_connect(&db, pr->sc->conninfo, pr->sc->connect_timeout, dbpool) != APR_SUCCESS) {
                db = NULL;
                next = apr_time_now() + apr_time_from_sec(5);   /* the loop logs the outage */
                continue;
            }
        }
        apr_pool_create(&tmp, pr->pool);
        next = apr_time_now() + prune_once(pr, db, tmp);
        apr_pool_destroy(tmp);
    }
    if (dbpool) apr_pool_destroy(dbpool);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void pruner_start(loop_t *L)
{
    apr_pool_t *p;
    pruner_t *pr;
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) return;
    apr_pool_tag(p, "owh_pruner");
    pr = apr_pcalloc(p, sizeof(*pr));
    pr->s = L->s;
    pr->sc = L->sc;
    pr->owner = apr_pstrdup(p, L->owner);
    pr->pool = p;
    pr->batch = PRUNE_BATCH;
    if (apr_thread_create(&pr->thread, NULL, prune_main, pr, p) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00548)
                     "cannot start the pruning thread; this dispatcher will not prune");
        apr_pool_destroy(p);
        return;
    }
    pruner = pr;
}

void owh_ops_stop(loop_t *L)
{
    apr_status_t rv;
    if (!pruner) return;
    pruner->stop = 1;
    apr_thread_join(&rv, pruner->thread);
    apr_pool_destroy(pruner->pool);
    pruner = NULL;
}

/* ---- notices -------------------------------------------------------------- */
typedef struct notice_t {
    apr_pool_t *pool;
    const char *id, *claim, *type, *webhook;
    int attempts;
} notice_t;

static const char *notice_body(const owh_notice_row_t *row, apr_pool_t *p)
{
    json_t *o = owh_json_pool_own(json_object(), p);
    apr_size_t len;
    int i;
    json_object_set_new(o, "type", json_string(row->type));
    json_object_set_new(o, "webhookId", json_string(row->webhook ? row->webhook : ""));
    json_object_set_new(o, "connection", json_string(row->connection ? row->connection : ""));
    json_object_set_new(o, "reason", json_string(row->reason ? row->reason : ""));
    json_object_set_new(o, "time", json_string(row->at ? row->at : ""));
    if (!strcmp(row->type, "delivery.exhausted")) {
        json_t *ids = json_array();
        for (i = 0; i < row->deliveries->nelts; ++i)
            json_array_append_new(ids, json_string(APR_ARRAY_IDX(row->deliveries, i, const char *)));
        json_object_set_new(o, "count", json_integer(row->count));
        json_object_set_new(o, "deliveryIds", ids);
    }
    return owh_json_dump(o, &len, p);
}

static void notice_record(loop_t *L, notice_t *n, const char *status, apr_interval_time_t retry_in,
                          const char *error)
{
    apr_pool_t *tmp;
    if (!L->db) return;                 /* the lease runs out and it is sent again */
    owh_dispatcher_db_idle(L);          /* a round trip may be in flight on the connection */
    if (!L->db) return;
    tmp = owh_dsp_pool(L->pool, "owh_ops_notice");
    if (owh_store_notice_done(L->db, n->id, n->claim, status, retry_in, error, tmp) != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00544)
                     "notice %s: recording its attempt failed: %s", n->id,
                     L->db->errmsg ? L->db->errmsg : "unknown error");
    apr_pool_destroy(tmp);
}

static void notice_on_done(void *ctx, void *baton, const owh_transfer_result_t *res)
{
    loop_t *L = ctx;
    notice_t *n = baton;
    const apr_array_header_t *delays = L->sc->retry_delays;
    if (res->status_code >= 200 && res->status_code <= 299) {
        owh_metrics_notice(1);
        notice_record(L, n, "sent", 0, NULL);
        return;
    }
    owh_metrics_notice(0);
    {
        const char *why = res->error ? res->error : apr_psprintf(n->pool, "HTTP %d", res->status_code);
        int more = delays && n->attempts < delays->nelts;
        ap_log_error(APLOG_MARK, more ? APLOG_INFO : APLOG_WARNING, 0, L->s, OWHLOGNO(00545)
                     "operator notice %s (%s, webhook %s) attempt %d failed: %s%s", n->id, n->type,
                     n->webhook, n->attempts + 1, why, more ? "; will retry" : "; giving up");
        notice_record(L, n, more ? "pending" : "failed",
                      more ? APR_ARRAY_IDX(delays, n->attempts, apr_interval_time_t) : 0, why);
    }
}

static void notice_send(loop_t *L, const owh_notice_row_t *row)
{
    apr_pool_t *p = owh_dsp_pool(L->pool, "owh_ops_notice_send");
    notice_t *n = apr_pcalloc(p, sizeof(*n));
    owh_request_t rq;
    apr_array_header_t *headers = apr_array_make(p, 4, sizeof(owh_header_t));
    const char *body;

    n->pool = p;
    n->id = apr_pstrdup(p, row->id);
    n->claim = apr_pstrdup(p, row->claim);
    n->type = apr_pstrdup(p, row->type);
    n->webhook = apr_pstrdup(p, row->webhook ? row->webhook : "");
    n->attempts = row->attempts;
    body = notice_body(row, p);
    /* webhook-id msg_notice-<id>: the same on every retry of a notice */
    owh_sign_headers(headers, apr_pstrcat(p, "notice-", n->id, NULL), apr_time_now(),
                     L->sc->operator_secret, NULL, body, strlen(body), p);
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = L->sc->operator_url;
    rq.headers = headers;
    rq.body = body;
    rq.len = strlen(body);
    rq.trusted = 1;                     /* the configuration's URL, not a reseller's */
    rq.done = notice_on_done;
    if (owh_deliver_request(L->deliver, &rq, n, p) != APR_SUCCESS) {
        owh_transfer_result_t fail;
        memset(&fail, 0, sizeof(fail));
        fail.error = "the request could not be prepared";
        notice_on_done(L, n, &fail);
        apr_pool_destroy(p);
    }
}

static void notices(loop_t *L, apr_time_t now)
{
    apr_pool_t *tmp = owh_dsp_pool(L->pool, "owh_ops_notices");
    apr_array_header_t *rows;
    int i;

    next_notices = now + NOTICE_EVERY;
    if (owh_store_notices_take(L->db, L->sc->operator_url != NULL, NOTICE_LIMIT, NOTICE_LEASE, &rows, tmp)
        != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00546)
                     "reading notices failed: %s", L->db->errmsg ? L->db->errmsg : "unknown error");
        apr_pool_destroy(tmp);
        return;
    }
    for (i = 0; i < rows->nelts; ++i) {
        const owh_notice_row_t *row = APR_ARRAY_IDX(rows, i, owh_notice_row_t *);
        if (row->log_only) {
            if (!strcmp(row->type, "webhook.disabled"))
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00541)
                             "webhook disabled: webhook %s connection %s: %s", row->webhook,
                             row->connection, row->reason);
        }
        else if (row->claim) notice_send(L, row);
    }
    apr_pool_destroy(tmp);
}

void owh_ops_tick(loop_t *L)
{
    apr_time_t now;
    if (!L->db) return;
    now = apr_time_now();
    if (!pruner_tried) {                /* once the loop reached the database */
        pruner_tried = 1;
        pruner_start(L);
    }
    if (now >= next_notices) notices(L, now);
}

void owh_ops_after_complete(loop_t *L, const apr_array_header_t *results)
{
    apr_pool_t *tmp;
    apr_array_header_t *rows;
    json_t *arr = NULL;
    const char *arg;
    apr_size_t len;
    int i;

    for (i = 0; i < results->nelts; ++i) {
        const owh_result_t *r = APR_ARRAY_IDX(results, i, owh_result_t *);
        if (r->outcome != OWH_OUTCOME_FAILED) continue;
        if (!arr) arr = json_array();
        json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:b}", "id", r->delivery_id,
                                             "attempt", r->attempt, "status", "failed", "gone", r->gone));
    }
    if (!arr) return;                   /* the common case: no extra round trip */
    tmp = owh_dsp_pool(L->pool, "owh_ops_exhausted");
    owh_json_pool_own(arr, tmp);
    arg = owh_json_dump(arr, &len, tmp);
    if (owh_store_note_exhausted(L->db, arg, &rows, tmp) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00547)
                     "noting exhausted deliveries failed: %s", L->db->errmsg ? L->db->errmsg : "unknown error");
        apr_pool_destroy(tmp);
        return;
    }
    for (i = 0; i < rows->nelts; ++i) {
        const owh_exhausted_t *x = APR_ARRAY_IDX(rows, i, owh_exhausted_t *);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00540)
                     "delivery exhausted: webhook %s connection %s delivery %s: %s", x->webhook,
                     x->connection, x->delivery, x->reason);
    }
    apr_pool_destroy(tmp);
}
