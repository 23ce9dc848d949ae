/* owh_webhook.c — the Webhook model: parsing and validating API input,
 * normalizing it, rendering the OCTO Webhook object, and the storage
 * encoding of headers (jsonb). See owh_webhook.h. A little over 500 lines:
 * the model of both dialects (fields, URL, headers, capabilities, types) is
 * one concern, and splitting it would scatter its validation rules. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>

#include "owh_webhook.h"
#include "owh_sign.h"
#include "owh_json.h"

/* ---- events -------------------------------------------------------------- */
static const struct { const char *name; owh_event_e ev; } event_names[] = {
    { "booking_update", OWH_EVENT_BOOKING },           { "booking.updated", OWH_EVENT_BOOKING },
    { "order_update", OWH_EVENT_ORDER },               { "order.updated", OWH_EVENT_ORDER },
    { "availability_update", OWH_EVENT_AVAILABILITY }, { "availability.updated", OWH_EVENT_AVAILABILITY },
    { "product_update", OWH_EVENT_PRODUCT },           { "product.updated", OWH_EVENT_PRODUCT },
    { NULL, OWH_EVENT_NONE }
};

owh_event_e owh_event_parse(const char *name)
{
    int i;
    for (i = 0; name && event_names[i].name; ++i)
        if (!strcmp(name, event_names[i].name)) return event_names[i].ev;
    return OWH_EVENT_NONE;
}

/* Seed 003's names of the same events (no order type). */
static const char *const notification_names[] = {
    NULL, "BOOKING_UPDATE", NULL, "AVAILABILITY_UPDATE", "PRODUCT_UPDATE"    /* by owh_event_e */
};

const char *owh_event_name(owh_event_e ev)
{
    switch (ev) {
    case OWH_EVENT_BOOKING: return "booking_update";
    case OWH_EVENT_ORDER: return "order_update";
    case OWH_EVENT_AVAILABILITY: return "availability_update";
    case OWH_EVENT_PRODUCT: return "product_update";
    default: return NULL;
    }
}

owh_webhook_t *owh_webhook_make(apr_pool_t *p)
{
    owh_webhook_t *wh = apr_pcalloc(p, sizeof(*wh));
    wh->active = wh->retry_on_error = wh->use_contact_language = 1;
    wh->headers = apr_array_make(p, 4, sizeof(owh_header_t));
    wh->capabilities = apr_array_make(p, 4, sizeof(const char *));
    return wh;
}

owh_webhook_t *owh_webhook_copy(const owh_webhook_t *wh, apr_pool_t *p)
{
    owh_webhook_t *c = apr_pmemdup(p, wh, sizeof(*wh));
    int i;
    c->id = apr_pstrdup(p, wh->id);
    c->event = apr_pstrdup(p, wh->event);
    c->url = apr_pstrdup(p, wh->url);
    c->headers_text = apr_pstrdup(p, wh->headers_text);
    c->secret = apr_pstrdup(p, wh->secret);
    c->disabled_reason = apr_pstrdup(p, wh->disabled_reason);
    c->disabled_at = apr_pstrdup(p, wh->disabled_at);
    c->types = wh->types ? apr_array_copy(p, wh->types) : NULL;
    if (wh->headers) {
        c->headers = apr_array_copy(p, wh->headers);
        for (i = 0; i < c->headers->nelts; ++i) {
            owh_header_t *h = &APR_ARRAY_IDX(c->headers, i, owh_header_t);
            h->name = apr_pstrdup(p, h->name);
            h->value = apr_pstrdup(p, h->value);
        }
    }
    if (wh->capabilities) {
        c->capabilities = apr_array_copy(p, wh->capabilities);
        for (i = 0; i < c->capabilities->nelts; ++i)
            APR_ARRAY_IDX(c->capabilities, i, const char *) = apr_pstrdup(p, APR_ARRAY_IDX(c->capabilities, i, const char *));
    }
    return c;
}

