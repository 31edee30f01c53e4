/* stats.c: the periodic stats log line, per pool, as PgBouncer's. */
#include "stats.h"
#include "histogram.h"
#include "log.h"
#include "objects.h"
#include "pool.h"

#include <stdlib.h>

static uint64_t load(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Counters are per-worker atomics; the pool's lock is taken only to read its counts. */
static void stats_pool(struct pool *p, double secs)
{
	struct pool_stats now = {0};
	for (int w = 0; w < MAX_WORKERS; w++) {
		now.xact_count += load(&p->stats[w].xact_count);
		now.query_count += load(&p->stats[w].query_count);
		now.query_time += load(&p->stats[w].query_time);
		now.wait_time += load(&p->stats[w].wait_time);
	}
	struct pool_stats *last = &p->stats_last; /* only this (main) thread uses it */
	uint64_t xacts = now.xact_count - last->xact_count;
	uint64_t queries = now.query_count - last->query_count;
	uint64_t qtime = now.query_time - last->query_time;
	uint64_t wtime = now.wait_time - last->wait_time;
	*last = now;
	pool_lock(p);
	int servers = p->n_servers, clients = p->n_clients;
	pool_unlock(p);
	log_info("stats: %s@%s %.0f xacts/s, %.0f queries/s, query %llu us avg, wait %llu us total, "
		 "servers %d, clients %d",
		 p->user, p->name, (double)xacts / secs, (double)queries / secs,
		 (unsigned long long)(queries ? qtime / queries : 0), (unsigned long long)wtime,
		 servers, clients);
}

const usec_t hist_bounds_usec[HIST_BOUNDS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

void stats_log(usec_t period_usec)
{
	double secs = period_usec > 0 ? (double)period_usec / USEC_PER_SEC : 1;
	int n;
	struct pool **ps = pool_snapshot(&n);
	for (int i = 0; i < n; i++)
		stats_pool(ps[i], secs);
	free(ps);
}
