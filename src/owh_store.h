/* owh_store.h — owns PostgreSQL access: the per-process connection pool
 * (apr_reslist), parametrized queries whose results are cleared by pool
 * cleanups, transactions, and the schema migrations. APR + libpq only.
 * All SQL text of the module lives in owh_store*.c, owh_queue.c and sql/
 * (operations: owh_store_ops.h). */
#ifndef OWH_STORE_H
#define OWH_STORE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <libpq-fe.h>

#include "owh_webhook.h"

/* The database could not be reached (connection failed or broke): 503. */
#define OWH_STORE_EUNAVAIL  (APR_OS_START_USERERR + 401)
/* The schema is not one this module may use or change (newer than the module,
 * an applied migration changed, or older with OctoWebhooksMigrate Off):
 * db->errmsg says why and what to do. httpd refuses to start on it. */
#define OWH_STORE_ESCHEMA   (APR_OS_START_USERERR + 402)

/* What opening a connection does about the schema. */
typedef enum {
    OWH_SCHEMA_MIGRATE = 0,     /* apply what is pending (the owner role; OctoWebhooksMigrate On) */
    OWH_SCHEMA_CHECK,           /* only check it is the module's (OctoWebhooksMigrate Off) */
    OWH_SCHEMA_LEAVE            /* nothing (the CLI's migrate command does it itself) */
} owh_schema_mode_e;

typedef struct owh_store_t owh_store_t;

/* One pooled or standalone connection. */
typedef struct owh_db_t {
    PGconn *pg;
    owh_store_t *store;     /* NULL for a standalone connection */
    int broken;             /* invalidated instead of released */
    int in_tx;              /* inside BEGIN: no silent reconnect */
    int begin_pending;      /* a pooled connection's BEGIN, not sent yet: it goes with the
                             * transaction's first statement, in one round trip */
    int used;               /* a statement succeeded since it was acquired */
    int bumps_lists;        /* a write request's: each statement's end bumps the host's
                             * list generation (owh_listcache.h), after its commit */
    apr_pool_t *pool;       /* the connection's own memory */
    const char *sqlstate;   /* of the last failed statement, or NULL */
    const char *errmsg;     /* of the last failure (server text; no parameters) */
    /* Statements prepared on this session (owh_store_query_prepared), by
     * their SQL text; an entry whose epoch is not the session's was prepared
     * on a session since reset and is prepared again. Lives in pool. */
    struct apr_hash_t *prepared;
    int epoch;
    int prepared_made;      /* statement names handed out (owh_1, owh_2, ...) */
} owh_db_t;

typedef void owh_store_log_fn(void *baton, int is_error, apr_status_t rv, const char *msg);

typedef struct owh_store_params_t {
    const char *conninfo;
    int connect_timeout;            /* seconds */
    int keep, max;
    apr_interval_time_t ttl, wait;
    int check_only;                 /* OctoWebhooksMigrate Off: check the schema, never change it */
    owh_store_log_fn *log;          /* optional; glue passes ap_log_error */
    void *log_baton;
    /* optional: told of every acquire, whether it found the pool exhausted
     * and whether it then timed out (the API's pool waits in /metrics) */
    void (*acquired)(int waited, int timed_out);
} owh_store_params_t;

apr_status_t owh_store_create(owh_store_t **pstore, const owh_store_params_t *params, apr_pool_t *p);

/* Takes a pooled connection for the lifetime of owner: it goes back to the
 * pool (or is closed, if it broke) when owner is cleared. */
apr_status_t owh_store_acquire(owh_db_t **pdb, owh_store_t *store, apr_pool_t *owner);

/* A connection outside any pool (the dispatcher, startup migrations), closed
 * when p is cleared. Runs the migrations (owh_store_migrate). */
apr_status_t owh_store_connect(owh_db_t **pdb, const char *conninfo, int connect_timeout,
                               apr_pool_t *p);
/* The same, doing what mode says about the schema. */
apr_status_t owh_store_connect_schema(owh_db_t **pdb, const char *conninfo, int connect_timeout,
                                      owh_schema_mode_e mode, apr_pool_t *p);

