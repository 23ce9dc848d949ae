/* owh_store.c — PostgreSQL connections: the per-process pool, queries whose
 * results are cleared with their pool (plain, prepared once per connection,
 * or row by row), transactions. The schema's migrations are
 * owh_store_migrate.c's, the token cache owh_store_tokens.c's. */
#include <apr_strings.h>
#include <apr_reslist.h>
#include <apr_thread_mutex.h>
#include <apr_hash.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "owh_store.h"
#include "owh_log.h"
#include "owh_store_int.h"
#include "owh_listcache.h"

static void store_log(owh_store_t *st, int is_error, apr_status_t rv, const char *msg)
{
    if (st && st->params.log) st->params.log(st->params.log_baton, is_error, rv, msg);
}

/* Server error text without the trailing newline libpq adds. */
static const char *pg_text(const char *s, apr_pool_t *p)
{
    apr_size_t n = s ? strlen(s) : 0;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) --n;
    return n ? apr_pstrndup(p, s, n) : "unknown error";
}

static apr_status_t pg_open(PGconn **ppg, const char *conninfo, int connect_timeout,
                            const char **perr, apr_pool_t *p)
{
    /* Later keywords win, so the operator's conninfo (expanded from "dbname")
     * can override our defaults. */
    const char *keys[] = { "connect_timeout", "application_name", "client_encoding", "dbname", NULL };
    const char *vals[] = { apr_itoa(p, connect_timeout), "mod_octo_webhooks", "UTF8",
                           conninfo ? conninfo : "", NULL };
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg) { *perr = "out of memory"; return APR_ENOMEM; }
    if (PQstatus(pg) != CONNECTION_OK) {
        *perr = pg_text(PQerrorMessage(pg), p);
        PQfinish(pg);
        return OWH_STORE_EUNAVAIL;
    }
    *ppg = pg;
    return APR_SUCCESS;
}

static apr_status_t db_close(void *data)
{
    owh_db_t *db = data;
    if (db->pg) { PQfinish(db->pg); db->pg = NULL; }
    return APR_SUCCESS;
}

/* ---- the pool ------------------------------------------------------------ */
static apr_status_t db_construct(void **resource, void *params, apr_pool_t *rpool)
{
    owh_store_t *st = params;
    apr_pool_t *p;
    owh_db_t *db;
    const char *err = NULL;
    apr_status_t rv;

    if ((rv = apr_pool_create(&p, rpool)) != APR_SUCCESS) return rv;
    apr_pool_tag(p, "owh_store_conn");
    db = apr_pcalloc(p, sizeof(*db));
    db->store = st;
    db->pool = p;
    if ((rv = pg_open(&db->pg, st->params.conninfo, st->params.connect_timeout, &err, p))
        != APR_SUCCESS) {
        store_log(st, 1, rv, apr_psprintf(p, "cannot connect to PostgreSQL: %s", err));
        goto leave;
    }
    /* The pool owns db; db's memory lives in p, destroyed with the resource. */
    apr_pool_cleanup_register(p, db, db_close, apr_pool_cleanup_null);
    if (!st->migrated) {
        rv = st->params.check_only ? owh_store_schema_check(db, p) : owh_store_migrate(db, p);
        if (rv != APR_SUCCESS) {
            store_log(st, 1, rv, apr_psprintf(p, "schema %s: %s",
                                              st->params.check_only ? "check failed" : "migration failed",
                                              db->errmsg ? db->errmsg : "unknown error"));
            goto leave;
        }
        st->migrated = 1;
    }
    *resource = db;
leave:
    if (rv != APR_SUCCESS) apr_pool_destroy(p);
    return rv;
}

static apr_status_t db_destruct(void *resource, void *params, apr_pool_t *rpool)
{
    owh_db_t *db = resource;
    owh_store_t *st = params;
    apr_pool_destroy(db->pool);         /* its cleanup closes the connection */
#ifdef __GLIBC__
    /* A connection's memory (libpq's buffers, its results' blocks) was taken
     * from the malloc arena of whichever worker thread opened it, and its
     * successor is opened by another: freed there, the pages would stay in
     * the child's RSS, a little more with every connection the TTL closes
     * (bench/README.md, "Children over a million requests"). Give them back
     * to the system; connections close rarely (PoolTTL), not per request. */
    if (!st->closing) malloc_trim(0);
#endif
    return APR_SUCCESS;
}

