/* owh_webhook.h — the Webhook model: parse and validate API input (event, url,
 * booleans, headers, capabilities), normalize it, and render the OCTO Webhook
 * object. Pure APR + jansson: no httpd, no database; unit-tested in t/unit. */
#ifndef OWH_WEBHOOK_H
#define OWH_WEBHOOK_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

/* Limits on what a client may store (documented in README). */
#define OWH_URL_MAX          2048
#define OWH_HEADERS_MAX      32      /* custom headers per webhook */
#define OWH_HEADER_NAME_MAX  128
#define OWH_HEADER_VALUE_MAX 4096
#define OWH_CAPS_MAX         32
#define OWH_CAP_MAX          64

typedef enum {
    OWH_EVENT_NONE = 0,
    OWH_EVENT_BOOKING,        /* booking_update | booking.updated */
    OWH_EVENT_ORDER,          /* order_update | order.updated */
    OWH_EVENT_AVAILABILITY,   /* availability_update | availability.updated */
    OWH_EVENT_PRODUCT         /* product_update | product.updated */
} owh_event_e;

/* Parses either spelling; OWH_EVENT_NONE if unknown. */
owh_event_e owh_event_parse(const char *name);
/* The canonical underscore name ("booking_update"), NULL for NONE. */
const char *owh_event_name(owh_event_e ev);

/* Two dialects of one stored object: an octo/webhooks Webhook (one event),
 * or a seed-003 notifications subscription (several types, thin payloads). */
typedef enum { OWH_DIALECT_OCTO = 0, OWH_DIALECT_NOTIFICATIONS } owh_dialect_e;

typedef struct owh_header_t {
    const char *name;
    const char *value;
} owh_header_t;

typedef struct owh_webhook_t {
    const char *id;                  /* uuid text; NULL until stored */
    owh_dialect_e dialect;
    apr_array_header_t *types;       /* owh_event_e: a subscription's notificationTypes */
    const char *event;               /* as the client spelled it */
    owh_event_e event_type;
    const char *url;                 /* as given, credentials included */
    int active;
    int retry_on_error;
    int use_contact_language;
    apr_array_header_t *headers;     /* owh_header_t, in the client's order */
    const char *headers_text;        /* read only to be shown: the stored JSON text, headers unparsed */
    apr_array_header_t *capabilities;/* const char *, normalized, de-duplicated */
    /* state shown by the API (not part of the payload's Webhook object) */
    const char *secret;              /* create only: the whsec_ secret to store, or NULL */
    int has_secret;                  /* deliveries are signed */
    const char *disabled_reason;     /* why the module deactivated it, or NULL */
    const char *disabled_at;         /* ISO 8601, or NULL */
} owh_webhook_t;

/* A webhook with the API defaults: active, retryOnError and
 * useContactLanguage true, no headers, no capabilities. */
owh_webhook_t *owh_webhook_make(apr_pool_t *p);

/* A deep copy of wh into p (strings, headers, capabilities, types). */
owh_webhook_t *owh_webhook_copy(const owh_webhook_t *wh, apr_pool_t *p);

/* Applies a request body to wh. create != 0: event and url are required;
 * create == 0 (PATCH): every field optional, absent fields keep wh's values.
 * On create, "secret": true generates a signing secret and a "whsec_..."
 * string sets one (wh->secret); false or null: unsigned.
 * Unknown fields and "capabilities"/"id" in the body are ignored. On a bad
 * value returns APR_EINVAL, leaves *perr with a message naming the field (and
 * never echoing a URL's credentials or a header value), and wh may be partly
 * updated (callers discard it). */
apr_status_t owh_webhook_apply_json(owh_webhook_t *wh, const json_t *body, int create,
                                    const char **perr, apr_pool_t *p);

/* Notification types (seed 003): BOOKING_UPDATE, PRODUCT_UPDATE,
 * AVAILABILITY_UPDATE, parsed in any case; OWH_EVENT_NONE if unknown. */
owh_event_e owh_notification_type_parse(const char *name);
const char *owh_notification_type_name(owh_event_e ev);

/* A subscription with the defaults (active, no headers). */
owh_webhook_t *owh_subscription_make(apr_pool_t *p);

/* Applies a subscription body: url, notificationTypes (required on create;
 * de-duplicated, first order kept), headers, and on create secret, checked as
 * for webhooks. Unknown fields are ignored. APR_EINVAL with *perr. */
apr_status_t owh_subscription_apply_json(owh_webhook_t *wh, const json_t *body, int create,
                                         const char **perr, apr_pool_t *p);

/* notificationTypes as the API answers them (uppercase); a new reference. */
json_t *owh_subscription_types_json(const owh_webhook_t *wh);

/* Validates an absolute http(s) URL: <= OWH_URL_MAX, no whitespace or control
 * characters, scheme http/https, a non-empty host, a valid port; user:pass@
 * allowed. APR_SUCCESS or APR_EINVAL with *perr. */
apr_status_t owh_url_check(const char *url, const char **perr, apr_pool_t *p);

/* The URL as shown to clients: a password in the userinfo is replaced by four
 * asterisks ("user:" + "****" + "@host"); a userinfo without a password is
 * replaced whole by the four asterisks; a URL without userinfo is unchanged. */
const char *owh_url_display(const char *url, apr_pool_t *p);

/* Header checks: name an RFC 9110 token <= OWH_HEADER_NAME_MAX, not one we set
 * ourselves (Host, Content-Length, Content-Type, Transfer-Encoding, Connection,
 * and the hop-by-hop and webhook-* signature headers), value without CR, LF or
 * NUL and <= OWH_HEADER_VALUE_MAX. */
apr_status_t owh_header_check(const char *name, const char *value, apr_size_t value_len,
                              const char **perr, apr_pool_t *p);

/* Octo-Capabilities header -> normalized list: items split on ',', trimmed,
 * empty items skipped, short names prefixed "octo/", octo/webhooks dropped,
 * de-duplicated keeping first order; "octo/cart" appended for ORDER events.
 * hdr may be NULL (no capabilities). APR_EINVAL with *perr on a malformed item
 * (characters outside [A-Za-z0-9_./-], too long, too many). */
apr_status_t owh_capabilities_parse(apr_array_header_t **pcaps, const char *hdr,
                                    owh_event_e ev, const char **perr, apr_pool_t *p);

/* The OCTO Webhook object: id, event, url (display form), active,
 * retryOnError, useContactLanguage, headers, capabilities. Owned by p. */
json_t *owh_webhook_to_json(const owh_webhook_t *wh, apr_pool_t *p);

/* The object as the API answers it. A subscription: id, url (display form),
 * notificationTypes, headers, signed. A webhook: owh_webhook_to_json plus
 * "signed" (deliveries carry webhook-signature), "disabledReason" and
 * "disabledAt" (null unless the module deactivated it: 410, auto-disable). */
json_t *owh_webhook_to_api_json(const owh_webhook_t *wh, apr_pool_t *p);

/* Headers <-> JSON object text (for storage as jsonb). */
const char *owh_headers_to_json_text(const apr_array_header_t *headers, apr_pool_t *p);
apr_status_t owh_headers_from_json_text(apr_array_header_t **pheaders, const char *text, apr_pool_t *p);


/* 1 if s is an ISO 8601 date-time with a zone: YYYY-MM-DDTHH:MM:SS, optional
 * fraction, then Z or +HH:MM / -HH:MM. */
int owh_iso8601_valid(const char *s);

/* 1 if s is a UUID in canonical 8-4-4-4-12 hex form (any case). */
int owh_uuid_valid(const char *s);

#endif