/* PQexecParams with text parameters. The PGresult is cleared when p is.
 * Tuples or command OK -> APR_SUCCESS; SQL error -> APR_EGENERAL (db->sqlstate
 * set); connection lost -> OWH_STORE_EUNAVAIL. Outside a transaction a lost
 * connection is reset and the statement retried once, so a PostgreSQL restart
 * costs no request: only for the first statement after acquire, so a
 * statement that may have run is never sent twice. */
apr_status_t owh_store_query(PGresult **pres, owh_db_t *db, apr_pool_t *p, const char *sql,
                             int nparams, const char *const *params);

/* The same, as a statement prepared once per connection (PQprepare the
 * first time this session sees sql, PQexecPrepared after): parse and plan
 * once, not per request. A reconnect forgets the session's statements, and
 * a statement the server no longer knows (26000) or whose cached plan went
 * stale under a schema change (0A000) is prepared again, once. sql must be
 * a constant text: it keys the connection's statements. */
apr_status_t owh_store_query_prepared(PGresult **pres, owh_db_t *db, apr_pool_t *p, const char *sql,
                                      int nparams, const char *const *params);

/* Runs a prepared statement and hands its rows to fn one by one as they
 * arrive (libpq's single-row mode): the whole result is never held. row is
 * a one-row result, cleared when fn returns. A status other than
 * APR_SUCCESS from fn stops the calls (the rest of the result is read and
 * dropped) and is returned. Errors as owh_store_query; a lost connection is
 * retried only before any row was handed over. */
typedef apr_status_t owh_store_row_fn(void *baton, const PGresult *row);
apr_status_t owh_store_query_rows(owh_db_t *db, apr_pool_t *p, const char *sql, int nparams,
                                  const char *const *params, owh_store_row_fn *fn, void *baton);

/* An apr interval as a PostgreSQL interval parameter ("1500 milliseconds"). */
const char *owh_store_interval(apr_interval_time_t t, apr_pool_t *p);

/* Clears a result now (before its pool). */
void owh_store_clear(PGresult *res, apr_pool_t *p);

/* The value of the named column in a row, or NULL (SQL NULL, or no such
 * column: results are read by name, never by position). */
const char *owh_store_value(const PGresult *res, int row, const char *column);

/* Whether the connection can still be used (not broken, libpq says OK). */
int owh_store_usable(const owh_db_t *db);
/* The connection's socket, to wait on beside other work (-1: none). */
int owh_store_socket(const owh_db_t *db);

/* Runs fn(db, baton, p) in one transaction: BEGIN, then COMMIT if fn
 * returned APR_SUCCESS, else ROLLBACK and fn's status (as mod_md's
 * md_util_pool_do: the one place transactions are opened and closed). */
typedef apr_status_t owh_store_tx_fn(owh_db_t *db, void *baton, apr_pool_t *p);
apr_status_t owh_store_tx(owh_db_t *db, owh_store_tx_fn *fn, void *baton, apr_pool_t *p);

/* The last statement failed on the caller's input (a data exception such as
 * February 31st, SQLSTATE class 22), not on the database or the module. */
int owh_store_failed_on_input(const owh_db_t *db);

apr_status_t owh_store_begin(owh_db_t *db, apr_pool_t *p);
apr_status_t owh_store_commit(owh_db_t *db, apr_pool_t *p);
apr_status_t owh_store_rollback(owh_db_t *db, apr_pool_t *p);

/* ---- the schema (owh_store_migrate.c) ----------------------------------- */
/* Brings the schema to the module's under an advisory lock (safe with many
 * hosts starting at once): pending sql/ migrations, then the sql/functions/
 * whose text changed, then drops functions no longer shipped. Cheap when the
 * schema is current. OWH_STORE_ESCHEMA for a schema newer than the module or
 * an applied migration whose text changed. Needs the owner role. */
apr_status_t owh_store_migrate(owh_db_t *db, apr_pool_t *p);

/* OctoWebhooksMigrate Off: APR_SUCCESS if the schema is exactly the module's,
 * else OWH_STORE_ESCHEMA naming the command to run. Changes nothing. */
