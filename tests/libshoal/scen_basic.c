/* scen_basic.c: single-threaded scenarios: acquire timeout, idle shrink, lifetime retire, health,
 * environment, invalid arguments, use after close, leak report. */
#include <pthread.h>
#include <string.h>

#include "common.h"

int scen_timeout(const char *ci)
{
	shoal_pool_opts o = test_opts(1, 0);
	shoal_pool *p = open_pool(ci, &o);
	shoal_conn *c, *c2;
	int64_t t0, waited;
	shoal_stats s;

	EXPECT_RC(shoal_pool_acquire(p, -1, &c), SHOAL_OK);
	t0 = ms_now();
	EXPECT_RC(shoal_pool_acquire(p, 300, &c2), SHOAL_ETIMEDOUT);
	waited = ms_now() - t0;
	CHECK(c2 == NULL, "out set on failure");
	CHECK(waited >= 290 && waited < 3000, "waited %lld ms for a 300 ms timeout",
	      (long long)waited);
	report("waited_ms", "%lld", (long long)waited);
	report("error", "%s: %s", shoal_strerror(SHOAL_ETIMEDOUT), shoal_errdetail());
	t0 = ms_now();
	EXPECT_RC(shoal_pool_acquire(p, 0, &c2), SHOAL_ETIMEDOUT);
	CHECK(ms_now() - t0 < 200, "timeout 0 waited %lld ms", (long long)(ms_now() - t0));
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	CHECK(s.timeouts == 2 && s.active == 1 && s.total == 1, "timeouts %llu active %d",
	      (unsigned long long)s.timeouts, s.active);
	shoal_pool_release(c);
	EXPECT_RC(shoal_pool_acquire(p, 300, &c2), SHOAL_OK);
	shoal_pool_release(c2);
	report_stats(p);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	return 0;
}

int scen_idle(const char *ci)
{
	shoal_pool_opts o = test_opts(4, 1);
	shoal_pool *p;
	shoal_conn *c[4];
	PGconn *admin = admin_connect(ci);
	shoal_stats s;
	int64_t t0;

	o.idle_ms = 300;
	p = open_pool(ci, &o);
	for (int i = 0; i < 4; i++)
		EXPECT_RC(shoal_pool_acquire(p, -1, &c[i]), SHOAL_OK);
	for (int i = 0; i < 4; i++)
		shoal_pool_release(c[i]);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	CHECK(s.total == 4 && s.idle == 4, "after release: total %d idle %d", s.total, s.idle);
	report("backends_before", "%d", admin_backends(admin));
	t0 = ms_now();
	do {
		ms_sleep(20);
		EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	} while (s.total > 1 && ms_now() - t0 < 5000);
	CHECK(s.total == 1 && s.idle == 1, "after idle_ms: total %d", s.total);
	CHECK(ms_now() - t0 >= 250, "shrank after %lld ms, before idle_ms",
	      (long long)(ms_now() - t0));
	report("shrunk_after_ms", "%lld", (long long)(ms_now() - t0));
	report("backends_after", "%d", admin_wait_backends(admin, 1, 2000));
	report_stats(p);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	report("backends_closed", "%d", admin_wait_backends(admin, 0, 2000));
	PQfinish(admin);
	return 0;
}

int scen_lifetime(const char *ci)
{
	shoal_pool_opts o = test_opts(2, 1);
	shoal_pool *p;
	shoal_conn *c;
	shoal_stats s;
	int pid1 = 0, pid2 = 0, pid3;

	o.max_lifetime_ms = 400;
	p = open_pool(ci, &o);
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid1), SHOAL_OK);
	ms_sleep(900); /* idle past its lifetime: the janitor retires it and refills min */
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	CHECK(s.destroyed >= 1 && s.total >= 1, "idle: destroyed %llu total %d",
	      (unsigned long long)s.destroyed, s.total);
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid2), SHOAL_OK);
	CHECK(pid2 != pid1, "still backend %d after its lifetime", pid1);
	/* borrowed past its lifetime: closed at release, not reused */
	EXPECT_RC(shoal_pool_acquire(p, -1, &c), SHOAL_OK);
	pid3 = conn_pid(c);
	ms_sleep(500);
	shoal_pool_release(c);
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid2), SHOAL_OK);
	CHECK(pid2 != pid3, "backend %d reused after its lifetime", pid3);
	report("pids", "%d %d %d", pid1, pid3, pid2);
	report_stats(p);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	return 0;
}

