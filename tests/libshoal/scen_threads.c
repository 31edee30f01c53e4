/* scen_threads.c: concurrent scenarios: 64 threads on max = 4, FIFO order of waiters, close
 * draining borrowed connections. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common.h"

#define STRESS_THREADS 64
#define STRESS_CALLS   40
#define STRESS_MAX     4

static atomic_int inside, max_inside, max_backends, calls_ok;

static void atomic_max(atomic_int *m, int v)
{
	int cur = atomic_load(m);

	while (v > cur && !atomic_compare_exchange_weak(m, &cur, v))
		;
}

/* Counts the user's backends from inside: every pooled connection is one of them. */
static int cb_count_backends(PGconn *pg, void *arg)
{
	PGresult *r;
	int rc;

	(void)arg;
	atomic_max(&max_inside, atomic_fetch_add(&inside, 1) + 1);
	r = PQexec(pg, "SELECT count(*) FROM pg_stat_activity WHERE usename = current_user "
		       "AND backend_type = 'client backend'");
	if ((rc = shoal_check(pg, r)) == SHOAL_OK)
		atomic_max(&max_backends, atoi(PQgetvalue(r, 0, 0)));
	PQclear(r);
	atomic_fetch_sub(&inside, 1);
	return rc;
}

static void *stress_thread(void *arg)
{
	for (int i = 0; i < STRESS_CALLS; i++) {
		int rc = shoal_pool_with(arg, cb_count_backends, NULL);

		CHECK(rc == SHOAL_OK, "with: %s %s", code_name(rc), shoal_errdetail());
		atomic_fetch_add(&calls_ok, 1);
	}
	return NULL;
}

int scen_stress(const char *ci)
{
	shoal_pool_opts o;
	pthread_t t[STRESS_THREADS];
	shoal_pool *p;
	shoal_stats s;

	shoal_pool_opts_init(&o);
	o.max = STRESS_MAX;
	o.min = 2;
	o.conn_timeout_ms = 20000;
	p = open_pool(ci, &o);
	for (int i = 0; i < STRESS_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, stress_thread, p) == 0, "pthread_create");
	for (int i = 0; i < STRESS_THREADS; i++)
		pthread_join(t[i], NULL);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	report("calls_ok", "%d", atomic_load(&calls_ok));
	report("max_inside", "%d", atomic_load(&max_inside));
	report("max_backends", "%d", atomic_load(&max_backends));
	report_stats(p);
	CHECK(atomic_load(&calls_ok) == STRESS_THREADS * STRESS_CALLS, "calls");
	CHECK(atomic_load(&max_inside) <= STRESS_MAX, "%d callbacks at once",
	      atomic_load(&max_inside));
	CHECK(atomic_load(&max_backends) <= STRESS_MAX, "%d backends", atomic_load(&max_backends));
	CHECK(s.total <= STRESS_MAX && s.created <= STRESS_MAX && s.waiting == 0,
	      "total %d created %llu", s.total, (unsigned long long)s.created);
	CHECK(s.acquired == (uint64_t)STRESS_THREADS * STRESS_CALLS && s.released == s.acquired,
	      "acquired %llu released %llu", (unsigned long long)s.acquired,
	      (unsigned long long)s.released);
	EXPECT_RC(shoal_pool_close(p, 2000), SHOAL_OK);
	return 0;
}

#define FIFO_WAITERS 6

struct fifo {
	shoal_pool *p;
	pthread_mutex_t mu;
	int order[FIFO_WAITERS];
	int served;
};

struct fifo_arg {
	struct fifo *f;
	int id;
};

static void *fifo_waiter(void *arg)
{
	struct fifo_arg *a = arg;
	shoal_conn *c;

	EXPECT_RC(shoal_pool_acquire(a->f->p, 10000, &c), SHOAL_OK);
	pthread_mutex_lock(&a->f->mu);
	a->f->order[a->f->served++] = a->id;
	pthread_mutex_unlock(&a->f->mu);
	ms_sleep(5);
	shoal_pool_release(c);
	return NULL;
}

