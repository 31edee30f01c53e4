/* pool_view.h: one consistent reading of a pool (its counts under its lock, its counters summed
 * over the workers' slots), for the views that report pools: /health, /metrics. */
#ifndef SHOAL_POOL_VIEW_H
#define SHOAL_POOL_VIEW_H

#include "objects.h"

struct pool_view {
	const char *database, *user; /* live as long as the pool (until exit) */
	int pool_mode;
	int pool_size, reserve_pool_size, min_pool_size;
	/* clients */
	int cl_active;	/* logged in, linked to a server or idle between transactions */
	int cl_linked;	/* of those, linked to a server now */
	int cl_waiting; /* waiting for a server (also those finishing login) */
	/* servers */
	int sv_active; /* linked to a client (also running the client's SET) */
	int sv_idle;
	int sv_login; /* connecting and logging in */
	int sv_other; /* resetting or between workers */
	int sv_total;
	usec_t maxwait_us; /* how long the oldest waiting client has waited */
	struct pool_stats totals;
	struct pool_hists hist; /* summed over the workers */
};

/* Read pool p (takes and releases its lock). */
void pool_view_read(struct pool *p, struct pool_view *v, usec_t now);
/* Every pool's view; free() the array. */
struct pool_view *pool_view_all(int *n, usec_t now);

#endif
