/* owh_jobs.c — the dispatcher's jobs: a claimed row becomes a job (its
 * webhook, host, event view, body and signed headers), waits for a slot of its
 * host, runs as a libcurl transfer and ends as a recorded outcome. Owns the
 * per-event view cache (one diff and object per event, shared by all its
 * deliveries). See owh_dispatch.h. */
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_uri.h>
#include <httpd.h>
#include <http_log.h>

#include "owh_dispatch.h"
#include "owh_sign.h"
#include "owh_json.h"
#include "owh_metrics.h"

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
owh_event_view_t *owh_jobs_cache_view(loop_t *L, const char *key, const char *event_type, const char *event_id,
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
    return v ? v : owh_jobs_cache_view(L, src->event_id, src->event_type, src->event_id, src->event_at,
                              src->object_json, src->previous_json, src->language);
}

/* Remembers that webhook id sends to host, so claims can pass it over while
 * the host is full (instead of claiming work that would only wait or go
 * back). Started over past 10,000 pairs: it is a hint, not a record. */
static void host_hook_note(loop_t *L, const char *host, const char *id)
{
    apr_hash_t *ids = apr_hash_get(L->host_hooks, host, APR_HASH_KEY_STRING);
    if (ids && apr_hash_get(ids, id, APR_HASH_KEY_STRING)) return;
    if (L->host_hooks_n >= 10000) {
        apr_pool_clear(L->hookpool);
        L->host_hooks = apr_hash_make(L->hookpool);
        L->host_hooks_n = 0;
        ids = NULL;
    }
    if (!ids) {
        ids = apr_hash_make(L->hookpool);
        apr_hash_set(L->host_hooks, apr_pstrdup(L->hookpool, host), APR_HASH_KEY_STRING, ids);
    }
    apr_hash_set(ids, apr_pstrdup(L->hookpool, id), APR_HASH_KEY_STRING, "");
    L->host_hooks_n++;
}

/* The hosts this dispatcher has sent to. Past HOSTS_MAX entries (resellers
 * come and go over months) the idle ones are dropped, their memory with
 * them: a host's entry is made only here, so a host_t * held by a caller
 * stays valid until its next call of this function. */
#define HOSTS_MAX 4096
host_t *owh_jobs_host(loop_t *L, const char *host)
{
    host_t *h = apr_hash_get(L->hosts, host, APR_HASH_KEY_STRING);
    if (h) return h;
    if (apr_hash_count(L->hosts) >= HOSTS_MAX) {
        apr_pool_t *np = owh_dsp_pool(L->pool, "owh_dsp_hosts");
        apr_hash_t *nh = apr_hash_make(np);
        apr_hash_index_t *hi;
        for (hi = apr_hash_first(NULL, L->hosts); hi; hi = apr_hash_next(hi)) {
            const void *key;
            void *val;
            host_t *o;
            apr_hash_this(hi, &key, NULL, &val);
            o = val;
            if (!o->running && !o->waiting) continue;
            apr_hash_set(nh, apr_pstrdup(np, key), APR_HASH_KEY_STRING, apr_pmemdup(np, o, sizeof(*o)));
        }
        apr_pool_destroy(L->hostpool);
        L->hostpool = np;
        L->hosts = nh;
    }
    h = apr_pcalloc(L->hostpool, sizeof(*h));
    apr_hash_set(L->hosts, apr_pstrdup(L->hostpool, host), APR_HASH_KEY_STRING, h);
    return h;
}

/* How many claimed deliveries may wait here for a slot of host h. A host
 * known to be fast gets FAST_ROUNDS rounds of OctoWebhooksMaxPerHost, so one
 * claim feeds it for a whole database round trip and claims come in fewer,
 * larger batches; a new, slow or failing one gets one round (the rest stays
 * in the queue for other dispatchers). When a fast host turns slow, what
 * waits for it beyond one round is handed back at once (owh_jobs_on_done):
 * the round left then waits at most two timeouts after the first one that
 * told, so the lease must cover three (it does at the defaults: 60 s, 15 s). */
