/* pool_view.h: one consistent reading of a pool (its counts under its lock, its counters summed
 * over the workers' slots), for the views that report pools: /health, /metrics. */
#ifndef SHOAL_POOL_VIEW_H
#define SHOAL_POOL_VIEW_H

#include "objects.h"
#include "stats.h"

struct pool_view {
	const char *database, *user; /* live as long as the pool (until exit) */
	int pool_mode;
	int pool_size, reserve_pool_size, min_pool_size;
	/* clients */
	int cl_active;	/* logged in, linked to a server or idle between transactions */
	int cl_linked;	/* of those, linked to a server now */
	int cl_waiting; /* waiting for a server (also those finishing login) */
	/* servers */
	int sv_active; /* linked to a client (also running its SET, or moving to its worker) */
	int sv_idle;
	int sv_used;   /* released, running the reset query before it is idle again */
	int sv_being_canceled; /* released, waiting for forwarded cancels to be answered */
	int sv_login;  /* connecting and logging in */
	int sv_total;
	usec_t maxwait_us; /* how long the oldest waiting client has waited */
	uint64_t totals[STAT_N]; /* stats.h: summed over the workers */
	uint64_t server_connects, server_login_failures;
	uint64_t ps_hits, ps_misses, ps_evictions;
	struct pool_hists hist; /* summed over the workers */
};

/* Read pool p (takes and releases its lock). The same numbers feed SHOW POOLS, /health,
 * /metrics and the alerts, so the views agree. */
void pool_view_read(struct pool *p, struct pool_view *v, usec_t now);
/* The same, with p's lock already held (pool_foreach). */
void pool_view_read_locked(struct pool *p, struct pool_view *v, usec_t now);
/* Every pool's view but those only /health's probe has used (pool_shown); free() the array. */
struct pool_view *pool_view_all(int *n, usec_t now);

#endif
