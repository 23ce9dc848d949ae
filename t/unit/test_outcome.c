/* Unit tests of an attempt's outcome (src/owh_outcome.c) and of the signed
 * headers of a delivery (owh_sign_headers), TAP output. */
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_date.h>

#include "tap.h"
#include "owh_outcome.h"
#include "owh_sign.h"
#include "owh_webhook.h"

static owh_result_t *attempt(apr_pool_t *p, int n, int code, const char *error)
{
    owh_result_t *r = apr_pcalloc(p, sizeof(*r));
    r->attempt = n;
    r->status_code = code;
    r->error = error;
    return r;
}

static const char *header(const apr_array_header_t *h, const char *name)
{
    int i;
    for (i = 0; i < h->nelts; ++i)
        if (!strcmp(APR_ARRAY_IDX(h, i, owh_header_t).name, name)) return APR_ARRAY_IDX(h, i, owh_header_t).value;
    return NULL;
}

int main(void)
{
    apr_pool_t *p;
    apr_array_header_t *delays, *h;
    owh_outcome_policy_t pol;
    owh_result_t *r;
    apr_interval_time_t d;
    apr_time_t now;
    const char *sec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    char date[APR_RFC822_DATE_LEN];

    apr_initialize();
    p = tap_pool(NULL, "test_outcome");
    now = apr_time_from_sec(1700000000);
    delays = apr_array_make(p, 2, sizeof(apr_interval_time_t));
    APR_ARRAY_PUSH(delays, apr_interval_time_t) = apr_time_from_sec(5);
    APR_ARRAY_PUSH(delays, apr_interval_time_t) = apr_time_from_sec(300);
    memset(&pol, 0, sizeof(pol));
    pol.delays = delays;
    pol.retry_on_error = 1;
    pol.sendable = 1;
    pol.max_retry_after = apr_time_from_sec(3600);
    pol.now = now;
    pol.jitter = 0.5;                   /* the middle: exactly the schedule */

    r = attempt(p, 1, 204, NULL);
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->outcome == OWH_OUTCOME_SUCCEEDED && !r->error && !r->gone, "2xx succeeds");
    r = attempt(p, 1, 500, NULL);
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->outcome == OWH_OUTCOME_RETRY && r->retry_in == apr_time_from_sec(5), "500 on attempt 1: retry after the first delay");
    tap_is_str(r->error, "HTTP 500", "the error says the status");
    r = attempt(p, 2, 0, "connection refused");
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->outcome == OWH_OUTCOME_RETRY && r->retry_in == apr_time_from_sec(300), "a transport error on attempt 2: the second delay");
    tap_is_str(r->error, "connection refused", "the transport error is kept");
    r = attempt(p, 3, 500, NULL);
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->outcome == OWH_OUTCOME_FAILED, "past the schedule: failed");
    pol.jitter = 0.0;
    r = attempt(p, 1, 500, NULL);
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->retry_in == apr_time_from_sec(4), "jitter 0: -20%");
    pol.jitter = 0.999999;
    r = attempt(p, 1, 500, NULL);
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->retry_in < apr_time_from_sec(6) && r->retry_in > apr_time_from_msec(5990), "jitter ~1: +20%");
    pol.jitter = 0.5;
    r = attempt(p, 1, 410, NULL);
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->outcome == OWH_OUTCOME_FAILED && r->gone, "410: failed and gone");
    r = attempt(p, 1, 0, "x");
    r->status_code = 410;
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(!r->gone, "a transport error is never 'gone'");
    pol.retry_on_error = 0;
    r = attempt(p, 1, 500, NULL);
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->outcome == OWH_OUTCOME_FAILED, "retryOnError false: failed at once");
    pol.retry_on_error = 1;
    pol.sendable = 0;
    r = attempt(p, 1, 0, "the payload could not be built");
    owh_outcome_decide(r, &pol, NULL, p);
    tap_ok(r->outcome == OWH_OUTCOME_FAILED, "unsendable: failed at once");
    pol.sendable = 1;
    r = attempt(p, 1, 503, NULL);
    owh_outcome_decide(r, &pol, "120", p);
    tap_ok(r->outcome == OWH_OUTCOME_RETRY && r->retry_in == apr_time_from_sec(120), "503 + Retry-After: 120 s");
    r = attempt(p, 1, 429, NULL);
    owh_outcome_decide(r, &pol, "999999999999", p);
    tap_ok(r->retry_in == apr_time_from_sec(3600), "Retry-After is bounded by the maximum");
    r = attempt(p, 1, 500, NULL);
    owh_outcome_decide(r, &pol, "120", p);
    tap_ok(r->retry_in == apr_time_from_sec(5), "Retry-After counts only with 429/503");
    r = attempt(p, 1, 429, NULL);
    owh_outcome_decide(r, &pol, "soon", p);
    tap_ok(r->retry_in == apr_time_from_sec(5), "an unreadable Retry-After: the schedule");
    apr_rfc822_date(date, now + apr_time_from_sec(60));
    tap_ok(owh_outcome_retry_after(date, now, apr_time_from_sec(3600), &d) == APR_SUCCESS
           && d == apr_time_from_sec(60), "Retry-After as an HTTP-date");
    apr_rfc822_date(date, now - apr_time_from_sec(60));
    tap_ok(owh_outcome_retry_after(date, now, apr_time_from_sec(3600), &d) == APR_SUCCESS && d == 0,
           "a date in the past: now");
    tap_ok(owh_outcome_retry_after("", now, 1, &d) == APR_EINVAL && owh_outcome_retry_after(NULL, now, 1, &d) == APR_EINVAL,
           "empty or missing: not a Retry-After");

    tap_is_str(owh_outcome_clean_text("ok\xc3\xa9", 4, p), "ok\xc3\xa9", "valid UTF-8 is kept");
    tap_is_str(owh_outcome_clean_text("a\0b\xff\xc0\x80z", 7, p), "a?b???z", "NUL, invalid and overlong bytes become '?'");
    tap_is_str(owh_outcome_clean_text("\xe2\x82", 2, p), "??", "a truncated sequence becomes '?'");

    h = apr_array_make(p, 4, sizeof(owh_header_t));
    tap_ok(owh_sign_headers(h, "d-1", apr_time_from_sec(1614265330), NULL, NULL, "{}", 2, p) == APR_SUCCESS,
           "headers without a secret");
    tap_is_str(header(h, "webhook-id"), "msg_d-1", "webhook-id is msg_<delivery>");
    tap_is_str(header(h, "webhook-timestamp"), "1614265330", "webhook-timestamp in seconds");
    tap_ok(!header(h, "webhook-signature"), "no secret, no signature");
    h = apr_array_make(p, 4, sizeof(owh_header_t));
    owh_sign_headers(h, "p5jXN8AQM9LWM0D4loKWxJek", apr_time_from_sec(1614265330), sec, NULL,
                     "{\"test\": 2432232314}", 20, p);
    tap_is_str(header(h, "webhook-signature"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
               "signed: the Standard Webhooks reference vector");
    h = apr_array_make(p, 4, sizeof(owh_header_t));
    owh_sign_headers(h, "p5jXN8AQM9LWM0D4loKWxJek", apr_time_from_sec(1614265330), sec, sec,
                     "{\"test\": 2432232314}", 20, p);
    tap_is_str(header(h, "webhook-signature"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
               "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "during a rotation both secrets sign");
    h = apr_array_make(p, 4, sizeof(owh_header_t));
    tap_ok(owh_sign_headers(h, "d", now, "whsec_bad", NULL, "{}", 2, p) == APR_EINVAL, "a malformed secret is refused");

    apr_pool_destroy(p);
    apr_terminate();
    return tap_done();
}
