/* owh_dispatch.h — the dispatcher process's insides, shared by its rooms:
 *   owh_supervise.c  the parent's side: fork, respawn, stop (httpd glue)
 *   owh_dispatcher.c the child's main loop: claim, record, LISTEN, shut down
 *   owh_jobs.c       a claimed row to a transfer to a recorded outcome
 *   owh_resolve.c    resolve mode: fetches from the supplier's OCTO API
 * The pure parts live in the core: outcome and next delay (owh_outcome),
 * signed headers (owh_sign), payloads and diffs (owh_payload, owh_diff).
 * Not for the handler: it and the dispatcher meet only in PostgreSQL. */
#ifndef OWH_DISPATCH_H
#define OWH_DISPATCH_H

#include <apr_hash.h>
#include <httpd.h>
#include <http_log.h>

#include "owh_config.h"
#include "owh_store.h"
#include "owh_queue.h"
#include "owh_deliver.h"
#include "owh_payload.h"
#include "owh_outcome.h"
#include "owh_log.h"

APLOG_USE_MODULE(octo_webhooks);

/* The child's state: one loop per dispatcher process. */
typedef struct loop_t {
    server_rec *s;
    owh_srv_conf_t *sc;
    apr_pool_t *pool;
    const char *owner;              /* host:pid, recorded with claims and attempts */
    owh_db_t *db;
    apr_pool_t *dbpool;
    owh_deliver_t *deliver;
    json_t *supplier;               /* from the directives */
    const char *supplier_text;      /* ... as JSON text, for the bodies */
    apr_pool_t *whpool;             /* parsed webhook snapshots, started over when many */
    apr_hash_t *whcache;            /* snapshot text -> wh_entry_t * (owh_jobs.c) */
    int whcache_n;
    apr_array_header_t *waiting;    /* job_t *: claimed, waiting for a host slot */
    apr_pool_t *hostpool;           /* hosts and their keys, started over when it grows large */
    apr_hash_t *hosts;              /* host -> host_t * */
    apr_pool_t *hookpool;           /* host_hooks, started over when it grows large */
    apr_hash_t *host_hooks;         /* host -> apr_hash_t of webhook ids seen there: a
                                     * claim skips them while the host is full */
    int host_hooks_n;
    apr_pool_t *respool;
    apr_array_header_t *results;    /* owh_result_t *: to record with the next round trip */
    owh_queue_cycle_t *cycle;       /* the round trip in flight, or NULL */
    apr_pool_t *cyclepool;          /* its memory: its outcomes, its claimed rows */
    apr_array_header_t *cycle_results; /* the outcomes it carries (again if it fails) */
    int cycle_claims, cycle_limit;  /* it claims, up to this many */
    owh_db_t *odb;                  /* the outcomes' own connection (owh_outcomes.c) */
    apr_pool_t *odbpool;
    owh_queue_cycle_t *ocycle;      /* its round trip in flight, or NULL */
    apr_pool_t *ocyclepool;         /* its memory and outcomes */
    apr_array_header_t *ocycle_results;
    apr_time_t oretry_at;           /* after a failure: connect again then */
    int more;                       /* the last claim was full: claim again at once */
    int freed;                      /* a transfer ended since the last claim */
    apr_time_t next_poll;           /* claim at the latest then */
    apr_interval_time_t restless_in; /* the last look-again-soon delay (doubles; 0: none) */
    apr_time_t unparked_at;         /* the last unpark_orphans() */
    apr_array_header_t *inflight;   /* job_t *: handed to libcurl (for shutdown) */
    apr_pool_t *handpool;           /* handback's memory */
    apr_array_header_t *handback;   /* owh_job_t *: claims to hand back (a host turned slow) */
    int claimed;                    /* running + waiting */
    int held;                       /* the last claim left due work behind a cap */
    apr_pool_t *viewpool;           /* event views, shared by an event's deliveries */
    apr_hash_t *views;              /* event id (or resolve view key) -> owh_event_view_t * */
    apr_size_t view_bytes;          /* JSON text the cached views were made from */
    apr_hash_t *fetches;            /* resolve view key -> fetch_t * in flight */
    int resolving;                  /* claimed jobs waiting for a fetch */
} loop_t;


