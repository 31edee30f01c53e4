/* libshoal_bench.c: what the pool costs and what it saves, measured.
 *   build/libshoal_bench CONNINFO [seconds-per-case]
 * 1. acquire+release of an idle connection (no I/O but the cheap socket probe), 1 and 4 threads;
 * 2. SELECT 1 through the pool vs. PQconnectdb + SELECT 1 + PQfinish per query. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <shoal/pool.h>

struct job {
	shoal_pool *pool;
	const char *conninfo;
	double seconds;
	long ops;
	double elapsed_ns;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", what, shoal_strerror(rc), shoal_errdetail());
	exit(1);
}

/* Run fn in batches of 64 until j->seconds have passed. */
static void timed(struct job *j, void (*fn)(struct job *))
{
	double start = now_ns(), end = start + j->seconds * 1e9, t;

	do {
		for (int i = 0; i < 64; i++)
			fn(j);
		j->ops += 64;
	} while ((t = now_ns()) < end);
	j->elapsed_ns = t - start;
}

static void acquire_release(struct job *j)
{
	shoal_conn *c;
	int rc = shoal_pool_acquire(j->pool, -1, &c);

	if (rc != SHOAL_OK)
		die("acquire", rc);
	shoal_pool_release(c);
}

static int select1(PGconn *pg, void *arg)
{
	(void)arg;
	return shoal_exec(pg, "SELECT 1");
}

static void pooled_select1(struct job *j)
{
	int rc = shoal_pool_with(j->pool, select1, NULL);

	if (rc != SHOAL_OK)
		die("with", rc);
}

static void fresh_select1(struct job *j)
{
	PGconn *pg = PQconnectdb(j->conninfo);

	if (PQstatus(pg) != CONNECTION_OK || shoal_exec(pg, "SELECT 1") != SHOAL_OK) {
		fprintf(stderr, "fresh connection: %s", PQerrorMessage(pg));
		exit(1);
	}
	PQfinish(pg);
}

static void *thread_main(void *arg)
{
	timed(arg, acquire_release);
	return NULL;
}

/* ns per acquire+release with n threads sharing a pool of max n. */
static double acquire_release_ns(const char *conninfo, int n, double seconds)
{
	shoal_pool_opts o;
	shoal_pool *pool;
	pthread_t t[16];
	struct job j[16];
	long ops = 0;
	double wall = 0;
	int rc;

	shoal_pool_opts_init(&o);
	o.max = o.min = n;
	if ((rc = shoal_pool_open(conninfo, &o, &pool)) != SHOAL_OK)
		die("open", rc);
	for (int i = 0; i < n; i++) /* warm: open every connection before timing */
		acquire_release(&(struct job){.pool = pool});
	for (int i = 0; i < n; i++) {
		j[i] = (struct job){.pool = pool, .seconds = seconds};
		pthread_create(&t[i], NULL, thread_main, &j[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		ops += j[i].ops;
		wall = j[i].elapsed_ns > wall ? j[i].elapsed_ns : wall;
	}
	shoal_pool_close(pool, 1000);
	return wall * n / ops; /* thread-ns per operation */
}

static double per_query_us(const char *conninfo, double seconds, void (*fn)(struct job *))
{
	struct job j = {.conninfo = conninfo, .seconds = seconds};
	shoal_pool_opts o;
	int rc;

	shoal_pool_opts_init(&o);
	o.max = o.min = 1;
	if ((rc = shoal_pool_open(conninfo, &o, &j.pool)) != SHOAL_OK)
		die("open", rc);
	fn(&j); /* warm */
	timed(&j, fn);
	shoal_pool_close(j.pool, 1000);
	return j.elapsed_ns / j.ops / 1000.0;
}

int main(int argc, char **argv)
{
	double secs = argc > 2 ? atof(argv[2]) : 2.0, pooled, fresh;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CONNINFO [seconds-per-case]\n", argv[0]);
		return 2;
	}
	printf("acquire+release, 1 thread:             %8.0f ns\n",
	       acquire_release_ns(argv[1], 1, secs));
	printf("acquire+release, 4 threads on max 4:   %8.0f ns (thread-time per pair)\n",
	       acquire_release_ns(argv[1], 4, secs));
	pooled = per_query_us(argv[1], secs, pooled_select1);
	fresh = per_query_us(argv[1], secs, fresh_select1);
	printf("SELECT 1 through the pool:             %8.1f us\n", pooled);
	printf("SELECT 1 on a fresh PQconnectdb:       %8.1f us  (%.0fx)\n", fresh, fresh / pooled);
	return 0;
}
