/* owh_dispatcher.c — the dispatcher process. See owh_dispatcher.h.
 *
 * Lifecycle (modelled on mod_cgid's daemon): forked in the parent at
 * post_config, registered as an APR "other child" so its death is noticed and
 * it is respawned (with backoff when it keeps dying), killed by a pconf
 * cleanup on stop and graceful restart (SIGTERM, then SIGKILL after 3 s), and
 * in the child: listeners closed, privileges dropped to httpd's User, parent
 * death signalled (PR_SET_PDEATHSIG) so a kill -9 of httpd leaves no orphan.
 *
 * Delivery: at least once. A claim is a lease; claims and outcomes travel in
 * batches (half a batch, or 20 ms) so the database sees few round trips; on
 * SIGTERM unsent claims are handed back at once. */
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_uri.h>
#include <apr_escape.h>
#include <apr_signal.h>
#include <apr_allocator.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_listen.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "owh_dispatcher.h"
#include "owh_config.h"
#include "owh_store.h"
#include "owh_queue.h"
#include "owh_deliver.h"
#include "owh_payload.h"
#include "owh_json.h"
#include "owh_sign.h"
#include "owh_log.h"

APLOG_USE_MODULE(octo_webhooks);

#define OWH_USER_AGENT "mod_octo_webhooks/" OWH_VERSION
#define STOP_GRACE      apr_time_from_msec(2000)   /* inside httpd's 3 s kill timeout */
#define FLUSH_AFTER     apr_time_from_msec(20)     /* outcomes wait at most this long */
#define BLOCKED_POLL    apr_time_from_msec(50)     /* due work held back by a cap: look again */

/* ---- the parent's side --------------------------------------------------- */
typedef struct dispatcher_t {
    server_rec *s;
    owh_srv_conf_t *sc;
    apr_pool_t *pconf;
    apr_proc_t *proc;
    apr_time_t started;
    int quick_deaths;           /* consecutive deaths soon after start */
    int registered;             /* an other-child record exists: APR's
                                 * unregister crashes on a missing one */
} dispatcher_t;

static int run_dispatcher(dispatcher_t *dp, apr_interval_time_t delay);
static apr_status_t spawn(dispatcher_t *dp);

static void maintenance(int reason, void *data, apr_wait_t status)
{
    dispatcher_t *dp = data;
    int mpm_state = 0;
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        if (dp->registered) {
            dp->registered = 0;
            apr_proc_other_child_unregister(dp);
        }
        dp->proc = NULL;
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS
            && mpm_state == AP_MPMQ_STOPPING)
            break;
        dp->quick_deaths = apr_time_now() - dp->started < apr_time_from_sec(10)
                         ? dp->quick_deaths + 1 : 0;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, dp->s, OWHLOGNO(00501)
                     "dispatcher exited (status %d); restarting", status);
        spawn(dp);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* the record is being removed (pconf cleanup or our own unregister) */
        dp->registered = 0;
        break;
    case APR_OC_REASON_RESTART:
        /* pconf is going away: kill_dispatchers (a pconf cleanup) stops it */
        break;
    default:
        break;
    }
}

/* The dispatchers of one database (OctoWebhooksDispatchers of them). */
typedef struct dispatcher_group_t {
    dispatcher_t **members;
    int n;
} dispatcher_group_t;

/* SIGTERM to every member at once, up to 3 s for all to finish, then
 * SIGKILL: N dispatchers stop within one grace period, not N. */
static apr_status_t kill_dispatchers(void *data)
{
    dispatcher_group_t *g = data;
    apr_proc_t *procs[64];
    int i, k, n = 0, code, left;
    apr_exit_why_e why;
    for (i = 0; i < g->n; ++i) {
        dispatcher_t *dp = g->members[i];
        if (!dp->proc) continue;
        if (dp->registered) {
            dp->registered = 0;
            apr_proc_other_child_unregister(dp);
        }
        if (apr_proc_kill(dp->proc, SIGTERM) == APR_SUCCESS && n < 64) procs[n++] = dp->proc;
        dp->proc = NULL;
    }
    for (k = 0, left = n; k < 30 && left; ++k) {
        for (i = 0; i < n; ++i)
            if (procs[i] && apr_proc_wait(procs[i], &code, &why, APR_NOWAIT) == APR_CHILD_DONE) {
                procs[i] = NULL;
                left--;
            }
        if (left) apr_sleep(apr_time_from_msec(100));
    }
    for (i = 0; i < n; ++i)
        if (procs[i]) {
            apr_proc_kill(procs[i], SIGKILL);
            apr_proc_wait(procs[i], &code, &why, APR_WAIT);
        }
    return APR_SUCCESS;
}

static apr_status_t spawn(dispatcher_t *dp)
{
    apr_proc_t *proc = apr_pcalloc(dp->pconf, sizeof(*proc));
    apr_interval_time_t delay = 0;
    apr_status_t rv;

    if (dp->quick_deaths)   /* 1, 2, 4 ... 30 s: a broken setup must not spin */
        delay = apr_time_from_sec(dp->quick_deaths > 5 ? 30 : 1 << (dp->quick_deaths - 1));
    dp->started = apr_time_now() + delay;
    rv = apr_proc_fork(proc, dp->pconf);
    if (rv == APR_INCHILD) {
        /* _exit: the parent's pool cleanups and atexit handlers are not ours to run */
        _exit(run_dispatcher(dp, delay));
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, dp->s, OWHLOGNO(00502) "cannot fork the dispatcher");
        return rv;
    }
    dp->proc = proc;
    apr_proc_other_child_register(proc, maintenance, dp, NULL, dp->pconf);
    dp->registered = 1;
    return APR_SUCCESS;
}