/* ---- url ----------------------------------------------------------------- */
apr_status_t owh_url_check(const char *url, const char **perr, apr_pool_t *p)
{
    apr_uri_t uri;
    const char *c;
    apr_size_t n = strlen(url);

    if (!n) { *perr = "url must not be empty"; return APR_EINVAL; }
    if (n > OWH_URL_MAX) {
        *perr = apr_psprintf(p, "url is longer than %d characters", OWH_URL_MAX);
        return APR_EINVAL;
    }
    for (c = url; *c; ++c) {
        unsigned char ch = (unsigned char)*c;
        if (ch <= 0x20 || ch == 0x7f) {
            *perr = "url must not contain spaces or control characters";
            return APR_EINVAL;
        }
        if (ch >= 0x80) {
            *perr = "url must be ASCII (percent-encode other characters)";
            return APR_EINVAL;
        }
    }
    /* apr_uri_parse is lenient about schemes and relative forms: insist on an
     * absolute http(s) URL ourselves. */
    if (strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8)) {
        *perr = "url must be an absolute http or https URL";
        return APR_EINVAL;
    }
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS || !uri.hostname || !*uri.hostname) {
        *perr = "url must name a host";
        return APR_EINVAL;
    }
    if (uri.port_str && *uri.port_str) {
        apr_int64_t port;
        char *end;
        port = apr_strtoi64(uri.port_str, &end, 10);
        if (*end || port < 1 || port > 65535) {
            *perr = "url has an invalid port";
            return APR_EINVAL;
        }
    }
    return APR_SUCCESS;
}

const char *owh_url_display(const char *url, apr_pool_t *p)
{
    const char *auth = strstr(url, "://"), *end, *at = NULL, *c, *colon;
    if (!auth) return url;
    auth += 3;
    end = auth + strcspn(auth, "/?#");
    for (c = auth; c < end; ++c) if (*c == '@') at = c;
    if (!at) return url;
    colon = memchr(auth, ':', at - auth);
    if (colon)   /* keep the user, mask the password */
        return apr_pstrcat(p, apr_pstrmemdup(p, url, colon + 1 - url), "****", at, NULL);
    return apr_pstrcat(p, apr_pstrmemdup(p, url, auth - url), "****", at, NULL);
}

/* ---- headers ------------------------------------------------------------- */
static int is_tchar(unsigned char c)
{
    return apr_isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; ++s) if (!is_tchar((unsigned char)*s)) return 0;
    return 1;
}

/* Headers we set ourselves or that would break the request framing. */
static const char *const reserved_headers[] = {
    "Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Keep-Alive",
    "TE", "Trailer", "Upgrade", "Expect", "Proxy-Connection",
    "webhook-id", "webhook-timestamp", "webhook-signature", NULL
};

apr_status_t owh_header_check(const char *name, const char *value, apr_size_t value_len,
                              const char **perr, apr_pool_t *p)
{
    apr_size_t i;
    int k;
    if (strlen(name) > OWH_HEADER_NAME_MAX || !is_token(name)) {
        *perr = "headers: a header name is not a valid HTTP token";
        return APR_EINVAL;
    }
    for (k = 0; reserved_headers[k]; ++k)
        if (!strcasecmp(name, reserved_headers[k])) {
            *perr = apr_psprintf(p, "headers.%s: this header is set by the module and cannot be configured", name);
            return APR_EINVAL;
        }
    if (value_len > OWH_HEADER_VALUE_MAX) {
        *perr = apr_psprintf(p, "headers.%s: value is longer than %d bytes", name, OWH_HEADER_VALUE_MAX);
        return APR_EINVAL;
    }
    for (i = 0; i < value_len; ++i)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') {
            *perr = apr_psprintf(p, "headers.%s: value must not contain CR, LF or NUL", name);
            return APR_EINVAL;
        }
    return APR_SUCCESS;
}

