/* stats.h: per-pool counters (one slot per worker, summed on read), per-database totals and
 * averages over stats_period, and the periodic stats log line. */
#ifndef SHOAL_STATS_H
#define SHOAL_STATS_H

#include "common.h"

struct pool;
struct pool_stats;

/* Add to a counter of the calling worker's slot. One writer per slot: a relaxed load and store,
 * no read-modify-write instruction; readers on other threads see whole values. */
static inline void stats_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* The counters of SHOW STATS, in PgBouncer's column order. */
enum stat_field {
	STAT_ASSIGN,
	STAT_XACT,
	STAT_QUERY,
	STAT_RECV,
	STAT_SENT,
	STAT_XACT_TIME,
	STAT_QUERY_TIME,
	STAT_WAIT_TIME,
	STAT_CLIENT_PARSE,
	STAT_SERVER_PARSE,
	STAT_BIND,
	STAT_LOGIN, /* client logins: PgBouncer 1.26's client_login_count */
	STAT_N,
};

/* One database's numbers: totals since start and averages over the last stats_period (rates
 * per second for counts and bytes, microseconds per transaction/query/assignment for times). */
struct stats_row {
	char db[128];
	uint64_t total[STAT_N];
	uint64_t avg[STAT_N];
};

/* The sum of a pool's per-worker slots, as the STAT_N array. */
void stats_pool_sum(struct pool *p, uint64_t out[STAT_N]);
/* Every database with a pool, sorted by name; free() the array. */
struct stats_row *stats_by_database(int *n);
/* Main thread, every stats_period: compute the averages and log one line per pool. */
void stats_log(usec_t period_usec);
void stats_free_all(void);

#endif
