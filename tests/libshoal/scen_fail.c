/* scen_fail.c: failure scenarios: backends killed while idle or borrowed, PostgreSQL restarting
 * under with_retry, retry classification, rollback of what a callback left open. */
#include <string.h>

#include "common.h"

int scen_kill_idle(const char *ci)
{
	/* min 0: with min 1 the janitor may open a second connection while the first is lent,
	 * and the next borrow takes that one (FIFO), never meeting the killed backend. */
	shoal_pool_opts o = test_opts(2, 0);
	shoal_pool *p = open_pool(ci, &o);
	PGconn *admin = admin_connect(ci);
	int pid1 = 0, pid2 = 0;
	shoal_stats s;

	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid1), SHOAL_OK);
	admin_terminate(admin, pid1);
	/* The next borrow finds the dead connection without a round trip (validate_idle_ms is
	 * 5 s), replaces it, and the caller never sees it. */
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid2), SHOAL_OK);
	CHECK(pid2 != pid1 && pid2 != 0, "got killed backend %d again", pid1);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	CHECK(s.destroyed >= 1 && s.errors >= 1 && s.total >= 1, "destroyed %llu errors %llu",
	      (unsigned long long)s.destroyed, (unsigned long long)s.errors);
	report("pids", "%d %d", pid1, pid2);
	report_stats(p);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	PQfinish(admin);
	return 0;
}

struct killer {
	PGconn *admin;
	int pid;
};

/* A callback whose backend is killed under it. */
static int cb_killed(PGconn *pg, void *arg)
{
	struct killer *k = arg;
	int rc = cb_pid(pg, &k->pid);

	if (rc != SHOAL_OK)
		return rc;
	admin_terminate(k->admin, k->pid);
	return shoal_exec(pg, "SELECT 1");
}

int scen_kill_borrowed(const char *ci)
{
	shoal_pool_opts o = test_opts(2, 0);
	shoal_pool *p = open_pool(ci, &o);
	struct killer k = {.admin = admin_connect(ci)};
	shoal_conn *c;
	int pid, pid2 = 0;
	shoal_stats s;

	EXPECT_RC(shoal_pool_acquire(p, -1, &c), SHOAL_OK);
	pid = conn_pid(c);
	admin_terminate(k.admin, pid);
	EXPECT_RC(shoal_exec(shoal_conn_pg(c), "SELECT 1"), SHOAL_ECONNLOST);
	report("borrowed_error", "%s: %s", shoal_strerror(SHOAL_ECONNLOST), shoal_errdetail());
	CHECK(strstr(shoal_errdetail(), "terminat") || strstr(shoal_errdetail(), "closed"),
	      "unclear detail: %s", shoal_errdetail());
	shoal_pool_release(c);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	CHECK(s.total == 0 && s.destroyed == 1 && s.errors == 1, "after release: total %d",
	      s.total);
	EXPECT_RC(shoal_pool_with(p, cb_killed, &k), SHOAL_ECONNLOST);
	report("with_error", "%s: %s", shoal_strerror(SHOAL_ECONNLOST), shoal_errdetail());
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid2), SHOAL_OK);
	CHECK(pid2 != pid && pid2 != k.pid, "a killed backend was reused");
	report_stats(p);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	PQfinish(k.admin);
	return 0;
}

struct counted {
	int calls;
};

static int cb_count_select1(PGconn *pg, void *arg)
{
	((struct counted *)arg)->calls++;
	return shoal_exec(pg, "SELECT 1");
}

/* Talks with the driver on stdin/stdout: "ready" -> it stops PostgreSQL and says "down" ->
 * one with() fails clearly -> it starts PostgreSQL while with_retry() is backing off. */
int scen_restart(const char *ci)
{
	shoal_pool_opts o = test_opts(2, 1);
	struct counted n = {0};
	char line[64];
	shoal_pool *p;
	int64_t t0;
	int rc;

	o.conn_timeout_ms = 2000;
	p = open_pool(ci, &o);
	EXPECT_RC(shoal_pool_with(p, cb_select1, NULL), SHOAL_OK);
	report("ready", "1");
	CHECK(fgets(line, sizeof(line), stdin) && strncmp(line, "down", 4) == 0, "no 'down'");
	rc = shoal_pool_with(p, cb_select1, NULL);
	CHECK(rc == SHOAL_ECONNECT || rc == SHOAL_ECONNLOST, "with while down: %s", code_name(rc));
	report("down_error", "%s: %s", shoal_strerror(rc), shoal_errdetail());
	t0 = ms_now();
	rc = shoal_pool_with_retry(p, cb_count_select1, &n, 12, 100);
	report("retry_rc", "%s", code_name(rc));
	report("retry_ms", "%lld", (long long)(ms_now() - t0));
	report("calls", "%d", n.calls); /* failed connects never reach the callback */
	CHECK(rc == SHOAL_OK, "with_retry: %s %s", code_name(rc), shoal_errdetail());
	report_stats(p);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	return 0;
}