apr_status_t owh_dispatcher_spawn_all(apr_pool_t *pconf, server_rec *s)
{
    server_rec *x, *y;
    for (x = s; x; x = x->next) {
        owh_srv_conf_t *sc = owh_config_srv_get(x);
        dispatcher_group_t *g;
        dispatcher_t *dp;
        int i;
        int seen = 0;
        if (!sc->dispatcher) continue;
        /* one group of dispatchers per database, configured by the first server naming it */
        for (y = s; y != x; y = y->next) {
            owh_srv_conf_t *prev = owh_config_srv_get(y);
            if (prev->dispatcher && !strcmp(prev->conninfo, sc->conninfo)) { seen = 1; break; }
        }
        if (seen) continue;
        /* several processes share the work like several hosts do: each
         * claims under its own lease and owner name */
        g = apr_pcalloc(pconf, sizeof(*g));
        g->n = sc->dispatchers;
        g->members = apr_pcalloc(pconf, g->n * sizeof(*g->members));
        apr_pool_cleanup_register(pconf, g, kill_dispatchers, apr_pool_cleanup_null);
        for (i = 0; i < g->n; ++i) {
            dp = g->members[i] = apr_pcalloc(pconf, sizeof(*dp));
            dp->s = x;
            dp->sc = sc;
            dp->pconf = pconf;
            spawn(dp);
        }
    }
    return APR_SUCCESS;
}

/* ---- the dispatcher's side ----------------------------------------------- */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    stop_requested = 1;
}

typedef struct loop_t {
    server_rec *s;
    owh_srv_conf_t *sc;
    apr_pool_t *pool;
    const char *owner;              /* host:pid, recorded with claims and attempts */
    owh_db_t *db;
    apr_pool_t *dbpool;
    owh_deliver_t *deliver;
    json_t *supplier;               /* from the directives */
    apr_array_header_t *waiting;    /* job_t *: claimed, waiting for a host slot */
    apr_hash_t *hosts;              /* host -> int * in flight */
    apr_pool_t *respool;
    apr_array_header_t *results;    /* owh_result_t *: to record */
    apr_time_t results_since;       /* when the oldest unrecorded outcome came */
    apr_array_header_t *inflight;   /* job_t *: handed to libcurl (for shutdown) */
    int claimed;                    /* running + waiting */
    int held;                       /* the last claim left due work behind a cap */
    apr_pool_t *viewpool;           /* event views, shared by an event's deliveries */
    apr_hash_t *views;              /* event id (or resolve view key) -> owh_event_view_t * */
    apr_size_t view_bytes;          /* JSON text the cached views were made from */
    apr_hash_t *fetches;            /* resolve view key -> fetch_t * in flight */
    int resolving;                  /* claimed jobs waiting for a fetch */
} loop_t;

/* Views outlive a batch (an event's deliveries may be claimed in several);
 * the cache starts over when it grows past this many events or this much
 * JSON (parsed, about four times as much memory). Only jobs already built
 * used the views, so clearing is safe between builds. */
#define VIEW_CACHE_MAX       4096
#define VIEW_CACHE_MAX_BYTES (16 * 1024 * 1024)

static void view_cache_make_room(loop_t *L, apr_size_t adding)
{
    if (apr_hash_count(L->views) < VIEW_CACHE_MAX && L->view_bytes + adding <= VIEW_CACHE_MAX_BYTES) {
        L->view_bytes += adding;
        return;
    }
    apr_pool_clear(L->viewpool);
    L->views = apr_hash_make(L->viewpool);
    L->view_bytes = adding;
}

/* Makes a view and caches it under key (both copied into the cache). */
static owh_event_view_t *cache_view(loop_t *L, const char *key, const char *event_type, const char *event_id,
                                    const char *event_at, const char *object, const char *previous,
                                    const char *language)
{
    owh_event_view_t *v;
    view_cache_make_room(L, strlen(object) + (previous ? strlen(previous) : 0));
    if (owh_payload_view_make(&v, event_type, apr_pstrdup(L->viewpool, event_id),
                              apr_pstrdup(L->viewpool, event_at), object, previous, language,
                              L->viewpool) != APR_SUCCESS)
        return NULL;
    apr_hash_set(L->views, apr_pstrdup(L->viewpool, key), APR_HASH_KEY_STRING, v);
    return v;
}

/* The event's view (object, diff, language), computed once per event. */
static owh_event_view_t *event_view(loop_t *L, const owh_job_t *src)
{
    owh_event_view_t *v = apr_hash_get(L->views, src->event_id, APR_HASH_KEY_STRING);
    return v ? v : cache_view(L, src->event_id, src->event_type, src->event_id, src->event_at,
                              src->object_json, src->previous_json, src->language);
}

typedef struct job_t {
    apr_pool_t *pool;               /* the job's and its transfer's memory */
    owh_job_t *job;
    owh_webhook_t *wh;
    const char *host;
    const char *body;
    apr_size_t len;
    apr_array_header_t *headers;
    const char *unsendable;         /* why it can never be sent (recorded as failed) */
    json_t *supplier;
    const char *view_key;           /* resolve mode: the view it waits for, or NULL */
} job_t;

/* Resolve mode: one fetch from the supplier's API per distinct view (event,
 * capabilities, language); the deliveries needing that view wait on it. */
typedef struct fetch_t {
    apr_pool_t *pool;               /* the fetch's own, until its waiters are served (each
                                     * request runs in a transfer pool of its own) */
    const char *key;                /* L->views key */
    const char *state_key;          /* resolved_states key: type/object|caps|language */
    const char *what;               /* "GET https://.../bookings/x", for errors */
    const char *language;           /* sent as Accept-Language, or NULL */
    int contact;                    /* wants the booking contact's language, not known yet:
                                     * fetched without, then again with the contact's locale */
    owh_event_e type;
    const char *method, *url, *body, *caps;
    apr_size_t len;
    const char *availability_id;    /* the item to pick from POST /availability */
    const char *event_id, *event_at;
    apr_array_header_t *waiters;    /* job_t * */
} fetch_t;

