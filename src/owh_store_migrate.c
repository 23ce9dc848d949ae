/* owh_store_migrate.c — owns the life of schema octo_webhooks:
 *   - migrations (sql/NNN_name.sql: tables, indexes, data), applied once each
 *     in order and frozen: the SHA-256 of each file is stored when applied and
 *     a database whose applied migration differs from the module's is refused;
 *   - functions (sql/functions/name.sql), each defined once and re-created when
 *     its text changes (a checksum per function in schema_functions), dropped
 *     when no longer shipped;
 *   - refusing a schema newer than the module (a later migration, or functions
 *     installed by a later module version), so an old host never undoes a new one;
 *   - the check-only mode of OctoWebhooksMigrate Off (the runtime role may not
 *     change the schema) and the operator's report (`octo-webhooks migrate`).
 * Everything happens under one advisory lock, so many hosts may start at once.
 * APR + libpq only; results read by column name. Over 500 lines on purpose:
 * one concern, the schema's lifecycle. Migrating, checking and the
 * operator's report all run the same read_state -> make_plan, whose types
 * (state_t, plan_t) stay private to this file; split, they would need a
 * header of their own shared by two files that change together. */
#include <apr_strings.h>
#include <apr_hash.h>

#include "owh_store.h"
#include "owh_sql.h"
#include "owh_log.h"

#ifndef OWH_VERSION
#define OWH_VERSION "unknown"
#endif

/* An arbitrary constant: the advisory lock serializing migrations of all hosts. */
#define OWH_MIGRATE_LOCK_KEY "7233130560421634660"

/* What the database holds. */
typedef struct {
    const char *name, *checksum, *applied_at;   /* checksum NULL: applied before checksums */
} applied_t;

typedef struct {
    const char *checksum, *module_version;
} fn_row_t;

typedef struct {
    int exists;                 /* schema_migrations exists */
    int have;                   /* highest applied migration */
    apr_hash_t *applied;        /* "N" -> applied_t */
    apr_hash_t *fn_rows;        /* name -> fn_row_t (schema_functions) */
    apr_hash_t *fn_present;     /* name -> "" (functions in the schema) */
} state_t;

/* What to do about it. */
typedef struct {
    const char *refuse;         /* why this module must not touch the schema, or NULL */
    int pending;                /* migrations to apply */
    int unsummed;               /* applied migrations whose checksum is to be recorded */
    int fn_changed;             /* functions to (re)create */
    apr_array_header_t *fn_drop;/* names no longer shipped */
} plan_t;

static int want_version(void)
{
    int v = 0;
    const owh_sql_migration_t *m;
    for (m = owh_sql_migrations; m->version; ++m) if (m->version > v) v = m->version;
    return v;
}

int owh_store_schema_version(void)
{
    return want_version();
}

/* Dotted numeric versions: <0, 0, >0 as strcmp. */
static int version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
        if (x != y) return x < y ? -1 : 1;
        while (*a && *a != '.') ++a;
        while (*b && *b != '.') ++b;
        if (*a == '.') ++a;
        if (*b == '.') ++b;
    }
    return 0;
}

/* A result's value by column name, copied to p (NULL stays NULL). */
static const char *value(const PGresult *res, int row, const char *column, apr_pool_t *p)
{
    const char *v = owh_store_value(res, row, column);
    return v ? apr_pstrdup(p, v) : NULL;
}

static int is_true(const PGresult *res, const char *column)
{
    const char *v = owh_store_value(res, 0, column);
    return v && !strcmp(v, "t");
}

