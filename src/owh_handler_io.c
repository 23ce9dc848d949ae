/* owh_handler_io.c — the answers of the API's routes: JSON bodies (rendered
 * by jansson, by owh_render.c in one pass, or by PostgreSQL), OCTO errors,
 * the streamed list, and reading the request body before any database work.
 * All memory in r->pool (a streamed list's rows in a pool cleared per row). */
#include <apr_strings.h>
#include <apr_lib.h>
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_log.h>
#include <http_core.h>
#include <util_script.h>

#include "owh_handler_int.h"
#include "owh_render.h"
#include "owh_config.h"
#include "owh_store.h"
#include "owh_webhook.h"
#include "owh_json.h"
#include "owh_log.h"
#include "owh_listcache.h"
#include "owh_metrics.h"

APLOG_USE_MODULE(octo_webhooks);

/* ---- answers ------------------------------------------------------------- */
/* An answer already rendered as JSON text (by jansson or by PostgreSQL). */
int owh_send_json_text(request_rec *r, int status, const char *body, apr_size_t len)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, len);
    if (!r->header_only) ap_rwrite(body, (int)len, r);
    return OK;
}

int owh_send_json(request_rec *r, int status, const json_t *j)
{
    apr_size_t len = 0;
    const char *body = owh_json_dump(j, &len, r->pool);
    return owh_send_json_text(r, status, body, len);
}

int owh_send_error(request_rec *r, int status, const char *code, const char *msg)
{
    json_t *j = owh_json_pool_own(json_pack("{s:s, s:s}", "error", code, "errorMessage", msg), r->pool);
    if (status == HTTP_SERVICE_UNAVAILABLE) apr_table_setn(r->headers_out, "Retry-After", "2");
    return owh_send_json(r, status, j);
}

int owh_bad_request(request_rec *r, const char *msg)
{
    return owh_send_error(r, HTTP_BAD_REQUEST, "BAD_REQUEST", msg);
}

int owh_not_found(request_rec *r)
{
    return owh_send_error(r, HTTP_NOT_FOUND, "NOT_FOUND", "The requested resource was not found");
}

/* Maps a store failure to 503 (unreachable) or 500 (anything else). */
int owh_store_failed(owh_req_t *q, apr_status_t rv, const char *what)
{
    request_rec *r = q->r;
    if (rv == OWH_STORE_EUNAVAIL) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, OWHLOGNO(00401)
                      "%s: database unavailable: %s", what,
                      q->db && q->db->errmsg ? q->db->errmsg : "no connection");
        return owh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "INTERNAL_SERVER_ERROR", MSG_UNAVAILABLE);
    }
    /* A data exception (say February 31st) is the client's value, not our fault. */
    if (owh_store_failed_on_input(q->db))
        return owh_bad_request(r, "A value in the request is out of range");
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, OWHLOGNO(00402) "%s failed: [%s] %s", what,
                  q->db && q->db->sqlstate ? q->db->sqlstate : "-",
                  q->db && q->db->errmsg ? q->db->errmsg : "-");
    return owh_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", MSG_INTERNAL);
}

/* ---- webhooks in one pass ------------------------------------------------ */
/* An answer under this many bytes goes out whole with a Content-Length;
 * a longer list is flushed to the client every time this much is rendered. */
#define STREAM_CHUNK (64 * 1024)

typedef struct stream_t {
    request_rec *r;
    apr_bucket_brigade *bb;
    char buf[8000];                 /* rendered text gathered before it goes to bb */
    apr_size_t used;
    apr_size_t pending;             /* bytes in buf and bb */
    apr_off_t total;
    int rows;
    int started;                    /* the status and headers are out: no error answer any more */
} stream_t;

/* Rendering writes many short pieces: they are gathered in buf and go to
 * the brigade (a copy into a heap bucket) a buffer at a time. */
static void stream_move(stream_t *st)
{
    if (st->used) apr_brigade_write(st->bb, NULL, NULL, st->buf, st->used);
    st->used = 0;
}