int scen_health(const char *ci)
{
	shoal_pool_opts o = test_opts(2, 0);
	shoal_pool *p = open_pool(ci, &o);
	shoal_health h;

	EXPECT_RC(shoal_pool_health(p, &h), SHOAL_OK);
	CHECK(h.healthy && h.latency_us > 0 && h.stats.total == 1 && h.stats.idle == 1,
	      "healthy %d latency %lld total %d", h.healthy, (long long)h.latency_us,
	      h.stats.total);
	report("latency_us", "%lld", (long long)h.latency_us);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	/* nobody listens on port 1: unhealthy, with libpq's reason */
	o.conn_timeout_ms = 2000;
	p = open_pool("host=127.0.0.1 port=1 dbname=postgres", &o);
	EXPECT_RC(shoal_pool_health(p, &h), SHOAL_ECONNECT);
	CHECK(!h.healthy && h.status == SHOAL_ECONNECT && strlen(shoal_errdetail()) > 0,
	      "unhealthy report");
	report("unhealthy", "%s: %s", shoal_strerror(h.status), shoal_errdetail());
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	return 0;
}

/* The driver sets DATABASE_URL and DB_POOL_MAX=3, DB_POOL_MIN=1, DB_POOL_IDLE_MS=1234,
 * DB_POOL_CONN_TIMEOUT_MS=4321, DB_POOL_MAX_LIFETIME_MS=60000, DB_POOL_STATEMENT_TIMEOUT_MS=250. */
int scen_env(const char *ci)
{
	shoal_pool_opts o;
	shoal_pool *p;
	shoal_stats s;
	int rc;

	(void)ci;
	EXPECT_RC(shoal_pool_opts_from_env(&o), SHOAL_OK);
	CHECK(o.max == 3 && o.min == 1 && o.idle_ms == 1234 && o.conn_timeout_ms == 4321 &&
		  o.max_lifetime_ms == 60000 && o.statement_timeout_ms == 250,
	      "options from env: max %d min %d idle %d conn %d life %d stmt %d", o.max, o.min,
	      o.idle_ms, o.conn_timeout_ms, o.max_lifetime_ms, o.statement_timeout_ms);
	EXPECT_RC(shoal_pool_open_env(&p), SHOAL_OK);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	CHECK(s.max == 3 && s.min == 1, "stats max %d min %d", s.max, s.min);
	EXPECT_RC(shoal_pool_with(p, cb_select1, NULL), SHOAL_OK);
	/* DB_POOL_STATEMENT_TIMEOUT_MS applies: a 2 s sleep is cancelled after 250 ms */
	rc = shoal_pool_with(p, cb_sql, "SELECT pg_sleep(2)");
	CHECK(rc == SHOAL_ESQL && strstr(shoal_errdetail(), "statement timeout"),
	      "statement timeout: %s %s", code_name(rc), shoal_errdetail());
	report("statement_timeout", "%s", shoal_errdetail());
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	setenv("DB_POOL_MAX", "lots", 1);
	EXPECT_RC(shoal_pool_open_env(&p), SHOAL_EINVAL);
	CHECK(strstr(shoal_errdetail(), "DB_POOL_MAX"), "detail: %s", shoal_errdetail());
	report("bad_env", "%s", shoal_errdetail());
	return 0;
}

int scen_invalid(const char *ci)
{
	shoal_pool_opts o = test_opts(0, 0);
	shoal_pool *p;

	EXPECT_RC(shoal_pool_open(ci, &o, &p), SHOAL_EINVAL);
	report("max0", "%s", shoal_errdetail());
	o = test_opts(2, 3);
	EXPECT_RC(shoal_pool_open(ci, &o, &p), SHOAL_EINVAL);
	EXPECT_RC(shoal_pool_open("nonsense_key=1", NULL, &p), SHOAL_EINVAL);
	CHECK(strstr(shoal_errdetail(), "nonsense_key"), "detail: %s", shoal_errdetail());
	report("bad_conninfo", "%s", shoal_errdetail());
	EXPECT_RC(shoal_pool_open(NULL, NULL, &p), SHOAL_EINVAL);
	EXPECT_RC(shoal_pool_acquire(NULL, 0, NULL), SHOAL_EINVAL);
	EXPECT_RC(shoal_pool_stats(NULL, NULL), SHOAL_EINVAL);
	CHECK(strcmp(shoal_strerror(12345), "unknown libshoal error code") == 0, "strerror");
	shoal_pool_release(NULL);
	return 0;
}

