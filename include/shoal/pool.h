/* shoal/pool.h: libshoal, an in-process PostgreSQL connection pool for C programs on libpq.
 *
 * Thread-safe (pthreads). Every fallible call returns SHOAL_OK or a SHOAL_E* code; the text is
 * shoal_strerror(code), and shoal_errdetail() holds this thread's detail for the last failure
 * (libpq's or the server's message). The library never prints. */
#ifndef SHOAL_POOL_PUBLIC_H
#define SHOAL_POOL_PUBLIC_H

#include <stdint.h>
#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SHOAL_MUST_CHECK __attribute__((warn_unused_result))
#define SHOAL_API	 __attribute__((visibility("default")))
#else
#define SHOAL_MUST_CHECK
#define SHOAL_API
#endif

/* Result codes. Callbacks given to shoal_pool_with() return these too. */
enum shoal_status {
	SHOAL_OK = 0,
	SHOAL_EINVAL,	  /* bad argument, conninfo or DB_POOL_* value */
	SHOAL_ENOMEM,	  /* out of memory */
	SHOAL_ECLOSED,	  /* the pool is closed (or closing): nothing is handed out */
	SHOAL_ETIMEDOUT,  /* no connection became available within the acquire timeout */
	SHOAL_ECONNECT,	  /* could not open a connection to PostgreSQL (retryable) */
	SHOAL_ECONNLOST,  /* the connection broke while in use (retryable) */
	SHOAL_ESERIALIZE, /* serialization failure or deadlock, SQLSTATE 40001/40P01 (retryable) */
	SHOAL_ESQL,	  /* the statement failed with any other error (not retried) */
	SHOAL_EDRAIN,	  /* close: connections still borrowed when drain_ms ran out */
	SHOAL_EFAIL,	  /* a callback failed for a reason of its own (not retried) */
	SHOAL_EAUTH,	  /* the server refused the login: wrong or missing password, no
			     pg_hba.conf entry (SQLSTATE class 28); not retried */
};

typedef struct shoal_pool shoal_pool; /* opaque handle; stays safe to pass after close */
typedef struct shoal_conn shoal_conn; /* one borrowed connection */

/* Called (from any thread, never with a pool lock held) for notices such as a leak report. */
typedef void (*shoal_log_fn)(void *ctx, const char *msg);

typedef struct shoal_pool_opts {
	int max;		  /* most connections open at once (20, DB_POOL_MAX) */
	int min;		  /* connections kept open even when idle (2, DB_POOL_MIN) */
	int idle_ms;		  /* close idle ones above min after this (30000, DB_POOL_IDLE_MS;
				     0 = never) */
	int conn_timeout_ms;	  /* default acquire timeout and connect deadline
				     (5000, DB_POOL_CONN_TIMEOUT_MS) */
	int max_lifetime_ms;	  /* retire connections after this, minus up to 10% jitter
				     (1800000, DB_POOL_MAX_LIFETIME_MS; 0 = never) */
	int statement_timeout_ms; /* SET statement_timeout on each new connection
				     (0 = server default, DB_POOL_STATEMENT_TIMEOUT_MS) */
	int max_retries;	  /* shoal_pool_with_retry's default (3) */
	int retry_delay_ms;	  /* its first backoff delay, doubled each retry (100) */
	int validate_idle_ms;	  /* on borrow, a round trip (empty query) if idle longer (5000) */
	int leak_ms;		  /* report a connection borrowed longer than this (0 = off) */
	shoal_log_fn log;	  /* where reports go (NULL = nowhere; they are still counted) */
	void *log_ctx;
} shoal_pool_opts;

typedef struct shoal_stats {
	int total;   /* open connections, including ones being opened */
	int active;  /* borrowed */
	int idle;    /* open and waiting to be borrowed */
	int waiting; /* threads blocked in acquire */
	int max;
	int min;
	uint64_t acquired;  /* successful acquires */
	uint64_t released;  /* releases */
	uint64_t created;   /* connections opened */
	uint64_t destroyed; /* connections closed, for any reason */
	uint64_t timeouts;  /* acquires that timed out */
	uint64_t errors;    /* failed connects and connections found broken */
	uint64_t leaks;	    /* connections reported as held longer than leak_ms */
} shoal_stats;