static int *host_count(loop_t *L, const char *host)
{
    int *n = apr_hash_get(L->hosts, host, APR_HASH_KEY_STRING);
    if (!n) {
        n = apr_pcalloc(L->pool, sizeof(*n));
        apr_hash_set(L->hosts, apr_pstrdup(L->pool, host), APR_HASH_KEY_STRING, n);
    }
    return n;
}

/* Bytes that are not valid UTF-8 (and NULs) become '?': PostgreSQL text and
 * JSON strings accept nothing else. */
static const char *utf8_clean(const char *s, apr_size_t len, apr_pool_t *p)
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

static void record(loop_t *L, job_t *j, int code, const char *error, const owh_transfer_result_t *res,
                   apr_time_t started, int latency_ms)
{
    owh_result_t *r = apr_pcalloc(L->respool, sizeof(*r));
    apr_array_header_t *delays = L->sc->retry_delays;
    int ok = !error && code >= 200 && code < 300;
    apr_interval_time_t after;

    r->delivery_id = apr_pstrdup(L->respool, j->job->delivery_id);
    r->claim_id = apr_pstrdup(L->respool, j->job->claim_id);
    r->attempt = j->job->attempts + 1;
    r->started = started;
    r->status_code = code;
    r->latency_ms = latency_ms;
    r->gone = !error && code == 410;        /* the endpoint asks us to stop */
    if (res && res->excerpt_len) r->excerpt = utf8_clean(res->excerpt, res->excerpt_len, L->respool);
    if (error) r->error = utf8_clean(error, strlen(error), L->respool);
    else if (!ok) r->error = apr_psprintf(L->respool, "HTTP %d", code);
    if (ok) r->outcome = OWH_OUTCOME_SUCCEEDED;
    else if (!j->wh || j->unsendable || r->gone || !j->wh->retry_on_error || !delays
             || r->attempt > delays->nelts)
        r->outcome = OWH_OUTCOME_FAILED;
    else if ((code == 429 || code == 503) && res
             && owh_deliver_retry_after(res->retry_after, apr_time_now(), L->sc->max_retry_after,
                                        &after) == APR_SUCCESS) {
        r->outcome = OWH_OUTCOME_RETRY;     /* the endpoint said when */
        r->retry_in = after;
    }
    else {
        apr_interval_time_t base = APR_ARRAY_IDX(delays, r->attempt - 1, apr_interval_time_t);
        double jitter = 0.8 + 0.4 * ((double)random() / RAND_MAX);     /* +-20% */
        r->outcome = OWH_OUTCOME_RETRY;
        r->retry_in = (apr_interval_time_t)(base * jitter);
    }
    if (!L->results->nelts) L->results_since = apr_time_now();
    APR_ARRAY_PUSH(L->results, owh_result_t *) = r;
}

static void inflight_remove(loop_t *L, job_t *j)
{
    int i;
    for (i = 0; i < L->inflight->nelts; ++i)
        if (APR_ARRAY_IDX(L->inflight, i, job_t *) == j) {
            APR_ARRAY_IDX(L->inflight, i, job_t *) = APR_ARRAY_IDX(L->inflight, L->inflight->nelts - 1, job_t *);
            L->inflight->nelts--;
            return;
        }
}

static void on_done(void *ctx, void *baton, const owh_transfer_result_t *res)
{
    loop_t *L = ctx;
    job_t *j = baton;
    (*host_count(L, j->host))--;
    L->claimed--;
    inflight_remove(L, j);      /* j's pool is destroyed after this returns */
    record(L, j, res->status_code, res->error, res, res->started, res->latency_ms);
}

/* Whether a webhook's object for this event comes from the supplier's API. */
static int resolves(loop_t *L, const owh_job_t *src, const owh_webhook_t *wh)
{
    owh_event_e ev = owh_event_parse(src->event_type);
    /* a subscription's thin payload needs only the identifiers; a trigger's
     * sample object is sent as it is */
    return wh->dialect == OWH_DIALECT_OCTO && !src->sample && (L->sc->resolve & (1 << ev));
}

/* The language part of a webhook's view: none, the event's, or "@contact"
 * (the booking contact's, learnt from a first fetch). */
#define CONTACT_LANGUAGE "@contact"
static const char *job_language(const owh_job_t *src, const owh_webhook_t *wh)
{
    const char *tag;
    if (!wh->use_contact_language) return "";
    tag = owh_payload_language_tag(src->language);
    return tag ? tag : CONTACT_LANGUAGE;
}

static const char *caps_joined(const owh_webhook_t *wh, apr_pool_t *p)
{
    return wh->capabilities->nelts ? apr_array_pstrcat(p, wh->capabilities, ',') : "";
}

/* Turns a claimed row into a job: the webhook, its host, the supplier, and
 * (unless it waits for a resolve-mode fetch, j->view_key) a ready body. */
static void finish(loop_t *L, job_t *j, const owh_event_view_t *view);

