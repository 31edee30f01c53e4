/* pool_example.c: a small libshoal program. Configure it the way the seeds' services are:
 *   DATABASE_URL=postgresql://app@localhost/app DB_POOL_MAX=10 ./pool_example
 * It runs a few queries from several threads through one pool, then prints health and stats.
 * Exit status: 0 when every query succeeded, 1 otherwise (a wrong password fails at once: an
 * authentication failure is not retried). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <shoal/pool.h>

#define THREADS 8

static atomic_int failures;

/* A unit of work: runs on a borrowed connection, returns SHOAL_OK or a SHOAL_E* code. The pool
 * rolls back anything left open and releases the connection, whatever happens here. */
static int count_tables(PGconn *pg, void *arg)
{
	PGresult *res = PQexec(pg, "SELECT count(*) FROM pg_catalog.pg_class");
	int rc = shoal_check(pg, res); /* OK, or ESQL / ESERIALIZE / ECONNLOST with a message */

	if (rc == SHOAL_OK)
		*(long *)arg = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

static void *worker(void *pool)
{
	long n = 0;
	/* retried (with backoff) if the connection drops or the server restarts */
	int rc = shoal_pool_with_retry(pool, count_tables, &n, -1, -1);

	if (rc != SHOAL_OK) {
		fprintf(stderr, "query failed: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
		atomic_fetch_add(&failures, 1);
	}
	return NULL;
}

static void print_health(shoal_pool *pool)
{
	shoal_health h;
	int rc = shoal_pool_health(pool, &h);

	printf("healthy=%d latency=%.2f ms", h.healthy, h.latency_us / 1000.0);
	if (rc != SHOAL_OK)
		printf(" (%s: %s)", shoal_strerror(rc), shoal_errdetail());
	printf("\npool: total=%d active=%d idle=%d waiting=%d max=%d; acquired=%llu created=%llu "
	       "timeouts=%llu errors=%llu\n",
	       h.stats.total, h.stats.active, h.stats.idle, h.stats.waiting, h.stats.max,
	       (unsigned long long)h.stats.acquired, (unsigned long long)h.stats.created,
	       (unsigned long long)h.stats.timeouts, (unsigned long long)h.stats.errors);
}

int main(void)
{
	pthread_t t[THREADS];
	shoal_pool *pool;
	int rc = shoal_pool_open_env(&pool); /* DATABASE_URL + DB_POOL_* */

	if (rc != SHOAL_OK) {
		fprintf(stderr, "cannot open pool: %s: %s\n", shoal_strerror(rc),
			shoal_errdetail());
		return 1;
	}
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, pool);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	print_health(pool);
	/* on shutdown: stop lending, give borrowers up to 5 s, close everything */
	rc = shoal_pool_close(pool, 5000);
	if (rc != SHOAL_OK)
		fprintf(stderr, "close: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
	int failed = atomic_load(&failures);
	if (failed)
		fprintf(stderr, "%d of %d workers failed\n", failed, THREADS);
	return rc == SHOAL_OK && failed == 0 ? 0 : 1;
}