static apr_status_t read_state(state_t *st, owh_db_t *db, apr_pool_t *p)
{
    PGresult *res;
    apr_status_t rv;
    int i, has_sum, has_fn;

    memset(st, 0, sizeof(*st));
    st->applied = apr_hash_make(p);
    st->fn_rows = apr_hash_make(p);
    st->fn_present = apr_hash_make(p);
    if ((rv = owh_store_query(&res, db, p,
            "SELECT to_regclass('octo_webhooks.schema_migrations') IS NOT NULL AS migrations,"
            " EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attname = 'checksum' AND NOT attisdropped"
            "          AND attrelid = to_regclass('octo_webhooks.schema_migrations')) AS checksums,"
            " to_regclass('octo_webhooks.schema_functions') IS NOT NULL AS functions", 0, NULL)) != APR_SUCCESS)
        return rv;
    st->exists = is_true(res, "migrations");
    has_sum = is_true(res, "checksums");
    has_fn = is_true(res, "functions");
    owh_store_clear(res, p);
    if (!st->exists) return APR_SUCCESS;

    if ((rv = owh_store_query(&res, db, p, has_sum
            ? "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS applied"
              " FROM octo_webhooks.schema_migrations"
            : "SELECT version, name, NULL AS checksum,"
              " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS applied"
              " FROM octo_webhooks.schema_migrations", 0, NULL)) != APR_SUCCESS)
        return rv;
    for (i = 0; i < PQntuples(res); ++i) {
        applied_t *a = apr_pcalloc(p, sizeof(*a));
        int v = atoi(owh_store_value(res, i, "version"));
        a->name = value(res, i, "name", p);
        a->checksum = value(res, i, "checksum", p);
        a->applied_at = value(res, i, "applied", p);
        apr_hash_set(st->applied, apr_itoa(p, v), APR_HASH_KEY_STRING, a);
        if (v > st->have) st->have = v;
    }
    owh_store_clear(res, p);

    if (has_fn) {
        if ((rv = owh_store_query(&res, db, p,
                "SELECT name, checksum, module_version FROM octo_webhooks.schema_functions", 0, NULL))
            != APR_SUCCESS) return rv;
        for (i = 0; i < PQntuples(res); ++i) {
            fn_row_t *f = apr_pcalloc(p, sizeof(*f));
            f->checksum = value(res, i, "checksum", p);
            f->module_version = value(res, i, "module_version", p);
            apr_hash_set(st->fn_rows, value(res, i, "name", p), APR_HASH_KEY_STRING, f);
        }
        owh_store_clear(res, p);
    }
    /* Functions that belong to an extension installed in the schema are not ours. */
    if ((rv = owh_store_query(&res, db, p,
            "SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p"
            " WHERE p.pronamespace = to_regnamespace('octo_webhooks')"
            "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_proc'::regclass"
            "                    AND d.objid = p.oid AND d.deptype = 'e')", 0, NULL)) != APR_SUCCESS)
        return rv;
    for (i = 0; i < PQntuples(res); ++i)
        apr_hash_set(st->fn_present, value(res, i, "proname", p), APR_HASH_KEY_STRING, "");
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

static const owh_sql_migration_t *find_migration(int version)
{
    const owh_sql_migration_t *m;
    for (m = owh_sql_migrations; m->version; ++m) if (m->version == version) return m;
    return NULL;
}

static int fn_shipped(const char *name)
{
    const owh_sql_function_t *f;
    for (f = owh_sql_functions; f->name; ++f) if (!strcmp(f->name, name)) return 1;
    return 0;
}

/* A function is current when its recorded checksum is this file's and it exists. */
static int fn_current(const state_t *st, const owh_sql_function_t *f)
{
    fn_row_t *row = apr_hash_get(st->fn_rows, f->name, APR_HASH_KEY_STRING);
    return row && !strcmp(row->checksum, f->checksum)
        && apr_hash_get(st->fn_present, f->name, APR_HASH_KEY_STRING);
}

static void make_plan(plan_t *pl, const state_t *st, apr_pool_t *p)
{
    const owh_sql_migration_t *m;
    const owh_sql_function_t *f;
    apr_hash_index_t *hi;
    int want = want_version();

    memset(pl, 0, sizeof(*pl));
    pl->fn_drop = apr_array_make(p, 4, sizeof(const char *));
    if (st->have > want) {
        pl->refuse = apr_psprintf(p, "schema octo_webhooks is at migration %d, newer than this module "
            "(mod_octo_webhooks %s knows migrations up to %d): install the module version that "
            "migrated it (or a later one) on this host; never run an older module on a newer schema",
            st->have, OWH_VERSION, want);
        return;
    }
    for (hi = apr_hash_first(p, st->applied); hi; hi = apr_hash_next(hi)) {
        const char *key = apr_hash_this_key(hi);
        const applied_t *a = apr_hash_this_val(hi);
        if (!(m = find_migration(atoi(key)))) {
            pl->refuse = apr_psprintf(p, "schema octo_webhooks has migration %s (%s) that "
                "mod_octo_webhooks %s does not ship: this database was migrated by another build",
                key, a->name, OWH_VERSION);
            return;
        }
        if (strcmp(a->name, m->name) || (a->checksum && strcmp(a->checksum, m->checksum))) {
            pl->refuse = apr_psprintf(p, "migration %s was changed after it was applied to this "
                "database (%s, checksum %.12s; mod_octo_webhooks %s ships %s, checksum %.12s): "
                "released migrations are frozen, a change belongs in a new migration",
                key, a->name, a->checksum ? a->checksum : "-", OWH_VERSION, m->name, m->checksum);
            return;
        }
        if (!a->checksum) ++pl->unsummed;
    }
    for (hi = apr_hash_first(p, st->fn_rows); hi; hi = apr_hash_next(hi)) {
        const fn_row_t *row = apr_hash_this_val(hi);
        if (version_cmp(row->module_version, OWH_VERSION) > 0) {
            pl->refuse = apr_psprintf(p, "function octo_webhooks.%s() was installed by "
                "mod_octo_webhooks %s, newer than this module (%s): install that version (or a "
                "later one) on this host; never run an older module on a newer schema",
                (const char *)apr_hash_this_key(hi), row->module_version, OWH_VERSION);
            return;
        }
    }
    for (m = owh_sql_migrations; m->version; ++m)
        if (!apr_hash_get(st->applied, apr_itoa(p, m->version), APR_HASH_KEY_STRING)) ++pl->pending;
    for (f = owh_sql_functions; f->name; ++f)
        if (!fn_current(st, f)) ++pl->fn_changed;
    for (hi = apr_hash_first(p, st->fn_present); hi; hi = apr_hash_next(hi))
        if (!fn_shipped(apr_hash_this_key(hi)))
            APR_ARRAY_PUSH(pl->fn_drop, const char *) = apr_hash_this_key(hi);
    for (hi = apr_hash_first(p, st->fn_rows); hi; hi = apr_hash_next(hi))
        if (!fn_shipped(apr_hash_this_key(hi))
            && !apr_hash_get(st->fn_present, apr_hash_this_key(hi), APR_HASH_KEY_STRING))
            APR_ARRAY_PUSH(pl->fn_drop, const char *) = apr_hash_this_key(hi);
}

static int plan_empty(const plan_t *pl)
{
    return !pl->pending && !pl->unsummed && !pl->fn_changed && !pl->fn_drop->nelts;
}

/* Fails with OWH_STORE_ESCHEMA and the reason as db->errmsg. */
static apr_status_t refuse(owh_db_t *db, const char *why, apr_pool_t *p)
{
    db->errmsg = apr_pstrdup(p, why);
    db->sqlstate = NULL;
    return OWH_STORE_ESCHEMA;
}

/* ---- applying ------------------------------------------------------------ */
/* ROLLBACK without losing the failure's message. */
static void rollback_keep(owh_db_t *db, apr_pool_t *p)
{
    const char *msg = db->errmsg, *state = db->sqlstate;
    owh_store_rollback(db, p);
    db->errmsg = msg;
    db->sqlstate = state;
}

static apr_status_t bootstrap(owh_db_t *db, apr_pool_t *p)
{
    static const char *const stmts[] = {
        "CREATE SCHEMA IF NOT EXISTS octo_webhooks",
        "CREATE TABLE IF NOT EXISTS octo_webhooks.schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())",
        /* SHA-256 of the file as applied; NULL for rows older than checksums */
        "ALTER TABLE octo_webhooks.schema_migrations ADD COLUMN IF NOT EXISTS checksum text",
        "CREATE TABLE IF NOT EXISTS octo_webhooks.schema_functions ("
        " name text PRIMARY KEY, checksum text NOT NULL, module_version text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())",
        NULL };
    const char *const *s;
    apr_status_t rv;
    /* One transaction; LOCAL keeps the "already exists, skipping" notices out
     * of httpd's stderr without changing the session. */
    if ((rv = owh_store_begin(db, p)) != APR_SUCCESS) return rv;
    rv = owh_store_query(NULL, db, p, "SET LOCAL client_min_messages = warning", 0, NULL);
    for (s = stmts; *s && rv == APR_SUCCESS; ++s) rv = owh_store_query(NULL, db, p, *s, 0, NULL);
    if (rv == APR_SUCCESS) rv = owh_store_commit(db, p);
    else rollback_keep(db, p);
    return rv;
}

static apr_status_t run_statements(owh_db_t *db, const char *const *stmts, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    for (; *stmts && rv == APR_SUCCESS; ++stmts) rv = owh_store_query(NULL, db, p, *stmts, 0, NULL);
    return rv;
}

/* Drops functions of the schema named name; all of them, or (stale_only) those
 * this transaction did not write: overloads a changed file no longer defines. */
static apr_status_t drop_functions(owh_db_t *db, const char *name, int stale_only, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { name, stale_only ? "t" : "f" };
    apr_status_t rv;
    int i;
    /* CREATE OR REPLACE rewrites the pg_proc row, so its xmin is ours. */
    if ((rv = owh_store_query(&res, db, p,
            "SELECT format('DROP FUNCTION %I.%I(%s)', n.nspname, p.proname,"
            "              pg_catalog.pg_get_function_identity_arguments(p.oid)) AS stmt"
            "  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'octo_webhooks' AND p.proname = $1"
            "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_proc'::regclass"
            "                    AND d.objid = p.oid AND d.deptype = 'e')"
            "   AND (NOT $2::boolean OR p.xmin::text::bigint <> txid_current() % 4294967296)",
            2, args)) != APR_SUCCESS) return rv;
    for (i = 0; i < PQntuples(res) && rv == APR_SUCCESS; ++i)
        rv = owh_store_query(NULL, db, p, owh_store_value(res, i, "stmt"), 0, NULL);
    owh_store_clear(res, p);
    return rv;
}

/* One function file in its own transaction. CREATE OR REPLACE keeps grants
 * and dependants; when it cannot (a changed result type, parameter names or
 * defaults: SQLSTATE 42P13) the old definition is dropped first. */
static apr_status_t apply_function(owh_db_t *db, const owh_sql_function_t *f, apr_pool_t *p)
{
    const char *args[] = { f->name, f->checksum, OWH_VERSION };
    PGresult *res;
    apr_status_t rv;
    int attempt;

    for (attempt = 0; attempt < 2; ++attempt) {
        if ((rv = owh_store_begin(db, p)) != APR_SUCCESS) return rv;
        /* Bodies are checked when called, as pg_dump restores them: the files
         * then need no order among themselves. */
        rv = owh_store_query(NULL, db, p, "SET LOCAL check_function_bodies = off", 0, NULL);
        if (rv == APR_SUCCESS && attempt) rv = drop_functions(db, f->name, 0, p);
        if (rv == APR_SUCCESS) rv = run_statements(db, f->statements, p);
        if (rv == APR_EGENERAL && !attempt && db->sqlstate && !strcmp(db->sqlstate, "42P13")) {
            owh_store_rollback(db, p);
            continue;
        }
        break;
    }
    if (rv == APR_SUCCESS) rv = drop_functions(db, f->name, 1, p);
    if (rv == APR_SUCCESS
        && (rv = owh_store_query(&res, db, p,
                "SELECT count(*) AS n FROM pg_catalog.pg_proc"
                " WHERE pronamespace = 'octo_webhooks'::regnamespace AND proname = $1", 1, args))
           == APR_SUCCESS) {
        if (!strcmp(owh_store_value(res, 0, "n"), "0")) {
            db->errmsg = "the file defines no function of its name";
            rv = APR_EGENERAL;
        }
        owh_store_clear(res, p);
    }
    if (rv == APR_SUCCESS)
        rv = owh_store_query(NULL, db, p,
            "INSERT INTO octo_webhooks.schema_functions (name, checksum, module_version)"
            " VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE"
            " SET checksum = excluded.checksum, module_version = excluded.module_version, applied_at = now()",
            3, args);
    if (rv == APR_SUCCESS && (rv = owh_store_commit(db, p)) == APR_SUCCESS)
        owh_log_perror(OWH_LOG_MARK, OWH_LOG_INFO, 0, p, OWHLOGNO(00621)
                       "schema: function octo_webhooks.%s() created from sql/functions/%s.sql (%.12s)%s",
                       f->name, f->name, f->checksum, attempt ? ", the old definition dropped first" : "");
    if (rv != APR_SUCCESS) {
        db->errmsg = apr_psprintf(p, "%s (sql/functions/%s.sql)",
                                  db->errmsg ? db->errmsg : "failed", f->name);
        rollback_keep(db, p);
    }
    return rv;
}

static apr_status_t apply_migration(owh_db_t *db, const owh_sql_migration_t *m, apr_pool_t *p)
{
    const char *args[] = { apr_itoa(p, m->version), m->name, m->checksum };
    apr_status_t rv;
    if ((rv = owh_store_begin(db, p)) != APR_SUCCESS) return rv;
    rv = run_statements(db, m->statements, p);
    if (rv == APR_SUCCESS)
        rv = owh_store_query(NULL, db, p,
            "INSERT INTO octo_webhooks.schema_migrations (version, name, checksum) VALUES ($1::int, $2, $3)",
            3, args);
    if (rv == APR_SUCCESS && (rv = owh_store_commit(db, p)) == APR_SUCCESS)
        owh_log_perror(OWH_LOG_MARK, OWH_LOG_INFO, 0, p, OWHLOGNO(00620)
                       "schema: migration %s applied (%.12s)", m->name, m->checksum);
    if (rv != APR_SUCCESS) {
        db->errmsg = apr_psprintf(p, "%s (migration %s)", db->errmsg ? db->errmsg : "failed", m->name);
        rollback_keep(db, p);
    }
    return rv;
}

/* Brings the schema to the module's: under the lock, from a fresh state. */
static apr_status_t apply_all(owh_db_t *db, apr_pool_t *p)
{
    const char *lock[] = { OWH_MIGRATE_LOCK_KEY };
    const owh_sql_migration_t *m;
    const owh_sql_function_t *f;
    state_t st;
    plan_t pl;
    apr_status_t rv;
    int i;

    if ((rv = owh_store_query(NULL, db, p, "SELECT pg_advisory_lock($1::bigint)", 1, lock)) != APR_SUCCESS)
        return rv;
    /* Another host may have migrated while we waited for the lock. */
    if ((rv = bootstrap(db, p)) != APR_SUCCESS) goto leave;
    if ((rv = read_state(&st, db, p)) != APR_SUCCESS) goto leave;
    make_plan(&pl, &st, p);
    if (pl.refuse) { rv = refuse(db, pl.refuse, p); goto leave; }

    /* Rows from before checksums: recorded once, as this module ships them. */
    for (m = owh_sql_migrations; m->version && rv == APR_SUCCESS; ++m) {
        applied_t *a = apr_hash_get(st.applied, apr_itoa(p, m->version), APR_HASH_KEY_STRING);
        const char *args[] = { apr_itoa(p, m->version), m->checksum };
        if (a && !a->checksum
            && (rv = owh_store_query(NULL, db, p, "UPDATE octo_webhooks.schema_migrations SET checksum = $2"
                                     " WHERE version = $1::int AND checksum IS NULL", 2, args)) == APR_SUCCESS)
            owh_log_perror(OWH_LOG_MARK, OWH_LOG_INFO, 0, p, OWHLOGNO(00623)
                           "schema: migration %s, applied before checksums, recorded as %.12s",
                           m->name, m->checksum);
    }
    for (m = owh_sql_migrations; m->version && rv == APR_SUCCESS; ++m)
        if (!apr_hash_get(st.applied, apr_itoa(p, m->version), APR_HASH_KEY_STRING))
            rv = apply_migration(db, m, p);
    for (f = owh_sql_functions; f->name && rv == APR_SUCCESS; ++f)
        if (!fn_current(&st, f)) rv = apply_function(db, f, p);
    for (i = 0; i < pl.fn_drop->nelts && rv == APR_SUCCESS; ++i) {
        const char *name = APR_ARRAY_IDX(pl.fn_drop, i, const char *);
        const char *args[] = { name };
        if ((rv = owh_store_begin(db, p)) != APR_SUCCESS) break;
        rv = drop_functions(db, name, 0, p);
        if (rv == APR_SUCCESS)
            rv = owh_store_query(NULL, db, p, "DELETE FROM octo_webhooks.schema_functions WHERE name = $1",
                                 1, args);
        if (rv == APR_SUCCESS && (rv = owh_store_commit(db, p)) == APR_SUCCESS)
            owh_log_perror(OWH_LOG_MARK, OWH_LOG_INFO, 0, p, OWHLOGNO(00622)
                           "schema: function octo_webhooks.%s() dropped: no longer shipped", name);
        if (rv != APR_SUCCESS) {
            db->errmsg = apr_psprintf(p, "%s (dropping octo_webhooks.%s, no longer shipped)",
                                      db->errmsg ? db->errmsg : "failed", name);
            rollback_keep(db, p);
        }
    }
leave:
    if (db->pg && !db->broken) {
        const char *keep = db->errmsg, *state = db->sqlstate;
        owh_store_query(NULL, db, p, "SELECT pg_advisory_unlock($1::bigint)", 1, lock);
        db->errmsg = keep;
        db->sqlstate = state;
    }
    return rv;
}

/* ---- entry points -------------------------------------------------------- */
/* Migrates or (check_only) only checks, in a scratch pool; a failure's
 * message is copied to the caller's pool. */
static apr_status_t migrate_or_check(owh_db_t *db, int check_only, apr_pool_t *pool)
{
    apr_pool_t *p;
    state_t st;
    plan_t pl;
    apr_status_t rv;

    if ((rv = apr_pool_create(&p, pool)) != APR_SUCCESS) return rv;
    apr_pool_tag(p, check_only ? "owh_store_schema_check" : "owh_store_migrate");
    if ((rv = read_state(&st, db, p)) != APR_SUCCESS) goto leave;
    make_plan(&pl, &st, p);
    if (pl.refuse)
        rv = refuse(db, pl.refuse, p);
    else if (st.exists && plan_empty(&pl))
        ;                                       /* the usual case: nothing to lock */
    else if (!check_only)
        rv = apply_all(db, p);
    else
        rv = refuse(db, apr_psprintf(p, "schema octo_webhooks is older than mod_octo_webhooks %s "
            "understands (%s; %d migration(s) pending, %d function(s) to create or change, %d to drop) "
            "and OctoWebhooksMigrate is Off: run `octo-webhooks migrate` as the schema's owner",
            OWH_VERSION, st.exists ? apr_psprintf(p, "at migration %d of %d", st.have, want_version())
                                   : "not created yet",
            pl.pending, pl.fn_changed, pl.fn_drop->nelts), p);
leave:
    if (db->errmsg) db->errmsg = apr_pstrdup(pool, db->errmsg);
    apr_pool_destroy(p);
    return rv;
}

apr_status_t owh_store_migrate(owh_db_t *db, apr_pool_t *pool)
{
    return migrate_or_check(db, 0, pool);
}

apr_status_t owh_store_schema_check(owh_db_t *db, apr_pool_t *pool)
{
    return migrate_or_check(db, 1, pool);
}

/* The operator's view: one line per migration and per function not current. */
static const char *report(const state_t *st, const plan_t *pl, apr_pool_t *p)
{
    const owh_sql_migration_t *m;
    const owh_sql_function_t *f;
    int i, current = 0;
    const char *out = apr_psprintf(p, "schema octo_webhooks: %s; mod_octo_webhooks %s ships %d\n",
        st->exists ? apr_psprintf(p, "migration %d", st->have) : "not created", OWH_VERSION,
        want_version());
    for (m = owh_sql_migrations; m->version; ++m) {
        applied_t *a = apr_hash_get(st->applied, apr_itoa(p, m->version), APR_HASH_KEY_STRING);
        out = apr_psprintf(p, "%s  migration %-20s %s\n", out, m->name,
            !a ? apr_psprintf(p, "pending (checksum %.12s)", m->checksum)
            : !a->checksum ? apr_psprintf(p, "applied %s, checksum to record (%.12s)", a->applied_at,
                                          m->checksum)
            : !strcmp(a->checksum, m->checksum)
                ? apr_psprintf(p, "applied %s, checksum %.12s ok", a->applied_at, m->checksum)
                : apr_psprintf(p, "applied %s, CHANGED since (database %.12s, module %.12s)",
                               a->applied_at, a->checksum, m->checksum));
    }
    for (f = owh_sql_functions; f->name; ++f) {
        fn_row_t *row = apr_hash_get(st->fn_rows, f->name, APR_HASH_KEY_STRING);
        if (fn_current(st, f)) { ++current; continue; }
        out = apr_psprintf(p, "%s  function  %-20s %s\n", out, f->name,
            !apr_hash_get(st->fn_present, f->name, APR_HASH_KEY_STRING) ? "to create"
            : row ? "changed: to re-create" : "unrecorded: to re-create");
    }
    for (i = 0; i < pl->fn_drop->nelts; ++i)
        out = apr_psprintf(p, "%s  function  %-20s no longer shipped: to drop\n", out,
                           APR_ARRAY_IDX(pl->fn_drop, i, const char *));
    return apr_psprintf(p, "%s  functions: %d current, %d to create or change, %d to drop\n", out,
                        current, pl->fn_changed, pl->fn_drop->nelts);
}

apr_status_t owh_store_migrate_status(owh_db_t *db, int apply, int dry_run, const char **preport,
                                      apr_pool_t *p)
{
    state_t st;
    plan_t pl;
    apr_status_t rv;
    const char *out;

    *preport = "";
    if ((rv = read_state(&st, db, p)) != APR_SUCCESS) return rv;
    make_plan(&pl, &st, p);
    out = report(&st, &pl, p);
    if (pl.refuse) {
        *preport = apr_psprintf(p, "%srefused: %s\n", out, pl.refuse);
        return refuse(db, pl.refuse, p);
    }
    if (st.exists && plan_empty(&pl)) {
        *preport = apr_pstrcat(p, out, "up to date\n", NULL);
        return APR_SUCCESS;
    }
    if (!apply || dry_run) {
        *preport = apr_pstrcat(p, out, dry_run ? "dry run: nothing changed\n"
                                               : "run `octo-webhooks migrate` to apply\n", NULL);
        return APR_SUCCESS;
    }
    if ((rv = apply_all(db, p)) != APR_SUCCESS) {
        *preport = apr_psprintf(p, "%sfailed: %s\n", out, db->errmsg ? db->errmsg : "unknown error");
        return rv;
    }
    if ((rv = read_state(&st, db, p)) != APR_SUCCESS) return rv;
    make_plan(&pl, &st, p);
    *preport = apr_psprintf(p, "%sapplied: schema octo_webhooks is at migration %d, %s\n", out, st.have,
                            plan_empty(&pl) ? "up to date" : "NOT up to date");
    return APR_SUCCESS;
}