/* One endpoint host (name:port) as this dispatcher sees it. */
typedef struct host_t {
    int running;                    /* transfers in flight (at most OctoWebhooksMaxPerHost) */
    int waiting;                    /* claimed, in L->waiting for a slot */
    apr_interval_time_t latency;    /* recent transfers' duration (moving average) */
    int done;                       /* a transfer ended: latency means something */
} host_t;

/* A claimed delivery on its way: built, waiting for its host, in flight. */
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
    const char *head;               /* its octo body's head (owh_payload_head), or NULL */
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

/* The language part of a resolve view key when the booking contact's locale
 * is wanted (learnt from a first fetch). */
#define CONTACT_LANGUAGE "@contact"

/* A tagged sub-pool. The dispatcher's root pool has an abort function (out
 * of memory: log, exit, respawned by the parent), inherited by every pool
 * under it, so creating one cannot fail silently. */
static APR_INLINE apr_pool_t *owh_dsp_pool(apr_pool_t *parent, const char *tag)
{
    apr_pool_t *p = NULL;
    if (apr_pool_create(&p, parent) != APR_SUCCESS) abort();     /* not reached: abort_fn exits */
    apr_pool_tag(p, tag);
    return p;
}

/* owh_dispatcher.c: the child's entry; returns its exit code. */
/* Cannot start at all: do not respawn. Above any signal number, as mod_cgid's
 * DAEMON_STARTUP_ERROR: the MPM tells the parent a child's exit code or the
 * signal that killed it without saying which (3 was SIGQUIT's too). */
#define OWH_DISPATCHER_STARTUP_ERROR 254
int owh_dispatcher_run(server_rec *s, owh_srv_conf_t *sc, apr_interval_time_t delay);

/* owh_jobs.c */
job_t *owh_jobs_prepare(loop_t *L, owh_job_t *src);
void owh_jobs_finish(loop_t *L, job_t *j, const owh_event_view_t *view);
void owh_jobs_dispatch(loop_t *L, job_t *j);
void owh_jobs_start(loop_t *L, job_t *j);
void owh_jobs_start_waiting(loop_t *L);
void owh_jobs_record(loop_t *L, job_t *j, int code, const char *error, const owh_transfer_result_t *res,
                     apr_time_t started, int latency_ms);
void owh_jobs_fail(loop_t *L, job_t *j, const char *why, apr_time_t started, int latency_ms);
void owh_jobs_on_done(void *ctx, void *baton, const owh_transfer_result_t *res);
host_t *owh_jobs_host(loop_t *L, const char *host);
int owh_jobs_host_queue(loop_t *L, const host_t *h);
int owh_jobs_waiting_fast(loop_t *L);
const char *owh_jobs_host_room(loop_t *L, apr_pool_t *p);
void owh_jobs_wait(loop_t *L, job_t *j);
owh_event_view_t *owh_jobs_cache_view(loop_t *L, const char *key, const char *event_type,
                                      const char *event_id, const char *event_at, const char *object,
                                      const char *previous, const char *language);
const char *owh_jobs_language(const owh_job_t *src, const owh_webhook_t *wh);
const char *owh_jobs_caps(const owh_webhook_t *wh, apr_pool_t *p);

/* owh_dispatcher.c: waits for the round trip in flight, so a statement of
 * our own may use the connection (the claimed jobs it brings are started). */
void owh_dispatcher_db_idle(loop_t *L);

/* owh_resolve.c: parks j on the fetch of its view (starting it if needed). */
void owh_resolve_attach(loop_t *L, job_t *j);

#endif
