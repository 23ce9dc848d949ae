/* owh_netguard.c — the SSRF rule. See owh_netguard.h. */
#include <apr_strings.h>
#include <apr_uri.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "owh_netguard.h"

typedef struct {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
} net_t;

struct owh_netguard_t {
    apr_array_header_t *allow;  /* net_t */
};

typedef struct { const char *cidr; const char *why; } range_t;

/* Refused unless allowed. Order matters only for the reason reported. */
static const range_t v4_ranges[] = {
    { "0.0.0.0/8", "unspecified/\"this\" network" },
    { "10.0.0.0/8", "private network" },
    { "100.64.0.0/10", "carrier-grade NAT" },
    { "127.0.0.0/8", "loopback" },
    { "169.254.0.0/16", "link-local (cloud metadata)" },
    { "172.16.0.0/12", "private network" },
    { "192.0.0.0/24", "IETF protocol assignments" },
    { "192.0.2.0/24", "documentation" },
    { "192.88.99.0/24", "6to4 relay anycast" },
    { "192.168.0.0/16", "private network" },
    { "198.18.0.0/15", "benchmarking" },
    { "198.51.100.0/24", "documentation" },
    { "203.0.113.0/24", "documentation" },
    { "224.0.0.0/4", "multicast" },
    { "240.0.0.0/4", "reserved" },
    { NULL, NULL }
};

/* After the IANA IPv6 Special-Purpose Address Registry: every block that is
 * not globally reachable, plus the deprecated ones. IPv4-mapped and NAT64
 * (64:ff9b::/96) addresses never get here: they are judged by their IPv4. */
static const range_t v6_ranges[] = {
    { "::/128", "unspecified" },
    { "::1/128", "loopback" },
    { "::/96", "IPv4-compatible (deprecated)" },
    { "64:ff9b:1::/48", "local-use IPv4/IPv6 translation" },
    { "100::/64", "discard-only" },
    { "100:0:0:1::/64", "dummy prefix" },
    { "2001::/23", "IETF protocol assignments" },
    { "2001:db8::/32", "documentation" },
    { "2002::/16", "6to4" },
    { "3fff::/20", "documentation" },
    { "5f00::/16", "segment routing (SRv6) SIDs" },
    { "fc00::/7", "unique local (private)" },
    { "fe80::/10", "link-local" },
    { "fec0::/10", "site-local" },
    { "ff00::/8", "multicast" },
    { NULL, NULL }
};

static int parse_net(net_t *n, const char *spec, apr_pool_t *p)
{
    char *copy = apr_pstrdup(p, spec), *slash = strchr(copy, '/'), *end;
    long bits;
    memset(n, 0, sizeof(*n));
    if (slash) *slash = '\0';
    if (inet_pton(AF_INET, copy, n->addr) == 1) { n->family = AF_INET; n->bits = 32; }
    else if (inet_pton(AF_INET6, copy, n->addr) == 1) { n->family = AF_INET6; n->bits = 128; }
    else return 0;
    if (slash) {
        bits = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || bits < 0 || bits > n->bits) return 0;
        n->bits = (int)bits;
    }
    return 1;
}

static int net_contains(const net_t *n, int family, const unsigned char *addr)
{
    int full = n->bits / 8, rest = n->bits % 8;
    if (n->family != family) return 0;
    if (memcmp(n->addr, addr, full)) return 0;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((n->addr[full] & mask) != (addr[full] & mask)) return 0;
    }
    return 1;
}

owh_netguard_t *owh_netguard_make(apr_pool_t *p)
{
    owh_netguard_t *g = apr_pcalloc(p, sizeof(*g));
    g->allow = apr_array_make(p, 4, sizeof(net_t));
    return g;
}

const char *owh_netguard_allow(owh_netguard_t *g, const char *cidr, apr_pool_t *p)
{
    net_t n;
    if (!parse_net(&n, cidr, p))
        return apr_psprintf(p, "'%s' is not an IPv4/IPv6 address or network (a.b.c.d/n, x::y/n)", cidr);
    APR_ARRAY_PUSH(g->allow, net_t) = n;
    return NULL;
}

static int allowed(const owh_netguard_t *g, int family, const unsigned char *addr)
{
    int i;
    for (i = 0; g && i < g->allow->nelts; ++i)
        if (net_contains(&APR_ARRAY_IDX(g->allow, i, net_t), family, addr)) return 1;
    return 0;
}

/* The static range tables, parsed once per call: they are short, and this
 * keeps the guard free of global state. */
static const char *classify(int family, const unsigned char *addr)
{
    const range_t *r = family == AF_INET ? v4_ranges : v6_ranges;
    for (; r->cidr; ++r) {
        net_t n;
        char buf[64];
        const char *slash = strchr(r->cidr, '/');
        memset(&n, 0, sizeof(n));
        memcpy(buf, r->cidr, slash - r->cidr);
        buf[slash - r->cidr] = '\0';
        n.family = family;
        inet_pton(family, buf, n.addr);
        n.bits = atoi(slash + 1);
        if (net_contains(&n, family, addr)) return r->why;
    }
    if (family == AF_INET && addr[0] == 255 && addr[1] == 255 && addr[2] == 255 && addr[3] == 255)
        return "broadcast";
    return NULL;
}

static const char *check_bytes(const owh_netguard_t *g, int family, const unsigned char *addr)
{
    static const unsigned char mapped[12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };
    static const unsigned char translated[12] = { 0,0,0,0, 0,0,0,0, 0xff,0xff,0,0 };  /* ::ffff:0:a.b.c.d */
    static const unsigned char nat64[12] = { 0,0x64,0xff,0x9b, 0,0,0,0, 0,0,0,0 };
    const char *why;
    if (allowed(g, family, addr)) return NULL;
    if (family == AF_INET6
        && (!memcmp(addr, mapped, 12) || !memcmp(addr, translated, 12) || !memcmp(addr, nat64, 12)))
        /* An IPv4 address in IPv6 clothing is judged as that IPv4 address;
         * the deprecated IPv4-compatible ::a.b.c.d is refused whole (::/96). */
        return check_bytes(g, AF_INET, addr + 12);
    why = classify(family, addr);
    return why;
}

const char *owh_netguard_check(const owh_netguard_t *g, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return check_bytes(g, AF_INET, (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return check_bytes(g, AF_INET6, (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return "not an IP address";
}

const char *owh_netguard_check_url(const owh_netguard_t *g, const char *url, apr_pool_t *p)
{
    apr_uri_t uri;
    unsigned char addr[16];
    struct in_addr in4;
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS || !uri.hostname) return NULL;
    /* inet_aton also reads the forms resolvers accept: 127.1, 0x7f000001, 2130706433 */
    if (inet_aton(uri.hostname, &in4)) return check_bytes(g, AF_INET, (const unsigned char *)&in4);
    if (inet_pton(AF_INET6, uri.hostname, addr) == 1) return check_bytes(g, AF_INET6, addr);
    return NULL;
}