static void *wait_for_conn(void *arg)
{
	shoal_conn *c = NULL;
	int rc = shoal_pool_acquire(arg, 10000, &c);

	if (rc == SHOAL_OK)
		shoal_pool_release(c);
	return (void *)(intptr_t)rc;
}

static void closed_calls_fail(shoal_pool *p)
{
	shoal_conn *c;
	shoal_stats s;
	shoal_health h;

	EXPECT_RC(shoal_pool_acquire(p, 100, &c), SHOAL_ECLOSED);
	EXPECT_RC(shoal_pool_with(p, cb_select1, NULL), SHOAL_ECLOSED);
	EXPECT_RC(shoal_pool_with_retry(p, cb_select1, NULL, 3, 10), SHOAL_ECLOSED);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_ECLOSED);
	EXPECT_RC(shoal_pool_health(p, &h), SHOAL_ECLOSED);
	EXPECT_RC(shoal_pool_close(p, 0), SHOAL_ECLOSED);
}

int scen_closed(const char *ci)
{
	shoal_pool_opts o = test_opts(1, 1);
	shoal_pool *p = open_pool(ci, &o), *p2;
	shoal_conn *held;
	pthread_t t;
	void *res;
	shoal_stats s;

	/* a thread waiting in acquire when the pool closes gets SHOAL_ECLOSED at once */
	EXPECT_RC(shoal_pool_acquire(p, -1, &held), SHOAL_OK);
	CHECK(pthread_create(&t, NULL, wait_for_conn, p) == 0, "pthread_create");
	do {
		ms_sleep(5);
		EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	} while (s.waiting == 0);
	EXPECT_RC(shoal_pool_close(p, 100), SHOAL_EDRAIN);
	report("drain_error", "%s: %s", shoal_strerror(SHOAL_EDRAIN), shoal_errdetail());
	pthread_join(t, &res);
	CHECK((intptr_t)res == SHOAL_ECLOSED, "waiter got %s", code_name((int)(intptr_t)res));
	closed_calls_fail(p);
	CHECK(shoal_exec(shoal_conn_pg(held), "SELECT 1") == SHOAL_OK, "held conn still works");
	shoal_pool_release(held); /* after close: closed, and the pool's memory freed */
	closed_calls_fail(p);
	/* a new pool may reuse the handle's slot: the old handle must stay dead */
	p2 = open_pool(ci, &o);
	closed_calls_fail(p);
	EXPECT_RC(shoal_pool_with(p2, cb_select1, NULL), SHOAL_OK);
	EXPECT_RC(shoal_pool_close(p2, 1000), SHOAL_OK);
	closed_calls_fail(p2);
	report("closed_error", "%s", shoal_strerror(SHOAL_ECLOSED));
	return 0;
}

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[2048];
static int log_count;

static void collect_log(void *ctx, const char *msg)
{
	(void)ctx;
	pthread_mutex_lock(&log_mu);
	log_count++;
	snprintf(log_buf + strlen(log_buf), sizeof(log_buf) - strlen(log_buf), "%s\n", msg);
	pthread_mutex_unlock(&log_mu);
}

int scen_leak(const char *ci)
{
	shoal_pool_opts o = test_opts(2, 0);
	shoal_pool *p;
	shoal_conn *c;
	shoal_stats s;
	int n;

	o.leak_ms = 100;
	o.log = collect_log;
	p = open_pool(ci, &o);
	EXPECT_RC(shoal_pool_acquire(p, -1, &c), SHOAL_OK); /* the report names scen_leak */
	ms_sleep(500);
	shoal_pool_release(c);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	pthread_mutex_lock(&log_mu);
	n = log_count;
	pthread_mutex_unlock(&log_mu);
	CHECK(n == 1 && s.leaks == 1, "%d reports, %llu leaks: %s", n, (unsigned long long)s.leaks,
	      log_buf);
	CHECK(strstr(log_buf, "acquired at"), "report: %s", log_buf);
	printf("leak_report=%s", log_buf);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	return 0;
}