/* Each connection's pool is a subpool of the reslist's pool, and the
 * reslist's own cleanup (which calls db_destruct on every idle connection)
 * is an ordinary cleanup of that pool. apr_pool_destroy destroys subpools
 * before it runs cleanups, so on child exit the connections' pools would be
 * gone (db freed with them) when db_destruct destroyed them again. As
 * mod_dbd does, a pre-cleanup (run before any subpool goes) destroys the
 * reslist first, while every connection still exists. */
static apr_status_t store_teardown(void *data)
{
    owh_store_t *st = data;
    st->closing = 1;
    if (st->reslist) {
        apr_reslist_destroy(st->reslist);
        st->reslist = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t owh_store_create(owh_store_t **pstore, const owh_store_params_t *params, apr_pool_t *p)
{
    owh_store_t *st = apr_pcalloc(p, sizeof(*st));
    apr_status_t rv;
    st->pool = p;
    st->params = *params;
    if ((rv = apr_thread_mutex_create(&st->tokens_lock, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS
        || (rv = apr_pool_create(&st->tokens_pool, p)) != APR_SUCCESS)
        return rv;
    apr_pool_tag(st->tokens_pool, "owh_store_tokens");
    st->tokens = apr_hash_make(st->tokens_pool);
    rv = apr_reslist_create(&st->reslist, 0, params->keep, params->max, params->ttl,
                            db_construct, db_destruct, st, p);
    if (rv != APR_SUCCESS) return rv;
    apr_pool_pre_cleanup_register(p, st, store_teardown);
    apr_reslist_timeout_set(st->reslist, params->wait);
    /* Connections are checked out LIFO-fresh; a broken one is invalidated on release. */
    *pstore = st;
    return APR_SUCCESS;
}

static apr_status_t db_release(void *data)
{
    owh_db_t *db = data;
    /* Released after the store's teardown: its pool goes with the reslist's. */
    if (!db->store->reslist) return APR_SUCCESS;
    if (db->in_tx && !db->begin_pending && db->pg && !db->broken) {
        /* A request that ended inside a transaction must not leak it to the next. */
        PGresult *res = PQexec(db->pg, "ROLLBACK");
        if (res) PQclear(res);
        db->in_tx = 0;
    }
    if (db->broken || !db->pg || PQstatus(db->pg) != CONNECTION_OK)
        apr_reslist_invalidate(db->store->reslist, db);
    else
        apr_reslist_release(db->store->reslist, db);
    return APR_SUCCESS;
}

apr_status_t owh_store_acquire(owh_db_t **pdb, owh_store_t *st, apr_pool_t *owner)
{
    void *res = NULL;
    owh_db_t *db;
    int waits = st->reslist && (int)apr_reslist_acquired_count(st->reslist) >= st->params.max;
    apr_status_t rv = st->reslist ? apr_reslist_acquire(st->reslist, &res) : APR_EINVAL;
    if (st->params.acquired) st->params.acquired(waits, APR_STATUS_IS_TIMEUP(rv));
    if (rv != APR_SUCCESS) {
        /* constructor failures (database down) and waits that timed out */
        return OWH_STORE_EUNAVAIL;
    }
    db = res;
    db->sqlstate = db->errmsg = NULL;
    db->in_tx = db->begin_pending = 0;
    db->broken = 0;
    db->used = 0;
    db->bumps_lists = 0;
    apr_pool_cleanup_register(owner, db, db_release, apr_pool_cleanup_null);
    *pdb = db;
    return APR_SUCCESS;
}

apr_status_t owh_store_connect(owh_db_t **pdb, const char *conninfo, int connect_timeout, apr_pool_t *p)
{
    return owh_store_connect_schema(pdb, conninfo, connect_timeout, OWH_SCHEMA_MIGRATE, p);
}

apr_status_t owh_store_connect_schema(owh_db_t **pdb, const char *conninfo, int connect_timeout,
                                      owh_schema_mode_e mode, apr_pool_t *p)
{
    owh_db_t *db = apr_pcalloc(p, sizeof(*db));
    const char *err = NULL;
    apr_status_t rv;
    db->pool = p;
    rv = pg_open(&db->pg, conninfo, connect_timeout, &err, p);
    if (rv != APR_SUCCESS) {
        db->errmsg = err;
        db->broken = 1;
        *pdb = db;
        return rv;
    }
    apr_pool_cleanup_register(p, db, db_close, apr_pool_cleanup_null);
    *pdb = db;
    switch (mode) {
    case OWH_SCHEMA_MIGRATE: return owh_store_migrate(db, p);
    case OWH_SCHEMA_CHECK:   return owh_store_schema_check(db, p);
    default:                 return APR_SUCCESS;
    }
}

/* ---- queries ------------------------------------------------------------- */
static apr_status_t res_clear(void *data)
{
    PQclear((PGresult *)data);
    return APR_SUCCESS;
}

void owh_store_clear(PGresult *res, apr_pool_t *p)
{
    if (res) apr_pool_cleanup_run(p, res, res_clear);
}

/* A statement prepared on this session. */
typedef struct prepared_t {
    int epoch;                      /* the session's epoch it was prepared in */
    char name[16];
} prepared_t;

/* The name sql is prepared under on this session, preparing it first when
 * the session has not (one round trip, the first time only). NULL when the
 * prepare failed: *pres then holds its result (NULL if none), for the
 * caller's error path. */
static const char *statement_name(owh_db_t *db, const char *sql, int nparams, PGresult **pres)
{
    prepared_t *st;
    PGresult *res;
    *pres = NULL;
    if (!db->prepared) db->prepared = apr_hash_make(db->pool);
    st = apr_hash_get(db->prepared, sql, APR_HASH_KEY_STRING);
    if (st && st->epoch == db->epoch) return st->name;
    if (!st) {
        st = apr_pcalloc(db->pool, sizeof(*st));
        apr_hash_set(db->prepared, apr_pstrdup(db->pool, sql), APR_HASH_KEY_STRING, st);
    }
    /* a fresh name each time: an old one may still exist on the server */
    apr_snprintf(st->name, sizeof(st->name), "owh_%d", ++db->prepared_made);
    st->epoch = db->epoch - 1;
    res = PQprepare(db->pg, st->name, sql, nparams, NULL);
    if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        st->epoch = db->epoch;
        return st->name;
    }
    *pres = res;
    return NULL;
}

/* The server lost a prepared statement, or its cached plan went stale
 * (another host migrated the schema): prepare it again. */
static int prepared_stale(const owh_db_t *db)
{
    return db->sqlstate && (!strcmp(db->sqlstate, "26000") || !strcmp(db->sqlstate, "0A000"));
}

static void forget_statement(owh_db_t *db, const char *sql)
{
    prepared_t *st = db->prepared ? apr_hash_get(db->prepared, sql, APR_HASH_KEY_STRING) : NULL;
    if (st) st->epoch = db->epoch - 1;
}

/* Reads a single-row-mode result to its end: rows to fn (until it fails),
 * then the final result (TUPLES_OK or the error), returned. */
static PGresult *rows_collect(owh_db_t *db, owh_store_row_fn *fn, void *baton, int *pdelivered,
                              apr_status_t *pfn_rv)
{
    PGresult *r, *last = NULL;
    while ((r = PQgetResult(db->pg)) != NULL) {
        if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
            ++*pdelivered;
            if (*pfn_rv == APR_SUCCESS) *pfn_rv = fn(baton, r);
            PQclear(r);
            continue;
        }
        if (last) PQclear(last);
        last = r;
    }
    return last;
}

/* BEGIN and the transaction's first statement in one round trip (libpq's
 * pipeline mode). The statement's result, or BEGIN's if BEGIN failed; NULL
 * when nothing came back (the connection is then lost). */
static PGresult *exec_after_begin(owh_db_t *db, const char *name, const char *sql, int nparams,
                                  const char *const *params)
{
    PGresult *r, *res = NULL;
    int results = 0, nulls = 0;
    if (!PQenterPipelineMode(db->pg)) return NULL;
    if (PQsendQueryParams(db->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)
        && (name ? PQsendQueryPrepared(db->pg, name, nparams, params, NULL, NULL, 0)
                 : PQsendQueryParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0))
        && PQpipelineSync(db->pg)) {
        /* BEGIN's result, NULL, the statement's, NULL, then the sync; two
         * NULLs in a row: nothing more will come */
        while (nulls < 2) {
            if (!(r = PQgetResult(db->pg))) { ++nulls; continue; }
            nulls = 0;
            if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) { PQclear(r); break; }
            if (results++ == 0 && PQresultStatus(r) == PGRES_COMMAND_OK) { PQclear(r); continue; }
            if (!res) res = r;          /* BEGIN's failure, or the statement's result */
            else PQclear(r);
        }
    }
    PQexitPipelineMode(db->pg);
    return res;
}

