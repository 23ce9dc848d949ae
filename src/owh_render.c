/* owh_render.c — Webhook and Subscription objects as JSON text in one pass
 * (see owh_render.h). The field order is owh_webhook_to_api_json's, so an
 * answer reads the same whichever path made it. */
#include <string.h>
#include <apr_strings.h>

#include "owh_render.h"

#define PUT(w, lit) (w)->write((w)->ctx, lit, sizeof(lit) - 1)

void owh_render_string(const owh_writer_t *w, const char *s, apr_size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *run = s, *end = s + n;
    PUT(w, "\"");
    for (; s < end; ++s) {
        unsigned char c = (unsigned char)*s;
        const char *esc;
        char u[6];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (s > run) w->write(w->ctx, run, (apr_size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"':  esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            w->write(w->ctx, u, 6);
            continue;
        }
        w->write(w->ctx, esc, 2);
    }
    if (end > run) w->write(w->ctx, run, (apr_size_t)(end - run));
    PUT(w, "\"");
}

static void render_cstr(const owh_writer_t *w, const char *s)
{
    if (s) owh_render_string(w, s, strlen(s));
    else PUT(w, "null");
}

void owh_render_compact(const owh_writer_t *w, const char *json)
{
    const char *run = json, *s;
    int in_string = 0;
    for (s = json; *s; ++s) {
        if (in_string) {
            if (*s == '\\' && s[1]) ++s;
            else if (*s == '"') in_string = 0;
            continue;
        }
        if (*s == '"') { in_string = 1; continue; }
        if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
            if (s > run) w->write(w->ctx, run, (apr_size_t)(s - run));
            run = s + 1;
        }
    }
    if (s > run) w->write(w->ctx, run, (apr_size_t)(s - run));
}

static void render_bool(const owh_writer_t *w, int b)
{
    if (b) PUT(w, "true");
    else PUT(w, "false");
}

static void render_headers(const owh_writer_t *w, const owh_webhook_t *wh)
{
    int i;
    if (wh->headers_text) { owh_render_compact(w, wh->headers_text); return; }
    PUT(w, "{");
    for (i = 0; wh->headers && i < wh->headers->nelts; ++i) {
        const owh_header_t *h = &APR_ARRAY_IDX(wh->headers, i, owh_header_t);
        if (i) PUT(w, ",");
        render_cstr(w, h->name);
        PUT(w, ":");
        render_cstr(w, h->value);
    }
    PUT(w, "}");
}

void owh_render_webhook(const owh_writer_t *w, const owh_webhook_t *wh, const char *secret, apr_pool_t *p)
{
    int i;
    PUT(w, "{\"id\":");
    render_cstr(w, wh->id);
    if (wh->dialect == OWH_DIALECT_NOTIFICATIONS) {
        PUT(w, ",\"url\":");
        render_cstr(w, wh->url ? owh_url_display(wh->url, p) : "");
        PUT(w, ",\"notificationTypes\":[");
        for (i = 0; wh->types && i < wh->types->nelts; ++i) {
            if (i) PUT(w, ",");
            render_cstr(w, owh_notification_type_name(APR_ARRAY_IDX(wh->types, i, owh_event_e)));
        }
        PUT(w, "],\"headers\":");
        render_headers(w, wh);
        PUT(w, ",\"signed\":");
        render_bool(w, wh->has_secret);
    }
    else {
        PUT(w, ",\"event\":");
        render_cstr(w, wh->event ? wh->event : "");
        PUT(w, ",\"url\":");
        render_cstr(w, wh->url ? owh_url_display(wh->url, p) : "");
        PUT(w, ",\"active\":");
        render_bool(w, wh->active);
        PUT(w, ",\"retryOnError\":");
        render_bool(w, wh->retry_on_error);
        PUT(w, ",\"useContactLanguage\":");
        render_bool(w, wh->use_contact_language);
        PUT(w, ",\"headers\":");
        render_headers(w, wh);
        PUT(w, ",\"capabilities\":[");
        for (i = 0; wh->capabilities && i < wh->capabilities->nelts; ++i) {
            if (i) PUT(w, ",");
            render_cstr(w, APR_ARRAY_IDX(wh->capabilities, i, const char *));
        }
        PUT(w, "],\"signed\":");
        render_bool(w, wh->has_secret);
        PUT(w, ",\"disabledReason\":");
        render_cstr(w, wh->disabled_reason);
        PUT(w, ",\"disabledAt\":");
        render_cstr(w, wh->disabled_at);
    }
    if (secret) {
        PUT(w, ",\"secret\":");
        render_cstr(w, secret);
    }
    PUT(w, "}");
}