static job_t *prepare(loop_t *L, owh_job_t *src)
{
    apr_pool_t *p;
    job_t *j;
    owh_job_t *c;
    apr_uri_t uri;
    owh_event_view_t *view;
    apr_status_t rv;

    apr_pool_create(&p, L->pool);
    j = apr_pcalloc(p, sizeof(*j));
    j->pool = p;
    j->job = c = apr_pmemdup(p, src, sizeof(*src));
    c->delivery_id = apr_pstrdup(p, src->delivery_id);
    c->claim_id = apr_pstrdup(p, src->claim_id);
    c->language = src->language ? apr_pstrdup(p, src->language) : NULL;
    c->event_id = apr_pstrdup(p, src->event_id);
    c->event_at = apr_pstrdup(p, src->event_at);
    c->event_type = apr_pstrdup(p, src->event_type);
    c->object_key = apr_pstrdup(p, src->object_key);
    c->object_json = apr_pstrdup(p, src->object_json);
    c->secret = src->secret ? apr_pstrdup(p, src->secret) : NULL;
    c->secret_previous = src->secret_previous ? apr_pstrdup(p, src->secret_previous) : NULL;
    c->previous_json = NULL;          /* the rest of the row stays with the claim */
    c->connection_id = NULL;
    c->webhook_json = NULL;
    c->supplier_json = NULL;
    j->host = "";
    if ((rv = owh_payload_webhook_parse(&j->wh, src->webhook_json, p)) != APR_SUCCESS) {
        j->wh = NULL;
        return j;
    }
    if (apr_uri_parse(p, j->wh->url, &uri) == APR_SUCCESS && uri.hostname)
        j->host = apr_psprintf(p, "%s:%s", uri.hostname, uri.port_str ? uri.port_str : uri.scheme);
    j->supplier = L->supplier;
    if (src->supplier_json) {
        json_error_t jerr;
        j->supplier = owh_json_pool_own(json_loads(src->supplier_json, 0, &jerr), p);
    }
    if (resolves(L, src, j->wh)) {
        j->view_key = apr_pstrcat(p, src->event_id, "|", caps_joined(j->wh, p), "|", job_language(src, j->wh), NULL);
        if (!(view = apr_hash_get(L->views, j->view_key, APR_HASH_KEY_STRING))) return j;
    }
    else if (!(view = event_view(L, src))) {
        j->unsendable = "the payload could not be built";
        return j;
    }
    finish(L, j, view);
    return j;
}

/* Builds the body and headers of a job from its event's view. */
static void finish(loop_t *L, job_t *j, const owh_event_view_t *view)
{
    apr_pool_t *p = j->pool;
    owh_job_t *c = j->job;
    owh_header_t *h;
    const char *msg_id, *timestamp;

    if (owh_payload_build(&j->body, &j->len, j->wh, view, j->supplier, p) != APR_SUCCESS) {
        j->unsendable = "the payload could not be built";
        return;
    }
    if (j->len > L->sc->max_payload) {
        j->unsendable = apr_psprintf(p, "the payload is %" APR_SIZE_T_FMT " bytes, over "
                                     "OctoWebhooksMaxPayloadSize (%" APR_SIZE_T_FMT ")",
                                     j->len, L->sc->max_payload);
        return;
    }
    msg_id = apr_pstrcat(p, "msg_", c->delivery_id, NULL);
    timestamp = apr_psprintf(p, "%" APR_TIME_T_FMT, apr_time_sec(apr_time_now()));
    j->headers = apr_array_copy(p, j->wh->headers);
    h = &APR_ARRAY_PUSH(j->headers, owh_header_t);
    h->name = "webhook-id";
    h->value = msg_id;
    h = &APR_ARRAY_PUSH(j->headers, owh_header_t);
    h->name = "webhook-timestamp";
    h->value = timestamp;
    if (c->secret) {
        /* During a rotation both secrets sign: receivers accept either. */
        const char *sig = owh_sign_signature(c->secret, msg_id, timestamp, j->body, j->len, p);
        const char *old = c->secret_previous
            ? owh_sign_signature(c->secret_previous, msg_id, timestamp, j->body, j->len, p) : NULL;
        if (!sig) {
            j->unsendable = "the webhook's signing secret is malformed";
            return;
        }
        h = &APR_ARRAY_PUSH(j->headers, owh_header_t);
        h->name = "webhook-signature";
        h->value = old ? apr_pstrcat(p, sig, " ", old, NULL) : sig;
    }
    if (j->wh->use_contact_language && view->language) {
        h = &APR_ARRAY_PUSH(j->headers, owh_header_t);
        h->name = "Content-Language";
        h->value = apr_pstrdup(p, view->language);
    }
}

static void start_job(loop_t *L, job_t *j)
{
    apr_time_t now = apr_time_now();
    (*host_count(L, j->host))++;
    if (owh_deliver_start(L->deliver, j->wh->url, j->headers, j->body, j->len, j, j->pool)
        != APR_SUCCESS) {
        (*host_count(L, j->host))--;
        L->claimed--;
        record(L, j, 0, "the request could not be prepared (invalid URL?)", NULL, now, 0);
        apr_pool_destroy(j->pool);
        return;
    }
    APR_ARRAY_PUSH(L->inflight, job_t *) = j;
}

/* Starts waiting jobs whose host has a free slot. */
static void start_waiting(loop_t *L)
{
    int i, kept = 0;
    for (i = 0; i < L->waiting->nelts; ++i) {
        job_t *j = APR_ARRAY_IDX(L->waiting, i, job_t *);
        if (*host_count(L, j->host) < L->sc->max_per_host) start_job(L, j);
        else APR_ARRAY_IDX(L->waiting, kept++, job_t *) = j;
    }
    L->waiting->nelts = kept;
}

/* A job ready or failed: start it, let it wait for its host, or record why
 * it cannot be sent. */
static void dispatch_ready(loop_t *L, job_t *j)
{
    if (!j->wh || j->unsendable) {
        L->claimed--;
        record(L, j, 0, j->wh ? j->unsendable : "the webhook snapshot is unreadable", NULL, apr_time_now(), 0);
        apr_pool_destroy(j->pool);
    }
    else if (*host_count(L, j->host) < L->sc->max_per_host) start_job(L, j);
    else APR_ARRAY_PUSH(L->waiting, job_t *) = j;
}

/* An attempt that could not get its object: recorded as a failed attempt,
 * retried on the webhook's schedule like an endpoint failure. */
