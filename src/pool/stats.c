/* stats.c: statistics read from the pools' per-worker slots: per-database totals, averages over
 * stats_period (computed by the main thread's timer) and the periodic stats log line. */
#include "stats.h"
#include "histogram.h"
#include "log.h"
#include "objects.h"
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Averages of the last period, per database; written by the main thread, read by SHOW. */
struct db_avg {
	struct db_avg *next;
	char *name;
	uint64_t delta[STAT_N]; /* this period's sums, while the period is being added up */
	uint64_t avg[STAT_N];
	bool seen; /* a pool of this name was summed this period (else freed) */
};
static pthread_mutex_t avg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct db_avg *avgs;

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void to_array(const struct pool_stats *s, uint64_t out[STAT_N])
{
	out[STAT_ASSIGN] = s->assign_count;
	out[STAT_XACT] = s->xact_count;
	out[STAT_QUERY] = s->query_count;
	out[STAT_RECV] = s->bytes_recv;
	out[STAT_SENT] = s->bytes_sent;
	out[STAT_XACT_TIME] = s->xact_time;
	out[STAT_QUERY_TIME] = s->query_time;
	out[STAT_WAIT_TIME] = s->wait_time;
	out[STAT_CLIENT_PARSE] = s->parse_count;
	out[STAT_SERVER_PARSE] = s->parse_count; /* Shoal forwards every Parse it gets */
	out[STAT_BIND] = s->bind_count;
	out[STAT_LOGIN] = s->client_login_count;
}

void stats_pool_sum(struct pool *p, uint64_t out[STAT_N])
{
	struct pool_stats sum = {0};
	for (int w = 0; w < MAX_WORKERS; w++) {
		const struct pool_stats *s = &p->stats[w];
		sum.assign_count += load(&s->assign_count);
		sum.xact_count += load(&s->xact_count);
		sum.query_count += load(&s->query_count);
		sum.bytes_recv += load(&s->bytes_recv);
		sum.bytes_sent += load(&s->bytes_sent);
		sum.xact_time += load(&s->xact_time);
		sum.query_time += load(&s->query_time);
		sum.wait_time += load(&s->wait_time);
		sum.parse_count += load(&s->parse_count);
		sum.bind_count += load(&s->bind_count);
		sum.client_login_count += load(&s->client_login_count);
	}
	to_array(&sum, out);
}

/* Under avg_lock. */
static struct db_avg *avg_get(const char *name)
{
	for (struct db_avg *a = avgs; a; a = a->next)
		if (strcmp(a->name, name) == 0) {
			a->seen = true;
			return a;
		}
	struct db_avg *a = xcalloc(1, sizeof(*a));
	a->seen = true;
	a->name = xstrdup(name);
	a->next = avgs;
	avgs = a;
	return a;
}

static uint64_t per(uint64_t x, uint64_t n)
{
	return n ? x / n : 0;
}

/* Rates per second for counts and bytes; times per transaction, query, assignment. */
static void averages(const uint64_t d[STAT_N], double secs, uint64_t out[STAT_N])
{
	for (int i = 0; i < STAT_N; i++)
		out[i] = (uint64_t)((double)d[i] / secs);
	out[STAT_XACT_TIME] = per(d[STAT_XACT_TIME], d[STAT_XACT]);
	out[STAT_QUERY_TIME] = per(d[STAT_QUERY_TIME], d[STAT_QUERY]);
	out[STAT_WAIT_TIME] = per(d[STAT_WAIT_TIME], d[STAT_ASSIGN]);
}

