/* hosts_zone.c: zones of a host list (zone=): which hosts are in this instance's zone, named by
 * the zone setting or, with zone = nearest, the zone whose host answers its health checks
 * fastest. */
#include "hosts.h"
#include "hosts_int.h"

#include <string.h>

#include "log.h"

/* Under the lock: each set of entry db takes its hosts' near marks (zoned: some near, some
 * not). */
void hosts_zone_spread(const char *db)
{
	for (int k = 0; k < hosts_nsets; k++) {
		struct host_set *hs = hosts_sets[k];
		if (strcmp(hs->h[0]->db, db) != 0)
			continue;
		bool near = false, far = false;
		for (int i = 0; i < hs->n; i++) {
			hs->near[i] = hs->h[i]->near;
			near |= hs->h[i]->near;
			far |= !hs->h[i]->near;
		}
		hs->zoned = near && far;
	}
}

/* zone = nearest: under the lock, after a check of a host of entry db: the zone whose host
 * answered its checks fastest becomes the near one; another takes over only when it is 20%
 * faster (no flapping between near equals). One log line per change. */
void hosts_zone_nearest(const char *db)
{
	const struct host_rec *best = NULL, *cur_best = NULL;
	for (const struct host_rec *o = hosts_registry; o; o = o->next) {
		if (strcmp(o->db, db) != 0 || !o->zone[0] || !o->rtt || o->check_failing)
			continue;
		if (!best || o->rtt < best->rtt)
			best = o;
		if (o->near && (!cur_best || o->rtt < cur_best->rtt))
			cur_best = o;
	}
	if (!best || (cur_best && (best->near || best->rtt > 0.8 * cur_best->rtt)))
		return;
	log_info("database %s: nearest zone is now %s (%s:%d answers its checks in %.1f ms)", db,
		 best->zone, best->host, best->port, best->rtt * 1000);
	for (struct host_rec *o = hosts_registry; o; o = o->next)
		if (strcmp(o->db, db) == 0)
			o->near = strcmp(o->zone, best->zone) == 0;
	hosts_zone_spread(db);
}

/* This instance's zone (the zone setting), "" when none. */
const char *hosts_own_zone(void)
{
	const struct config *cfg = config_current();
	return cfg && cfg->zone ? cfg->zone : "";
}

bool hosts_far_with_near_up(struct host_set *hs, const struct host_rec *h)
{
	if (!hs || !hs->zoned || !h)
		return false;
	usec_t now = shoal_now();
	bool far = false, near_up = false;
	pthread_mutex_lock(&hosts_lock);
	for (int i = 0; i < hs->n; i++) {
		if (hs->h[i] == h)
			far = !hs->near[i];
		else if (hs->near[i])
			near_up |= hosts_usable(hs, hs->h[i], 0, now);
	}
	pthread_mutex_unlock(&hosts_lock);
	return far && near_up;
}