static void fetch_fail(loop_t *L, job_t *j, const char *why, apr_time_t started, int latency_ms)
{
    L->claimed--;
    record(L, j, 0, why, NULL, started, latency_ms);
    apr_pool_destroy(j->pool);
}

/* The object of a fetch's answer: the object itself, or for availability the
 * item of the array whose id is the event's. */
static const char *fetched_object(fetch_t *f, const char *body, apr_size_t len, const char **perr)
{
    json_error_t jerr;
    json_t *j = owh_json_pool_own(json_loadb(body, len, 0, &jerr), f->pool), *item;
    size_t i;
    apr_size_t n;
    if (f->type == OWH_EVENT_AVAILABILITY && json_is_array(j)) {
        json_array_foreach(j, i, item) {
            const char *id = json_string_value(json_object_get(item, "id"));
            if (id && f->availability_id && !strcmp(id, f->availability_id))
                return owh_json_dump(item, &n, f->pool);
        }
        *perr = "the availability is not in the answer";
        return NULL;
    }
    if (!json_is_object(j)) {
        *perr = "the answer is not a JSON object";
        return NULL;
    }
    return owh_json_dump(j, &n, f->pool);
}

static int fetch_again(loop_t *L, fetch_t *f, const char *locale);

static void on_fetch_done(void *ctx, void *baton, const owh_transfer_result_t *res)
{
    loop_t *L = ctx;
    fetch_t *f = baton;
    const char *err = NULL, *object = NULL, *previous = NULL;
    owh_event_view_t *view = NULL;
    int i;

    apr_hash_set(L->fetches, f->key, APR_HASH_KEY_STRING, NULL);
    if (res->error) err = res->error;
    else if (res->status_code != 200) err = apr_psprintf(f->pool, "HTTP %d", res->status_code);
    else if (res->truncated) err = apr_psprintf(f->pool, "the answer is over OctoWebhooksMaxPayloadSize (%"
                                                APR_SIZE_T_FMT " bytes)", L->sc->max_payload);
    else object = fetched_object(f, res->excerpt, res->excerpt_len, &err);
    if (!err && f->contact) {
        /* Accept-Language is the booking contact's: learnt from this answer */
        json_error_t jerr;
        const char *locale = owh_payload_contact_language(
            owh_json_pool_own(json_loads(object, 0, &jerr), f->pool), f->pool);
        if (locale && fetch_again(L, f, locale)) return;
    }
    /* The state this view was last sent at is where its diff starts. */
    if (!err && f->type != OWH_EVENT_AVAILABILITY
        && (!L->db || owh_queue_view_state(L->db, f->state_key, f->event_id, object, &previous, f->pool)
                      != APR_SUCCESS))
        err = "the resolved object could not be recorded (database unavailable)";
    if (!err && !(view = cache_view(L, f->key, owh_event_name(f->type), f->event_id, f->event_at, object,
                                    previous, f->language)))
        err = "the answer is not a JSON object";
    L->resolving -= f->waiters->nelts;
    if (err) err = apr_pstrcat(f->pool, "resolving the object: ", f->what, ": ", err, NULL);
    for (i = 0; i < f->waiters->nelts; ++i) {
        job_t *j = APR_ARRAY_IDX(f->waiters, i, job_t *);
        if (err) fetch_fail(L, j, err, res->started, res->latency_ms);
        else {
            finish(L, j, view);
            dispatch_ready(L, j);
        }
    }
    apr_pool_destroy(f->pool);
}

/* Sends f's request: Accept, the supplier API token, the webhook's
 * Octo-Capabilities and f's Accept-Language. */
static apr_status_t fetch_send(loop_t *L, fetch_t *f)
{
    apr_pool_t *p;
    owh_request_t rq;
    owh_header_t *h;
    apr_array_header_t *headers;

    apr_pool_create(&p, L->pool);       /* owh_deliver_process destroys it after on_fetch_done */
    headers = apr_array_make(p, 4, sizeof(owh_header_t));

    f->what = apr_pstrcat(f->pool, f->method, " ", f->url, NULL);
    h = &APR_ARRAY_PUSH(headers, owh_header_t);
    h->name = "Accept";
    h->value = "application/json";
    if (L->sc->supplier_api_token) {
        h = &APR_ARRAY_PUSH(headers, owh_header_t);
        h->name = "Authorization";
        h->value = apr_pstrcat(p, "Bearer ", L->sc->supplier_api_token, NULL);
    }
    if (*f->caps) {
        h = &APR_ARRAY_PUSH(headers, owh_header_t);
        h->name = "Octo-Capabilities";
        h->value = f->caps;
    }
    if (f->language) {
        h = &APR_ARRAY_PUSH(headers, owh_header_t);
        h->name = "Accept-Language";
        h->value = f->language;
    }
    memset(&rq, 0, sizeof(rq));
    rq.method = f->method;
    rq.url = f->url;
    rq.body = f->body;
    rq.len = f->len;
    rq.headers = headers;
    rq.response_cap = L->sc->max_payload;
    rq.trusted = 1;                     /* the configuration's URL, not a reseller's */
    rq.done = on_fetch_done;
    if (owh_deliver_request(L->deliver, &rq, f, p) != APR_SUCCESS) {
        apr_pool_destroy(p);
        return APR_EGENERAL;
    }
    apr_hash_set(L->fetches, f->key, APR_HASH_KEY_STRING, f);
    return APR_SUCCESS;
}

/* Starts the fetch of j's view from the supplier's API: GET /bookings/{uuid},
 * /orders/{id}, /products/{id}, or POST /availability. */
