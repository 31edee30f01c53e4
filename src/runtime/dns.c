/* dns.c: the resolver thread and its cache. getaddrinfo blocks for as long as the system
 * resolver takes (seconds, with a slow DNS server); running it on a worker would stall every
 * client of that worker. So workers look names up in this cache, and a miss queues the name
 * for the resolver thread and fails the connect attempt with "resolving" (the pool's reconnect
 * backoff tries again a moment later). The main thread primes the cache with every configured
 * host before workers start and before a reload takes effect, so misses are rare. */
#include "dns.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_MAX_ADDRS 32 /* also the most instances peer_discovery_dns finds */
#define DNS_MAX_HOSTS 1024
#define DNS_KEEP_USED (600 * USEC_PER_SEC) /* refresh unconfigured names used this recently */
#define DNS_MIN_TTL   USEC_PER_SEC	   /* floor of both TTLs: no resolver busy loop */

struct dns_entry {
	char *host;
	struct sockaddr_storage addr[DNS_MAX_ADDRS];
	socklen_t len[DNS_MAX_ADDRS];
	int naddr;
	char error[160]; /* the last failure, when naddr == 0 */
	usec_t expires;	 /* refresh due; 0: never resolved */
	usec_t last_used;
	bool queued;
	bool configured; /* named in [databases], [peers] or peer_discovery_dns: kept fresh */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool started, stop;
	usec_t ttl, nxdomain_ttl; /* dns_max_ttl, dns_nxdomain_ttl (under the lock) */
	struct dns_entry *e[DNS_MAX_HOSTS];
	int n;
} dns = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Under the lock. */
static struct dns_entry *find(const char *host)
{
	for (int i = 0; i < dns.n; i++)
		if (strcmp(dns.e[i]->host, host) == 0)
			return dns.e[i];
	return NULL;
}

/* Under the lock: the entry for host, created if there is room. */
static struct dns_entry *find_or_add(const char *host)
{
	struct dns_entry *d = find(host);
	if (d || dns.n == DNS_MAX_HOSTS)
		return d;
	d = xcalloc(1, sizeof(*d));
	d->host = xstrdup(host);
	dns.e[dns.n++] = d;
	return d;
}

/* getaddrinfo without the lock; the result is stored under it. */
static void resolve(const char *host, usec_t now)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	pthread_mutex_lock(&dns.lock);
	struct dns_entry *d = find(host);
	if (d) {
		d->queued = false;
		if (rc == 0) {
			d->naddr = 0;
			for (struct addrinfo *a = res; a && d->naddr < DNS_MAX_ADDRS;
			     a = a->ai_next) {
				memcpy(&d->addr[d->naddr], a->ai_addr, a->ai_addrlen);
				d->len[d->naddr++] = a->ai_addrlen;
			}
			d->expires = now + dns.ttl;
		} else {
			snprintf(d->error, sizeof(d->error), "cannot resolve %s: %s", host,
				 gai_strerror(rc));
			/* A name that no longer exists must not be connected to where it used to
			 * point; a resolver that failed for now (EAI_AGAIN) leaves the last answer.
			 */
			if (rc != EAI_AGAIN)
				d->naddr = 0;
			d->expires = now + dns.nxdomain_ttl;
		}
	}
	pthread_mutex_unlock(&dns.lock);
	if (rc != 0)
		log_warn("dns: cannot resolve %s: %s", host, gai_strerror(rc));
	if (res)
		freeaddrinfo(res);
}

/* Under the lock: the next name due (queued, or expired and recently used), copied. */
static char *next_due(usec_t now)
{
	for (int i = 0; i < dns.n; i++) {
		struct dns_entry *d = dns.e[i];
		bool due = d->queued || (d->expires <= now &&
					 (d->configured || now - d->last_used < DNS_KEEP_USED));
		if (due) {
			d->queued = true;
			d->expires = now + USEC_PER_SEC; /* not picked again while it resolves */
			return xstrdup(d->host);
		}
	}
	return NULL;
}

static void *resolver_thread(void *arg)
{
	UNUSED(arg);
	pthread_mutex_lock(&dns.lock);
	while (!dns.stop) {
		char *host = next_due(shoal_now());
		if (!host) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&dns.wake, &dns.lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&dns.lock);
		resolve(host, shoal_now());
		free(host);
		pthread_mutex_lock(&dns.lock);
	}
	pthread_mutex_unlock(&dns.lock);
	return NULL;
}

shoal_rc dns_start(void)
{
	if (pthread_create(&dns.thread, NULL, resolver_thread, NULL) != 0)
		return SHOAL_ERROR;
	dns.started = true;
	return SHOAL_OK;
}

void dns_stop(void)
{
	if (dns.started) {
		pthread_mutex_lock(&dns.lock);
		dns.stop = true;
		pthread_cond_signal(&dns.wake);
		pthread_mutex_unlock(&dns.lock);
		pthread_join(dns.thread, NULL);
		dns.started = false;
	}
	for (int i = 0; i < dns.n; i++) {
		free(dns.e[i]->host);
		free(dns.e[i]);
	}
	dns.n = 0;
}

/* An IP literal needs no resolver. */
static bool literal(const char *host, int port, struct sockaddr_storage *out, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
		return true;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return true;
	}
	return false;
}

static bool needs_resolver(const char *host)
{
	struct sockaddr_storage ss;
	socklen_t len;
	return host && *host && host[0] != '/' && !literal(host, 0, &ss, &len);
}

