/* owh_netguard.h — owns the SSRF rule: which IP addresses a delivery may
 * connect to. Loopback, private, link-local (cloud metadata), CGNAT,
 * multicast, unspecified, documentation and reserved IPv4/IPv6 ranges are
 * refused (IPv4-mapped, -compatible and NAT64 forms by their embedded IPv4)
 * unless a network of the allow list contains the address. Checked on the
 * address libcurl actually connects to, so DNS rebinding cannot pass.
 * Core: APR + libc sockets, no httpd. */
#ifndef OWH_NETGUARD_H
#define OWH_NETGUARD_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <sys/socket.h>

typedef struct owh_netguard_t owh_netguard_t;

owh_netguard_t *owh_netguard_make(apr_pool_t *p);

/* Adds "a.b.c.d/n", "x::y/n" or a bare address to the allow list.
 * NULL or an error message. */
const char *owh_netguard_allow(owh_netguard_t *g, const char *cidr, apr_pool_t *p);

/* NULL when sa may be connected to; otherwise the reason ("loopback",
 * "private network", ...). g may be NULL (nothing allowed). */
const char *owh_netguard_check(const owh_netguard_t *g, const struct sockaddr *sa);

/* For create/update: when url's host is an IP literal, the reason it is
 * refused (NULL if allowed or not a literal). */
const char *owh_netguard_check_url(const owh_netguard_t *g, const char *url, apr_pool_t *p);

#endif
