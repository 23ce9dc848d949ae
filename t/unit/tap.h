/* tap.h — a minimal TAP producer for the C unit tests. */
#ifndef OWH_TAP_H
#define OWH_TAP_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_pools.h>

static int tap_n, tap_failed;

static void tap_ok(int cond, const char *name)
{
    printf("%sok %d - %s\n", cond ? "" : "not ", ++tap_n, name);
    if (!cond) tap_failed++;
}

static void tap_is_str(const char *got, const char *want, const char *name)
{
    int same = (got && want) ? !strcmp(got, want) : got == want;
    tap_ok(same, name);
    if (!same) printf("#   got: '%s'\n#   expected: '%s'\n", got ? got : "(null)", want ? want : "(null)");
}

/* A tagged pool under parent (NULL: a root one); bails out when it cannot. */
static apr_pool_t *tap_pool(apr_pool_t *parent, const char *tag)
{
    apr_pool_t *p = NULL;
    if (apr_pool_create(&p, parent) != APR_SUCCESS) {
        printf("Bail out! cannot create pool %s\n", tag);
        exit(1);
    }
    apr_pool_tag(p, tag);
    return p;
}

static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}
#endif