/* Every statement of the module: PQexecParams, or a prepared statement
 * (prepare), or a prepared statement whose rows go to fn one at a time. */
static apr_status_t run_query(PGresult **pres, owh_db_t *db, apr_pool_t *p, const char *sql,
                              int nparams, const char *const *params, int prepare,
                              owh_store_row_fn *fn, void *baton)
{
    PGresult *res;
    const char *name = NULL;
    int retried = 0, delivered = 0, begin = db->begin_pending && !fn;
    apr_status_t fn_rv = APR_SUCCESS;

    db->sqlstate = db->errmsg = NULL;
    if (pres) *pres = NULL;
    if (!db->pg || db->broken) return OWH_STORE_EUNAVAIL;
again:
    res = NULL;
    if (prepare && !(name = statement_name(db, sql, nparams, &res)))
        ;                                           /* res: the prepare's failure */
    else if (fn) {
        if (db->begin_pending) {            /* rows are not pipelined: BEGIN on its own */
            PGresult *b = PQexec(db->pg, "BEGIN");
            if (b && PQresultStatus(b) == PGRES_COMMAND_OK) db->begin_pending = 0;
            if (b) PQclear(b);
        }
        if (db->begin_pending) ;            /* BEGIN failed: the connection's state says why */
        else if (name ? PQsendQueryPrepared(db->pg, name, nparams, params, NULL, NULL, 0)
                 : PQsendQueryParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0)) {
            PQsetSingleRowMode(db->pg);
            res = rows_collect(db, fn, baton, &delivered, &fn_rv);
        }
    }
    else if (begin) res = exec_after_begin(db, name, sql, nparams, params);
    else if (name) res = PQexecPrepared(db->pg, name, nparams, params, NULL, NULL, 0);
    else res = PQexecParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (db->bumps_lists) owh_listcache_bump();  /* committed (or a later statement bumps again) */
    if (PQstatus(db->pg) != CONNECTION_OK) {
        /* The server went away (restart, failover, idle kill). Outside a
         * transaction nothing was half done on this session: reconnect once
         * (a new session: its statements are prepared again). */
        /* (a transaction whose BEGIN went with this statement committed nothing) */
        int retry = (!db->in_tx || begin) && !db->used && !retried && !delivered;
        db->errmsg = pg_text(PQerrorMessage(db->pg), p);
        owh_log_perror(OWH_LOG_MARK, OWH_LOG_DEBUG, 0, p, OWHLOGNO(00611) "connection lost: %s%s", db->errmsg,
                       retry ? " (reconnecting once)" : "");
        if (res) PQclear(res);
        if (retry) {
            retried = 1;
            ++db->epoch;
            PQreset(db->pg);
            if (PQstatus(db->pg) == CONNECTION_OK) goto again;
        }
        db->broken = 1;
        return OWH_STORE_EUNAVAIL;
    }
    if (begin) db->begin_pending = 0;       /* BEGIN ran, whatever the statement did */
    switch (res ? PQresultStatus(res) : PGRES_FATAL_ERROR) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        db->used = 1;
        if (fn) { PQclear(res); return fn_rv; }
        apr_pool_cleanup_register(p, res, res_clear, apr_pool_cleanup_null);
        if (pres) *pres = res; else owh_store_clear(res, p);
        return APR_SUCCESS;
    default: {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        db->sqlstate = state ? apr_pstrdup(p, state) : "XX000";
        db->errmsg = pg_text(res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                 : PQerrorMessage(db->pg), p);
        owh_log_perror(OWH_LOG_MARK, OWH_LOG_DEBUG, 0, p, OWHLOGNO(00610) "statement failed (SQLSTATE %s): %s",
                       db->sqlstate, db->errmsg);
        if (res) PQclear(res);
        if (prepare && prepared_stale(db)) {
            forget_statement(db, sql);
            /* nothing ran: outside a transaction, or in one that only began
             * with this statement (rolled back and begun again), run it again */
            if ((!db->in_tx || begin) && !retried && !delivered) {
                if (begin) {
                    PGresult *rb = PQexec(db->pg, "ROLLBACK");
                    if (rb) PQclear(rb);
                    db->begin_pending = 1;
                }
                retried = 1;
                db->sqlstate = db->errmsg = NULL;
                goto again;
            }
        }
        return fn_rv != APR_SUCCESS ? fn_rv : APR_EGENERAL;
    }
    }
}