static apr_status_t headers_from_object(apr_array_header_t **pheaders, const json_t *obj,
                                        const char **perr, apr_pool_t *p)
{
    apr_array_header_t *hs;
    const char *key;
    json_t *v;
    int i;
    apr_status_t rv;

    if (!json_is_object(obj)) { *perr = "headers must be an object of strings"; return APR_EINVAL; }
    if (json_object_size(obj) > OWH_HEADERS_MAX) {
        *perr = apr_psprintf(p, "headers: at most %d headers", OWH_HEADERS_MAX);
        return APR_EINVAL;
    }
    hs = apr_array_make(p, (int)json_object_size(obj) + 1, sizeof(owh_header_t));
    json_object_foreach((json_t *)obj, key, v) {
        owh_header_t *h;
        if (!json_is_string(v)) {
            *perr = is_token(key) && strlen(key) <= OWH_HEADER_NAME_MAX
                  ? apr_psprintf(p, "headers.%s: value must be a string", key)
                  : "headers: every value must be a string";
            return APR_EINVAL;
        }
        if ((rv = owh_header_check(key, json_string_value(v), json_string_length(v), perr, p)) != APR_SUCCESS)
            return rv;
        for (i = 0; i < hs->nelts; ++i)
            if (!strcasecmp(APR_ARRAY_IDX(hs, i, owh_header_t).name, key)) {
                *perr = apr_psprintf(p, "headers.%s: duplicate header name", key);
                return APR_EINVAL;
            }
        h = &APR_ARRAY_PUSH(hs, owh_header_t);
        h->name = apr_pstrdup(p, key);
        h->value = apr_pstrmemdup(p, json_string_value(v), json_string_length(v));
    }
    *pheaders = hs;
    return APR_SUCCESS;
}

/* ---- the request body ---------------------------------------------------- */
static apr_status_t get_bool(int *out, const json_t *body, const char *key, const char **perr,
                             apr_pool_t *p)
{
    const json_t *v = json_object_get(body, key);
    if (!v) return APR_SUCCESS;
    if (!json_is_boolean(v)) {
        *perr = apr_psprintf(p, "%s must be true or false", key);
        return APR_EINVAL;
    }
    *out = json_is_true(v);
    return APR_SUCCESS;
}

/* url: required on create; checked by owh_url_check. */
static apr_status_t get_url(owh_webhook_t *wh, const json_t *body, int create, const char **perr,
                            apr_pool_t *p)
{
    const json_t *v = json_object_get(body, "url");
    if (!v) {
        if (!create) return APR_SUCCESS;
        *perr = "url is required";
        return APR_EINVAL;
    }
    if (!json_is_string(v)) { *perr = "url must be a string"; return APR_EINVAL; }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        *perr = "url must not contain NUL";
        return APR_EINVAL;
    }
    if (owh_url_check(json_string_value(v), perr, p) != APR_SUCCESS) return APR_EINVAL;
    wh->url = apr_pstrdup(p, json_string_value(v));
    return APR_SUCCESS;
}

/* secret (create only): true generates one, "whsec_..." sets it, false or
 * null leaves deliveries unsigned. */
static apr_status_t get_secret(owh_webhook_t *wh, const json_t *body, const char **perr, apr_pool_t *p)
{
    const json_t *v = json_object_get(body, "secret");
    if (!v || json_is_null(v) || json_is_false(v)) return APR_SUCCESS;
    if (json_is_true(v)) {
        if (owh_sign_secret_generate(&wh->secret, p) != APR_SUCCESS) {
            *perr = "a secret could not be generated";
            return APR_EINVAL;
        }
    }
    else if (!json_is_string(v)) { *perr = "secret must be true or a \"whsec_...\" string"; return APR_EINVAL; }
    else if (owh_sign_secret_check(json_string_value(v), perr) != APR_SUCCESS) return APR_EINVAL;
    else wh->secret = apr_pstrdup(p, json_string_value(v));
    wh->has_secret = 1;
    return APR_SUCCESS;
}

/* headers (replacing the stored ones), and on create secret: shared by both
 * dialects. */
static apr_status_t get_headers_secret(owh_webhook_t *wh, const json_t *body, int create, const char **perr,
                                       apr_pool_t *p)
{
    const json_t *v = json_object_get(body, "headers");
    if (v && headers_from_object(&wh->headers, v, perr, p) != APR_SUCCESS) return APR_EINVAL;
    return create ? get_secret(wh, body, perr, p) : APR_SUCCESS;
}