apr_status_t owh_store_schema_check(owh_db_t *db, apr_pool_t *p);

/* `octo-webhooks migrate [--status|--dry-run]`: *preport gets human-readable
 * lines (each migration applied/pending with its checksum state, each
 * function to create/change/drop). apply: migrate (as owh_store_migrate);
 * dry_run: show what would be done, change nothing. OWH_STORE_ESCHEMA as
 * owh_store_migrate, with the reason in the report too. */
apr_status_t owh_store_migrate_status(owh_db_t *db, int apply, int dry_run, const char **preport,
                                      apr_pool_t *p);

/* Latest migration version compiled in. */
int owh_store_schema_version(void);

/* ---- auth ---------------------------------------------------------------- */
/* Looks up a token by its SHA-256 (hex). APR_SUCCESS with *pconnection and
 * *pabilities (text[] literal) set, APR_NOTFOUND if unknown or revoked. */
apr_status_t owh_store_token_lookup(owh_db_t *db, const char *hash_hex, const char **pconnection,
                                    apr_array_header_t **pabilities, apr_pool_t *p);

/* ---- webhooks (owh_store_webhooks.c) ------------------------------------- */
/* Inserts wh for the connection (creating the connection row for r->user
 * mode) in one statement, its own transaction; sets wh->id. APR_ENOSPC when the
 * connection already has max_webhooks (both dialects; 0: no bound, no count). */
apr_status_t owh_store_webhook_insert(owh_db_t *db, const char *connection, owh_webhook_t *wh,
                                      int max_webhooks, apr_pool_t *p);
/* The connection's webhooks in creation order, handed to fn one by one as
 * PostgreSQL sends them (never the whole list in memory): wh and what fn
 * allocates in rowpool live until the next row. wh is read to be shown
 * (headers_text). A status other than APR_SUCCESS from fn stops the list. */
typedef apr_status_t owh_store_webhook_fn(void *baton, const owh_webhook_t *wh, apr_pool_t *rowpool);
apr_status_t owh_store_webhook_each(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                    owh_store_webhook_fn *fn, void *baton, apr_pool_t *p);
/* One webhook of the connection (read to be shown), APR_NOTFOUND if absent
 * (or another's). */
apr_status_t owh_store_webhook_get(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                   const char *id, owh_webhook_t **pwh, apr_pool_t *p);
/* A PATCH body: wh is the body applied over a blank object of the dialect;
 * the flags say which fields the body set (the others keep their stored
 * values). */
typedef struct owh_webhook_patch_t {
    const owh_webhook_t *wh;
    int event;                      /* event, or a subscription's notificationTypes */
    int url, active, retry_on_error, use_contact_language, headers;
    int capabilities;               /* octo webhooks: always (Octo-Capabilities) */
} owh_webhook_patch_t;
/* Applies patch to the connection's webhook id in one statement, its own
 * transaction (sql/functions/update_webhook.sql); *pwh: the stored object
 * after (read to be shown). patch's URL must have passed the SSRF check.
 * APR_NOTFOUND if absent (or another's). APR_EAGAIN, nothing changed, when
 * the body left the URL alone and the stored one may be an IP literal other
 * than checked_url: (*pwh)->url is to be checked, then passed as checked_url. */
apr_status_t owh_store_webhook_patch(owh_db_t *db, const char *connection, const char *id,
                                     const owh_webhook_patch_t *patch, const char *checked_url,
                                     owh_webhook_t **pwh, apr_pool_t *p);
apr_status_t owh_store_webhook_delete(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                      const char *id,
                                      owh_webhook_t **pwh, apr_pool_t *p);
/* Deletes the connection's webhooks whose URL or display URL equals url
 * (read to be shown). */
apr_status_t owh_store_webhook_delete_by_url(owh_db_t *db, const char *connection, const char *url,
                                             apr_array_header_t **plist, apr_pool_t *p);


/* Inside a transaction, before queueing count test notifications to the
 * webhook: *pretry_after 0 when the webhook's last minute leaves room under
 * per_minute (0: no bound), else the seconds to wait. APR_NOTFOUND if the
 * webhook is not the connection's. */
