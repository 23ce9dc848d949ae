/* owh_log.h — logging. Every line we write starts with a unique "OWHnnnnn: "
 * tag (like httpd's APLOGNO) so operators can grep for it. Never log secrets,
 * tokens, URLs with credentials, header values or bodies.
 *
 * httpd-side files log with ap_log_error/ap_log_rerror directly. The
 * APR-only parts (core, store, queue) log through this bridge, which the
 * module points at ap_log_error (owh_log_httpd.c), as mod_md's md_log does:
 * a level check first, so trace lines cost nothing when they are off. */
#ifndef OWH_LOG_H
#define OWH_LOG_H

#include <apr_pools.h>

#define OWHLOGNO(n) "OWH" #n ": "

/* Levels are httpd's APLOG_* numbers. */
#define OWH_LOG_ERR      3
#define OWH_LOG_WARNING  4
#define OWH_LOG_NOTICE   5
#define OWH_LOG_INFO     6
#define OWH_LOG_DEBUG    7
#define OWH_LOG_TRACE1   8
#define OWH_LOG_TRACE2   9

typedef int owh_log_level_fn(void *baton, int level);
typedef void owh_log_print_fn(const char *file, int line, int level, apr_status_t rv, void *baton,
                              const char *msg);

/* Installs the bridge (NULL, NULL: logging off, the default). */
void owh_log_set(owh_log_level_fn *level_fn, owh_log_print_fn *print_fn, void *baton);

int owh_log_is_level(int level);

/* Formats and logs when level is on. */
void owh_log_perror(const char *file, int line, int level, apr_status_t rv, apr_pool_t *p,
                    const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define OWH_LOG_MARK __FILE__, __LINE__

#endif