apr_status_t owh_store_query(PGresult **pres, owh_db_t *db, apr_pool_t *p, const char *sql,
                             int nparams, const char *const *params)
{
    return run_query(pres, db, p, sql, nparams, params, 0, NULL, NULL);
}

apr_status_t owh_store_query_prepared(PGresult **pres, owh_db_t *db, apr_pool_t *p, const char *sql,
                                      int nparams, const char *const *params)
{
    return run_query(pres, db, p, sql, nparams, params, 1, NULL, NULL);
}

apr_status_t owh_store_query_rows(owh_db_t *db, apr_pool_t *p, const char *sql, int nparams,
                                  const char *const *params, owh_store_row_fn *fn, void *baton)
{
    return run_query(NULL, db, p, sql, nparams, params, 1, fn, baton);
}

const char *owh_store_value(const PGresult *res, int row, const char *column)
{
    int col = PQfnumber(res, column);
    if (col < 0 || row >= PQntuples(res) || PQgetisnull(res, row, col)) return NULL;
    return PQgetvalue(res, row, col);
}

int owh_store_usable(const owh_db_t *db)
{
    return db->pg && !db->broken && PQstatus(db->pg) == CONNECTION_OK;
}

int owh_store_socket(const owh_db_t *db)
{
    return db->pg ? PQsocket(db->pg) : -1;
}

