/* hosts_route.c: read_write_split's host check: whether a transaction that needs the primary
 * or a standby may take a server of a given host (and a retried read not the host that failed
 * it). */
#include "hosts.h"
#include "hosts_int.h"

#include <pthread.h>

/* Under the lock: a host of hs that is, or may be (its role not known yet), a standby able to
 * take a split read now (the one to avoid aside). */
static bool standby_up(const struct host_set *hs, const struct host_rec *avoid, usec_t now)
{
	for (int i = 0; i < hs->n; i++) {
		const struct host_rec *h = hs->h[i];
		bool known = h->role != HOST_ROLE_UNKNOWN && now - h->role_at <= ROLE_TTL;
		if (h != avoid && (!known || h->role == HOST_ROLE_STANDBY) &&
		    hosts_breaker_allows(h, now) && !hosts_held(hs, h))
			return true;
	}
	return false;
}

/* Under the lock: h answered as primary (its servers' role check or its health check), and is
 * not one of two primaries. */
static bool split_primary(const struct host_rec *h)
{
	return h->role == HOST_ROLE_PRIMARY && !h->read_only && !h->check_failing && !h->split;
}

bool hosts_route_allows(const struct host_set *hs, struct host_rec *h, int want,
			const struct host_rec *avoid, usec_t ryw_since)
{
	if (!h)
		return true; /* one host: nothing to choose */
	if (h == avoid)
		return false;
	usec_t now = shoal_now();
	pthread_mutex_lock(&hosts_lock);
	bool ok;
	if (want == ROUTE_PRIMARY)
		ok = split_primary(h);
	else if (ryw_since) /* its writes: the primary, or a standby that replayed them */
		ok = split_primary(h) || h->role == HOST_ROLE_STANDBY;
	else /* a standby; the primary when none is left */
		ok = h->role == HOST_ROLE_STANDBY ||
		     (split_primary(h) && !standby_up(hs, avoid, now));
	pthread_mutex_unlock(&hosts_lock);
	return ok && (!ryw_since || want == ROUTE_PRIMARY || hosts_ryw_allows(h, ryw_since));
}