apr_status_t owh_store_webhook_trigger_admit(owh_db_t *db, const char *connection, const char *id,
                                             int count, int per_minute, int *pretry_after, apr_pool_t *p);

/* Queues one delivery of object to one of the connection's webhooks (the
 * trigger route); APR_NOTFOUND if the webhook is not the connection's. */
apr_status_t owh_store_webhook_trigger(owh_db_t *db, const char *connection, const char *id,
                                       const char *object_json, const char **pevent_id,
                                       const char **pdelivery_id, apr_pool_t *p);

/* ---- deliveries and secrets (owh_store_deliveries.c) --------------------- */
/* Sets the webhook's signing secret; the one it replaces keeps signing for
 * grace (*pprevious_until, ISO 8601, NULL if there was none). */
apr_status_t owh_store_webhook_set_secret(owh_db_t *db, const char *connection, const char *id,
                                          const char *secret, apr_interval_time_t grace,
                                          const char **pprevious_until, apr_pool_t *p);
/* {"deliveries": [...], "nextCursor": id|null}, newest first. status may be
 * NULL (all), cursor NULL (first page). APR_NOTFOUND: no such webhook of the
 * connection; APR_EINVAL: the cursor is not one of its deliveries. */
apr_status_t owh_store_deliveries_list(owh_db_t *db, const char *connection, const char *webhook_id,
                                       const char *status, const char *cursor, int limit,
                                       const char **pjson, apr_pool_t *p);
/* Makes one delivery due now; its JSON in *pjson. APR_EBUSY while an attempt
 * is in flight. */
apr_status_t owh_store_delivery_retry(owh_db_t *db, const char *connection, const char *webhook_id,
                                      const char *delivery_id, const char **pjson, apr_pool_t *p);
/* Requeues the webhook's failed deliveries created since (timestamptz text). */
apr_status_t owh_store_webhook_recover(owh_db_t *db, const char *connection, const char *webhook_id,
                                       const char *since, int *pcount, apr_pool_t *p);

/* ---- operators (owh_store_admin.c, the octo-webhooks CLI) ---------------- */
typedef enum {
    OWH_ADMIN_TOKEN_CREATE,         /* connection, abilities text[] literal, label -> token */
    OWH_ADMIN_TOKEN_REVOKE,         /* token -> id (no row: unknown or revoked) */
    OWH_ADMIN_TOKEN_REVOKE_ID,      /* id -> id */
    OWH_ADMIN_TOKEN_LIST,           /* connection or NULL */
    OWH_ADMIN_STATUS_QUEUE,
    OWH_ADMIN_STATUS_DISPATCHERS,
    OWH_ADMIN_STATUS_DISABLED,
    OWH_ADMIN_OBJECT_DELIVERIES,    /* event type, object key, connection or NULL, limit */
    OWH_ADMIN_ATTEMPTS,             /* delivery ids as a text[] literal */
    OWH_ADMIN_REPLAY,               /* type, key, webhook, since, until, dry run -> matched, replayable, requeued */
    OWH_ADMIN_SCHEMA_EXISTS,        /* -> t/f */
    OWH_ADMIN_SCHEMA_VERSION,       /* -> the highest applied migration */
    OWH_ADMIN_COUNT
} owh_admin_e;

/* An operator statement's answer as plain strings in a pool: the column
 * names, and the cells row by row ("" for SQL NULL). */
typedef struct owh_admin_table_t {
    int ncols, nrows;
    const char **names;
    const char **cells;             /* nrows * ncols, row-major */
} owh_admin_table_t;

/* Runs one named operator statement (params as listed above; NULL is SQL NULL). */
apr_status_t owh_store_admin(owh_admin_table_t **ptab, owh_db_t *db, owh_admin_e which,
                             const char *const *params, apr_pool_t *p);
/* A cell by column name ("" when there is no such column or row). */
const char *owh_admin_cell(const owh_admin_table_t *t, int row, const char *column);

/* Names the session in pg_stat_activity (dispatchers: "octo-webhooks dispatcher host:pid"). */
apr_status_t owh_store_set_application_name(owh_db_t *db, const char *name, apr_pool_t *p);

#endif
