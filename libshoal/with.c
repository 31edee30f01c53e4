/* with.c: shoal_pool_with() (acquire, run, roll back, always release), its retrying form with
 * exponential backoff and jitter, and the health check. */
#include "internal.h"

#define MAX_BACKOFF_MS 30000

static bool retryable(int rc)
{
	return rc == SHOAL_ECONNECT || rc == SHOAL_ECONNLOST || rc == SHOAL_ESERIALIZE;
}

/* After fn: name a broken connection as such, and roll back what fn left open. */
static int finish(PGconn *pg, int rc)
{
	PGTransactionStatusType ts = PQtransactionStatus(pg);

	if (rc != SHOAL_OK && rc != SHOAL_ECONNLOST && PQstatus(pg) == CONNECTION_BAD)
		rc = err_set_pq(SHOAL_ECONNLOST, "", PQerrorMessage(pg));
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
		PGresult *res = PQexec(pg, "ROLLBACK");

		PQclear(res); /* if it failed, release sees the transaction and closes it */
	}
	return rc;
}

static int with_at(shoal_pool *h, shoal_with_fn fn, void *arg, void *site)
{
	shoal_conn *c;
	int rc;

	if (!fn)
		return err_set(SHOAL_EINVAL, "shoal_pool_with: fn is NULL");
	if ((rc = acquire_at(h, -1, &c, site)) != SHOAL_OK)
		return rc;
	rc = finish(c->pg, fn(c->pg, arg));
	shoal_pool_release(c);
	return rc;
}

int shoal_pool_with(shoal_pool *h, shoal_with_fn fn, void *arg)
{
	return with_at(h, fn, arg, __builtin_return_address(0));
}

/* Which defaults apply: the pool's, read once (the handle may be closed meanwhile). */
static int retry_defaults(shoal_pool *h, int *max_retries, int *delay_ms)
{
	struct lpool *p = registry_get(h);

	if (!p)
		return err_set(SHOAL_ECLOSED, "pool is closed (or was never opened)");
	if (*max_retries < 0)
		*max_retries = p->o.max_retries;
	if (*delay_ms < 0)
		*delay_ms = p->o.retry_delay_ms;
	pool_unref(p);
	return SHOAL_OK;
}

/* Half the exponential delay fixed, half random ("equal jitter"): spread, yet growing. */
static int64_t backoff_ms(int delay_ms, int attempt)
{
	static _Thread_local uint64_t rng;
	int64_t d = delay_ms;

	if (!rng)
		rng = (uint64_t)now_us() ^ (uint64_t)(uintptr_t)&rng;
	for (int i = 0; i < attempt && d < MAX_BACKOFF_MS; i++)
		d *= 2;
	if (d > MAX_BACKOFF_MS)
		d = MAX_BACKOFF_MS;
	return d / 2 + (int64_t)rand_below(&rng, (uint64_t)(d - d / 2) + 1);
}

int shoal_pool_with_retry(shoal_pool *h, shoal_with_fn fn, void *arg, int max_retries,
			  int retry_delay_ms)
{
	void *site = __builtin_return_address(0);
	int rc;

	if ((rc = retry_defaults(h, &max_retries, &retry_delay_ms)) != SHOAL_OK)
		return rc;
	for (int attempt = 0;; attempt++) {
		rc = with_at(h, fn, arg, site);
		if (!retryable(rc) || attempt >= max_retries)
			return rc;
		sleep_ms(backoff_ms(retry_delay_ms, attempt));
	}
}

static int select_one(PGconn *pg, void *arg)
{
	(void)arg;
	return shoal_exec(pg, "SELECT 1");
}

int shoal_pool_health(shoal_pool *h, shoal_health *r)
{
	int64_t start = now_us();

	if (!r)
		return err_set(SHOAL_EINVAL, "shoal_pool_health: NULL argument");
	r->status = with_at(h, select_one, NULL, __builtin_return_address(0));
	r->latency_us = now_us() - start;
	r->healthy = r->status == SHOAL_OK;
	if (shoal_pool_stats(h, &r->stats) != SHOAL_OK && r->status == SHOAL_OK)
		r->status = SHOAL_ECLOSED;
	return r->status;
}
