/* owh_dispatcher.c — the dispatcher process's main loop (see owh_dispatch.h
 * for its rooms). In the child: listeners closed, privileges dropped to
 * httpd's User, parent death signalled (PR_SET_PDEATHSIG, set after the
 * drop) so a kill -9 of httpd leaves no orphan; a startup failure is logged
 * and exits with OWH_DISPATCHER_STARTUP_ERROR so the parent stops respawning.
 *
 * Delivery: at least once. A claim is a lease; claims and outcomes travel in
 * batches so the database sees few round trips; on SIGTERM unsent claims are
 * handed back at once. */
#include <apr_strings.h>
#include <apr_signal.h>
#include <apr_allocator.h>
#include <ap_listen.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "owh_dispatcher.h"
#include "owh_dispatch.h"
#include "owh_json.h"
#include "owh_log_httpd.h"
#include "owh_ops.h"
#include "owh_metrics.h"
#include "owh_outcomes.h"

#define OWH_USER_AGENT "mod_octo_webhooks/" OWH_VERSION
#define STOP_GRACE      apr_time_from_msec(2000)   /* inside httpd's 3 s kill timeout */
#define BLOCKED_POLL    apr_time_from_msec(50)     /* due work held back by a cap: look again */
#define RESTLESS_POLL   apr_time_from_msec(1)      /* emit()s may not have seen us wait: */
#define RESTLESS_MAX    apr_time_from_msec(50)     /* doubling up to this (a long supplier
                                                    * transaction holds emit()'s lock) */
#define UNPARK_EVERY    apr_time_from_sec(1)       /* orphaned parked deliveries: look this often */

static volatile sig_atomic_t stop_requested;
static int connected_once, cannot_start;   /* the latter: exit with OWH_DISPATCHER_STARTUP_ERROR */

/* Out of memory anywhere under the root pool: the parent respawns us and
 * the leases hand our claims to the next dispatcher. */
static int on_oom(int rv)
{
    static const char msg[] = "OWH00512: dispatcher: out of memory, exiting\n";
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) { /* nothing more to do */ }
    _exit(1);
    return rv;
}

/* The outcomes of a round trip that did not commit go with the next one
 * (copied: the round trip's pool goes). */
static void requeue_results(loop_t *L)
{
    owh_outcomes_requeue(L, L->cycle_results, L->cyclepool);
    L->cyclepool = NULL;
}

static void on_stop(int sig)
{
    stop_requested = 1;
}


static void drop_db(loop_t *L)
{
    if (L->cycle) {
        /* the connection is gone with the round trip: its outcomes go again */
        requeue_results(L);
        L->cycle = NULL;
    }
    if (L->dbpool) apr_pool_destroy(L->dbpool);
    L->dbpool = NULL;
    L->db = NULL;
}

static int ensure_db(loop_t *L)
{
    apr_status_t rv;
    if (L->db && owh_store_usable(L->db)) return 1;
    drop_db(L);
    L->dbpool = owh_dsp_pool(L->pool, "owh_dsp_db");
    rv = owh_store_connect_schema(&L->db, L->sc->conninfo, L->sc->connect_timeout,
                                  L->sc->migrate ? OWH_SCHEMA_MIGRATE : OWH_SCHEMA_CHECK, L->dbpool);
    if (rv == APR_SUCCESS)
        rv = owh_queue_listen(L->db, L->dbpool);
    if (rv == APR_SUCCESS)      /* `octo-webhooks status` lists dispatchers by this name */
        rv = owh_store_set_application_name(L->db, apr_pstrcat(L->dbpool, "octo-webhooks dispatcher ",
                                                               L->owner, NULL), L->dbpool);
    /* A schema refused with Migrate On (newer, another build's) stays so until
     * the module changes, which takes a restart: a startup error, not an outage. */
    if ((cannot_start = rv == OWH_STORE_ESCHEMA && L->sc->migrate && !connected_once))
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, L->s, OWHLOGNO(00514)
                     "dispatcher: cannot start on this database: %s", L->db->errmsg);
    else if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00503)
                     "dispatcher: database unavailable: %s",
                     L->db && L->db->errmsg ? L->db->errmsg : "connection failed");
    if (rv != APR_SUCCESS) drop_db(L);
    else connected_once = 1;
    return rv == APR_SUCCESS;
}

/* Gives a claimed job back to the queue (released with the batch's others). */
static void defer_job(loop_t *L, apr_array_header_t *defer, owh_job_t *src, job_t *j)
{
    APR_ARRAY_PUSH(defer, owh_job_t *) = src;
    L->claimed--;
    apr_pool_destroy(j->pool);
}

