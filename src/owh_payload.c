/* owh_payload.c — assembles delivery bodies. See owh_payload.h. */
#include <apr_strings.h>
#include <apr_lib.h>

#include "owh_payload.h"
#include "owh_json.h"

static int json_flag(const json_t *o, const char *key, int def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static const char *json_str(const json_t *o, const char *key, apr_pool_t *p)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? apr_pstrdup(p, json_string_value(v)) : NULL;
}

apr_status_t owh_payload_webhook_parse(owh_webhook_t **pwh, const char *snapshot, apr_pool_t *p)
{
    json_error_t jerr;
    json_t *j = owh_json_pool_own(json_loads(snapshot, 0, &jerr), p), *h, *caps, *v;
    owh_webhook_t *wh;
    const char *key;
    size_t i;

    if (!json_is_object(j)) return APR_EINVAL;
    wh = owh_webhook_make(p);
    wh->id = json_str(j, "id", p);
    wh->event = json_str(j, "event", p);
    wh->url = json_str(j, "url", p);
    if (!wh->id || !wh->event || !wh->url) return APR_EINVAL;
    wh->event_type = owh_event_parse(wh->event);
    wh->active = json_flag(j, "active", 1);
    wh->retry_on_error = json_flag(j, "retryOnError", 1);
    wh->use_contact_language = json_flag(j, "useContactLanguage", 1);
    h = json_object_get(j, "headers");
    json_object_foreach(h, key, v) {
        owh_header_t *hd;
        if (!json_is_string(v)) continue;
        hd = &APR_ARRAY_PUSH(wh->headers, owh_header_t);
        hd->name = apr_pstrdup(p, key);
        hd->value = apr_pstrdup(p, json_string_value(v));
    }
    if ((v = json_object_get(j, "dialect")) && json_is_string(v) && !strcmp(json_string_value(v), "notifications"))
        wh->dialect = OWH_DIALECT_NOTIFICATIONS;
    caps = json_object_get(j, "capabilities");
    json_array_foreach(caps, i, v)
        if (json_is_string(v)) APR_ARRAY_PUSH(wh->capabilities, const char *) = apr_pstrdup(p, json_string_value(v));
    *pwh = wh;
    return APR_SUCCESS;
}

const char *owh_payload_object_key(const char *event_type)
{
    switch (owh_event_parse(event_type)) {
    case OWH_EVENT_BOOKING: return "booking";
    case OWH_EVENT_ORDER: return "order";
    case OWH_EVENT_AVAILABILITY: return "availability";
    case OWH_EVENT_PRODUCT: return "product";
    default: return "object";
    }
}

const char *owh_payload_language_tag(const char *s)
{
    apr_size_t n = s ? strlen(s) : 0;
    if (!n || n > 35
        || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n)
        return NULL;
    return s;
}

const char *owh_payload_contact_language(const json_t *object, apr_pool_t *p)
{
    const json_t *locale = json_array_get(json_object_get(json_object_get(object, "contact"), "locales"), 0);
    if (!json_is_string(locale)) {
        const json_t *first = json_array_get(json_object_get(object, "bookings"), 0);
        locale = json_array_get(json_object_get(json_object_get(first, "contact"), "locales"), 0);
    }
    return json_is_string(locale) ? owh_payload_language_tag(apr_pstrdup(p, json_string_value(locale))) : NULL;
}

/* The octo body's members after "supplier", in owh_payload_build's order,
 * as the text that closes the body: the object and diff are serialized once
 * per event instead of once per delivery (100 webhooks: 100 times). */
static const char *view_tail(const owh_event_view_t *v, apr_pool_t *p)
{
    json_t *t = json_object(), *x;
    const char *s;
    apr_size_t len;
    if (!t) return NULL;
    if (v->type == OWH_EVENT_AVAILABILITY) {
        if ((x = json_object_get(v->object, "productId"))) json_object_set(t, "productId", x);
        if ((x = json_object_get(v->object, "optionId"))) json_object_set(t, "optionId", x);
    }
    json_object_set(t, owh_payload_object_key(owh_event_name(v->type)), v->object);
    if (v->type != OWH_EVENT_AVAILABILITY)
        json_object_set_new(t, "diff", v->diff ? json_incref(v->diff) : json_array());
    s = owh_json_dump(t, &len, p);          /* {"booking":{...},"diff":[...]} */
    json_decref(t);
    return s && len > 2 ? apr_pstrcat(p, ",", s + 1, NULL) : NULL;
}

apr_status_t owh_payload_view_make(owh_event_view_t **pv, const char *event_type, const char *event_id,
                                   const char *event_at, const char *object_json, const char *previous_json,
                                   const char *language, apr_pool_t *p)
{
    json_error_t jerr;
    owh_event_view_t *v = apr_pcalloc(p, sizeof(*v));
    json_t *previous = NULL;

    v->type = owh_event_parse(event_type);
    v->event_id = event_id;
    v->event_at = event_at;
    v->object = owh_json_pool_own(json_loads(object_json, 0, &jerr), p);
    if (!json_is_object(v->object)) return APR_EINVAL;
    owh_diff_strip_card_payments(v->object);
    if (v->type != OWH_EVENT_AVAILABILITY) {
        if (previous_json) {
            previous = owh_json_pool_own(json_loads(previous_json, 0, &jerr), p);
            if (previous) owh_diff_strip_card_payments(previous);
        }
        if (!(v->diff = owh_diff(previous, v->object, p))) return APR_ENOMEM;
    }
    v->language = language && *language ? owh_payload_language_tag(apr_pstrdup(p, language))
                                        : owh_payload_contact_language(v->object, p);
    v->tail = view_tail(v, p);
    *pv = v;
    return APR_SUCCESS;
}