apr_status_t owh_webhook_apply_json(owh_webhook_t *wh, const json_t *body, int create,
                                    const char **perr, apr_pool_t *p)
{
    const json_t *v;
    apr_status_t rv = APR_EINVAL;

    if (!json_is_object(body)) { *perr = "The request body must be a JSON object"; goto leave; }

    if ((v = json_object_get(body, "event"))) {
        owh_event_e ev;
        if (!json_is_string(v)) { *perr = "event must be a string"; goto leave; }
        if ((ev = owh_event_parse(json_string_value(v))) == OWH_EVENT_NONE) {
            *perr = "event must be one of booking_update, order_update, availability_update, "
                    "product_update (or booking.updated, order.updated, availability.updated, "
                    "product.updated)";
            goto leave;
        }
        wh->event = apr_pstrdup(p, json_string_value(v));
        wh->event_type = ev;
    }
    else if (create) { *perr = "event is required"; goto leave; }

    if ((rv = get_url(wh, body, create, perr, p)) != APR_SUCCESS) goto leave;

    if ((rv = get_bool(&wh->retry_on_error, body, "retryOnError", perr, p)) != APR_SUCCESS
        || (rv = get_bool(&wh->use_contact_language, body, "useContactLanguage", perr, p)) != APR_SUCCESS
        || (rv = get_bool(&wh->active, body, "active", perr, p)) != APR_SUCCESS)
        goto leave;

    rv = get_headers_secret(wh, body, create, perr, p);
leave:
    return rv;
}

/* ---- capabilities -------------------------------------------------------- */
static int caps_contains(const apr_array_header_t *caps, const char *c)
{
    int i;
    for (i = 0; i < caps->nelts; ++i) if (!strcmp(APR_ARRAY_IDX(caps, i, const char *), c)) return 1;
    return 0;
}

