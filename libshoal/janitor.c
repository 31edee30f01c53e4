/* janitor.c: the pool's maintenance thread: every tick it closes idle connections past idle_ms
 * (down to min) or past their lifetime, drops idle ones whose backend went away, reports
 * connections borrowed longer than leak_ms, and opens connections up to min. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "internal.h"

#define MAX_BATCH 64

struct batch {
	struct shoal_conn *dead[MAX_BATCH];
	struct shoal_conn *fill[MAX_BATCH];
	struct {
		int64_t held_ms;
		void *site;
	} leak[MAX_BATCH];
	int ndead, nfill, nleak;
};

static bool idle_too_long(struct lpool *p, struct shoal_conn *c, int64_t now)
{
	return p->o.idle_ms > 0 && now - c->last_used_ms >= p->o.idle_ms &&
	       pool_total_locked(p) > p->o.min;
}

/* Oldest-used first, so the connections that stay are the ones in use. */
static void sweep_idle_locked(struct lpool *p, struct batch *b, int64_t now)
{
	struct shoal_conn *c = p->idle.tail, *prev;

	for (; c && b->ndead < MAX_BATCH; c = prev) {
		enum probe pr = conn_probe(c);

		prev = c->prev;
		if (now < c->expires_ms && !idle_too_long(p, c, now) && pr != PROBE_DEAD)
			continue;
		if (pr == PROBE_DEAD)
			atomic_fetch_add_explicit(&p->ctr.errors, 1, memory_order_relaxed);
		conn_forget_locked(p, c);
		b->dead[b->ndead++] = c;
	}
}

static void find_leaks_locked(struct lpool *p, struct batch *b, int64_t now)
{
	if (p->o.leak_ms <= 0)
		return;
	for (struct shoal_conn *c = p->busy.head; c && b->nleak < MAX_BATCH; c = c->next) {
		if (c->leak_reported || now - c->acquired_ms < p->o.leak_ms)
			continue;
		c->leak_reported = true;
		atomic_fetch_add_explicit(&p->ctr.leaks, 1, memory_order_relaxed);
		b->leak[b->nleak].held_ms = now - c->acquired_ms;
		b->leak[b->nleak++].site = c->acquired_at;
	}
}

static void fill_min_locked(struct lpool *p, struct batch *b)
{
	while (pool_total_locked(p) < p->o.min && b->nfill < MAX_BATCH) {
		struct shoal_conn *c = slot_take_locked(p);

		if (!c)
			return;
		b->fill[b->nfill++] = c;
	}
}

static void report_leak(struct lpool *p, int64_t held_ms, void *site)
{
	char msg[512];
	Dl_info info;

	if (!p->o.log)
		return;
	if (site && dladdr(site, &info) && info.dli_sname)
		snprintf(msg, sizeof(msg),
			 "libshoal: connection borrowed for %lld ms (leak_ms %d), acquired at "
			 "%s+0x%zx (%s)",
			 (long long)held_ms, p->o.leak_ms, info.dli_sname,
			 (size_t)((char *)site - (char *)info.dli_saddr), info.dli_fname);
	else
		snprintf(msg, sizeof(msg),
			 "libshoal: connection borrowed for %lld ms (leak_ms %d), acquired at %p",
			 (long long)held_ms, p->o.leak_ms, site);
	p->o.log(p->o.log_ctx, msg);
}

/* The slow parts, without the lock: closing, reporting, connecting. Returns how many of the
 * slots in b->fill it used (the others are still the janitor's, in LC_OPENING). */
static int run_batch(struct lpool *p, struct batch *b)
{
	int i;

	for (i = 0; i < b->ndead; i++) {
		conn_free(b->dead[i]);
		pool_unref(p);
	}
	for (i = 0; i < b->nleak; i++)
		report_leak(p, b->leak[i].held_ms, b->leak[i].site);
	for (i = 0; i < b->nfill; i++)
		if (slot_fill(p, b->fill[i], now_ms() + p->o.conn_timeout_ms, false) != SHOAL_OK)
			return i + 1; /* the rest would fail the same way */
	return i;
}

static void give_back_unfilled(struct lpool *p, struct batch *b, int from)
{
	for (int i = from; i < b->nfill; i++) {
		conn_forget_locked(p, b->fill[i]);
		conn_free(b->fill[i]);
		pool_unref(p); /* never the last reference: close() holds one */
	}
}

static void *janitor_main(void *arg)
{
	struct lpool *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->mu);
	while (!p->closing) {
		struct batch b = {.ndead = 0};
		int64_t now = now_ms();
		int used;

		sweep_idle_locked(p, &b, now);
		find_leaks_locked(p, &b, now);
		fill_min_locked(p, &b);
		pthread_mutex_unlock(&p->mu);
		used = run_batch(p, &b);
		pthread_mutex_lock(&p->mu);
		give_back_unfilled(p, &b, used);
		deadline_ts(now_ms() + p->tick_ms, &ts);
		while (!p->closing && pthread_cond_timedwait(&p->changed, &p->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int janitor_start(struct lpool *p)
{
	int64_t t = 1000;

	/* Tick at half the shortest period it enforces, between 10 ms and 1 s. */
	if (p->o.idle_ms > 0 && p->o.idle_ms / 2 < t)
		t = p->o.idle_ms / 2;
	if (p->o.max_lifetime_ms > 0 && p->o.max_lifetime_ms / 2 < t)
		t = p->o.max_lifetime_ms / 2;
	if (p->o.leak_ms > 0 && p->o.leak_ms / 2 < t)
		t = p->o.leak_ms / 2;
	p->tick_ms = t < 10 ? 10 : (int)t;
	if (pthread_create(&p->janitor, NULL, janitor_main, p) != 0)
		return err_set(SHOAL_ENOMEM, "could not start the pool's maintenance thread");
	return SHOAL_OK;
}

void janitor_stop(struct lpool *p)
{
	pthread_join(p->janitor, NULL);
}
