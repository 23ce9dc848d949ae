/* owh_trigger.c — sample objects for the trigger route. See owh_trigger.h. */
#include <apr_strings.h>
#include <apr_uuid.h>

#include "owh_trigger.h"
#include "owh_json.h"

static const char *new_uuid(apr_pool_t *p)
{
    apr_uuid_t u;
    char *buf = apr_palloc(p, APR_UUID_FORMATTED_LENGTH + 1);
    apr_uuid_get(&u);
    apr_uuid_format(buf, &u);
    return buf;
}

/* The optional string field key, or an error when present with another type. */
static int opt_string(const json_t *body, const char *key, const char **out, const char **perr,
                      apr_pool_t *p)
{
    const json_t *v = body ? json_object_get(body, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v)) return 1;
    if (!json_is_string(v) || json_string_length(v) > 256) {
        *perr = apr_psprintf(p, "%s must be a string of at most 256 characters", key);
        return 0;
    }
    *out = json_string_value(v);
    return 1;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *owh_trigger_objects(owh_event_e ev, const json_t *body, const char **perr, apr_pool_t *p)
{
    const char *product = NULL, *option = NULL, *reference = NULL, *mobile = NULL;
    const char *order_state = NULL, *product_state = NULL;
    const json_t *ids = body ? json_object_get(body, "availabilityIds") : NULL;
    const json_t *units = body ? json_object_get(body, "units") : NULL, *v;
    json_t *out = owh_json_pool_own(json_array(), p), *booking;
    size_t i;

    if (!opt_string(body, "productId", &product, perr, p) || !opt_string(body, "optionId", &option, perr, p)
        || !opt_string(body, "reference", &reference, perr, p) || !opt_string(body, "mobile", &mobile, perr, p)
        || !opt_string(body, "orderRecordState", &order_state, perr, p)
        || !opt_string(body, "productRecordState", &product_state, perr, p))
        return NULL;
    if (ids && !json_is_null(ids)) {
        if (!json_is_array(ids) || json_array_size(ids) > 100) {
            *perr = "availabilityIds must be an array of at most 100 strings";
            return NULL;
        }
        json_array_foreach(ids, i, v)
            if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 256) {
                *perr = "availabilityIds must be an array of non-empty strings";
                return NULL;
            }
    }
    else ids = NULL;
    if (units && !json_is_null(units) && !json_is_array(units)) {
        *perr = "units must be an array";
        return NULL;
    }

    switch (ev) {
    case OWH_EVENT_BOOKING:
    case OWH_EVENT_ORDER:
        booking = json_pack("{s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:{s:o}}",
            "uuid", new_uuid(p), "testMode", 1, "status", "CONFIRMED",
            "supplierReference", str_or_null(reference), "resellerReference", json_null(),
            "productId", str_or_null(product), "optionId", str_or_null(option),
            "availabilityId", ids ? json_incref(json_array_get(ids, 0)) : json_null(),
            "contact", "phoneNumber", str_or_null(mobile));
        if (ev == OWH_EVENT_BOOKING) json_array_append_new(out, booking);
        else json_array_append_new(out, json_pack("{s:s, s:b, s:s, s:o, s:[o]}",
            "id", new_uuid(p), "testMode", 1, "status", order_state ? order_state : "CONFIRMED",
            "supplierReference", str_or_null(reference), "bookings", booking));
        break;
    case OWH_EVENT_PRODUCT:
        if (!product) { *perr = "productId is required to trigger a product_update"; return NULL; }
        json_array_append_new(out, json_pack("{s:s, s:s}", "id", product,
                                             "status", product_state ? product_state : "ACTIVE"));
        break;
    case OWH_EVENT_AVAILABILITY:
        if (!ids || !json_array_size(ids)) {
            *perr = "availabilityIds is required to trigger an availability_update";
            return NULL;
        }
        json_array_foreach(ids, i, v) {
            json_t *a = json_pack("{s:O, s:o, s:o, s:O, s:s, s:b}", "id", v,
                "productId", str_or_null(product), "optionId", str_or_null(option),
                "localDateTimeStart", v, "status", "AVAILABLE", "available", 1);
            if (units && json_is_array(units)) json_object_set(a, "units", (json_t *)units);
            json_array_append_new(out, a);
        }
        break;
    default:
        *perr = "the webhook's event cannot be triggered";
        return NULL;
    }
    return out;
}
