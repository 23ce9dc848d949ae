/* tap.h — a minimal TAP producer for the C unit tests. */
#ifndef OWH_TAP_H
#define OWH_TAP_H
#include <stdio.h>
#include <string.h>

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

static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}
#endif
