/* owh_store_webhooks.c — the webhooks table: insert, list, get, update,
 * delete, delete by URL; always scoped to the calling connection so one
 * reseller can never reach another's rows. */
#include <stdlib.h>
#include <apr_strings.h>

#include "owh_store.h"
#include "owh_store_array.h"

#define WH_COLS "id, event, url, active, retry_on_error, use_contact_language, headers::text AS headers," \
    " capabilities, secret IS NOT NULL AS has_secret, disabled_reason," \
    " to_char(disabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS disabled_at, dialect, event_types"

static const char *pg_bool(int b) { return b ? "true" : "false"; }

static const char *dialect_name(owh_dialect_e d) { return d == OWH_DIALECT_NOTIFICATIONS ? "notifications" : "octo"; }

/* A subscription's types as a text[] literal; NULL for a webhook (the
 * webhooks_types trigger derives its one type). */
static const char *types_to_pg(const owh_webhook_t *wh, apr_pool_t *p)
{
    apr_array_header_t *names;
    int i;
    if (wh->dialect != OWH_DIALECT_NOTIFICATIONS || !wh->types) return NULL;
    names = apr_array_make(p, wh->types->nelts, sizeof(const char *));
    for (i = 0; i < wh->types->nelts; ++i)
        APR_ARRAY_PUSH(names, const char *) = owh_event_name(APR_ARRAY_IDX(wh->types, i, owh_event_e));
    return owh_store_array_format(names, p);
}

/* Where WH_COLS are in a result: looked up by name once per result shape,
 * not once per cell (a streamed list has a result per row). */
typedef struct wh_cols_t {
    int id, event, url, active, retry_on_error, use_contact_language, headers, capabilities,
        has_secret, disabled_reason, disabled_at, dialect, event_types;
} wh_cols_t;

static void wh_cols_find(wh_cols_t *c, const PGresult *res)
{
#define FIND(name) c->name = PQfnumber(res, #name)
    FIND(id); FIND(event); FIND(url); FIND(active); FIND(retry_on_error); FIND(use_contact_language);
    FIND(headers); FIND(capabilities); FIND(has_secret); FIND(disabled_reason); FIND(disabled_at);
    FIND(dialect); FIND(event_types);
#undef FIND
}

