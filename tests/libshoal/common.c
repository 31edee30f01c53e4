/* common.c: helpers shared by the libshoal test scenarios. */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "common.h"

const char *code_name(int rc)
{
	static const char *const names[] = {
	    "SHOAL_OK",	       "SHOAL_EINVAL",	 "SHOAL_ENOMEM",    "SHOAL_ECLOSED",
	    "SHOAL_ETIMEDOUT", "SHOAL_ECONNECT", "SHOAL_ECONNLOST", "SHOAL_ESERIALIZE",
	    "SHOAL_ESQL",      "SHOAL_EDRAIN",	 "SHOAL_EFAIL",	    "SHOAL_EAUTH",
	};

	if (rc < 0 || (size_t)rc >= sizeof(names) / sizeof(names[0]))
		return "(unknown)";
	return names[rc];
}

int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ms_sleep(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

void report(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf("%s=", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void report_stats(shoal_pool *p)
{
	shoal_stats s;

	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	report("stats",
	       "total=%d active=%d idle=%d waiting=%d max=%d acquired=%llu released=%llu "
	       "created=%llu destroyed=%llu timeouts=%llu errors=%llu leaks=%llu",
	       s.total, s.active, s.idle, s.waiting, s.max, (unsigned long long)s.acquired,
	       (unsigned long long)s.released, (unsigned long long)s.created,
	       (unsigned long long)s.destroyed, (unsigned long long)s.timeouts,
	       (unsigned long long)s.errors, (unsigned long long)s.leaks);
}

shoal_pool *open_pool(const char *conninfo, const shoal_pool_opts *o)
{
	shoal_pool *p = NULL;

	EXPECT_RC(shoal_pool_open(conninfo, o, &p), SHOAL_OK);
	return p;
}

PGconn *admin_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	CHECK(PQstatus(c) == CONNECTION_OK, "admin connection: %s", PQerrorMessage(c));
	return c;
}

static int query_int(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int v;

	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
	v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

int admin_backends(PGconn *admin)
{
	return query_int(admin, "SELECT count(*) FROM pg_stat_activity WHERE usename = "
				"current_user AND backend_type = 'client backend' AND pid <> "
				"pg_backend_pid()");
}

void admin_terminate(PGconn *admin, int pid)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 5000)::int", pid);
	CHECK(query_int(admin, sql) == 1, "could not terminate backend %d", pid);
}

int admin_wait_backends(PGconn *admin, int want, int timeout_ms)
{
	int64_t deadline = ms_now() + timeout_ms;
	int n;

	while ((n = admin_backends(admin)) != want && ms_now() < deadline)
		ms_sleep(20);
	return n;
}

int cb_pid(PGconn *pg, void *arg)
{
	PGresult *r = PQexec(pg, "SELECT pg_backend_pid()");
	int rc = shoal_check(pg, r);

	if (rc == SHOAL_OK)
		*(int *)arg = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

int cb_sql(PGconn *pg, void *arg)
{
	return shoal_exec(pg, arg);
}

int cb_select1(PGconn *pg, void *arg)
{
	(void)arg;
	return shoal_exec(pg, "SELECT 1");
}

int conn_pid(shoal_conn *c)
{
	int pid = 0;

	EXPECT_RC(cb_pid(shoal_conn_pg(c), &pid), SHOAL_OK);
	return pid;
}

shoal_pool_opts test_opts(int max, int min)
{
	shoal_pool_opts o;

	shoal_pool_opts_init(&o);
	o.max = max;
	o.min = min;
	return o;
}
