/* owh_queue.h — owns the delivery queue in PostgreSQL: claiming due
 * deliveries under a lease (FOR UPDATE SKIP LOCKED, so any number of
 * dispatchers on one database share the work without duplicates), recording
 * attempts and outcomes in one round trip per batch, and releasing claims. */
#ifndef OWH_QUEUE_H
#define OWH_QUEUE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "owh_store.h"
#include "owh_outcome.h"

typedef struct owh_job_t {
    const char *delivery_id;
    const char *claim_id;        /* the lease; outcomes of an older lease are ignored */
    int attempts;                /* attempts made before this claim */
    const char *webhook_json;    /* snapshot of the webhook at event time */
    const char *event_type;      /* canonical */
    const char *object_key;
    const char *object_json;
    const char *connection_id;
    const char *language;        /* or NULL */
    const char *supplier_json;   /* or NULL: the directives' supplier */
    const char *secret;          /* whsec_...: the webhook's signing secret, or NULL */
    const char *secret_previous; /* during a rotation, or NULL */
    const char *previous_json;   /* the object's state as last sent, or NULL */
    const char *event_id;
    const char *event_at;        /* ISO 8601 */
    int sample;                  /* a trigger route's sample object: never resolved */
    apr_time_t claimed_at;
} owh_job_t;

/* What bounds a claim besides its size. */
typedef struct owh_claim_params_t {
    int limit;                   /* deliveries in all */
    apr_interval_time_t lease;
    const char *owner;           /* host:pid */
    int per_webhook;             /* in flight per webhook, across dispatchers */
    int rate;                    /* claims per webhook per second; 0: no cap */
    const char *hosts;           /* JSON {"room": [n, ...], "hooks": {"<webhook id>": i, ...}}:
                                 * the webhooks of host i take at most room[i] in all
                                 * (what that host can start or queue here), or NULL */
} owh_claim_params_t;

/* When to claim again, as the claim saw it. */
typedef struct owh_claim_info_t {
    int held;                    /* a cap held due work back: look again soon */
    apr_interval_time_t next_in; /* until the next delivery falls due; -1: none waiting */
    int restless;                /* it did not fill its batch, yet may not wait for a
                                  * NOTIFY: 1, an emit() may not have seen it waiting
                                  * (look again soon); 2, events wait to be routed
                                  * (at once) */
} owh_claim_info_t;

/* Claims due heads of their object's line within the caps (octo_webhooks.claim);
 * appends owh_job_t to jobs and says when to look again. */
apr_status_t owh_queue_claim(owh_db_t *db, const owh_claim_params_t *cp, apr_array_header_t *jobs,
                             owh_claim_info_t *info, apr_pool_t *p);

/* Records the attempts and applies the outcomes (owh_result_t) in one round
 * trip (octo_webhooks.complete): 410 deactivation, auto-disable after
 * disable_after of failures only, unparking of each object's next delivery. */
apr_status_t owh_queue_complete(owh_db_t *db, const apr_array_header_t *results, const char *owner,
                                apr_interval_time_t disable_after, apr_pool_t *p);

/* Resolve mode: records the object fetched for a view of an event
 * (state_key: type/object|capabilities|language) and gives the state the
 * view had for the object's event before it (NULL: none), where its diff
 * starts (octo_webhooks.view_state). */
apr_status_t owh_queue_view_state(owh_db_t *db, const char *state_key, const char *event_id,
                                  const char *object_json, const char **pprevious, apr_pool_t *p);

/* A dispatcher that stops is no longer listed as waiting for emit()'s NOTIFY
 * (else emitters would notify for nobody until claim() drops the row). */
apr_status_t owh_queue_unlist(owh_db_t *db, const char *owner, apr_pool_t *p);

/* Gives claimed, unsent jobs (owh_job_t *) back, due after delay. */
apr_status_t owh_queue_release(owh_db_t *db, const apr_array_header_t *jobs,
                               apr_interval_time_t delay, apr_pool_t *p);


/* ---- one round trip: release, complete, claim, asynchronously -------------
 * The dispatcher keeps at most one cycle in flight on its connection, in
 * libpq's pipeline mode: claims handed back, outcomes recorded and the next
 * claim travel together and run in one implicit transaction (one commit),
 * while transfers go on. Outcomes arriving meanwhile ride the next cycle. */
typedef struct owh_queue_cycle_t owh_queue_cycle_t;

typedef struct owh_cycle_req_t {
    const apr_array_header_t *results;  /* owh_result_t *: outcomes to record, or NULL */
    const char *owner;
    apr_interval_time_t disable_after;
    const owh_claim_params_t *claim;    /* NULL: claim nothing */
    int unpark;                         /* release orphaned parked deliveries first
                                         * (octo_webhooks.unpark_orphans) */
} owh_cycle_req_t;

/* Sends a cycle; its memory (and the jobs it claims) live in p. */
apr_status_t owh_queue_cycle_send(owh_queue_cycle_t **pc, owh_db_t *db, const owh_cycle_req_t *rq,
                                  apr_pool_t *p);

/* Reads what has arrived (block: waits for all of it). *done once the round
 * trip is over: claimed owh_job_t * appended to jobs, info set. Not
 * APR_SUCCESS: a statement failed (db->errmsg; nothing of the cycle was
 * applied) or the connection broke (db->broken). */
apr_status_t owh_queue_cycle_read(owh_queue_cycle_t *c, int block, int *done, apr_array_header_t *jobs,
                                  owh_claim_info_t *info);

/* 1 if the round trip has input libpq already read (say while draining
 * notifications): reading it needs no wait on the socket, which will not
 * signal again for it. */
int owh_queue_cycle_buffered(owh_queue_cycle_t *c);

/* LISTENs on the queue's channel (emit(), complete() and recover() NOTIFY
 * it) and on octo_webhooks_lists (a webhook's shown state changed:
 * sql/functions/webhooks_changed.sql), then bumps this host's list
 * generation: what changed while nobody listened is not cached any more. */
apr_status_t owh_queue_listen(owh_db_t *db, apr_pool_t *p);

/* Reads what arrived on the connection (also what came with a statement's
 * result): *wake = 1 if the queue was notified; a webhook's change bumps
 * this host's list generation (owh_listcache.h). Not APR_SUCCESS: the
 * connection broke. */
apr_status_t owh_queue_notified(owh_db_t *db, int *wake);

#endif