typedef struct shoal_health {
	int healthy;	    /* 1 when SELECT 1 succeeded */
	int status;	    /* SHOAL_OK or why not */
	int64_t latency_us; /* acquire + SELECT 1 + release, in microseconds */
	shoal_stats stats;
} shoal_health;

/* Work done with a borrowed connection: returns SHOAL_OK or a SHOAL_E* code (shoal_check()
 * turns a PGresult into one); other values are passed back unchanged and never retried. */
typedef int (*shoal_with_fn)(PGconn *conn, void *arg);

/* Fill o with the defaults listed above. */
SHOAL_API void shoal_pool_opts_init(shoal_pool_opts *o);
/* Fill o with the defaults overridden by DB_POOL_* variables; SHOAL_EINVAL names a bad one. */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_opts_from_env(shoal_pool_opts *o);

/* Create a pool for conninfo (libpq key=value or URI; opts NULL = defaults). Connections open
 * lazily and in the background up to min; the conninfo is checked here. *out on SHOAL_OK. */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_open(const char *conninfo, const shoal_pool_opts *opts,
					       shoal_pool **out);
/* shoal_pool_open(DATABASE_URL (or "" for libpq's PG* defaults), shoal_pool_opts_from_env()). */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_open_env(shoal_pool **out);

/* Borrow a connection, waiting in FIFO order up to timeout_ms (< 0: conn_timeout_ms; 0: don't
 * wait for a release). The connection is checked before it is handed out. *out on SHOAL_OK. */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_acquire(shoal_pool *p, int timeout_ms, shoal_conn **out);
/* Give it back. Broken, mid-transaction or expired connections are closed, not reused.
 * Valid after the pool is closed (the connection is then closed). */
SHOAL_API void shoal_pool_release(shoal_conn *c);
/* The libpq connection of a borrowed one; valid until release. */
SHOAL_API PGconn *shoal_conn_pg(shoal_conn *c);

/* Acquire (conn_timeout_ms), run fn, roll back a transaction fn left open, always release.
 * Returns fn's result, the acquire error, or SHOAL_ECONNLOST if the connection broke. */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_with(shoal_pool *p, shoal_with_fn fn, void *arg);
/* shoal_pool_with, retried on SHOAL_ECONNECT, SHOAL_ECONNLOST and SHOAL_ESERIALIZE after
 * retry_delay_ms * 2^n (with jitter); never on SHOAL_EAUTH (a refused login). Negative
 * arguments take the pool's defaults. */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_with_retry(shoal_pool *p, shoal_with_fn fn, void *arg,
						     int max_retries, int retry_delay_ms);

/* SELECT 1 through the pool, its latency, and the statistics. Returns report->status. */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_health(shoal_pool *p, shoal_health *report);
/* A consistent snapshot of the counts and counters. */
SHOAL_API SHOAL_MUST_CHECK int shoal_pool_stats(shoal_pool *p, shoal_stats *s);

/* Stop handing out (waiters get SHOAL_ECLOSED), close idle connections, wait up to drain_ms for
 * borrowed ones, close them, free the pool. SHOAL_EDRAIN if some are still out: they are closed
 * when released. Any later call with p returns SHOAL_ECLOSED. */
SHOAL_API int shoal_pool_close(shoal_pool *p, int drain_ms);

/* Classify a result of a command on conn: SHOAL_OK, ESERIALIZE, ECONNLOST, or ESQL (with the
 * server's message as detail). Does not clear res. */
SHOAL_API SHOAL_MUST_CHECK int shoal_check(PGconn *conn, const PGresult *res);
/* Run sql (no parameters), discard the result, return shoal_check() of it. */
SHOAL_API SHOAL_MUST_CHECK int shoal_exec(PGconn *conn, const char *sql);

/* A static description of code. */
SHOAL_API const char *shoal_strerror(int code);
/* This thread's detail for the last failure returned by libshoal ("" if none). */
SHOAL_API const char *shoal_errdetail(void);

#ifdef __cplusplus
}
#endif
#endif