/* Starts the jobs a round trip claimed (jobs live in the cycle's pool until
 * prepare copies them). Runs with the connection idle. */
static void start_claimed(loop_t *L, apr_array_header_t *jobs, apr_pool_t *tmp)
{
    apr_array_header_t *defer = apr_array_make(tmp, 8, sizeof(owh_job_t *));
    int i;
    for (i = 0; i < jobs->nelts; ++i) {
        owh_job_t *src = APR_ARRAY_IDX(jobs, i, owh_job_t *);
        job_t *j = owh_jobs_prepare(L, src);
        L->claimed++;
        if (!j->wh || j->unsendable) owh_jobs_dispatch(L, j);      /* recorded as failed */
        else if (!j->body) {
            /* A slow supplier API holds at most half the slots: the rest of
             * the work (other events, other webhooks) keeps flowing. */
            if (L->resolving >= (L->sc->max_concurrency + 1) / 2
                && !apr_hash_get(L->fetches, j->view_key, APR_HASH_KEY_STRING))
                defer_job(L, defer, src, j);
            else owh_resolve_attach(L, j);
        }
        else {
            host_t *h = owh_jobs_host(L, j->host);
            if (h->running < L->sc->max_per_host) owh_jobs_start(L, j);
            /* What its host cannot take soon goes back to the queue, so
             * other hosts (and other dispatchers) keep flowing. */
            else if (h->waiting < owh_jobs_host_queue(L, h)) owh_jobs_wait(L, j);
            else defer_job(L, defer, src, j);
        }
    }
    if (defer->nelts && L->db && !L->cycle)
        owh_queue_release(L->db, defer, apr_time_from_msec(500), tmp);
}

/* Sends one round trip: if wanted, a claim of up to the free capacity, and
 * the outcomes so far when they have no connection of their own (they leave
 * L->results for the cycle's pool). */
static void cycle_send(loop_t *L, int want_claim, int with_results)
{
    owh_cycle_req_t rq;
    owh_claim_params_t cp;
    int limit = L->sc->max_concurrency - L->claimed;
    apr_status_t rv;

    if (limit > L->sc->batch_size) limit = L->sc->batch_size;
    memset(&rq, 0, sizeof(rq));
    rq.results = with_results ? L->results : NULL;
    rq.owner = L->owner;
    rq.disable_after = L->sc->disable_after;
    if (want_claim && limit > 0) {
        cp.limit = limit;
        cp.lease = L->sc->lease;
        cp.owner = L->owner;
        cp.per_webhook = L->sc->webhook_concurrency;
        cp.rate = L->sc->webhook_rate;
        cp.hosts = owh_jobs_host_room(L, L->respool);
        rq.claim = &cp;
    }
    /* About once a second: deliveries parked behind one that ended before
     * their emit() committed have nobody else to release them. */
    if (rq.claim && apr_time_now() - L->unparked_at >= UNPARK_EVERY) {
        rq.unpark = 1;
        L->unparked_at = apr_time_now();
    }
    if (rq.results && !rq.results->nelts) rq.results = NULL;
    if (!rq.claim && !rq.results) return;
    if (rq.results) {
        /* the outcomes move with the round trip; new ones gather meanwhile */
        L->cyclepool = L->respool;
        L->cycle_results = L->results;
        L->respool = owh_dsp_pool(L->pool, "owh_dsp_results");
        L->results = apr_array_make(L->respool, 64, sizeof(owh_result_t *));
    }
    else {
        L->cyclepool = owh_dsp_pool(L->pool, "owh_dsp_cycle");
        L->cycle_results = apr_array_make(L->cyclepool, 1, sizeof(owh_result_t *));
    }
    rv = owh_queue_cycle_send(&L->cycle, L->db, &rq, L->cyclepool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, L->s, OWHLOGNO(00504)
                     "dispatcher: database round trip failed: %s",
                     L->db->errmsg ? L->db->errmsg : "unknown error");
        L->cycle = NULL;
        requeue_results(L);
        if (L->db->broken) drop_db(L);
        return;
    }
    L->cycle_claims = rq.claim != NULL;
    L->cycle_limit = rq.claim ? cp.limit : 0;
}

/* Reads the round trip in flight (block: to its end). When it is over:
 * outcomes recorded, the claimed jobs started, L->held/L->next_in set.
 * Returns 1 if it ended. */