#define FAST_HOST   apr_time_from_msec(50)
#define FAST_ROUNDS 6
int owh_jobs_host_queue(loop_t *L, const host_t *h)
{
    if (h->done && h->latency < FAST_HOST && L->sc->lease >= 3 * L->sc->deliver_timeout)
        return FAST_ROUNDS * L->sc->max_per_host;
    return L->sc->max_per_host;
}

/* Hands back what waits for host h beyond what it may now have waiting
 * (it turned slow): the newest claims go (with the next idle moment of the
 * connection, owh_dispatcher's loop), the oldest keep their place. */
static void host_trim(loop_t *L, const char *host, host_t *h)
{
    int i, excess = h->waiting - owh_jobs_host_queue(L, h);
    for (i = L->waiting->nelts - 1; i >= 0 && excess > 0; --i) {
        job_t *j = APR_ARRAY_IDX(L->waiting, i, job_t *);
        owh_job_t *c;
        if (strcmp(j->host, host)) continue;
        c = apr_pcalloc(L->handpool, sizeof(*c));
        c->delivery_id = apr_pstrdup(L->handpool, j->job->delivery_id);
        c->claim_id = apr_pstrdup(L->handpool, j->job->claim_id);
        APR_ARRAY_PUSH(L->handback, owh_job_t *) = c;
        memmove(&APR_ARRAY_IDX(L->waiting, i, job_t *), &APR_ARRAY_IDX(L->waiting, i + 1, job_t *),
                (L->waiting->nelts - i - 1) * sizeof(job_t *));
        L->waiting->nelts--;
        h->waiting--;
        L->claimed--;
        excess--;
        apr_pool_destroy(j->pool);
    }
}

/* Claimed deliveries waiting here for fast hosts (they will start soon). */
int owh_jobs_waiting_fast(loop_t *L)
{
    apr_hash_index_t *hi;
    int n = 0;
    for (hi = apr_hash_first(NULL, L->hosts); hi; hi = apr_hash_next(hi)) {
        const host_t *h = apr_hash_this_val(hi);
        if (h->waiting && h->done && h->latency < FAST_HOST) n += h->waiting;
    }
    return n;
}

/* What each host can still take here (start now, or wait for: see
 * owh_jobs_host_queue), and which webhooks send to it: a claim takes no
 * more for a host than that, so claimed work seldom has to go back. Idle
 * hosts whose webhooks' caps cannot overfill them are left out, so the list
 * stays short with many resellers. */
const char *owh_jobs_host_room(loop_t *L, apr_pool_t *p)
{
    json_t *room, *hooks, *o;
    apr_hash_index_t *hi, *hj;
    apr_size_t len;
    int k = 0;
    if (!apr_hash_count(L->host_hooks)) return NULL;
    room = json_array();
    hooks = json_object();
    for (hi = apr_hash_first(p, L->host_hooks); hi; hi = apr_hash_next(hi)) {
        const void *host;
        void *ids;
        int left, most;
        host_t *h;
        apr_hash_this(hi, &host, NULL, &ids);
        h = owh_jobs_host(L, host);
        most = L->sc->max_per_host + owh_jobs_host_queue(L, h);
        left = most - h->running - h->waiting;
        /* an idle host whose known webhooks could not overfill it in one
         * claim needs no bound (the list stays short with many resellers) */
        if (left == most
            && (apr_int64_t)apr_hash_count(ids) * L->sc->webhook_concurrency <= left)
            continue;
        json_array_append_new(room, json_integer(left > 0 ? left : 0));
        for (hj = apr_hash_first(p, ids); hj; hj = apr_hash_next(hj)) {
            const void *id;
            apr_hash_this(hj, &id, NULL, NULL);
            json_object_set_new(hooks, id, json_integer(k));
        }
        k++;
    }
    if (!k) {
        json_decref(room);
        json_decref(hooks);
        return NULL;
    }
    o = owh_json_pool_own(json_pack("{s:o, s:o}", "room", room, "hooks", hooks), p);
    return owh_json_dump(o, &len, p);
}

/* Puts j in line for a slot of its host. */
void owh_jobs_wait(loop_t *L, job_t *j)
{
    owh_jobs_host(L, j->host)->waiting++;
    APR_ARRAY_PUSH(L->waiting, job_t *) = j;
}

