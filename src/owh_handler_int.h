/* owh_handler_int.h — what the API's handler files share: one request's
 * state (owh_req_t) and the answers every route gives (owh_handler_io.c).
 * Private to owh_handler*.c. */
#ifndef OWH_HANDLER_INT_H
#define OWH_HANDLER_INT_H

#include <httpd.h>
#include <jansson.h>

#include "owh_config.h"
#include "owh_auth.h"
#include "owh_store.h"
#include "owh_webhook.h"

#define MSG_UNAUTHORIZED "You didn't send the API Key in the Authorization header to an endpoint that requires authentication"
#define MSG_FORBIDDEN "You sent an API Key that was invalid or has been revoked by the backend system. Or you're trying to access an endpoint/resource that you do not have access to"
#define MSG_INTERNAL "There was an un-recoverable error, please try again"
#define MSG_UNAVAILABLE "The webhook store is temporarily unavailable, please try again shortly"

/* One request's state, passed to the route functions. */
typedef struct owh_req_t {
    request_rec *r;
    owh_srv_conf_t *sc;
    owh_dir_conf_t *dc;
    owh_db_t *db;
    owh_caller_t caller;
    const char *id;                 /* {id} of the route, if any */
    const char *sub;                /* {sub}: a second id (a delivery's) */
    const char *body;               /* the request body, read before any database work */
    apr_size_t body_len;
} owh_req_t;

/* ---- answers (owh_handler_io.c) ------------------------------------------ */
/* An answer already rendered as JSON text (by jansson or by PostgreSQL). */
int owh_send_json_text(request_rec *r, int status, const char *body, apr_size_t len);
int owh_send_json(request_rec *r, int status, const json_t *j);
int owh_send_error(request_rec *r, int status, const char *code, const char *msg);
int owh_bad_request(request_rec *r, const char *msg);
int owh_not_found(request_rec *r);
/* Maps a store failure to 503 (unreachable), 400 (a data exception on the
 * client's value) or 500 (anything else). */
int owh_store_failed(owh_req_t *q, apr_status_t rv, const char *what);

/* The Webhook or Subscription object (owh_render.c), with the create's
 * secret when not NULL. */
int owh_send_webhook(request_rec *r, int status, const owh_webhook_t *wh, const char *secret);
/* The caller's webhooks of a dialect as a JSON array, streamed: rendered row
 * by row as PostgreSQL sends them, sent with a Content-Length when the whole
 * answer stays under one chunk, else flushed chunk by chunk. */
int owh_send_webhook_list(owh_req_t *q, owh_dialect_e dialect);
/* A list already read (DELETE by url): the same array. */
int owh_send_webhook_array(request_rec *r, const apr_array_header_t *list);

/* Reads the body into q before any database work. 0, or 1 when it already
 * answered with an error. */
int owh_take_body(owh_req_t *q);
/* Parses q's JSON object body into *pj (NULL when empty and not required).
 * 0, or 1 when it already answered with an error. */
int owh_read_json_object(owh_req_t *q, int required, json_t **pj);

/* ---- routes of owh_handler_deliveries.c ---------------------------------- */
int owh_route_webhook_trigger(owh_req_t *q);
int owh_route_webhook_secret(owh_req_t *q);
int owh_route_webhook_deliveries(owh_req_t *q);
int owh_route_delivery_retry(owh_req_t *q);
int owh_route_webhook_recover(owh_req_t *q);

#endif
