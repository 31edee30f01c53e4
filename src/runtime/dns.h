/* dns.h: host names resolved off the workers' threads. A resolver thread keeps a cache of every
 * host Shoal connects to, refreshed every dns_max_ttl (failures retried every dns_nxdomain_ttl);
 * workers only read the cache and never block in getaddrinfo. */
#ifndef SHOAL_DNS_H
#define SHOAL_DNS_H

#include <sys/socket.h>

#include "common.h"

struct config;

/* Start / stop the resolver thread. */
shoal_rc dns_start(void) MUST_USE;
void dns_stop(void);
/* Take cfg's TTLs and resolve every host name of its [databases] and [peers] that is not
 * cached, so that workers find them there. wait: resolve them now on the calling thread (the
 * main thread at start); otherwise queue them for the resolver thread (a reload, which may run
 * on a worker: a connect that comes first waits for the resolver through the reconnect
 * backoff). */
void dns_prime(const struct config *cfg, bool wait);
/* The cached address of host (with port set). SHOAL_AGAIN: not resolved yet (the resolver
 * thread has it queued; try again); SHOAL_ERROR: the last resolution failed. err says why. */
shoal_rc dns_lookup(const char *host, int port, struct sockaddr_storage *out, socklen_t *outlen,
		    char *err, size_t errlen) MUST_USE;

/* Every cached address of host (at most max, ports set), e.g. all instances behind a
 * Kubernetes headless Service. Returns how many: 0 when not resolved yet (queued, as in
 * dns_lookup) or failed. Never blocks. */
int dns_lookup_all(const char *host, int port, struct sockaddr_storage *out, socklen_t *outlen,
		   int max) MUST_USE;

/* One cached host, for SHOW DNS_HOSTS: the name, seconds until the next refresh, addresses. */
struct dns_host_info {
	char host[256];
	long ttl_s;
	char addrs[256]; /* comma-separated */
};
/* Copy up to max entries; returns how many. */
int dns_hosts(struct dns_host_info *out, int max);

#endif