/* What an attempt was, for octo_webhooks_attempts_total. */
static owh_attempt_kind_e attempt_kind(const job_t *j, int code, const char *error,
                                       const owh_transfer_result_t *res)
{
    if (code >= 200 && code <= 299) return OWH_ATTEMPT_SUCCESS;
    if (code > 0) return OWH_ATTEMPT_HTTP_ERROR;
    if (!j->wh || j->unsendable) return OWH_ATTEMPT_REFUSED;
    if (res && error && !strncmp(error, "refused by the SSRF guard", 25)) return OWH_ATTEMPT_REFUSED;
    return OWH_ATTEMPT_TRANSPORT_ERROR;
}

void owh_jobs_record(loop_t *L, job_t *j, int code, const char *error, const owh_transfer_result_t *res,
                     apr_time_t started, int latency_ms)
{
    owh_result_t *r = apr_pcalloc(L->respool, sizeof(*r));
    owh_outcome_policy_t pol;

    r->delivery_id = apr_pstrdup(L->respool, j->job->delivery_id);
    r->claim_id = apr_pstrdup(L->respool, j->job->claim_id);
    r->webhook_id = j->wh ? apr_pstrdup(L->respool, j->wh->id) : NULL;
    r->attempt = j->job->attempts + 1;
    r->started = started;
    r->status_code = code;
    r->latency_ms = latency_ms;
    if (res && res->excerpt_len) r->excerpt = owh_outcome_clean_text(res->excerpt, res->excerpt_len, L->respool);
    if (error) r->error = owh_outcome_clean_text(error, strlen(error), L->respool);
    pol.delays = L->sc->retry_delays;
    pol.retry_on_error = j->wh && j->wh->retry_on_error;
    pol.sendable = j->wh && !j->unsendable;
    pol.max_retry_after = L->sc->max_retry_after;
    pol.now = apr_time_now();
    pol.jitter = (double)random() / ((double)RAND_MAX + 1);
    owh_outcome_decide(r, &pol, res ? res->retry_after : NULL, L->respool);
    /* One line per attempt at LogLevel octo_webhooks:debug (never the URL,
     * headers or bodies: they may carry credentials). */
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, L->s, OWHLOGNO(00520)
                 "attempt: webhook %s delivery %s #%d status %d latency %d ms: %s%s%s",
                 r->webhook_id ? r->webhook_id : "-", r->delivery_id, r->attempt, r->status_code,
                 r->latency_ms, r->outcome == OWH_OUTCOME_SUCCEEDED ? "succeeded"
                 : r->outcome == OWH_OUTCOME_FAILED ? "failed" : "retry",
                 r->error ? ", " : "", r->error ? r->error : "");
    owh_metrics_attempt(attempt_kind(j, code, error, res), res != NULL, apr_time_from_msec(latency_ms));
    owh_metrics_inflight(L->claimed);
    APR_ARRAY_PUSH(L->results, owh_result_t *) = r;
    /* a slot freed: with the outcomes' own connection, once they are
     * recorded (a claim before would find the webhook's cap still full) */
    if (!L->odb) L->freed = 1;
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