static apr_status_t fetch_start(loop_t *L, job_t *j, fetch_t **pf, const char **perr)
{
    apr_pool_t *p;
    fetch_t *f;
    json_error_t jerr;
    json_t *thin;
    const char *lang = job_language(j->job, j->wh), *id;
    apr_size_t n;

    apr_pool_create(&p, L->pool);
    f = apr_pcalloc(p, sizeof(*f));
    f->pool = p;
    f->key = apr_pstrdup(p, j->view_key);
    f->type = owh_event_parse(j->job->event_type);
    f->event_id = apr_pstrdup(p, j->job->event_id);
    f->event_at = apr_pstrdup(p, j->job->event_at);
    f->caps = caps_joined(j->wh, p);
    f->contact = !strcmp(lang, CONTACT_LANGUAGE);
    f->language = *lang && !f->contact ? apr_pstrdup(p, lang) : NULL;
    f->state_key = apr_pstrcat(p, j->job->event_type, "/", j->job->object_key, "|", f->caps, "|", lang, NULL);
    f->waiters = apr_array_make(p, 4, sizeof(job_t *));
    f->method = "GET";
    thin = owh_json_pool_own(json_loads(j->job->object_json, 0, &jerr), p);
    id = apr_pescape_path_segment(p, j->job->object_key);
    switch (f->type) {
    case OWH_EVENT_BOOKING: f->url = apr_pstrcat(p, L->sc->supplier_api, "/bookings/", id, NULL); break;
    case OWH_EVENT_ORDER: f->url = apr_pstrcat(p, L->sc->supplier_api, "/orders/", id, NULL); break;
    case OWH_EVENT_PRODUCT: f->url = apr_pstrcat(p, L->sc->supplier_api, "/products/", id, NULL); break;
    case OWH_EVENT_AVAILABILITY:
        f->availability_id = apr_pstrdup(p, json_string_value(json_object_get(thin, "id")));
        if (!f->availability_id || !json_is_string(json_object_get(thin, "productId"))
            || !json_is_string(json_object_get(thin, "optionId"))) {
            *perr = "resolving an availability needs its id, productId and optionId (strings) in the event";
            apr_pool_destroy(p);
            return APR_EINVAL;
        }
        f->method = "POST";
        f->url = apr_pstrcat(p, L->sc->supplier_api, "/availability", NULL);
        f->body = owh_json_dump(owh_json_pool_own(json_pack("{s:O, s:O, s:[s]}",
            "productId", json_object_get(thin, "productId"), "optionId", json_object_get(thin, "optionId"),
            "availabilityIds", f->availability_id), p), &n, p);
        f->len = n;
        break;
    default:
        *perr = "the event cannot be resolved";
        apr_pool_destroy(p);
        return APR_EINVAL;
    }
    if (fetch_send(L, f) != APR_SUCCESS) {
        *perr = apr_pstrcat(j->pool, "resolving the object: ", f->method, " ", f->url,
                            ": the request could not be prepared", NULL);
        apr_pool_destroy(p);
        return APR_EGENERAL;
    }
    *pf = f;
    return APR_SUCCESS;
}

/* The first fetch of a "@contact" view told the contact's locale: the same
 * fetch again in that language, for the same waiters. 1 if under way. */
static int fetch_again(loop_t *L, fetch_t *f, const char *locale)
{
    f->contact = 0;
    f->language = apr_pstrdup(f->pool, locale);
    return fetch_send(L, f) == APR_SUCCESS;
}

/* Parks j on the fetch of its view, starting the fetch if none is running. */
static void fetch_attach(loop_t *L, job_t *j)
{
    fetch_t *f = apr_hash_get(L->fetches, j->view_key, APR_HASH_KEY_STRING);
    const char *err = NULL;
    if (!f && fetch_start(L, j, &f, &err) != APR_SUCCESS) {
        fetch_fail(L, j, err, apr_time_now(), 0);
        return;
    }
    APR_ARRAY_PUSH(f->waiters, job_t *) = j;
    L->resolving++;
}

static void drop_db(loop_t *L)
{
    if (L->dbpool) apr_pool_destroy(L->dbpool);
    L->dbpool = NULL;
    L->db = NULL;
}

static int ensure_db(loop_t *L)
{
    apr_status_t rv;
    if (L->db && !L->db->broken && PQstatus(L->db->pg) == CONNECTION_OK) return 1;
    drop_db(L);
    apr_pool_create(&L->dbpool, L->pool);
    rv = owh_store_connect(&L->db, L->sc->conninfo, L->sc->connect_timeout, L->dbpool);
    if (rv == APR_SUCCESS)
        rv = owh_store_query(NULL, L->db, L->dbpool, "LISTEN octo_webhooks", 0, NULL);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, L->s, OWHLOGNO(00503)
                     "dispatcher: database unavailable: %s",
                     L->db && L->db->errmsg ? L->db->errmsg : "connection failed");
        drop_db(L);
        return 0;
    }
    return 1;
}

/* Writes recorded outcomes; kept in memory (and retried) while the database
 * is away. Unless forced, waits for half a batch or FLUSH_AFTER. */
static int flush_results(loop_t *L, int force)
{
    apr_pool_t *tmp;
    int wrote = 0;
    if (!L->results->nelts || !L->db) return 0;
    if (!force && L->results->nelts < L->sc->batch_size / 2 && owh_deliver_running(L->deliver)
        && apr_time_now() - L->results_since < FLUSH_AFTER)
        return 0;
    apr_pool_create(&tmp, L->pool);
    if (owh_queue_complete(L->db, L->results, L->owner, L->sc->disable_after, tmp) == APR_SUCCESS) {
        apr_pool_clear(L->respool);
        L->results = apr_array_make(L->respool, 64, sizeof(owh_result_t *));
        wrote = 1;
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00504)
                     "dispatcher: recording %d outcomes failed: %s", L->results->nelts,
                     L->db->errmsg ? L->db->errmsg : "unknown error");
        if (L->db->broken) drop_db(L);
    }
    apr_pool_destroy(tmp);
    return wrote;
}