static void wait_for_waiters(shoal_pool *p, int n)
{
	shoal_stats s;

	do {
		ms_sleep(2);
		EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	} while (s.waiting < n);
}

int scen_fifo(const char *ci)
{
	shoal_pool_opts o;
	struct fifo f = {.served = 0};
	struct fifo_arg args[FIFO_WAITERS];
	pthread_t t[FIFO_WAITERS];
	shoal_conn *held;

	shoal_pool_opts_init(&o);
	o.max = 1;
	o.min = 0;
	f.p = open_pool(ci, &o);
	pthread_mutex_init(&f.mu, NULL);
	EXPECT_RC(shoal_pool_acquire(f.p, -1, &held), SHOAL_OK);
	for (int i = 0; i < FIFO_WAITERS; i++) { /* queue them one after another */
		args[i] = (struct fifo_arg){&f, i};
		CHECK(pthread_create(&t[i], NULL, fifo_waiter, &args[i]) == 0, "pthread_create");
		wait_for_waiters(f.p, i + 1);
	}
	shoal_pool_release(held);
	for (int i = 0; i < FIFO_WAITERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < FIFO_WAITERS; i++)
		CHECK(f.order[i] == i, "waiter %d served in place %d", f.order[i], i);
	report("order", "%d %d %d %d %d %d", f.order[0], f.order[1], f.order[2], f.order[3],
	       f.order[4], f.order[5]);
	EXPECT_RC(shoal_pool_close(f.p, 1000), SHOAL_OK);
	pthread_mutex_destroy(&f.mu);
	return 0;
}

struct holder {
	shoal_pool *p;
	int hold_ms;
	atomic_int got;
};

static void *hold_thread(void *arg)
{
	struct holder *h = arg;
	shoal_conn *c;

	EXPECT_RC(shoal_pool_acquire(h->p, -1, &c), SHOAL_OK);
	atomic_store(&h->got, 1);
	ms_sleep(h->hold_ms);
	EXPECT_RC(shoal_exec(shoal_conn_pg(c), "SELECT 1"), SHOAL_OK);
	shoal_pool_release(c);
	return NULL;
}

/* A thread holds a connection hold_ms; close(drain_ms) once it has it. Close's time. */
static int64_t close_while_held(const char *ci, int hold_ms, int drain_ms, int want)
{
	shoal_pool_opts o;
	struct holder h = {.hold_ms = hold_ms};
	pthread_t t;
	int64_t t0;

	shoal_pool_opts_init(&o);
	o.max = 2;
	o.min = 2;
	h.p = open_pool(ci, &o);
	CHECK(pthread_create(&t, NULL, hold_thread, &h) == 0, "pthread_create");
	while (!atomic_load(&h.got))
		ms_sleep(2);
	t0 = ms_now();
	EXPECT_RC(shoal_pool_close(h.p, drain_ms), want);
	t0 = ms_now() - t0;
	pthread_join(t, NULL);
	return t0;
}

int scen_drain(const char *ci)
{
	PGconn *admin = admin_connect(ci);
	int64_t took;

	took = close_while_held(ci, 400, 5000, SHOAL_OK);
	CHECK(took >= 300 && took < 4000, "drained close took %lld ms", (long long)took);
	report("drained_ms", "%lld", (long long)took);
	CHECK(admin_wait_backends(admin, 0, 3000) == 0, "backends left after drained close");
	took = close_while_held(ci, 1000, 200, SHOAL_EDRAIN);
	CHECK(took >= 150 && took < 900, "timed-out close took %lld ms", (long long)took);
	report("drain_timeout_ms", "%lld", (long long)took);
	report("drain_error", "%s", shoal_errdetail());
	CHECK(admin_wait_backends(admin, 0, 3000) == 0, "backends left after late release");
	PQfinish(admin);
	return 0;
}