void owh_jobs_on_done(void *ctx, void *baton, const owh_transfer_result_t *res)
{
    loop_t *L = ctx;
    job_t *j = baton;
    host_t *h = owh_jobs_host(L, j->host);
    apr_interval_time_t took = res->latency_ms > 0 ? apr_time_from_msec(res->latency_ms) : 0;
    h->running--;
    h->done = 1;
    /* a moving average: a host that starts timing out turns slow within a
     * few transfers, one that recovers turns fast again as quickly */
    h->latency = h->latency ? (h->latency * 3 + took) / 4 : took;
    if (h->waiting > owh_jobs_host_queue(L, h)) host_trim(L, j->host, h);
    L->claimed--;
    inflight_remove(L, j);      /* j's pool is destroyed after this returns */
    owh_jobs_record(L, j, res->status_code, res->error, res, res->started, res->latency_ms);
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
const char *owh_jobs_language(const owh_job_t *src, const owh_webhook_t *wh)
{
    const char *tag;
    if (!wh->use_contact_language) return "";
    tag = owh_payload_language_tag(src->language);
    return tag ? tag : CONTACT_LANGUAGE;
}

const char *owh_jobs_caps(const owh_webhook_t *wh, apr_pool_t *p)
{
    return wh->capabilities->nelts ? apr_array_pstrcat(p, wh->capabilities, ',') : "";
}

/* A webhook snapshot as the jobs use it, parsed once: the claims carry the
 * same text for each of a webhook's deliveries (bench/defaults A: 300 each),
 * and parsing it and serializing its part of the body was a fifth of the
 * dispatcher's time. Jobs take copies, so the cache may start over. */
#define WEBHOOKS_CACHED 512

typedef struct wh_entry_t {
    owh_webhook_t *wh;
    const char *host;               /* name:port */
    const char *head;               /* octo dialect: the body's head; else NULL */
} wh_entry_t;

static const wh_entry_t *webhook_entry(loop_t *L, const char *snapshot)
{
    wh_entry_t *e = apr_hash_get(L->whcache, snapshot, APR_HASH_KEY_STRING);
    apr_uri_t uri;
    if (e) return e;
    if (L->whcache_n >= WEBHOOKS_CACHED) {
        apr_pool_clear(L->whpool);
        L->whcache = apr_hash_make(L->whpool);
        L->whcache_n = 0;
    }
    /* (counted before parsing: a snapshot that fails leaves its memory in
     * the pool too, so failures also bring the start-over nearer) */
    L->whcache_n++;
    e = apr_pcalloc(L->whpool, sizeof(*e));
    if (owh_payload_webhook_parse(&e->wh, snapshot, L->whpool) != APR_SUCCESS) return NULL;
    e->host = "";
    if (apr_uri_parse(L->whpool, e->wh->url, &uri) == APR_SUCCESS && uri.hostname)
        e->host = apr_psprintf(L->whpool, "%s:%s", uri.hostname, uri.port_str ? uri.port_str : uri.scheme);
    e->head = e->wh->dialect == OWH_DIALECT_OCTO ? owh_payload_head(e->wh, L->whpool) : NULL;
    apr_hash_set(L->whcache, apr_pstrdup(L->whpool, snapshot), APR_HASH_KEY_STRING, e);
    return e;
}

/* Turns a claimed row into a job: the webhook, its host, the supplier, and
 * (unless it waits for a resolve-mode fetch, j->view_key) a ready body. */

job_t *owh_jobs_prepare(loop_t *L, owh_job_t *src)
{
    apr_pool_t *p;
    job_t *j;
    owh_job_t *c;
    const wh_entry_t *e;
    owh_event_view_t *view;

    p = owh_dsp_pool(L->pool, "owh_dsp_job");
    j = apr_pcalloc(p, sizeof(*j));
    j->pool = p;
    j->job = c = apr_pmemdup(p, src, sizeof(*src));
    c->delivery_id = apr_pstrdup(p, src->delivery_id);
    c->claim_id = apr_pstrdup(p, src->claim_id);
    c->language = apr_pstrdup(p, src->language);      /* (NULL stays NULL) */
    c->event_id = apr_pstrdup(p, src->event_id);
    c->event_at = apr_pstrdup(p, src->event_at);
    c->event_type = apr_pstrdup(p, src->event_type);
    c->object_key = apr_pstrdup(p, src->object_key);
    c->object_json = apr_pstrdup(p, src->object_json);
    c->secret = apr_pstrdup(p, src->secret);
    c->secret_previous = apr_pstrdup(p, src->secret_previous);
    c->previous_json = NULL;          /* the rest of the row stays with the claim */
    c->connection_id = NULL;
    c->webhook_json = NULL;
    c->supplier_json = NULL;
    j->host = "";
    if (!(e = webhook_entry(L, src->webhook_json))) {
        j->wh = NULL;
        return j;
    }
    j->wh = owh_webhook_copy(e->wh, p);
    j->host = apr_pstrdup(p, e->host);
    j->head = e->head ? apr_pstrdup(p, e->head) : NULL;
    host_hook_note(L, j->host, j->wh->id);
    j->supplier = L->supplier;
    if (src->supplier_json) {
        json_error_t jerr;
        j->supplier = owh_json_pool_own(json_loads(src->supplier_json, 0, &jerr), p);
    }
    if (resolves(L, src, j->wh)) {
        j->view_key = apr_pstrcat(p, src->event_id, "|", owh_jobs_caps(j->wh, p), "|", owh_jobs_language(src, j->wh), NULL);
        if (!(view = apr_hash_get(L->views, j->view_key, APR_HASH_KEY_STRING))) return j;
    }
    else if (!(view = event_view(L, src))) {
        j->unsendable = "the payload could not be built";
        return j;
    }
    owh_jobs_finish(L, j, view);
    return j;
}

/* Builds the body and headers of a job from its event's view. */
void owh_jobs_finish(loop_t *L, job_t *j, const owh_event_view_t *view)
{
    apr_pool_t *p = j->pool;
    owh_job_t *c = j->job;
    owh_header_t *h;

    if ((j->head && view->tail
         ? owh_payload_build_from(&j->body, &j->len, j->head, j->supplier == L->supplier ? L->supplier_text
                                  : owh_payload_supplier_text(j->supplier, p), view, p)
         : owh_payload_build(&j->body, &j->len, j->wh, view, j->supplier, p)) != APR_SUCCESS) {
        j->unsendable = "the payload could not be built";
        return;
    }
    if (j->len > L->sc->max_payload) {
        j->unsendable = apr_psprintf(p, "the payload is %" APR_SIZE_T_FMT " bytes, over "
                                     "OctoWebhooksMaxPayloadSize (%" APR_SIZE_T_FMT ")",
                                     j->len, L->sc->max_payload);
        return;
    }
    j->headers = apr_array_copy(p, j->wh->headers);
    if (owh_sign_headers(j->headers, c->delivery_id, apr_time_now(), c->secret, c->secret_previous,
                         j->body, j->len, p) != APR_SUCCESS) {
        j->unsendable = "the webhook's signing secret is malformed";
        return;
    }
    if (j->wh->use_contact_language && view->language) {
        h = &APR_ARRAY_PUSH(j->headers, owh_header_t);
        h->name = "Content-Language";
        h->value = apr_pstrdup(p, view->language);
    }
}

void owh_jobs_start(loop_t *L, job_t *j)
{
    apr_time_t now = apr_time_now();
    host_t *h = owh_jobs_host(L, j->host);
    h->running++;
    if (owh_deliver_start(L->deliver, j->wh->url, j->headers, j->body, j->len, j, j->pool)
        != APR_SUCCESS) {
        h->running--;
    h->done = 1;
        L->claimed--;
        owh_jobs_record(L, j, 0, "the request could not be prepared (invalid URL?)", NULL, now, 0);
        apr_pool_destroy(j->pool);
        return;
    }
    APR_ARRAY_PUSH(L->inflight, job_t *) = j;
}

/* Starts waiting jobs whose host has a free slot. */
void owh_jobs_start_waiting(loop_t *L)
{
    int i, kept = 0;
    for (i = 0; i < L->waiting->nelts; ++i) {
        job_t *j = APR_ARRAY_IDX(L->waiting, i, job_t *);
        host_t *h = owh_jobs_host(L, j->host);
        if (h->running < L->sc->max_per_host) {
            h->waiting--;
            owh_jobs_start(L, j);
        }
        else APR_ARRAY_IDX(L->waiting, kept++, job_t *) = j;
    }
    L->waiting->nelts = kept;
}

/* A job ready or failed: start it, let it wait for its host, or record why
 * it cannot be sent. */
void owh_jobs_dispatch(loop_t *L, job_t *j)
{
    if (!j->wh || j->unsendable) {
        L->claimed--;
        owh_jobs_record(L, j, 0, j->wh ? j->unsendable : "the webhook snapshot is unreadable", NULL, apr_time_now(), 0);
        apr_pool_destroy(j->pool);
    }
    else if (owh_jobs_host(L, j->host)->running < L->sc->max_per_host) owh_jobs_start(L, j);
    else owh_jobs_wait(L, j);
}

/* An attempt that could not get its object: recorded as a failed attempt,
 * retried on the webhook's schedule like an endpoint failure. */
void owh_jobs_fail(loop_t *L, job_t *j, const char *why, apr_time_t started, int latency_ms)
{
    L->claimed--;
    owh_jobs_record(L, j, 0, why, NULL, started, latency_ms);
    apr_pool_destroy(j->pool);
}