static void stream_write(void *ctx, const char *s, apr_size_t n)
{
    stream_t *st = ctx;
    st->pending += n;
    st->total += (apr_off_t)n;
    if (st->used + n > sizeof(st->buf)) {
        stream_move(st);
        if (n > sizeof(st->buf)) { apr_brigade_write(st->bb, NULL, NULL, s, n); return; }
    }
    memcpy(st->buf + st->used, s, n);
    st->used += n;
}

static void answer_headers(request_rec *r, int status)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
}

/* Sends what bb holds (with a FLUSH: the client gets it now and the memory
 * goes back), starting the answer without a Content-Length. */
static apr_status_t stream_flush(stream_t *st)
{
    apr_status_t rv;
    if (!st->started) { answer_headers(st->r, HTTP_OK); st->started = 1; }
    stream_move(st);
    APR_BRIGADE_INSERT_TAIL(st->bb, apr_bucket_flush_create(st->r->connection->bucket_alloc));
    rv = ap_pass_brigade(st->r->output_filters, st->bb);
    apr_brigade_cleanup(st->bb);
    st->pending = 0;
    return rv;
}

static apr_status_t stream_row(void *baton, const owh_webhook_t *wh, apr_pool_t *rowpool)
{
    stream_t *st = baton;
    owh_writer_t w = { stream_write, st };
    stream_write(st, st->rows++ ? "," : "[", 1);
    owh_render_webhook(&w, wh, NULL, rowpool);
    return st->pending >= STREAM_CHUNK ? stream_flush(st) : APR_SUCCESS;
}

/* Sends the brigade as the whole answer, with its Content-Length. */
static int send_brigade(stream_t *st, int status)
{
    answer_headers(st->r, status);
    ap_set_content_length(st->r, st->total);
    stream_move(st);
    if (ap_pass_brigade(st->r->output_filters, st->bb) != APR_SUCCESS)
        st->r->connection->keepalive = AP_CONN_CLOSE;
    apr_brigade_cleanup(st->bb);
    return OK;
}

static void stream_init(stream_t *st, request_rec *r)
{
    st->used = st->pending = 0;
    st->total = 0;
    st->rows = st->started = 0;
    st->r = r;
    st->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
}

int owh_send_webhook(request_rec *r, int status, const owh_webhook_t *wh, const char *secret)
{
    stream_t st;
    owh_writer_t w = { stream_write, &st };
    stream_init(&st, r);
    owh_render_webhook(&w, wh, secret, r->pool);
    return send_brigade(&st, status);
}

int owh_send_webhook_array(request_rec *r, const apr_array_header_t *list)
{
    stream_t st;
    owh_writer_t w = { stream_write, &st };
    int i;
    stream_init(&st, r);
    stream_write(&st, "[", 1);
    for (i = 0; i < list->nelts; ++i) {
        if (i) stream_write(&st, ",", 1);
        owh_render_webhook(&w, APR_ARRAY_IDX(list, i, const owh_webhook_t *), NULL, r->pool);
    }
    stream_write(&st, "]", 1);
    return send_brigade(&st, HTTP_OK);
}

/* The whole answer of a list that went out in one piece, kept in the
 * child's cache under what was read before its query. */
static void list_remember(stream_t *st, owh_listcache_t *lists, const char *key, apr_uint64_t generation,
                          apr_time_t at)
{
    char *body;
    apr_size_t len;
    stream_move(st);
    if (apr_brigade_pflatten(st->bb, &body, &len, st->r->pool) == APR_SUCCESS)
        owh_listcache_put(lists, key, generation, at, body, len);
}

