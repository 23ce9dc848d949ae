/* owh_auth.c — bearer tokens and r->user to connection + abilities.
 * Tokens are compared by SHA-256 only; the plaintext never leaves the process
 * and is never logged. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <httpd.h>
#include <http_log.h>

#include "owh_auth.h"
#include "owh_crypto.h"
#include "owh_log.h"
#include "owh_request.h"

APLOG_USE_MODULE(octo_webhooks);

/* The token after "Bearer ", or NULL if the header is absent or malformed. */
static const char *bearer_token(request_rec *r, int *present)
{
    const char *h = apr_table_get(r->headers_in, "Authorization");
    *present = h != NULL;
    return owh_request_bearer(h);
}

int owh_auth_present(request_rec *r, int remote_user_mode)
{
    int present;
    if (remote_user_mode) return r->user != NULL;
    bearer_token(r, &present);
    return present;
}

static int has_ability(const apr_array_header_t *abilities, owh_ability_e need, const char *family)
{
    /* family: "webhooks" or "notifications"; both families grant the same
     * routes of the webhooks dialect (the seeds name both). */
    const char *want = need == OWH_ABILITY_WRITE ? "octo:write." : "octo:read.";
    int i;
    if (!abilities) return 1;
    for (i = 0; i < abilities->nelts; ++i) {
        const char *a = APR_ARRAY_IDX(abilities, i, const char *);
        apr_size_t wl = strlen(want);
        if (strncmp(a, want, wl)) continue;
        if (!family || !strcmp(a + wl, family)) return 1;
    }
    return 0;
}

owh_auth_result_e owh_auth_check(request_rec *r, int remote_user_mode, owh_db_t *db,
                                 owh_ability_e need, const char *family, owh_caller_t *caller)
{
    const char *token, *connection = NULL;
    apr_array_header_t *abilities = NULL;
    int present;
    apr_status_t rv;

    if (remote_user_mode) {
        if (!r->user || !*r->user) return OWH_AUTH_MISSING;
        if (strlen(r->user) > 200) return OWH_AUTH_INVALID;   /* connections.id limit */
        caller->connection = r->user;
        caller->abilities = NULL;
        return OWH_AUTH_OK;
    }
    token = bearer_token(r, &present);
    if (!present) return OWH_AUTH_MISSING;
    if (!token) return OWH_AUTH_INVALID;
    rv = owh_store_token_lookup(db, owh_crypto_sha256_hex(token, strlen(token), r->pool),
                                &connection, &abilities, r->pool);
    if (rv == APR_NOTFOUND) return OWH_AUTH_INVALID;
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, OWHLOGNO(00301)
                      "token lookup failed: %s", db->errmsg ? db->errmsg : "database unavailable");
        return OWH_AUTH_UNAVAILABLE;
    }
    caller->connection = connection;
    caller->abilities = abilities;
    if (!has_ability(abilities, need, family)) return OWH_AUTH_NO_ABILITY;
    return OWH_AUTH_OK;
}