/* A cell, or NULL (SQL NULL, or a column the result does not have). */
static const char *cell(const PGresult *res, int row, int col)
{
    return col < 0 || row >= PQntuples(res) || PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* WH_COLS of one row, read by name (cols: where the names are; NULL: look
 * them up), to be shown: the headers stay the stored JSON text
 * (wh->headers_text), unparsed. borrow: the strings point into res, for a
 * webhook that does not outlive it. */
static apr_status_t row_to_webhook(owh_webhook_t **pwh, const PGresult *res, int row, int borrow,
                                   const wh_cols_t *cols, apr_pool_t *p)
{
    owh_webhook_t *wh = apr_pcalloc(p, sizeof(*wh));
    wh_cols_t found;
    const char *v;
    apr_status_t rv;
    if (!cols) { wh_cols_find(&found, res); cols = &found; }
#define COL(name) cell(res, row, cols->name)
#define TEXT(name) (borrow ? COL(name) : apr_pstrdup(p, COL(name)))
#define IS_TRUE(name) ((v = COL(name)) && v[0] == 't')
    if (!COL(id) || !COL(event) || !COL(url) || !COL(headers) || !COL(capabilities)
        || !COL(dialect))
        return APR_EGENERAL;
    wh->id = TEXT(id);
    wh->event = TEXT(event);
    wh->event_type = owh_event_parse(wh->event);
    wh->url = TEXT(url);
    wh->active = IS_TRUE(active);
    wh->retry_on_error = IS_TRUE(retry_on_error);
    wh->use_contact_language = IS_TRUE(use_contact_language);
    wh->headers_text = TEXT(headers);
    if ((rv = owh_store_array_parse(&wh->capabilities, COL(capabilities), p)) != APR_SUCCESS) return rv;
    wh->has_secret = IS_TRUE(has_secret);
    if (COL(disabled_reason)) wh->disabled_reason = TEXT(disabled_reason);
    if (COL(disabled_at)) wh->disabled_at = TEXT(disabled_at);
    if (!strcmp(COL(dialect), "notifications")) {
        apr_array_header_t *names;
        int i;
        wh->dialect = OWH_DIALECT_NOTIFICATIONS;
        if ((rv = owh_store_array_parse(&names, COL(event_types), p)) != APR_SUCCESS) return rv;
        wh->types = apr_array_make(p, names->nelts, sizeof(owh_event_e));
        for (i = 0; i < names->nelts; ++i)
            APR_ARRAY_PUSH(wh->types, owh_event_e) = owh_event_parse(APR_ARRAY_IDX(names, i, const char *));
        wh->event_type = wh->types->nelts ? APR_ARRAY_IDX(wh->types, 0, owh_event_e) : OWH_EVENT_NONE;
    }
#undef IS_TRUE
#undef TEXT
#undef COL
    *pwh = wh;
    return APR_SUCCESS;
}

static apr_status_t rows_to_list(apr_array_header_t **plist, PGresult *res, apr_pool_t *p)
{
    apr_array_header_t *list = apr_array_make(p, PQntuples(res) ? PQntuples(res) : 1, sizeof(owh_webhook_t *));
    int i;
    apr_status_t rv;
    for (i = 0; i < PQntuples(res); ++i)
        if ((rv = row_to_webhook(&APR_ARRAY_PUSH(list, owh_webhook_t *), res, i, 0, NULL, p)) != APR_SUCCESS)
            return rv;
    *plist = list;
    return APR_SUCCESS;
}

apr_status_t owh_store_webhook_insert(owh_db_t *db, const char *connection, owh_webhook_t *wh,
                                      int max_webhooks, apr_pool_t *p)
{
    PGresult *res = NULL;
    const char *id;
    apr_status_t rv;
    const char *args[] = {
        connection, wh->event, owh_event_name(wh->event_type), wh->url,
        owh_url_display(wh->url, p), pg_bool(wh->active), pg_bool(wh->retry_on_error),
        pg_bool(wh->use_contact_language), owh_headers_to_json_text(wh->headers, p),
        owh_store_array_format(wh->capabilities, p), wh->secret, dialect_name(wh->dialect),
        types_to_pg(wh, p), apr_itoa(p, max_webhooks > 0 ? max_webhooks : 0)
    };
    /* One statement, its own transaction: the connection's row, the bound
     * counted under the connection's lock, the row (sql/functions/create_webhook.sql). */
    rv = owh_store_query_prepared(&res, db, p,
        "SELECT octo_webhooks.create_webhook($1, $2, $3, $4, $5, $6::boolean, $7::boolean, $8::boolean,"
        " $9::jsonb, $10::text[], $11, $12, $13::text[], $14::int) AS id", 14, args);
    if (rv != APR_SUCCESS) return rv;
    if (!(id = owh_store_value(res, 0, "id"))) rv = APR_ENOSPC;     /* at OctoWebhooksMaxWebhooks */
    else wh->id = apr_pstrdup(p, id);
    owh_store_clear(res, p);
    return rv;
}

typedef struct {
    owh_store_webhook_fn *fn;
    void *baton;
    apr_pool_t *rowpool;            /* cleared for every row */
    int found;
    wh_cols_t cols;                 /* of the first row's result: every row's has the same shape */
} each_t;

/* One row to fn: wh's strings point into res, which outlives the call. */
static apr_status_t each_one(each_t *e, const PGresult *res, int row)
{
    owh_webhook_t *wh;
    apr_status_t rv;
    apr_pool_clear(e->rowpool);
    if (!e->found) { wh_cols_find(&e->cols, res); e->found = 1; }
    if ((rv = row_to_webhook(&wh, res, row, 1, &e->cols, e->rowpool)) != APR_SUCCESS) return rv;
    return e->fn(e->baton, wh, e->rowpool);
}

static apr_status_t each_row(void *baton, const PGresult *row)
{
    return each_one(baton, row, 0);
}

/* A list this long or shorter is read in one result (libpq's single-row
 * mode makes a result per row: its allocations, and a copy of the column
 * names, per row); a longer one is read again, streamed. The default
 * OctoWebhooksMaxWebhooks keeps a connection's lists under it. */
#define LIST_WHOLE 100

apr_status_t owh_store_webhook_each(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                    owh_store_webhook_fn *fn, void *baton, apr_pool_t *p)
{
    const char *args[] = { connection, dialect_name(dialect) };
    PGresult *res;
    each_t e;
    int i, n;
    apr_status_t rv;
    e.fn = fn;
    e.baton = baton;
    e.found = 0;
    /* (the LIMIT is LIST_WHOLE + 1: one more row says the list goes on) */
    rv = owh_store_query_prepared(&res, db, p,
        "SELECT " WH_COLS " FROM octo_webhooks.webhooks WHERE connection_id = $1 AND dialect = $2"
        " ORDER BY seq LIMIT 101", 2, args);
    if (rv != APR_SUCCESS) return rv;
    if ((rv = apr_pool_create(&e.rowpool, p)) != APR_SUCCESS) { owh_store_clear(res, p); return rv; }
    apr_pool_tag(e.rowpool, "owh_store_webhook_row");
    if ((n = PQntuples(res)) <= LIST_WHOLE) {
        for (i = 0; i < n && rv == APR_SUCCESS; ++i) rv = each_one(&e, res, i);
        owh_store_clear(res, p);
    }
    else {
        /* a long list, streamed whole by one statement (one snapshot) */
        owh_store_clear(res, p);
        e.found = 0;
        rv = owh_store_query_rows(db, p,
            "SELECT " WH_COLS " FROM octo_webhooks.webhooks WHERE connection_id = $1 AND dialect = $2"
            " ORDER BY seq", 2, args, each_row, &e);
    }
    apr_pool_destroy(e.rowpool);
    return rv;
}

apr_status_t owh_store_webhook_get(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                   const char *id, owh_webhook_t **pwh, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { id, connection, dialect_name(dialect) };
    apr_status_t rv;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    rv = owh_store_query_prepared(&res, db, p,
        "SELECT " WH_COLS " FROM octo_webhooks.webhooks WHERE id = $1::uuid AND connection_id = $2"
        " AND dialect = $3", 3, args);
    if (rv != APR_SUCCESS) return rv;
    rv = PQntuples(res) == 1 ? row_to_webhook(pwh, res, 0, 0, NULL, p) : APR_NOTFOUND;
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_patch(owh_db_t *db, const char *connection, const char *id,
                                     const owh_webhook_patch_t *patch, const char *checked_url,
                                     owh_webhook_t **pwh, apr_pool_t *p)
{
    PGresult *res;
    const owh_webhook_t *wh = patch->wh;
    const char *updated;
    apr_status_t rv;
    const char *args[] = {
        id, connection, dialect_name(wh->dialect),
        patch->event && wh->dialect == OWH_DIALECT_OCTO ? wh->event : NULL,
        patch->event ? owh_event_name(wh->event_type) : NULL,
        patch->url ? wh->url : NULL, patch->url ? owh_url_display(wh->url, p) : NULL,
        patch->active ? pg_bool(wh->active) : NULL,
        patch->retry_on_error ? pg_bool(wh->retry_on_error) : NULL,
        patch->use_contact_language ? pg_bool(wh->use_contact_language) : NULL,
        patch->headers ? owh_headers_to_json_text(wh->headers, p) : NULL,
        patch->capabilities ? owh_store_array_format(wh->capabilities, p) : NULL,
        patch->event ? types_to_pg(wh, p) : NULL, checked_url
    };
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    /* One statement, its own transaction: read and lock, apply, write
     * (sql/functions/update_webhook.sql). */
    rv = owh_store_query_prepared(&res, db, p,
        "SELECT updated, id, event, url, active, retry_on_error, use_contact_language, headers, capabilities,"
        " has_secret, disabled_reason, disabled_at, dialect, event_types"
        " FROM octo_webhooks.update_webhook($1::uuid, $2, $3, $4, $5, $6, $7, $8::boolean, $9::boolean,"
        " $10::boolean, $11::jsonb, $12::text[], $13::text[], $14)", 14, args);
    if (rv != APR_SUCCESS) return rv;
    if (PQntuples(res) != 1) rv = APR_NOTFOUND;
    else if ((rv = row_to_webhook(pwh, res, 0, 0, NULL, p)) == APR_SUCCESS
             && (!(updated = owh_store_value(res, 0, "updated")) || strcmp(updated, "t")))
        rv = APR_EAGAIN;        /* the stored URL is to be checked first */
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_delete(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                      const char *id, owh_webhook_t **pwh, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { id, connection, dialect_name(dialect) };
    apr_status_t rv;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    rv = owh_store_query_prepared(&res, db, p,
        "DELETE FROM octo_webhooks.webhooks WHERE id = $1::uuid AND connection_id = $2 AND dialect = $3"
        " RETURNING " WH_COLS, 3, args);
    if (rv != APR_SUCCESS) return rv;
    rv = PQntuples(res) == 1 ? row_to_webhook(pwh, res, 0, 0, NULL, p) : APR_NOTFOUND;
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_delete_by_url(owh_db_t *db, const char *connection, const char *url,
                                             apr_array_header_t **plist, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { connection, url };
    apr_status_t rv = owh_store_query(&res, db, p,
        "WITH gone AS (DELETE FROM octo_webhooks.webhooks"
        "  WHERE connection_id = $1 AND (url = $2 OR url_display = $2) AND dialect = 'octo'"
        "  RETURNING *)"
        " SELECT " WH_COLS " FROM gone ORDER BY seq", 2, args);
    if (rv != APR_SUCCESS) return rv;
    rv = rows_to_list(plist, res, p);
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_trigger_admit(owh_db_t *db, const char *connection, const char *id,
                                             int count, int per_minute, int *pretry_after, apr_pool_t *p)
{
    PGresult *res = NULL;
    const char *args[] = { id, connection };
    apr_status_t rv;
    *pretry_after = 0;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    /* Triggers of one webhook take turns (a lock of their own class, so
     * never the claims' 7261003), so the count holds across children and hosts. */
    rv = owh_store_query(&res, db, p,
        "SELECT pg_advisory_xact_lock(7261012, hashtext(w.id::text)) FROM octo_webhooks.webhooks w"
        " WHERE w.id = $1::uuid AND w.connection_id = $2", 2, args);
    if (rv != APR_SUCCESS) return rv;
    if (PQntuples(res) != 1) { owh_store_clear(res, p); return APR_NOTFOUND; }
    owh_store_clear(res, p);
    if (per_minute <= 0) return APR_SUCCESS;
    rv = owh_store_query(&res, db, p,
        "SELECT count(*) AS n, coalesce(ceil(extract(epoch FROM min(d.created_at) + interval '1 minute'"
        " - clock_timestamp())), 0)::int AS wait"
        " FROM octo_webhooks.deliveries d JOIN octo_webhooks.events e ON e.id = d.event_id"
        " WHERE d.webhook_id = $1::uuid AND d.created_at > clock_timestamp() - interval '1 minute'"
        " AND e.sample", 1, args);
    if (rv != APR_SUCCESS) return rv;
    if (atoi(owh_store_value(res, 0, "n")) + count > per_minute) {
        int wait = atoi(owh_store_value(res, 0, "wait"));
        *pretry_after = wait < 1 ? 1 : wait > 60 ? 60 : wait;
    }
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

apr_status_t owh_store_webhook_trigger(owh_db_t *db, const char *connection, const char *id,
                                       const char *object_json, const char **pevent_id,
                                       const char **pdelivery_id, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { id, connection, object_json };
    apr_status_t rv;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    rv = owh_store_query(&res, db, p,
        "SELECT event_id, delivery_id FROM octo_webhooks.emit_to_webhook($1::uuid, $2, $3::jsonb)",
        3, args);
    if (rv != APR_SUCCESS) return rv;
    if (PQntuples(res) != 1) rv = APR_NOTFOUND;
    else {
        *pevent_id = apr_pstrdup(p, owh_store_value(res, 0, "event_id"));
        *pdelivery_id = apr_pstrdup(p, owh_store_value(res, 0, "delivery_id"));
    }
    owh_store_clear(res, p);
    return rv;
}