/* Gives a claimed job back to the queue (released with the batch's others). */
static void defer_job(loop_t *L, apr_array_header_t *defer, owh_job_t *src, job_t *j)
{
    APR_ARRAY_PUSH(defer, owh_job_t *) = src;
    L->claimed--;
    apr_pool_destroy(j->pool);
}

/* Claims due work up to the free capacity; returns 1 if the batch was full. */
static int claim(loop_t *L, apr_interval_time_t *next_due)
{
    apr_pool_t *tmp;
    apr_array_header_t *jobs, *defer;
    int limit = L->sc->max_concurrency - L->claimed, i, full;
    owh_claim_params_t cp;
    owh_claim_info_t info;

    if (limit > L->sc->batch_size) limit = L->sc->batch_size;
    if (limit <= 0 || !L->db) return 0;
    apr_pool_create(&tmp, L->pool);
    jobs = apr_array_make(tmp, limit, sizeof(owh_job_t *));
    defer = apr_array_make(tmp, 8, sizeof(owh_job_t *));
    cp.limit = limit;
    cp.lease = L->sc->lease;
    cp.owner = L->owner;
    cp.per_webhook = L->sc->webhook_concurrency;
    cp.rate = L->sc->webhook_rate;
    if (owh_queue_claim(L->db, &cp, jobs, &info, tmp) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00505)
                     "dispatcher: claim failed: %s", L->db->errmsg ? L->db->errmsg : "unknown error");
        if (L->db->broken) drop_db(L);
        apr_pool_destroy(tmp);
        return 0;
    }
    full = jobs->nelts == limit;
    L->held = info.held;
    for (i = 0; i < jobs->nelts; ++i) {
        owh_job_t *src = APR_ARRAY_IDX(jobs, i, owh_job_t *);
        job_t *j = prepare(L, src);
        L->claimed++;
        if (!j->wh || j->unsendable) dispatch_ready(L, j);      /* recorded as failed */
        else if (!j->body) {
            /* A slow supplier API holds at most half the slots: the rest of
             * the work (other events, other webhooks) keeps flowing. */
            if (L->resolving >= (L->sc->max_concurrency + 1) / 2
                && !apr_hash_get(L->fetches, j->view_key, APR_HASH_KEY_STRING))
                defer_job(L, defer, src, j);
            else fetch_attach(L, j);
        }
        else if (*host_count(L, j->host) < L->sc->max_per_host) start_job(L, j);
        else {
            /* A slow host keeps at most one more round waiting here; the rest
             * goes back to the queue so other hosts keep flowing. */
            int queued = 0, k;
            for (k = 0; k < L->waiting->nelts; ++k)
                queued += !strcmp(APR_ARRAY_IDX(L->waiting, k, job_t *)->host, j->host);
            if (queued < L->sc->max_per_host) APR_ARRAY_PUSH(L->waiting, job_t *) = j;
            else defer_job(L, defer, src, j);
        }
    }
    if (defer->nelts) owh_queue_release(L->db, defer, apr_time_from_msec(500), tmp);
    /* Due work a cap held back: look again shortly (our own completions, or
     * another host's unparking NOTIFY, wake us sooner). */
    if (!full) {
        if (info.held) *next_due = BLOCKED_POLL;
        else if (info.next_in >= 0) *next_due = info.next_in;
    }
    apr_pool_destroy(tmp);
    return full;
}

static void drain_notifications(loop_t *L, int *wake)
{
    PGnotify *n;
    if (!L->db) return;
    if (!PQconsumeInput(L->db->pg)) { L->db->broken = 1; drop_db(L); return; }
    while ((n = PQnotifies(L->db->pg))) { *wake = 1; PQfreemem(n); }
}

static json_t *default_supplier(owh_srv_conf_t *sc, apr_pool_t *p)
{
    json_t *o = owh_json_pool_own(json_object(), p);
    if (sc->supplier_id) json_object_set_new(o, "id", json_string(sc->supplier_id));
    if (sc->supplier_name) json_object_set_new(o, "name", json_string(sc->supplier_name));
    if (sc->supplier_reference) json_object_set_new(o, "reference", json_string(sc->supplier_reference));
    if (sc->supplier_website) json_object_set_new(o, "website", json_string(sc->supplier_website));
    return o;
}

