/* owh_payload.c — assembles delivery bodies. See owh_payload.h. */
#include <apr_strings.h>

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

apr_status_t owh_payload_build(const char **pbody, apr_size_t *plen, const owh_webhook_t *wh,
                               const char *event_type, const char *object_json,
                               const json_t *supplier, const json_t *diff, apr_pool_t *p)
{
    json_error_t jerr;
    json_t *body, *object;
    int availability = owh_event_parse(event_type) == OWH_EVENT_AVAILABILITY;

    object = json_loads(object_json, 0, &jerr);
    if (!json_is_object(object)) { json_decref(object); return APR_EINVAL; }
    body = owh_json_pool_own(json_object(), p);
    json_object_set_new(body, "event", json_string(wh->event));
    json_object_set(body, "webhook", owh_webhook_to_json(wh, p));
    if (supplier && json_is_object(supplier)) json_object_set(body, "supplier", (json_t *)supplier);
    else json_object_set_new(body, "supplier", json_object());
    if (availability) {
        /* Ventrata's availability_update carries these beside the object. */
        json_t *v;
        if ((v = json_object_get(object, "productId"))) json_object_set(body, "productId", v);
        if ((v = json_object_get(object, "optionId"))) json_object_set(body, "optionId", v);
    }
    json_object_set_new(body, owh_payload_object_key(event_type), object);
    if (!availability) {
        if (diff) json_object_set(body, "diff", (json_t *)diff);
        else json_object_set_new(body, "diff", json_array());
    }
    *pbody = owh_json_dump(body, plen, p);
    return APR_SUCCESS;
}