static int cycle_collect(loop_t *L, int block)
{
    apr_pool_t *tmp;
    apr_array_header_t *jobs;
    owh_claim_info_t info;
    int done = 0;
    apr_status_t rv;

    if (!L->cycle) return 0;
    tmp = owh_dsp_pool(L->pool, "owh_dsp_tmp");
    jobs = apr_array_make(tmp, L->cycle_limit > 0 ? L->cycle_limit : 1, sizeof(owh_job_t *));
    rv = owh_queue_cycle_read(L->cycle, block, &done, jobs, &info);
    if (!done) {
        apr_pool_destroy(tmp);
        return 0;
    }
    L->cycle = NULL;
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, L->s, OWHLOGNO(00505)
                     "dispatcher: recording %d outcomes%s failed: %s", L->cycle_results->nelts,
                     L->cycle_claims ? " and claiming" : "", L->db->errmsg ? L->db->errmsg : "unknown error");
        requeue_results(L);
        if (L->db->broken) drop_db(L);
        L->next_poll = apr_time_now() + apr_time_from_msec(200);
        apr_pool_destroy(tmp);
        return 1;
    }
    owh_ops_after_complete(L, L->cycle_results);   /* warn lines and notices of failed ones */
    if (L->cycle_claims) {
        L->held = info.held;
        L->more = jobs->nelts == L->cycle_limit;
        /* Not listed as waiting, or events left unrouted (see claim.sql):
         * look again at once, as no NOTIFY may come. Due work a cap held
         * back: our own completions wake us; another host's, its unparking
         * NOTIFY or this poll. */
        L->restless_in = info.restless == 1 ? (L->restless_in ? L->restless_in * 2 : RESTLESS_POLL) : 0;
        if (L->restless_in > RESTLESS_MAX) L->restless_in = RESTLESS_MAX;
        L->next_poll = apr_time_now() + (L->more || info.restless == 2 ? 0 : info.restless ? L->restless_in
                                         : info.held ? BLOCKED_POLL
                                         : info.next_in >= 0 && info.next_in < L->sc->poll_interval
                                         ? info.next_in : L->sc->poll_interval);
        L->freed = 0;
    }
    start_claimed(L, jobs, tmp);
    if (L->cycle_claims) owh_metrics_claimed(jobs->nelts, L->claimed);
    apr_pool_destroy(L->cyclepool);     /* the jobs were copied by prepare */
    L->cyclepool = NULL;
    apr_pool_destroy(tmp);
    return 1;
}

/* Waits for the round trip in flight: before a statement of our own on the
 * connection (resolve mode's view_state, shutdown). */
void owh_dispatcher_db_idle(loop_t *L)
{
    while (L->cycle && L->db) cycle_collect(L, 1);
}