static int dispatch_loop(loop_t *L)
{
    apr_time_t next_poll = 0, stop_deadline = 0;
    apr_interval_time_t backoff = apr_time_from_msec(200);
    int wake = 1, more = 0, free_slots;
    int min_claim = L->sc->batch_size < L->sc->max_concurrency ? L->sc->batch_size : L->sc->max_concurrency;

    min_claim = min_claim / 2 ? min_claim / 2 : 1;
    while (!stop_requested || owh_deliver_running(L->deliver)) {
        apr_time_t now = apr_time_now();
        int ready = 0, timeout_ms;
        apr_interval_time_t next_due = L->sc->poll_interval;

        if (stop_requested && !stop_deadline) stop_deadline = now + STOP_GRACE;
        if (stop_deadline && now > stop_deadline) break;
        if (getppid() == 1) stop_requested = 1;        /* httpd is gone */

        if (!L->db && !stop_requested) {
            if (!ensure_db(L)) {
                apr_sleep(backoff);
                backoff = backoff * 2 > apr_time_from_sec(5) ? apr_time_from_sec(5) : backoff * 2;
                owh_deliver_process(L->deliver, on_done, L);
                continue;
            }
            backoff = apr_time_from_msec(200);
            wake = 1;
        }
        /* Finished deliveries free per-webhook slots: claim again if a cap
         * held work back. */
        if (flush_results(L, stop_requested) && L->held) wake = 1;
        /* A NOTIFY that arrived with our own statement's result (complete()
         * unparking an object's next delivery) sits in libpq, not the socket. */
        drain_notifications(L, &wake);
        /* Claim when there is room for half a batch (or nothing is running):
         * a trickle of one-row claims would cost a round trip per delivery. */
        free_slots = L->sc->max_concurrency - L->claimed;
        if (!stop_requested && L->db && (wake || more || now >= next_poll)
            && (L->claimed == 0 || free_slots >= min_claim)) {
            wake = 0;
            more = claim(L, &next_due);
            if (next_due > L->sc->poll_interval) next_due = L->sc->poll_interval;
            next_poll = apr_time_now() + next_due;
        }
        start_waiting(L);
        drain_notifications(L, &wake);

        timeout_ms = ((more || wake) && free_slots >= min_claim) ? 0 : (int)((next_poll - apr_time_now()) / 1000);
        if (timeout_ms < 0) timeout_ms = 0;
        if (L->results->nelts) {
            int flush_ms = (int)((L->results_since + FLUSH_AFTER - apr_time_now()) / 1000);
            if (flush_ms < timeout_ms) timeout_ms = flush_ms < 0 ? 0 : flush_ms;
        }
        if (timeout_ms > 1000) timeout_ms = 1000;
        if (stop_requested && timeout_ms > 100) timeout_ms = 100;
        owh_deliver_wait(L->deliver, L->db ? PQsocket(L->db->pg) : -1, timeout_ms, &ready);
        if (ready) drain_notifications(L, &wake);
        owh_deliver_process(L->deliver, on_done, L);
    }
    return 0;
}

/* Hands back what was claimed but not finished, so the next dispatcher can
 * send it at once instead of waiting for the lease (a repeat of an attempt in
 * flight is the one duplicate at-least-once allows). */
static void hand_back(loop_t *L)
{
    apr_pool_t *tmp;
    apr_array_header_t *jobs;
    apr_hash_index_t *hi;
    int i, k;
    if (!L->db && !ensure_db(L)) return;
    flush_results(L, 1);
    apr_pool_create(&tmp, L->pool);
    jobs = apr_array_make(tmp, 16, sizeof(owh_job_t *));
    for (i = 0; i < L->waiting->nelts; ++i)
        APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(L->waiting, i, job_t *)->job;
    for (i = 0; i < L->inflight->nelts; ++i)
        APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(L->inflight, i, job_t *)->job;
    for (hi = apr_hash_first(tmp, L->fetches); hi; hi = apr_hash_next(hi)) {
        fetch_t *f = apr_hash_this_val(hi);
        for (k = 0; k < f->waiters->nelts; ++k)
            APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(f->waiters, k, job_t *)->job;
    }
    owh_queue_release(L->db, jobs, 0, tmp);
    apr_pool_destroy(tmp);
}

static int run_dispatcher(dispatcher_t *dp, apr_interval_time_t delay)
{
    apr_pool_t *p;
    loop_t L;
    owh_deliver_params_t dparams;
    char host[256];
    sigset_t all;
    pid_t parent = getppid();

    /* Die with httpd, even when it is killed with -9. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) return 0;
    ap_close_listeners();
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    apr_signal(SIGTERM, on_stop);
    apr_signal(SIGINT, on_stop);
    apr_signal(SIGHUP, SIG_IGN);
    apr_signal(SIGUSR1, SIG_IGN);
    apr_signal(SIGWINCH, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    apr_signal(SIGCHLD, SIG_DFL);

    apr_pool_create(&p, NULL);
    /* Job pools come and go by the thousand: return freed blocks to the
     * system beyond 4 MB so RSS stays flat under any backlog. */
    apr_allocator_max_free_set(apr_pool_allocator_get(p), 4 * 1024 * 1024);
    if (ap_run_drop_privileges(p, dp->s)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, dp->s, OWHLOGNO(00506)
                     "dispatcher: cannot drop privileges");
        return 1;
    }
    if (delay) {
        apr_time_t until = apr_time_now() + delay;
        while (!stop_requested && apr_time_now() < until) apr_sleep(apr_time_from_msec(100));
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    srandom((unsigned)(getpid() ^ apr_time_now()));

    memset(&L, 0, sizeof(L));
    L.s = dp->s;
    L.sc = dp->sc;
    L.pool = p;
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    L.owner = apr_psprintf(p, "%s:%" APR_PID_T_FMT, host, getpid());
    L.supplier = default_supplier(dp->sc, p);
    apr_pool_create(&L.viewpool, p);
    L.views = apr_hash_make(L.viewpool);
    L.fetches = apr_hash_make(p);
    L.waiting = apr_array_make(p, 64, sizeof(job_t *));
    L.inflight = apr_array_make(p, 256, sizeof(job_t *));
    L.hosts = apr_hash_make(p);
    apr_pool_create(&L.respool, p);
    L.results = apr_array_make(L.respool, 64, sizeof(owh_result_t *));
    memset(&dparams, 0, sizeof(dparams));
    dparams.connect_timeout = dp->sc->deliver_connect_timeout;
    dparams.timeout = dp->sc->deliver_timeout;
    dparams.response_cap = dp->sc->response_cap;
    dparams.max_per_host = dp->sc->max_per_host;
    dparams.user_agent = OWH_USER_AGENT;
    dparams.guard = dp->sc->allow_networks;     /* NULL: nothing private allowed */
    if (owh_deliver_create(&L.deliver, &dparams, p) != APR_SUCCESS) return 1;

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, dp->s, OWHLOGNO(00507)
                 "dispatcher %s started", L.owner);
    dispatch_loop(&L);
    hand_back(&L);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, dp->s, OWHLOGNO(00508)
                 "dispatcher %s stopped", L.owner);
    apr_pool_destroy(p);
    curl_global_cleanup();
    return 0;
}