/* "2026-03-01T09:00:00-08:00" -> "2026-03-01" */
static json_t *local_date(const json_t *dt)
{
    const char *s = json_string_value(dt);
    int i;
    if (!s || strlen(s) < 10 || s[4] != '-' || s[7] != '-') return json_null();
    for (i = 0; i < 10; ++i)
        if (i != 4 && i != 7 && !apr_isdigit(s[i])) return json_null();
    return json_stringn(s, 10);
}

static json_t *notification_payload(const owh_event_view_t *v)
{
    const json_t *o = v->object;
    switch (v->type) {
    case OWH_EVENT_BOOKING:
        return json_pack("{s:O}", "uuid", json_object_get(o, "uuid") ? json_object_get(o, "uuid")
                                                                       : json_object_get(o, "id"));
    case OWH_EVENT_PRODUCT:
        return json_pack("{s:O}", "productId", json_object_get(o, "id"));
    case OWH_EVENT_AVAILABILITY: {
        /* an OCTO availability id is its local start ("2025-01-15T09:00:00+01:00") */
        const json_t *start = json_object_get(o, "localDateTimeStart"), *end = json_object_get(o, "localDateTimeEnd");
        if (!start) start = json_object_get(o, "id");
        json_t *pid = json_object_get(o, "productId");
        return json_pack("{s:O, s:o, s:o}", "productId", pid ? pid : json_null(),
                         "localDateStart", local_date(start), "localDateEnd", local_date(end ? end : start));
    }
    default:
        return NULL;
    }
}

apr_status_t owh_payload_build(const char **pbody, apr_size_t *plen, const owh_webhook_t *wh,
                               const owh_event_view_t *v, const json_t *supplier, apr_pool_t *p)
{
    json_t *body = owh_json_pool_own(json_object(), p), *thin;

    if (wh->dialect == OWH_DIALECT_NOTIFICATIONS) {
        if (!(thin = notification_payload(v))) return APR_EINVAL;
        json_object_set_new(body, "type", json_string(owh_notification_type_name(v->type)));
        json_object_set_new(body, "subscriptionId", json_string(wh->id));
        json_object_set_new(body, "eventId", json_string(v->event_id ? v->event_id : ""));
        json_object_set_new(body, "createdAt", v->event_at ? json_string(v->event_at) : json_null());
        json_object_set_new(body, "payload", thin);
        *pbody = owh_json_dump(body, plen, p);
        return APR_SUCCESS;
    }
    json_object_set_new(body, "event", json_string(wh->event));
    json_object_set(body, "webhook", owh_webhook_to_json(wh, p));
    if (supplier && json_is_object(supplier)) json_object_set(body, "supplier", (json_t *)supplier);
    else json_object_set_new(body, "supplier", json_object());
    if (v->type == OWH_EVENT_AVAILABILITY) {
        /* Ventrata's availability_update carries these beside the object. */
        json_t *x;
        if ((x = json_object_get(v->object, "productId"))) json_object_set(body, "productId", x);
        if ((x = json_object_get(v->object, "optionId"))) json_object_set(body, "optionId", x);
    }
    json_object_set(body, owh_payload_object_key(owh_event_name(v->type)), v->object);
    if (v->type != OWH_EVENT_AVAILABILITY)
        json_object_set(body, "diff", v->diff ? v->diff : owh_json_pool_own(json_array(), p));
    *pbody = owh_json_dump(body, plen, p);
    return APR_SUCCESS;
}

const char *owh_payload_head(const owh_webhook_t *wh, apr_pool_t *p)
{
    json_t *ev = json_string(wh->event ? wh->event : "");
    const char *e = ev ? owh_json_dump(ev, NULL, p) : NULL, *w = owh_json_dump(owh_webhook_to_json(wh, p), NULL, p);
    json_decref(ev);
    return e && w ? apr_pstrcat(p, "{\"event\":", e, ",\"webhook\":", w, ",\"supplier\":", NULL) : NULL;
}

const char *owh_payload_supplier_text(const json_t *supplier, apr_pool_t *p)
{
    return supplier && json_is_object(supplier) ? owh_json_dump(supplier, NULL, p) : "{}";
}

apr_status_t owh_payload_build_from(const char **pbody, apr_size_t *plen, const char *head,
                                    const char *supplier_text, const owh_event_view_t *v, apr_pool_t *p)
{
    apr_size_t h, s, t;
    char *b;
    if (!head || !supplier_text || !v->tail) return APR_EINVAL;
    h = strlen(head);
    s = strlen(supplier_text);
    t = strlen(v->tail);
    b = apr_palloc(p, h + s + t + 1);
    memcpy(b, head, h);
    memcpy(b + h, supplier_text, s);
    memcpy(b + h + s, v->tail, t + 1);
    *pbody = b;
    *plen = h + s + t;
    return APR_SUCCESS;
}
