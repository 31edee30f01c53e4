/* common.h: helpers for the libshoal test scenarios: checks that print FAIL and exit, a direct
 * "admin" libpq connection to look at pg_stat_activity, and small callbacks. */
#ifndef LIBSHOAL_TEST_COMMON_H
#define LIBSHOAL_TEST_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "shoal/pool.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);                                \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
			fflush(stdout);                                                            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define EXPECT_RC(call, want)                                                                      \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		CHECK(rc_ == (want), "%s returned %s (%s), wanted %s", #call, code_name(rc_),      \
		      shoal_errdetail(), code_name(want));                                         \
	} while (0)

/* "SHOAL_ETIMEDOUT" for SHOAL_ETIMEDOUT. */
const char *code_name(int rc);
/* Milliseconds on the monotonic clock. */
int64_t ms_now(void);
void ms_sleep(int64_t ms);
/* Print "key=value" for the scenario's driver. */
void report(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void report_stats(shoal_pool *p);
/* A pool with opts on conninfo, or FAIL. */
/* Default options with max and min set. */
shoal_pool_opts test_opts(int max, int min);
shoal_pool *open_pool(const char *conninfo, const shoal_pool_opts *o);

/* A direct connection (not pooled), or FAIL. */
PGconn *admin_connect(const char *conninfo);
/* Backends of the current user other than admin's own. */
int admin_backends(PGconn *admin);
/* pg_terminate_backend(pid), waiting for it to exit. */
void admin_terminate(PGconn *admin, int pid);
/* Poll until admin_backends() == want or timeout_ms; the last count. */
int admin_wait_backends(PGconn *admin, int want, int timeout_ms);

/* shoal_with_fn: *(int *)arg = pg_backend_pid(). */
int cb_pid(PGconn *pg, void *arg);
/* shoal_with_fn: run the SQL in arg. */
int cb_sql(PGconn *pg, void *arg);
/* shoal_with_fn: SELECT 1. */
int cb_select1(PGconn *pg, void *arg);
/* The pid of the backend of a borrowed connection. */
int conn_pid(shoal_conn *c);

/* Scenarios: each returns 0 on success (or exits with FAIL). */
int scen_timeout(const char *ci);
int scen_idle(const char *ci);
int scen_lifetime(const char *ci);
int scen_health(const char *ci);
int scen_env(const char *ci);
int scen_invalid(const char *ci);
int scen_closed(const char *ci);
int scen_leak(const char *ci);
int scen_kill_idle(const char *ci);
int scen_kill_borrowed(const char *ci);
int scen_restart(const char *ci);
int scen_retry(const char *ci);
int scen_rollback(const char *ci);
int scen_stress(const char *ci);
int scen_fifo(const char *ci);
int scen_drain(const char *ci);

#endif
