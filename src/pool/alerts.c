/* alerts.c: two alerts from the seeds' runbooks: "clients are waiting" (waiting > 0) and "the
 * pool is at its limit" (total == max). Each fires one warning when its condition has held for
 * its configured time, and one line when the episode ends, never one per tick. The episode state
 * lives in the pool and is touched only by the thread that calls alerts_check. */
#include "alerts.h"
#include "log.h"
#include "pool.h"
#include "pool_view.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>

struct episode_check {
	const char *what;
	usec_t after; /* 0: this alert is off */
};

/* Advance one episode of alert a by whether its condition holds now. */
static void episode(struct pool_alert *a, bool cond, usec_t now, const struct episode_check *chk,
		    const struct pool_view *v, const char *detail)
{
	if (!cond) {
		if (a->fired)
			log_info("pool %s@%s: %s cleared after %.1f s", v->user, v->database,
				 chk->what, (double)(now - a->since) / USEC_PER_SEC);
		a->since = 0;
		a->fired = false;
		return;
	}
	if (!a->since)
		a->since = now;
	if (!a->fired && chk->after > 0 && now - a->since >= chk->after) {
		a->fired = true;
		/* The condition held without a break; the clients now waiting may each have
		 * waited only briefly (a busy pool turns its waiters over), so say both. */
		log_warn("ALERT pool %s@%s: %s for %.1f s without a break (now %s)", v->user,
			 v->database, chk->what, (double)(now - a->since) / USEC_PER_SEC, detail);
	}
}

static void check_pool(struct pool *p, usec_t now, const struct config *cfg)
{
	struct pool_view v;
	char detail[160];
	pool_view_read(p, &v, now);
	const struct episode_check waiting = {"clients waiting for a server",
					      cfg->alert_waiting_after};
	const struct episode_check at_max = {"pool at its limit", cfg->alert_at_max_after};
	snprintf(detail, sizeof(detail), "%d waiting, the longest for %.1f s; %d/%d servers",
		 v.cl_waiting, (double)v.maxwait_us / USEC_PER_SEC, v.sv_total, v.pool_size);
	episode(&p->alert_waiting, v.cl_waiting > 0, now, &waiting, &v, detail);
	episode(&p->alert_at_max, v.pool_size > 0 && v.sv_total >= v.pool_size, now, &at_max, &v,
		detail);
}

void alerts_check(usec_t now)
{
	const struct config *cfg = config_current();
	int n;
	struct pool **ps = pool_snapshot(&n);
	for (int i = 0; i < n; i++)
		check_pool(ps[i], now, cfg);
	pool_snapshot_free(ps);
}