/* One pool's period: its delta goes to its database's sums, and one log line. */
static void stats_pool(struct pool *p, double secs)
{
	uint64_t now[STAT_N], last[STAT_N], d[STAT_N], avg[STAT_N];
	stats_pool_sum(p, now);
	to_array(&p->stats_last, last); /* only this (main) thread uses stats_last */
	for (int i = 0; i < STAT_N; i++)
		d[i] = now[i] - last[i];
	struct pool_stats *l = &p->stats_last;
	l->assign_count = now[STAT_ASSIGN];
	l->xact_count = now[STAT_XACT];
	l->query_count = now[STAT_QUERY];
	l->bytes_recv = now[STAT_RECV];
	l->bytes_sent = now[STAT_SENT];
	l->xact_time = now[STAT_XACT_TIME];
	l->query_time = now[STAT_QUERY_TIME];
	l->wait_time = now[STAT_WAIT_TIME];
	l->parse_count = now[STAT_CLIENT_PARSE];
	l->bind_count = now[STAT_BIND];
	l->client_login_count = now[STAT_LOGIN];
	struct db_avg *a = avg_get(p->name);
	for (int i = 0; i < STAT_N; i++)
		a->delta[i] += d[i];
	averages(d, secs, avg);
	if (!config_current()->log_stats)
		return; /* the averages are kept for SHOW STATS_AVERAGES all the same */
	log_info("stats: %s@%s %llu xacts/s, %llu queries/s, %llu client parses/s, %llu binds/s, "
		 "in %llu B/s, out %llu B/s, xact %llu us, query %llu us, wait %llu us",
		 p->user, p->name, (unsigned long long)avg[STAT_XACT],
		 (unsigned long long)avg[STAT_QUERY], (unsigned long long)avg[STAT_CLIENT_PARSE],
		 (unsigned long long)avg[STAT_BIND], (unsigned long long)avg[STAT_RECV],
		 (unsigned long long)avg[STAT_SENT], (unsigned long long)avg[STAT_XACT_TIME],
		 (unsigned long long)avg[STAT_QUERY_TIME], (unsigned long long)avg[STAT_WAIT_TIME]);
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
	pthread_mutex_lock(&avg_lock);
	for (struct db_avg *a = avgs; a; a = a->next)
		memset(a->delta, 0, sizeof(a->delta));
	for (int i = 0; i < n; i++)
		stats_pool(ps[i], secs);
	for (struct db_avg *a = avgs; a; a = a->next)
		averages(a->delta, secs, a->avg);
	for (struct db_avg **pa = &avgs; *pa;) { /* databases whose pools are all gone */
		struct db_avg *a = *pa;
		if (!a->seen) {
			*pa = a->next;
			free(a->name);
			free(a);
			continue;
		}
		a->seen = false;
		pa = &a->next;
	}
	pthread_mutex_unlock(&avg_lock);
	pool_snapshot_free(ps);
}

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct stats_row *)a)->db, ((const struct stats_row *)b)->db);
}

static struct stats_row *row_for(struct stats_row *rows, int *n, const char *db)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(rows[i].db, db) == 0)
			return &rows[i];
	struct stats_row *r = &rows[(*n)++];
	memset(r, 0, sizeof(*r));
	snprintf(r->db, sizeof(r->db), "%s", db);
	return r;
}

struct stats_row *stats_by_database(int *n)
{
	int np;
	struct pool **ps = pool_snapshot(&np);
	struct stats_row *rows = xcalloc((size_t)np + 1, sizeof(*rows));
	*n = 0;
	for (int i = 0; i < np; i++) {
		uint64_t t[STAT_N];
		stats_pool_sum(ps[i], t);
		struct stats_row *r = row_for(rows, n, ps[i]->name);
		for (int k = 0; k < STAT_N; k++)
			r->total[k] += t[k];
	}
	pool_snapshot_free(ps);
	pthread_mutex_lock(&avg_lock);
	for (int i = 0; i < *n; i++)
		for (struct db_avg *a = avgs; a; a = a->next)
			if (strcmp(a->name, rows[i].db) == 0)
				memcpy(rows[i].avg, a->avg, sizeof(a->avg));
	pthread_mutex_unlock(&avg_lock);
	qsort(rows, (size_t)*n, sizeof(*rows), row_cmp);
	return rows;
}

void stats_free_all(void)
{
	pthread_mutex_lock(&avg_lock);
	while (avgs) {
		struct db_avg *a = avgs;
		avgs = a->next;
		free(a->name);
		free(a);
	}
	pthread_mutex_unlock(&avg_lock);
}