apr_status_t owh_capabilities_parse(apr_array_header_t **pcaps, const char *hdr,
                                    owh_event_e ev, const char **perr, apr_pool_t *p)
{
    apr_array_header_t *caps = apr_array_make(p, 4, sizeof(const char *));
    char *copy, *item, *last;
    int n = 0;

    if (hdr) {
        copy = apr_pstrdup(p, hdr);
        for (item = apr_strtok(copy, ",", &last); item; item = apr_strtok(NULL, ",", &last)) {
            char *end;
            const char *c, *name;
            ++n;
            while (*item == ' ' || *item == '\t') ++item;
            end = item + strlen(item);
            while (end > item && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
            if (!*item) continue;
            if (strlen(item) > OWH_CAP_MAX) {
                *perr = apr_psprintf(p, "Octo-Capabilities: item %d is longer than %d characters", n, OWH_CAP_MAX);
                return APR_EINVAL;
            }
            for (c = item; *c; ++c)
                if (!(apr_isalnum(*c) || strchr("_./-", *c))) {
                    *perr = apr_psprintf(p, "Octo-Capabilities: item %d is not a capability name", n);
                    return APR_EINVAL;
                }
            name = strchr(item, '/') ? item : apr_pstrcat(p, "octo/", item, NULL);
            if (!strcmp(name, "octo/webhooks") || caps_contains(caps, name)) continue;
            if (caps->nelts >= OWH_CAPS_MAX) {
                *perr = apr_psprintf(p, "Octo-Capabilities: at most %d capabilities", OWH_CAPS_MAX);
                return APR_EINVAL;
            }
            APR_ARRAY_PUSH(caps, const char *) = name;
        }
    }
    /* An order notification is rendered with the cart capability (seed 000). */
    if (ev == OWH_EVENT_ORDER && !caps_contains(caps, "octo/cart"))
        APR_ARRAY_PUSH(caps, const char *) = "octo/cart";
    *pcaps = caps;
    return APR_SUCCESS;
}

/* ---- notifications subscriptions (seed 003) ------------------------------ */
owh_event_e owh_notification_type_parse(const char *name)
{
    int ev;
    for (ev = OWH_EVENT_BOOKING; name && ev <= OWH_EVENT_PRODUCT; ++ev)
        if (notification_names[ev] && !strcasecmp(name, notification_names[ev])) return (owh_event_e)ev;
    return OWH_EVENT_NONE;
}

const char *owh_notification_type_name(owh_event_e ev)
{
    return ev >= OWH_EVENT_BOOKING && ev <= OWH_EVENT_PRODUCT ? notification_names[ev] : NULL;
}

owh_webhook_t *owh_subscription_make(apr_pool_t *p)
{
    owh_webhook_t *wh = owh_webhook_make(p);
    wh->dialect = OWH_DIALECT_NOTIFICATIONS;
    wh->event = "notifications";
    return wh;
}

apr_status_t owh_subscription_apply_json(owh_webhook_t *wh, const json_t *body, int create,
                                         const char **perr, apr_pool_t *p)
{
    const json_t *v, *t;
    apr_status_t rv = APR_EINVAL;
    size_t i;
    int j;

    if (!json_is_object(body)) { *perr = "The request body must be a JSON object"; goto leave; }
    if ((v = json_object_get(body, "notificationTypes"))) {
        apr_array_header_t *types = apr_array_make(p, 3, sizeof(owh_event_e));
        if (!json_is_array(v) || !json_array_size(v)) {
            *perr = "notificationTypes must be a non-empty array of BOOKING_UPDATE, PRODUCT_UPDATE, "
                    "AVAILABILITY_UPDATE";
            goto leave;
        }
        json_array_foreach(v, i, t) {
            owh_event_e ev = json_is_string(t) ? owh_notification_type_parse(json_string_value(t))
                                               : OWH_EVENT_NONE;
            int seen = 0;
            if (ev == OWH_EVENT_NONE) {
                *perr = apr_psprintf(p, "notificationTypes[%" APR_SIZE_T_FMT "] must be one of "
                                     "BOOKING_UPDATE, PRODUCT_UPDATE, AVAILABILITY_UPDATE", i);
                goto leave;
            }
            for (j = 0; j < types->nelts; ++j) seen |= APR_ARRAY_IDX(types, j, owh_event_e) == ev;
            if (!seen) APR_ARRAY_PUSH(types, owh_event_e) = ev;
        }
        wh->types = types;
        wh->event_type = APR_ARRAY_IDX(types, 0, owh_event_e);
    }
    else if (create) { *perr = "notificationTypes is required"; goto leave; }
    if ((rv = get_url(wh, body, create, perr, p)) != APR_SUCCESS) goto leave;
    rv = get_headers_secret(wh, body, create, perr, p);
leave:
    return rv;
}

json_t *owh_subscription_types_json(const owh_webhook_t *wh)
{
    json_t *a = json_array();
    int i;
    for (i = 0; wh->types && i < wh->types->nelts; ++i)
        json_array_append_new(a, json_string(owh_notification_type_name(APR_ARRAY_IDX(wh->types, i, owh_event_e))));
    return a;
}

/* ---- rendering and storage encodings ------------------------------------- */
static json_t *headers_json(const apr_array_header_t *headers)
{
    json_t *o = json_object();
    int i;
    for (i = 0; headers && i < headers->nelts; ++i) {
        const owh_header_t *h = &APR_ARRAY_IDX(headers, i, owh_header_t);
        json_object_set_new(o, h->name, json_string(h->value));
    }
    return o;
}

/* A webhook read only to be shown keeps its headers as the stored text. */
static json_t *webhook_headers_json(const owh_webhook_t *wh)
{
    json_t *o;
    if (!wh->headers_text) return headers_json(wh->headers);
    o = json_loads(wh->headers_text, 0, NULL);
    return json_is_object(o) ? o : (json_decref(o), json_object());
}

json_t *owh_webhook_to_json(const owh_webhook_t *wh, apr_pool_t *p)
{
    json_t *o = json_object(), *caps = json_array();
    int i;
    for (i = 0; wh->capabilities && i < wh->capabilities->nelts; ++i)
        json_array_append_new(caps, json_string(APR_ARRAY_IDX(wh->capabilities, i, const char *)));
    json_object_set_new(o, "id", wh->id ? json_string(wh->id) : json_null());
    json_object_set_new(o, "event", json_string(wh->event ? wh->event : ""));
    json_object_set_new(o, "url", json_string(wh->url ? owh_url_display(wh->url, p) : ""));
    json_object_set_new(o, "active", json_boolean(wh->active));
    json_object_set_new(o, "retryOnError", json_boolean(wh->retry_on_error));
    json_object_set_new(o, "useContactLanguage", json_boolean(wh->use_contact_language));
    json_object_set_new(o, "headers", webhook_headers_json(wh));
    json_object_set_new(o, "capabilities", caps);
    return owh_json_pool_own(o, p);
}

json_t *owh_webhook_to_api_json(const owh_webhook_t *wh, apr_pool_t *p)
{
    json_t *o;
    if (wh->dialect == OWH_DIALECT_NOTIFICATIONS) {
        /* seed 003's Subscription: id, url, notificationTypes (+ headers) */
        o = owh_json_pool_own(json_object(), p);
        json_object_set_new(o, "id", wh->id ? json_string(wh->id) : json_null());
        json_object_set_new(o, "url", json_string(wh->url ? owh_url_display(wh->url, p) : ""));
        json_object_set_new(o, "notificationTypes", owh_subscription_types_json(wh));
        json_object_set_new(o, "headers", webhook_headers_json(wh));
        json_object_set_new(o, "signed", json_boolean(wh->has_secret));
        return o;
    }
    o = owh_webhook_to_json(wh, p);
    json_object_set_new(o, "signed", json_boolean(wh->has_secret));
    json_object_set_new(o, "disabledReason", wh->disabled_reason ? json_string(wh->disabled_reason) : json_null());
    json_object_set_new(o, "disabledAt", wh->disabled_at ? json_string(wh->disabled_at) : json_null());
    return o;
}

const char *owh_headers_to_json_text(const apr_array_header_t *headers, apr_pool_t *p)
{
    apr_size_t len;
    json_t *o = owh_json_pool_own(headers_json(headers), p);
    return owh_json_dump(o, &len, p);
}

apr_status_t owh_headers_from_json_text(apr_array_header_t **pheaders, const char *text, apr_pool_t *p)
{
    json_error_t jerr;
    json_t *o = owh_json_pool_own(json_loads(text, 0, &jerr), p), *v;
    apr_array_header_t *hs;
    const char *key;
    if (!json_is_object(o)) return APR_EINVAL;
    hs = apr_array_make(p, (int)json_object_size(o) + 1, sizeof(owh_header_t));
    json_object_foreach(o, key, v) {
        owh_header_t *h;
        if (!json_is_string(v)) return APR_EINVAL;
        h = &APR_ARRAY_PUSH(hs, owh_header_t);
        h->name = apr_pstrdup(p, key);
        h->value = apr_pstrmemdup(p, json_string_value(v), json_string_length(v));
    }
    *pheaders = hs;
    return APR_SUCCESS;
}

int owh_uuid_valid(const char *s)
{
    int i;
    if (!s || strlen(s) != 36) return 0;
    for (i = 0; i < 36; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) { if (s[i] != '-') return 0; }
        else if (!apr_isxdigit(s[i])) return 0;
    }
    return 1;
}

int owh_iso8601_valid(const char *s)
{
    /* d: digit; everything else literal */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    int i, mon, day, hh, mm, ss;
    if (!s) return 0;
    for (i = 0; shape[i]; ++i)
        if (shape[i] == 'd' ? !apr_isdigit(s[i]) : s[i] != shape[i]) return 0;
    mon = atoi(s + 5); day = atoi(s + 8); hh = atoi(s + 11); mm = atoi(s + 14); ss = atoi(s + 17);
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return 0;
    s += i;
    if (*s == '.') {
        int n = 0;
        for (++s; apr_isdigit(*s); ++s) ++n;
        if (n < 1 || n > 9) return 0;
    }
    if (*s == 'Z') return s[1] == '\0';
    if ((*s == '+' || *s == '-') && apr_isdigit(s[1]) && apr_isdigit(s[2]) && s[3] == ':'
        && apr_isdigit(s[4]) && apr_isdigit(s[5]) && s[6] == '\0')
        return atoi(s + 1) <= 14 && atoi(s + 4) <= 59;
    return 0;
}