struct raiser {
	const char *sqlstate;
	int fail_times;
	int calls;
};

static int cb_raise(PGconn *pg, void *arg)
{
	struct raiser *r = arg;
	char sql[160];

	if (r->calls++ >= r->fail_times)
		return shoal_exec(pg, "SELECT 1");
	snprintf(sql, sizeof(sql),
		 "DO $$BEGIN RAISE EXCEPTION 'simulated %s' USING ERRCODE = '%s'; END$$",
		 r->sqlstate, r->sqlstate);
	return shoal_exec(pg, sql);
}

int scen_retry(const char *ci)
{
	shoal_pool_opts o = test_opts(2, 0);
	shoal_pool *p = open_pool(ci, &o);
	struct raiser ser = {"40001", 2, 0}, dead = {"40P01", 100, 0}, syn = {"42601", 100, 0};
	int64_t t0 = ms_now();

	EXPECT_RC(shoal_pool_with_retry(p, cb_raise, &ser, 3, 20), SHOAL_OK);
	CHECK(ser.calls == 3, "serialization failure: %d calls", ser.calls);
	/* backoff 20, 40 ms with jitter: at least half of each */
	CHECK(ms_now() - t0 >= 30, "no backoff (%lld ms)", (long long)(ms_now() - t0));
	EXPECT_RC(shoal_pool_with_retry(p, cb_raise, &dead, 2, 10), SHOAL_ESERIALIZE);
	CHECK(dead.calls == 3, "deadlock: %d calls for 2 retries", dead.calls);
	report("deadlock_error", "%s", shoal_errdetail());
	EXPECT_RC(shoal_pool_with_retry(p, cb_raise, &syn, 5, 10), SHOAL_ESQL);
	CHECK(syn.calls == 1, "syntax error retried: %d calls", syn.calls);
	report("calls", "%d %d %d", ser.calls, dead.calls, syn.calls);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	return 0;
}

struct txn {
	const char *sql;
	int ret;
};

static int cb_txn(PGconn *pg, void *arg)
{
	struct txn *t = arg;
	int rc = shoal_exec(pg, t->sql);

	return rc != SHOAL_OK ? rc : t->ret;
}

static int rows(PGconn *admin)
{
	PGresult *r = PQexec(admin, "SELECT count(*) FROM libshoal_t");
	int n;

	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK, "count: %s", PQerrorMessage(admin));
	n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

int scen_rollback(const char *ci)
{
	shoal_pool_opts o = test_opts(1, 0);
	shoal_pool *p = open_pool(ci, &o);
	PGconn *admin = admin_connect(ci);
	struct txn fail = {"BEGIN; INSERT INTO libshoal_t VALUES (1)", SHOAL_EFAIL};
	struct txn open_ok = {"BEGIN; INSERT INTO libshoal_t VALUES (2)", SHOAL_OK};
	struct txn bad = {"BEGIN; INSERT INTO libshoal_t VALUES (3); SELECT 1/0", SHOAL_OK};
	int pid1 = 0, pid2 = 0;
	shoal_conn *c;
	shoal_stats s;

	EXPECT_RC(shoal_exec(admin, "CREATE TABLE libshoal_t (v int)"), SHOAL_OK);
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid1), SHOAL_OK);
	EXPECT_RC(shoal_pool_with(p, cb_txn, &fail), SHOAL_EFAIL);
	EXPECT_RC(shoal_pool_with(p, cb_txn, &open_ok), SHOAL_OK);
	EXPECT_RC(shoal_pool_with(p, cb_txn, &bad), SHOAL_ESQL);
	CHECK(rows(admin) == 0, "%d rows survived the rollbacks", rows(admin));
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid2), SHOAL_OK);
	CHECK(pid1 == pid2, "rolled-back connection not reused (%d, %d)", pid1, pid2);
	/* plain release of a connection mid-transaction: closed, not reused */
	EXPECT_RC(shoal_pool_acquire(p, -1, &c), SHOAL_OK);
	EXPECT_RC(shoal_exec(shoal_conn_pg(c), "BEGIN"), SHOAL_OK);
	shoal_pool_release(c);
	EXPECT_RC(shoal_pool_stats(p, &s), SHOAL_OK);
	CHECK(s.total == 0 && s.destroyed == 1, "mid-transaction release kept: total %d", s.total);
	EXPECT_RC(shoal_pool_with(p, cb_pid, &pid2), SHOAL_OK);
	CHECK(pid1 != pid2, "mid-transaction connection reused");
	report_stats(p);
	EXPECT_RC(shoal_pool_close(p, 1000), SHOAL_OK);
	PQfinish(admin);
	return 0;
}
