/* owh_log_httpd.c — points the APR-only parts' log bridge (owh_log.h) at
 * httpd's error log of one server, honouring LogLevel octo_webhooks:... */
#include <httpd.h>
#include <http_log.h>

#include "owh_log.h"
#include "owh_log_httpd.h"

APLOG_USE_MODULE(octo_webhooks);

static int level_on(void *baton, int level)
{
    return APLOG_IS_LEVEL((server_rec *)baton, level);
}

static void print(const char *file, int line, int level, apr_status_t rv, void *baton, const char *msg)
{
    ap_log_error(file, line, APLOG_MODULE_INDEX, level, rv, (server_rec *)baton, "%s", msg);
}

void owh_log_httpd_install(server_rec *s)
{
    owh_log_set(level_on, print, s);
}