/* One configured host name: looked up now (wait) or queued for the resolver thread. */
static void prime_one(const char *host, usec_t now, bool wait)
{
	if (!needs_resolver(host))
		return;
	pthread_mutex_lock(&dns.lock);
	struct dns_entry *d = find_or_add(host);
	bool fresh = d && d->expires > now && d->naddr > 0;
	if (d) {
		d->last_used = now;
		d->configured = true;
		if (!fresh && !wait) {
			d->queued = true;
			pthread_cond_signal(&dns.wake);
		}
	}
	pthread_mutex_unlock(&dns.lock);
	if (d && !fresh && wait)
		resolve(host, now);
}

void dns_prime(const struct config *cfg, bool wait)
{
	usec_t now = shoal_now();
	pthread_mutex_lock(&dns.lock);
	dns.ttl = cfg->dns_max_ttl > DNS_MIN_TTL ? cfg->dns_max_ttl : DNS_MIN_TTL;
	dns.nxdomain_ttl =
	    cfg->dns_nxdomain_ttl > DNS_MIN_TTL ? cfg->dns_nxdomain_ttl : DNS_MIN_TTL;
	pthread_mutex_unlock(&dns.lock);
	for (int i = 0; i < cfg->ndbs; i++) {
		struct host_addr hosts[SHOAL_MAX_HOSTS]; /* host=a,b,c: each name on its own */
		int n = 0;
		char err[256];
		if (config_host_list(&cfg->dbs[i], hosts, SHOAL_MAX_HOSTS, &n, err, sizeof(err)) !=
		    SHOAL_OK)
			continue; /* refused when the file was loaded */
		for (int k = 0; k < n; k++)
			prime_one(hosts[k].host, now, wait);
	}
	for (int i = 0; i < cfg->npeers; i++) /* a forwarded cancel must not wait for DNS */
		prime_one(cfg->peers[i].host, now, wait);
	prime_one(cfg->peer_discovery_dns, now, wait);
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

shoal_rc dns_lookup(const char *host, int port, struct sockaddr_storage *out, socklen_t *outlen,
		    char *err, size_t errlen)
{
	if (literal(host, port, out, outlen))
		return SHOAL_OK;
	shoal_rc rc;
	pthread_mutex_lock(&dns.lock);
	struct dns_entry *d = find_or_add(host);
	if (!d) {
		snprintf(err, errlen, "cannot resolve %s: more than %d host names", host,
			 DNS_MAX_HOSTS);
		rc = SHOAL_ERROR;
	} else if (d->naddr > 0) {
		memcpy(out, &d->addr[0], d->len[0]);
		*outlen = d->len[0];
		set_port(out, port);
		rc = SHOAL_OK;
		if (d->expires <= shoal_now() && !d->queued) {
			d->queued = true; /* stale: used this time, refreshed for the next */
			pthread_cond_signal(&dns.wake);
		}
	} else if (d->expires == 0 || d->queued) {
		d->queued = true;
		pthread_cond_signal(&dns.wake);
		snprintf(err, errlen, "resolving %s (not resolved yet; retrying)", host);
		rc = SHOAL_AGAIN;
	} else {
		snprintf(err, errlen, "%s", d->error);
		rc = SHOAL_ERROR;
	}
	if (d)
		d->last_used = shoal_now();
	pthread_mutex_unlock(&dns.lock);
	return rc;
}

int dns_lookup_all(const char *host, int port, struct sockaddr_storage *out, socklen_t *outlen,
		   int max)
{
	if (max > 0 && literal(host, port, out, outlen))
		return 1;
	int n = 0;
	pthread_mutex_lock(&dns.lock);
	struct dns_entry *d = find_or_add(host);
	if (d) {
		for (; n < d->naddr && n < max; n++) {
			memcpy(&out[n], &d->addr[n], d->len[n]);
			outlen[n] = d->len[n];
			set_port(&out[n], port);
		}
		if ((d->expires <= shoal_now() || d->naddr == 0) && !d->queued) {
			d->queued = true;
			pthread_cond_signal(&dns.wake);
		}
		d->last_used = shoal_now();
	}
	pthread_mutex_unlock(&dns.lock);
	return n;
}

static void addr_list(const struct dns_entry *d, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < d->naddr && o + 2 < cap; i++) {
		char a[INET6_ADDRSTRLEN] = "?";
		const struct sockaddr_storage *ss = &d->addr[i];
		if (ss->ss_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, a,
				  sizeof(a));
		else if (ss->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, a,
				  sizeof(a));
		int n = snprintf(out + o, cap - o, "%s%s", i ? "," : "", a);
		if (n < 0 || (size_t)n >= cap - o)
			break;
		o += (size_t)n;
	}
}

int dns_hosts(struct dns_host_info *out, int max)
{
	usec_t now = shoal_now();
	pthread_mutex_lock(&dns.lock);
	int n = 0;
	for (int i = 0; i < dns.n && n < max; i++, n++) {
		const struct dns_entry *d = dns.e[i];
		snprintf(out[n].host, sizeof(out[n].host), "%s", d->host);
		out[n].ttl_s = d->expires > now ? (long)((d->expires - now) / USEC_PER_SEC) : 0;
		addr_list(d, out[n].addrs, sizeof(out[n].addrs));
	}
	pthread_mutex_unlock(&dns.lock);
	return n;
}
