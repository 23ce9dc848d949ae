/* libFuzzer target: values from outside that the dispatcher and the API
 * parse on their own — an endpoint's Retry-After (delay-seconds or an
 * HTTP-date: owh_outcome_retry_after, which owh_deliver_retry_after names)
 * and its answer's bytes made text for the attempt log
 * (owh_outcome_clean_text), and a reseller's webhook URL (the model's check,
 * its masked display, and the SSRF guard's literal-address check). Input: the Retry-After value, a NUL, the URL. Build and run:
 * fuzz/run. */
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <stdint.h>
#include <string.h>

#include "owh_outcome.h"
#include "owh_netguard.h"
#include "owh_webhook.h"

static apr_pool_t *root;
static owh_netguard_t *allow;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const uint8_t *nul = memchr(data, 0, size);
    const char *ra, *url, *err = NULL, *shown, *text;
    apr_interval_time_t d = -1, max = apr_time_from_sec(3600);
    apr_time_t now = apr_time_from_sec(1795000000);

    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
        allow = owh_netguard_make(root);
        owh_netguard_allow(allow, "10.0.0.0/8", root);
        owh_netguard_allow(allow, "fd00::/8", root);
    }
    apr_pool_create(&p, root);
    ra = apr_pstrmemdup(p, (const char *)data, nul ? (apr_size_t)(nul - data) : size);
    url = nul ? apr_pstrmemdup(p, (const char *)nul + 1, size - (nul - data) - 1) : ra;

    if (owh_outcome_retry_after(ra, now, max, &d) == APR_SUCCESS && (d < 0 || d > max)) __builtin_trap();
    owh_outcome_retry_after(ra, now, 0, &d);
    text = owh_outcome_clean_text((const char *)data, size, p);
    if (strlen(text) != size) __builtin_trap();        /* no NUL survives, nothing is lost */

    if (owh_url_check(url, &err, p) == APR_SUCCESS) {
        shown = owh_url_display(url, p);
        /* the display form is a URL too, and never shows a password */
        if (owh_url_check(shown, &err, p) != APR_SUCCESS) __builtin_trap();
        owh_netguard_check_url(NULL, url, p);
        owh_netguard_check_url(allow, url, p);
    }
    owh_netguard_check_url(NULL, url, p);
    apr_pool_destroy(p);
    return 0;
}
