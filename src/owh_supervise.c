/* owh_supervise.c — the dispatcher processes from the httpd parent's side
 * (modelled on mod_cgid's daemon): forked at post_config (never on the
 * pre-config pass), registered as APR "other children" so a death is noticed
 * and the process respawned (with backoff when it keeps dying, and not at all
 * after a startup error), stopped by a pconf cleanup on stop and graceful
 * restart: SIGTERM to all, then SIGKILL after 3 s. */
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include "owh_dispatcher.h"
#include "owh_dispatch.h"
#include "owh_registry.h"
#include "owh_metrics.h"

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
    int slot;                   /* its owh_metrics slot, -1: none */
} dispatcher_t;

static apr_status_t spawn(dispatcher_t *dp);

/* The MPM's maintenance passes the child's exit code (ap_wait_or_timeout has
 * decoded it); APR's own refresh passes a raw wait status. */
static int startup_error(apr_wait_t status)
{
    return status == OWH_DISPATCHER_STARTUP_ERROR
        || (WIFEXITED(status) && WEXITSTATUS(status) == OWH_DISPATCHER_STARTUP_ERROR);
}

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
        owh_metrics_slot_ended(dp->slot, 0);
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS
            && mpm_state == AP_MPMQ_STOPPING)
            break;
        /* As mod_cgid's DAEMON_STARTUP_ERROR: a dispatcher that cannot start
         * at all (it logged why) would fail the same way again. */
        if (startup_error(status)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, dp->s, OWHLOGNO(00509)
                         "dispatcher failed to start (see the line before); not restarting it "
                         "until the next graceful restart");
            break;
        }
        dp->quick_deaths = apr_time_now() - dp->started < apr_time_from_sec(10)
                         ? dp->quick_deaths + 1 : 0;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, dp->s, OWHLOGNO(00501)
                     "dispatcher exited (status %d); restarting", status);
        owh_metrics_slot_ended(dp->slot, 1);
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
        owh_metrics_slot_free(dp->slot);
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
    owh_metrics_self = dp->slot;        /* the child's slot, inherited by the fork */
    rv = apr_proc_fork(proc, dp->pconf);
    if (rv == APR_INCHILD) {
        /* _exit: the parent's pool cleanups and atexit handlers are not ours to run */
        _exit(owh_dispatcher_run(dp->s, dp->sc, delay));
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, dp->s, OWHLOGNO(00502) "cannot fork the dispatcher");
        return rv;
    }
    dp->proc = proc;
    owh_metrics_slot_started(dp->slot, (apr_uint32_t)proc->pid);
    apr_proc_other_child_register(proc, maintenance, dp, NULL, dp->pconf);
    dp->registered = 1;
    return APR_SUCCESS;
}

apr_status_t owh_dispatcher_spawn_all(apr_pool_t *pconf, server_rec *s)
{
    const apr_array_header_t *dbs = owh_registry_entries();
    int k;
    for (k = 0; dbs && k < dbs->nelts; ++k) {
        owh_registry_entry_t *e = APR_ARRAY_IDX(dbs, k, owh_registry_entry_t *);
        dispatcher_group_t *g;
        int i;
        if (!e->sc->dispatcher) continue;
        /* several processes share the work like several hosts do: each
         * claims under its own lease and owner name */
        g = apr_pcalloc(pconf, sizeof(*g));
        g->n = e->sc->dispatchers;
        g->members = apr_pcalloc(pconf, g->n * sizeof(*g->members));
        apr_pool_cleanup_register(pconf, g, kill_dispatchers, apr_pool_cleanup_null);
        for (i = 0; i < g->n; ++i) {
            dispatcher_t *dp = g->members[i] = apr_pcalloc(pconf, sizeof(*dp));
            dp->s = e->s;
            dp->sc = e->sc;
            dp->pconf = pconf;
            dp->slot = owh_metrics_slot_take(e->s->server_hostname);
            spawn(dp);
        }
    }
    return APR_SUCCESS;
}