apr_status_t owh_store_tx(owh_db_t *db, owh_store_tx_fn *fn, void *baton, apr_pool_t *p)
{
    apr_status_t rv;
    if ((rv = owh_store_begin(db, p)) != APR_SUCCESS) return rv;
    if ((rv = fn(db, baton, p)) == APR_SUCCESS && (rv = owh_store_commit(db, p)) == APR_SUCCESS)
        return APR_SUCCESS;
    {
        /* keep the failure's own message, not the rollback's */
        const char *state = db->sqlstate, *msg = db->errmsg;
        owh_store_rollback(db, p);
        db->sqlstate = state;
        db->errmsg = msg;
    }
    return rv;
}

int owh_store_failed_on_input(const owh_db_t *db)
{
    return db && db->sqlstate && !strncmp(db->sqlstate, "22", 2);
}

apr_status_t owh_store_begin(owh_db_t *db, apr_pool_t *p)
{
    apr_status_t rv;
    if (db->store && owh_store_usable(db)) {
        /* a request's transaction: BEGIN rides with its first statement */
        db->begin_pending = 1;
        db->in_tx = 1;
        return APR_SUCCESS;
    }
    if ((rv = owh_store_query(NULL, db, p, "BEGIN", 0, NULL)) == APR_SUCCESS) db->in_tx = 1;
    return rv;
}

apr_status_t owh_store_commit(owh_db_t *db, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    if (!db->begin_pending) rv = owh_store_query(NULL, db, p, "COMMIT", 0, NULL);
    db->in_tx = db->begin_pending = 0;
    return rv;
}

apr_status_t owh_store_rollback(owh_db_t *db, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    if (db->in_tx && !db->begin_pending) rv = owh_store_query(NULL, db, p, "ROLLBACK", 0, NULL);
    db->in_tx = db->begin_pending = 0;
    return rv;
}

const char *owh_store_interval(apr_interval_time_t t, apr_pool_t *p)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT " milliseconds", (apr_int64_t)(t / 1000));
}
