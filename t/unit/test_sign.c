/* Unit tests of Standard Webhooks signing (src/owh_sign.c), TAP output. The
 * first vector is the Standard Webhooks reference's own. */
#include <apr_general.h>
#include <apr_strings.h>

#include "tap.h"
#include "owh_sign.h"

int main(void)
{
    apr_pool_t *p;
    const char *err = NULL, *s1 = NULL, *s2 = NULL, *body = "{\"test\": 2432232314}";
    int i;
    static const char *bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",               /* no prefix */
        "whsec_", "whsec_abc", "whsec_AAAA",              /* too short */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",         /* not base64 */
        "whsec_MfKQ9r8GKYqrTwjUPD8I=PZIo2LaLaSw",         /* '=' inside */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwx",        /* length not a multiple of 4 */
        NULL };

    apr_initialize();
    p = tap_pool(NULL, "test_sign");

    tap_is_str(owh_sign_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                  "1614265330", body, strlen(body), p),
               "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "the reference vector");
    tap_ok(strcmp(owh_sign_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                     "1614265331", body, strlen(body), p),
                  "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0, "another timestamp, another signature");
    tap_ok(owh_sign_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &err) == APR_SUCCESS,
           "the reference secret (24 bytes) is accepted");
    for (i = 0; bad[i]; ++i) {
        err = NULL;
        tap_ok(owh_sign_secret_check(bad[i], &err) == APR_EINVAL && err, apr_psprintf(p, "refused: %s", bad[i]));
        tap_ok(owh_sign_signature(bad[i], "m", "1", "x", 1, p) == NULL, apr_psprintf(p, "no signature with %s", bad[i]));
    }
    tap_ok(owh_sign_secret_generate(&s1, p) == APR_SUCCESS && owh_sign_secret_generate(&s2, p) == APR_SUCCESS,
           "secrets are generated");
    tap_ok(s1 && s2 && strcmp(s1, s2) != 0, "two secrets differ");
    tap_ok(s1 && !strncmp(s1, "whsec_", 6) && strlen(s1) == 6 + 44, "whsec_ + base64 of 32 bytes");
    tap_ok(owh_sign_secret_check(s1, &err) == APR_SUCCESS, "a generated secret passes the check");
    /* a body with NUL bytes is signed whole */
    tap_ok(strcmp(owh_sign_signature(s1, "m", "1", "a\0b", 3, p), owh_sign_signature(s1, "m", "1", "a\0c", 3, p)) != 0,
           "the whole body is signed, NULs included");

    apr_pool_destroy(p);
    apr_terminate();
    return tap_done();
}
