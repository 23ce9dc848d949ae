/* Unit tests of the SSRF guard (src/owh_netguard.c), TAP output. */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <apr_general.h>

#include "owh_netguard.h"
#include "tap.h"

static const char *check(const owh_netguard_t *g, const char *ip)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    memset(&in4, 0, sizeof(in4));
    memset(&in6, 0, sizeof(in6));
    if (inet_pton(AF_INET, ip, &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        return owh_netguard_check(g, (struct sockaddr *)&in4);
    }
    inet_pton(AF_INET6, ip, &in6.sin6_addr);
    in6.sin6_family = AF_INET6;
    return owh_netguard_check(g, (struct sockaddr *)&in6);
}

int main(void)
{
    apr_pool_t *p;
    owh_netguard_t *g;
    static const char *refused[] = {
        "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1", "239.255.255.250",
        "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "198.51.100.7", "203.0.113.9",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
        "::127.0.0.1",
        /* the IANA special-purpose registries (issue 12, #8) */
        "64:ff9b:1::1", "64:ff9b:1:ffff::a00:1", "::0.0.0.2", "::8.8.8.8", "::2",
        "::ffff:0.0.0.0", "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe", "3fff::1", "3fff:fff:ffff::1",
        "5f00::1", "5f00:ffff::1", "100::1", "100:0:0:1::1", "64:ff9b::7f00:1", "2001:2::1", NULL };
    static const char *passed[] = {
        "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "169.253.0.1",
        "2606:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::808:808",
        "::ffff:0:808:808", "3ffe::1", "4000::1", "5eff::1", "5f01::1", "64:ff9b:2::1", NULL };
    const char **ip;
    char name[128];

    apr_app_initialize(NULL, NULL, NULL);
    p = tap_pool(NULL, "test_netguard");
    for (ip = refused; *ip; ++ip) {
        snprintf(name, sizeof(name), "%s refused by default", *ip);
        tap_ok(check(NULL, *ip) != NULL, name);
    }
    for (ip = passed; *ip; ++ip) {
        snprintf(name, sizeof(name), "%s allowed", *ip);
        tap_ok(check(NULL, *ip) == NULL, name);
    }
    tap_ok(!strcmp(check(NULL, "127.0.0.1"), "loopback"), "reason names loopback");
    tap_ok(strstr(check(NULL, "169.254.169.254"), "metadata") != NULL, "reason names cloud metadata");

    g = owh_netguard_make(p);
    tap_ok(owh_netguard_allow(g, "127.0.0.1/32", p) == NULL, "allow 127.0.0.1/32");
    tap_ok(owh_netguard_allow(g, "fd00::/8", p) == NULL, "allow fd00::/8");
    tap_ok(owh_netguard_allow(g, "10.0.0.0/33", p) != NULL, "refuse /33");
    tap_ok(owh_netguard_allow(g, "example.com", p) != NULL, "refuse a name");
    tap_ok(owh_netguard_allow(g, "10.0.0.0/", p) != NULL, "refuse an empty prefix");
    tap_ok(check(g, "127.0.0.1") == NULL, "allowed 127.0.0.1");
    tap_ok(check(g, "::ffff:127.0.0.1") == NULL, "allowed mapped 127.0.0.1");
    tap_ok(check(g, "127.0.0.2") != NULL, "127.0.0.2 still refused");
    tap_ok(check(g, "fd12::1") == NULL, "fd12::1 allowed by fd00::/8");
    tap_ok(check(g, "fc00::1") != NULL, "fc00::1 still refused");

    tap_ok(owh_netguard_check_url(NULL, "http://127.0.0.1:8080/x", p) != NULL, "url literal 127.0.0.1");
    tap_ok(owh_netguard_check_url(NULL, "http://[::1]/x", p) != NULL, "url literal [::1]");
    tap_ok(owh_netguard_check_url(NULL, "http://2130706433/", p) != NULL, "url decimal 127.0.0.1");
    tap_ok(owh_netguard_check_url(NULL, "http://0x7f.1/", p) != NULL, "url hex 127.1");
    tap_ok(owh_netguard_check_url(NULL, "http://user:pw@10.0.0.5/", p) != NULL, "url with credentials");
    tap_ok(owh_netguard_check_url(NULL, "https://example.com/x", p) == NULL, "names are checked at connect");
    tap_ok(owh_netguard_check_url(NULL, "https://8.8.8.8/x", p) == NULL, "public literal");
    tap_ok(owh_netguard_check_url(g, "http://127.0.0.1:9/x", p) == NULL, "allowed literal");
    tap_ok(owh_netguard_check_url(NULL, "http://[64:ff9b:1::a00:1]/", p) != NULL, "url local-use NAT64");
    tap_ok(owh_netguard_check_url(NULL, "http://[::ffff:0:7f00:1]/", p) != NULL, "url IPv4-translated loopback");
    tap_ok(owh_netguard_check_url(NULL, "http://[::0.0.0.2]/", p) != NULL, "url IPv4-compatible");
    tap_ok(owh_netguard_check_url(NULL, "http://[3fff::1]/", p) != NULL, "url documentation 3fff::/20");
    tap_ok(owh_netguard_check_url(NULL, "http://[5f00::1]/", p) != NULL, "url SRv6 5f00::/16");
    tap_ok(owh_netguard_check_url(g, "http://[::ffff:0:7f00:1]/", p) == NULL, "translated form of an allowed IPv4");

    (void)tap_is_str;
    apr_pool_destroy(p);
    apr_terminate();
    return tap_done();
}
