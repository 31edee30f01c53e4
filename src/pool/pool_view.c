/* pool_view.c: reading a pool for the reporting views. Counts come from the state lists under
 * the pool's lock; counters are the per-worker slots summed without it (each slot has one
 * writer, see stats.h). */
#include "pool_view.h"
#include "pool.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Under the pool lock: the linked and idle clients from their counters (a test build checks
 * them against the list), the waiters and the oldest wait from the waiting list. */
static void read_clients(struct pool *p, struct pool_view *v, usec_t now)
{
	struct list *it;
	v->cl_active = p->n_cl_active;
	v->cl_linked = p->n_cl_linked;
#if SHOAL_CASSERT
	int active = 0, linked = 0;
	for (it = p->active_clients.next; it != &p->active_clients; it = it->next) {
		active++;
		linked += container_of(it, struct client, node)->state == CL_LINKED;
	}
	assert(active == v->cl_active && linked == v->cl_linked);
#endif
	for (it = p->waiting.next; it != &p->waiting; it = it->next) {
		struct client *c = container_of(it, struct client, node);
		v->cl_waiting++;
		if (now - c->state_since > v->maxwait_us)
			v->maxwait_us = now - c->state_since;
	}
	v->cl_waiting += (int)list_count(&p->handoff);
}

static void sum_hist(struct latency_hist *to, const struct latency_hist *from)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		to->bucket[i] += load(&from->bucket[i]);
}

static void sum_hists(struct pool *p, struct pool_hists *out)
{
	for (int w = 0; w < p->nhists; w++) {
		sum_hist(&out->query, &p->hists[w].query);
		sum_hist(&out->xact, &p->hists[w].xact);
		sum_hist(&out->wait, &p->hists[w].wait);
	}
}

void pool_view_read_locked(struct pool *p, struct pool_view *v, usec_t now)
{
	*v = (struct pool_view){.database = p->name, .user = p->user};
	v->pool_mode = pool_mode_of(p);
	v->pool_size = p->pool_size;
	v->reserve_pool_size = p->reserve_pool_size;
	v->min_pool_size = p->min_pool_size;
	read_clients(p, v, now);
	for (struct list *i = p->used.next; i != &p->used; i = i->next)
		if (container_of(i, struct server, node)->state == SV_BEING_CANCELED)
			v->sv_being_canceled++;
	v->sv_active = (int)(list_count(&p->used) + list_count(&p->transit)) - v->sv_being_canceled;
	v->sv_idle = (int)list_count(&p->idle);
	v->sv_used = (int)list_count(&p->resetting);
	v->sv_login = (int)list_count(&p->connecting);
	v->sv_total = p->n_servers;
	stats_pool_sum(p, v->totals);
	v->server_connects = atomic_load_explicit(&p->server_connects, memory_order_relaxed);
	v->server_login_failures =
	    atomic_load_explicit(&p->server_login_failures, memory_order_relaxed);
	v->ps_hits = atomic_load_explicit(&p->ps_hits, memory_order_relaxed);
	v->ps_misses = atomic_load_explicit(&p->ps_misses, memory_order_relaxed);
	v->ps_evictions = atomic_load_explicit(&p->ps_evictions, memory_order_relaxed);
	sum_hists(p, &v->hist);
}

void pool_view_read(struct pool *p, struct pool_view *v, usec_t now)
{
	pool_lock(p);
	pool_view_read_locked(p, v, now);
	pool_unlock(p);
}

struct pool_view *pool_view_all(int *n, usec_t now)
{
	int np;
	struct pool **ps = pool_snapshot(&np);
	struct pool_view *vs = xcalloc((size_t)(np ? np : 1), sizeof(*vs));
	*n = 0;
	for (int i = 0; i < np; i++)
		if (pool_shown(ps[i]))
			pool_view_read(ps[i], &vs[(*n)++], now);
	pool_snapshot_free(ps);
	return vs;
}