static void drain_notifications(loop_t *L, int *wake)
{
    if (!L->db) return;
    if (owh_queue_notified(L->db, wake) != APR_SUCCESS) drop_db(L);
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

/* The loop: at most one database round trip in flight (outcomes + claim),
 * overlapping the transfers. A transfer that ends frees its slot at once;
 * if a cap held due work back, the next round trip claims for it right away,
 * carrying every outcome that arrived meanwhile (batches form by themselves
 * under load, and stay one row under a trickle). */
static int dispatch_loop(loop_t *L)
{
    apr_time_t stop_deadline = 0;
    apr_interval_time_t backoff = apr_time_from_msec(200);
    int wake = 1;

    L->next_poll = 0;
    while (!stop_requested || owh_deliver_running(L->deliver) || L->cycle || L->ocycle) {
        apr_time_t now = apr_time_now();
        int fds[2], ready[2], timeout_ms, free_slots, want_claim, linked;

        if (stop_requested && !stop_deadline) stop_deadline = now + STOP_GRACE;
        if (stop_deadline && now > stop_deadline) break;
        if (getppid() == 1) stop_requested = 1;        /* httpd is gone */

        if (!L->db && !stop_requested) {
            if (!ensure_db(L)) {
                if (cannot_start) break;
                apr_sleep(backoff);
                backoff = backoff * 2 > apr_time_from_sec(5) ? apr_time_from_sec(5) : backoff * 2;
                owh_deliver_process(L->deliver, owh_jobs_on_done, L);
                continue;
            }
            backoff = apr_time_from_msec(200);
            wake = 1;
        }
        if (L->cycle) cycle_collect(L, 0);
        if (L->ocycle) owh_outcomes_collect(L, 0);
        /* A NOTIFY that arrived with a statement's result (complete()
         * unparking an object's next delivery) sits in libpq, not the socket. */
        drain_notifications(L, &wake);
        /* pruning, notices: when due, between round trips */
        if (!stop_requested && L->db && !L->cycle) owh_ops_tick(L);
        free_slots = L->sc->max_concurrency - L->claimed;
        want_claim = !stop_requested && free_slots > 0
                     && (wake || L->more || now >= L->next_poll
                         /* due work a cap held back, and a slot freed: claim
                          * for it once fewer than a round of claims wait for
                          * fast hosts (claiming for every freed slot would pay
                          * a claim's fixed cost for a row or two; a slow
                          * host's line must not hold the others' claims) */
                         || (L->held && L->freed && owh_jobs_waiting_fast(L) < L->sc->max_per_host));
        if (L->handback->nelts && L->db && !L->cycle) {
            /* claims a host that turned slow cannot take soon: due again in
             * half a second, for whoever has room (on failure the leases
             * end by themselves) */
            owh_queue_release(L->db, L->handback, apr_time_from_msec(500), L->handpool);
            apr_pool_clear(L->handpool);
            L->handback = apr_array_make(L->handpool, 16, sizeof(owh_job_t *));
        }
        /* the outcomes by their own connection if it is up, else with the claims */
        if ((linked = owh_outcomes_up(L))) owh_outcomes_send(L);
        if (L->db && !L->cycle && (want_claim || (L->results->nelts && !linked))) {
            if (want_claim) wake = 0;
            cycle_send(L, want_claim, !linked);
        }
        owh_jobs_start_waiting(L);

        /* its answer wakes us, unless libpq already read it (draining
         * notifications consumes input): then no wait at all */
        if ((L->cycle && owh_queue_cycle_buffered(L->cycle)) || (L->ocycle && owh_outcomes_buffered(L)))
            timeout_ms = 0;
        else if (L->results->nelts && !(linked ? L->ocycle : L->cycle)) timeout_ms = 0;
        else if (L->cycle) timeout_ms = 1000;
        else timeout_ms = (int)((L->next_poll - apr_time_now()) / 1000);
        if (timeout_ms < 0) timeout_ms = 0;
        if (timeout_ms > 1000) timeout_ms = 1000;
        if (stop_requested && timeout_ms > 100) timeout_ms = 100;
        fds[0] = L->db ? owh_store_socket(L->db) : -1;
        fds[1] = owh_outcomes_socket(L);
        owh_deliver_wait(L->deliver, fds, 2, timeout_ms, ready);
        if (ready[0]) {
            if (L->cycle) cycle_collect(L, 0);
            drain_notifications(L, &wake);
        }
        if (ready[1]) owh_outcomes_collect(L, 0);
        owh_deliver_process(L->deliver, owh_jobs_on_done, L);
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
    owh_outcomes_collect(L, 1);      /* (what fails of it goes back to L->results) */
    if (!L->db && !ensure_db(L)) return;
    owh_dispatcher_db_idle(L);
    if (!L->db && !ensure_db(L)) return;
    tmp = owh_dsp_pool(L->pool, "owh_dsp_tmp");
    if (L->results->nelts
        && owh_queue_complete(L->db, L->results, L->owner, L->sc->disable_after, tmp) != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00513)
                     "dispatcher: recording %d outcomes at shutdown failed: %s", L->results->nelts,
                     L->db->errmsg ? L->db->errmsg : "unknown error");
    jobs = apr_array_make(tmp, 16, sizeof(owh_job_t *));
    for (i = 0; i < L->waiting->nelts; ++i)
        APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(L->waiting, i, job_t *)->job;
    for (i = 0; i < L->handback->nelts; ++i)
        APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(L->handback, i, owh_job_t *);
    for (i = 0; i < L->inflight->nelts; ++i)
        APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(L->inflight, i, job_t *)->job;
    for (hi = apr_hash_first(tmp, L->fetches); hi; hi = apr_hash_next(hi)) {
        fetch_t *f = apr_hash_this_val(hi);
        for (k = 0; k < f->waiters->nelts; ++k)
            APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(f->waiters, k, job_t *)->job;
    }
    owh_queue_release(L->db, jobs, 0, tmp);
    owh_queue_unlist(L->db, L->owner, tmp);
    apr_pool_destroy(tmp);
}

int owh_dispatcher_run(server_rec *s, owh_srv_conf_t *sc, apr_interval_time_t delay)
{
    apr_pool_t *p;
    loop_t L;
    owh_deliver_params_t dparams;
    char host[256];
    sigset_t all;
    pid_t parent = getppid();
    apr_status_t rv;

    ap_close_listeners();
    owh_log_httpd_install(s);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    apr_signal(SIGTERM, on_stop);
    apr_signal(SIGINT, on_stop);
    apr_signal(SIGHUP, SIG_IGN);
    apr_signal(SIGUSR1, SIG_IGN);
    apr_signal(SIGWINCH, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    apr_signal(SIGCHLD, SIG_DFL);

    if (apr_pool_create_ex(&p, NULL, on_oom, NULL) != APR_SUCCESS) return OWH_DISPATCHER_STARTUP_ERROR;
    apr_pool_tag(p, "owh_dispatcher");
    /* Job pools come and go by the thousand: return freed blocks to the
     * system beyond 4 MB so RSS stays flat under any backlog. */
    apr_allocator_max_free_set(apr_pool_allocator_get(p), 4 * 1024 * 1024);
    if (ap_run_drop_privileges(p, s)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00506)
                     "dispatcher: cannot drop privileges");
        return OWH_DISPATCHER_STARTUP_ERROR;
    }
    /* Die with httpd, even when it is killed with -9. After the privilege
     * drop: setuid() clears the parent-death signal. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) return 0;
    if (delay) {
        apr_time_t until = apr_time_now() + delay;
        while (!stop_requested && apr_time_now() < until) apr_sleep(apr_time_from_msec(100));
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00510) "dispatcher: libcurl cannot initialize");
        return OWH_DISPATCHER_STARTUP_ERROR;
    }
    srandom((unsigned)(getpid() ^ apr_time_now()));

    memset(&L, 0, sizeof(L));
    L.s = s;
    L.sc = sc;
    L.pool = p;
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    L.owner = apr_psprintf(p, "%s:%" APR_PID_T_FMT, host, getpid());
    L.supplier = default_supplier(sc, p);
    L.supplier_text = owh_payload_supplier_text(L.supplier, p);
    L.whpool = owh_dsp_pool(p, "owh_dsp_webhooks");
    L.whcache = apr_hash_make(L.whpool);
    L.viewpool = owh_dsp_pool(p, "owh_dsp_views");
    L.views = apr_hash_make(L.viewpool);
    L.fetches = apr_hash_make(p);
    L.waiting = apr_array_make(p, 64, sizeof(job_t *));
    L.inflight = apr_array_make(p, 256, sizeof(job_t *));
    L.handpool = owh_dsp_pool(p, "owh_dsp_handback");
    L.handback = apr_array_make(L.handpool, 16, sizeof(owh_job_t *));
    L.hostpool = owh_dsp_pool(p, "owh_dsp_hosts");
    L.hosts = apr_hash_make(L.hostpool);
    L.hookpool = owh_dsp_pool(p, "owh_dsp_host_hooks");
    L.host_hooks = apr_hash_make(L.hookpool);
    L.respool = owh_dsp_pool(p, "owh_dsp_results");
    L.results = apr_array_make(L.respool, 64, sizeof(owh_result_t *));
    memset(&dparams, 0, sizeof(dparams));
    dparams.connect_timeout = sc->deliver_connect_timeout;
    dparams.timeout = sc->deliver_timeout;
    dparams.response_cap = sc->response_cap;
    dparams.max_per_host = sc->max_per_host;
    dparams.user_agent = OWH_USER_AGENT;
    dparams.guard = sc->allow_networks;     /* NULL: nothing private allowed */
    if ((rv = owh_deliver_create(&L.deliver, &dparams, p)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, OWHLOGNO(00511) "dispatcher: cannot create its HTTP client");
        return OWH_DISPATCHER_STARTUP_ERROR;
    }

    {
        /* what it runs as, and that it will follow httpd out (read back:
         * the signal must have survived the privilege drop) */
        int deathsig = 0;
        prctl(PR_GET_PDEATHSIG, &deathsig);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OWHLOGNO(00507)
                     "dispatcher %s started (uid %ld, parent-death signal %d)", L.owner, (long)getuid(),
                     deathsig);
    }
    dispatch_loop(&L);
    if (!cannot_start) {        /* else it claimed nothing: nothing to hand back */
        owh_ops_stop(&L);
        hand_back(&L);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OWHLOGNO(00508)
                 "dispatcher %s stopped", L.owner);
    apr_pool_destroy(p);
    curl_global_cleanup();
    return cannot_start ? OWH_DISPATCHER_STARTUP_ERROR : 0;
}