int owh_send_webhook_list(owh_req_t *q, owh_dialect_e dialect)
{
    request_rec *r = q->r;
    owh_listcache_t *lists = q->sc->lists;
    stream_t st;
    apr_status_t rv;
    const char *key, *body;
    apr_size_t len;
    apr_uint64_t generation;
    apr_time_t at;

    /* by connection and dialect: the answer depends on nothing else */
    key = apr_psprintf(r->pool, "%d:%s", (int)dialect, q->caller.connection);
    if (owh_listcache_get(lists, key, &body, &len, r->pool)) {
        owh_metrics_list(1);
        return owh_send_json_text(r, HTTP_OK, body, len);
    }
    if (q->sc->list_cache_ttl > 0) owh_metrics_list(0);
    /* read before the query: a write committed after it makes the entry stale */
    generation = owh_listcache_generation();
    at = apr_time_now();
    stream_init(&st, r);
    rv = owh_store_webhook_each(q->db, q->caller.connection, dialect, stream_row, &st, r->pool);
    if (rv == APR_SUCCESS) {
        stream_write(&st, st.rows ? "]" : "[]", st.rows ? 1 : 2);
        if (!st.started) {
            list_remember(&st, lists, key, generation, at);
            return send_brigade(&st, HTTP_OK);
        }
        stream_flush(&st);
        return OK;
    }
    apr_brigade_cleanup(st.bb);
    if (!st.started) return owh_store_failed(q, rv, "list");
    if (r->connection->aborted) {
        /* the client went away mid-list: nothing to tell anyone */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, OWHLOGNO(00404) "list: the client left after %d rows",
                      st.rows);
        return OK;
    }
    /* Part of the list is out under a 200: end the answer unfinished (no
     * last chunk, the connection closed), so the client cannot take it
     * for the whole list. */
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, OWHLOGNO(00403) "list failed after %d rows were sent: %s",
                  st.rows, q->db && q->db->errmsg ? q->db->errmsg : "-");
    r->connection->keepalive = AP_CONN_CLOSE;
    APR_BRIGADE_INSERT_TAIL(st.bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool,
                                                          r->connection->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(st.bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, st.bb);
    return OK;
}

/* ---- request body -------------------------------------------------------- */
/* Reads the whole body up to the configured cap. Returns OK, or an HTTP
 * status the caller answers with (413 over the cap). */
static int read_body(request_rec *r, apr_off_t cap, const char **pdata, apr_size_t *plen)
{
    apr_size_t len = 0, room = (apr_size_t)cap + 1;
    char *buf;
    int rc;

    *pdata = "";
    *plen = 0;
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) return rc;
    if (!ap_should_client_block(r)) return OK;
    if (r->remaining > cap) goto too_large;      /* Content-Length says so: don't read */
    buf = apr_palloc(r->pool, room + 1);
    for (;;) {
        long n = ap_get_client_block(r, buf + len, room - len);
        if (n == 0) break;
        if (n < 0) return HTTP_BAD_REQUEST;
        len += (apr_size_t)n;
        if (len > (apr_size_t)cap) goto too_large;
    }
    buf[len] = '\0';
    *pdata = buf;
    *plen = len;
    return OK;
too_large:
    /* Don't drain a body we refuse: close the connection after answering. */
    r->connection->keepalive = AP_CONN_CLOSE;
    return HTTP_REQUEST_ENTITY_TOO_LARGE;
}

/* Reads the body into q before the request takes a pooled database
 * connection: a client trickling its body holds a worker (bounded by
 * mod_reqtimeout), never a connection others need. Returns 0, or 1 when it
 * already answered with an error. */
int owh_take_body(owh_req_t *q)
{
    request_rec *r = q->r;
    int rc = read_body(r, owh_config_max_body(q->dc), &q->body, &q->body_len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        owh_send_error(r, rc, "BAD_REQUEST", apr_psprintf(r->pool,
                   "The request body is larger than %" APR_OFF_T_FMT " bytes",
                   owh_config_max_body(q->dc)));
        return 1;
    }
    if (rc != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
        owh_bad_request(r, "The request body could not be read");
        return 1;
    }
    return 0;
}

/* Parses the JSON object body into *pj (NULL when the body is empty and not
 * required). Returns 0, or 1 when it already answered with an error. */
int owh_read_json_object(owh_req_t *q, int required, json_t **pj)
{
    request_rec *r = q->r;
    const char *data = q->body, *err = NULL;
    apr_size_t len = q->body_len;
    json_t *j;

    *pj = NULL;
    if (len == 0 && !required) return 0;
    if (!(j = owh_json_parse(data, len, &err, r->pool))) { owh_bad_request(r, err); return 1; }
    if (!json_is_object(j)) { owh_bad_request(r, "The request body must be a JSON object"); return 1; }
    *pj = j;
    return 0;
}
