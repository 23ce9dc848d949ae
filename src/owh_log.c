/* owh_log.c — the log bridge of the APR-only parts. See owh_log.h. */
#include <apr_strings.h>

#include "owh_log.h"

static owh_log_level_fn *log_level;
static owh_log_print_fn *log_print;
static void *log_baton;

void owh_log_set(owh_log_level_fn *level_fn, owh_log_print_fn *print_fn, void *baton)
{
    log_level = level_fn;
    log_print = print_fn;
    log_baton = baton;
}

int owh_log_is_level(int level)
{
    return log_level && log_print && log_level(log_baton, level);
}

void owh_log_perror(const char *file, int line, int level, apr_status_t rv, apr_pool_t *p,
                    const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    if (!owh_log_is_level(level)) return;
    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    log_print(file, line, level, rv, log_baton, msg);
}
