/* owh_render.h — the API's Webhook and Subscription objects written out as
 * JSON text field by field, with no json_t tree: the list routes render each
 * row as PostgreSQL hands it over, straight into the output. Escaping is
 * jansson's own (owh_render_string, tested against json_dumps). APR only. */
#ifndef OWH_RENDER_H
#define OWH_RENDER_H

#include <apr_pools.h>

#include "owh_webhook.h"

/* Where text goes: write(ctx, s, n) appends n bytes. */
typedef struct owh_writer_t {
    void (*write)(void *ctx, const char *s, apr_size_t n);
    void *ctx;
} owh_writer_t;

/* A JSON string of the n bytes at s (valid UTF-8), quoted and escaped as
 * jansson's compact json_dumps escapes it: '"', '\\', \b \f \n \r \t, other
 * bytes below 0x20 as \u00XX; everything else as it is. */
void owh_render_string(const owh_writer_t *w, const char *s, apr_size_t n);

/* Stored JSON text (PostgreSQL's jsonb output, "{"a": "b"}") without the
 * spaces between tokens, as jansson's compact form has none. */
void owh_render_compact(const owh_writer_t *w, const char *json);

/* The object as the API answers it (owh_webhook_to_api_json, byte for byte):
 * a webhook's id, event, url (display form), active, retryOnError,
 * useContactLanguage, headers, capabilities, signed, disabledReason,
 * disabledAt; a subscription's id, url, notificationTypes, headers, signed.
 * secret (create's answer, shown once) is appended when not NULL. p holds
 * what rendering allocates (the display URL). */
void owh_render_webhook(const owh_writer_t *w, const owh_webhook_t *wh, const char *secret, apr_pool_t *p);

#endif
