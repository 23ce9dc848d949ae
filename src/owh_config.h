/* owh_config.h — owns the module's configuration: the directive table, defaults,
 * validation and the merge rules across virtual hosts and <Location>s.
 * Every member has an UNSET value, a default applied by owh_config_*_get and a
 * merge rule in owh_config.c; t/config.t checks the documented defaults. */
#ifndef OWH_CONFIG_H
#define OWH_CONFIG_H

#include <httpd.h>
#include <http_config.h>

#define OWH_UNSET_INT  (-1)

typedef enum { OWH_AUTH_UNSET = -1, OWH_AUTH_BEARER = 0, OWH_AUTH_REMOTE_USER = 1 } owh_auth_mode_e;

typedef struct owh_store_t owh_store_t;
typedef struct owh_netguard_t owh_netguard_t;

/* Server (virtual host) scope. */
typedef struct owh_srv_conf_t {
    /* PostgreSQL */
    const char *conninfo;               /* libpq conninfo; "" = libpq defaults */
    int pool_max;                       /* connections per child at most */
    int pool_keep;                      /* idle connections kept per child */
    apr_interval_time_t pool_ttl;       /* idle time before extra ones close */
    apr_interval_time_t pool_wait;      /* how long a request waits for a connection */
    apr_interval_time_t list_cache_ttl; /* a cached list's longest life; 0 = no cache */
    apr_size_t list_cache_size;         /* bytes of cached lists per child */
    int connect_timeout;                /* libpq connect_timeout, seconds */
    int migrate;                        /* On: apply migrations (the owner role); Off: check only */

    /* Delivery (the dispatcher process) */
    int dispatcher;                     /* On/Off */
    int dispatchers;                    /* dispatcher processes per database */
    const char *retry_schedule;         /* "5s 5m 30m 2h 5h 10h 10h" */
    apr_array_header_t *retry_delays;   /* parsed: apr_interval_time_t each */
    apr_interval_time_t deliver_connect_timeout;
    apr_interval_time_t deliver_timeout;
    int max_concurrency;                /* transfers in flight, whole dispatcher */
    int max_per_host;                   /* transfers in flight to one host */
    int batch_size;                     /* deliveries claimed per query */
    apr_interval_time_t lease;          /* claim lease before others may retake it */
    apr_interval_time_t poll_interval;  /* fallback poll when no NOTIFY arrives */
    apr_size_t response_cap;            /* bytes of a response body kept */
    const char *supplier_id, *supplier_name, *supplier_reference, *supplier_website;
    owh_netguard_t *allow_networks;     /* SSRF exceptions; NULL = none */
    const char *allow_networks_text;    /* as written, to compare servers (owh_registry) */
    int webhook_concurrency;            /* in flight per webhook, across hosts */
    int webhook_rate;                   /* deliveries per webhook per second; 0 = no cap */
    apr_interval_time_t max_retry_after;/* bound on an endpoint's Retry-After */
    apr_interval_time_t disable_after;  /* failing this long deactivates a webhook */
    apr_interval_time_t secret_grace;   /* a rotated-out secret keeps signing this long */
    apr_size_t max_payload;             /* larger notifications are not sent */
    int resolve;                        /* bit (1 << owh_event_e): events carrying only an
                                         * identifier, fetched from supplier_api at delivery */
    const char *supplier_api;           /* the supplier's OCTO API base URL, or NULL */
    const char *supplier_api_token;     /* its Bearer token, or NULL */

    /* Bounds per tenant */
    int max_webhooks;                   /* webhooks + subscriptions per connection */
    int trigger_rate;                   /* test notifications per webhook per minute; 0 = no cap */

    /* Operations (owh_ops.c, owh_metrics.c) */
    apr_interval_time_t retention;      /* ended deliveries and their events kept this long */
    const char *operator_url;           /* the supplier's own endpoint for notices, or NULL */
    const char *operator_secret;        /* whsec_...: signs notices, or NULL */

    /* runtime, not configuration */
    apr_array_header_t *handler_locations; /* const char *: the <Location>s with
                                         * SetHandler octo-webhooks that apply here */
    owh_store_t *store;                 /* this child's pool for conninfo */
    struct owh_listcache_t *lists;      /* this child's cache of rendered lists */
    server_rec *s;
} owh_srv_conf_t;

/* Directory (<Location>) scope. */
typedef struct owh_dir_conf_t {
    const char *location;               /* the <Location> path routes are relative to */
    apr_off_t max_body;                 /* request body cap, bytes */
    owh_auth_mode_e auth;               /* bearer tokens or r->user */
} owh_dir_conf_t;

extern const command_rec owh_config_cmds[];

void *owh_config_srv_create(apr_pool_t *p, server_rec *s);
void *owh_config_srv_merge(apr_pool_t *p, void *base, void *add);
void *owh_config_dir_create(apr_pool_t *p, char *dir);
void *owh_config_dir_merge(apr_pool_t *p, void *base, void *add);

/* Applies defaults to every server's config and checks cross-field rules.
 * Runs in check_config so `httpd -t` reports bad values. */
apr_status_t owh_config_finalize(server_rec *s, apr_pool_t *p, apr_pool_t *plog);

/* Finds, in the configuration tree, each <Location> whose section sets the
 * handler (SetHandler octo-webhooks) and records it with the servers it
 * applies to: routes resolve against these bases only. */
void owh_config_find_handler_locations(server_rec *s, apr_pool_t *p);

owh_srv_conf_t *owh_config_srv_get(server_rec *s);
owh_dir_conf_t *owh_config_dir_get(request_rec *r);

/* Parses a whitespace-separated list of durations ("5s 5m 2h 500ms 10") into
 * apr_interval_time_t values. Returns NULL or an error message. */
const char *owh_config_parse_durations(apr_array_header_t **pout, const char *spec, apr_pool_t *p);
const char *owh_config_parse_duration(apr_interval_time_t *pout, const char *spec);



/* Directory settings with their defaults applied. */
apr_off_t owh_config_max_body(const owh_dir_conf_t *dc);
#define owh_config_auth(dc) ((dc)->auth == OWH_AUTH_UNSET ? OWH_AUTH_BEARER : (dc)->auth)
#endif
