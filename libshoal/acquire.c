/* acquire.c: borrowing and returning connections: FIFO waiting, checking a connection before
 * lending it (replacing it in the same slot if it is dead or expired), and release. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static void waiter_unlink(struct lpool *p, struct waiter *w)
{
	struct waiter **pp = &p->wait_head, *prev = NULL;

	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = w->next;
	if (p->wait_tail == w)
		p->wait_tail = prev;
}

static int wait_timed_out(struct lpool *p, int64_t waited_ms)
{
	atomic_fetch_add_explicit(&p->ctr.timeouts, 1, memory_order_relaxed);
	return err_set(SHOAL_ETIMEDOUT,
		       "no connection within %lld ms: %d of max %d borrowed, %d threads waiting",
		       (long long)waited_ms, p->busy.count, p->o.max, p->waiting);
}

/* Queue behind earlier waiters until handed a connection or a slot, closed, or deadline_ms. */
static int wait_locked(struct lpool *p, int64_t deadline_ms, void *site, struct shoal_conn **out)
{
	struct waiter w = {.site = site};
	pthread_condattr_t attr;
	struct timespec ts;
	int64_t start = now_ms();

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &attr);
	pthread_condattr_destroy(&attr);
	if (p->wait_tail)
		p->wait_tail->next = &w;
	else
		p->wait_head = &w;
	p->wait_tail = &w;
	p->waiting++;
	deadline_ts(deadline_ms, &ts);
	while (!w.conn && !w.closed)
		if (pthread_cond_timedwait(&w.cv, &p->mu, &ts) == ETIMEDOUT)
			break;
	p->waiting--;
	pthread_cond_destroy(&w.cv);
	if ((*out = w.conn) != NULL)
		return SHOAL_OK;
	if (w.closed)
		return err_set(SHOAL_ECLOSED, "pool closed while waiting for a connection");
	waiter_unlink(p, &w);
	return wait_timed_out(p, now_ms() - start);
}

/* An idle connection (FIFO: only when nobody waits), a new slot under max, or the queue. */
static int take_locked(struct lpool *p, int64_t deadline_ms, bool may_wait, void *site,
		       struct shoal_conn **out)
{
	if (p->closing)
		return err_set(SHOAL_ECLOSED, "pool is closing");
	if (!p->wait_head && p->idle.head) {
		*out = p->idle.head;
		(*out)->acquired_at = site;
		conn_set_state(p, *out, LC_BUSY);
		return SHOAL_OK;
	}
	if (!p->wait_head && pool_total_locked(p) < p->o.max) {
		if (!(*out = slot_take_locked(p)))
			return err_set(SHOAL_ENOMEM, "out of memory");
		(*out)->acquired_at = site;
		return SHOAL_OK;
	}
	if (!may_wait)
		return wait_timed_out(p, 0);
	return wait_locked(p, deadline_ms, site, out);
}

/* Is this connection, just taken from the idle list, fit to lend? */
static bool fit_to_lend(struct lpool *p, struct shoal_conn *c, int64_t now)
{
	enum probe pr;

	if (now >= c->expires_ms)
		return false;
	pr = conn_probe(c);
	if (pr == PROBE_DEAD)
		return false;
	if (pr == PROBE_SUSPECT || now - c->last_used_ms >= p->o.validate_idle_ms)
		return conn_ping(c);
	return true;
}

/* Close c's libpq connection and open a new one in the same slot. */
static int replace(struct lpool *p, struct shoal_conn *c, int64_t deadline_ms)
{
	bool broken = now_ms() < c->expires_ms;

	PQfinish(c->pg);
	c->pg = NULL;
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add_explicit(&p->ctr.destroyed, 1, memory_order_relaxed);
	if (broken)
		atomic_fetch_add_explicit(&p->ctr.errors, 1, memory_order_relaxed);
	conn_set_state(p, c, LC_OPENING);
	c->expires_ms = lifetime_locked(p); /* the new connection's lifetime */
	pthread_mutex_unlock(&p->mu);
	return slot_fill(p, c, deadline_ms, true);
}

static int lpool_acquire(struct lpool *p, int timeout_ms, void *site, shoal_conn **out)
{
	int64_t start = now_ms();
	int64_t deadline = start + (timeout_ms < 0 ? p->o.conn_timeout_ms : timeout_ms);
	/* Not waiting for a release still allows opening a connection in the normal time. */
	int64_t connect_deadline = timeout_ms == 0 ? start + p->o.conn_timeout_ms : deadline;
	struct shoal_conn *c = NULL;
	int rc;

	pthread_mutex_lock(&p->mu);
	rc = take_locked(p, deadline, timeout_ms != 0, site, &c);
	pthread_mutex_unlock(&p->mu);
	if (rc != SHOAL_OK)
		return rc;
	if (c->state == LC_OPENING)
		rc = slot_fill(p, c, connect_deadline, true);
	else if (!fit_to_lend(p, c, now_ms()))
		rc = replace(p, c, connect_deadline);
	if (rc != SHOAL_OK)
		return rc;
	*out = c;
	return SHOAL_OK;
}

int acquire_at(shoal_pool *h, int timeout_ms, shoal_conn **out, void *site)
{
	struct lpool *p;
	int rc;

	if (!out)
		return err_set(SHOAL_EINVAL, "shoal_pool_acquire: out is NULL");
	*out = NULL;
	if (!(p = registry_get(h)))
		return err_set(SHOAL_ECLOSED, "pool is closed (or was never opened)");
	rc = lpool_acquire(p, timeout_ms, site, out);
	if (rc == SHOAL_OK)
		atomic_fetch_add_explicit(&p->ctr.acquired, 1, memory_order_relaxed);
	pool_unref(p);
	return rc;
}

int shoal_pool_acquire(shoal_pool *h, int timeout_ms, shoal_conn **out)
{
	return acquire_at(h, timeout_ms, out, __builtin_return_address(0));
}

PGconn *shoal_conn_pg(shoal_conn *c)
{
	return c ? c->pg : NULL;
}

void shoal_pool_release(shoal_conn *c)
{
	struct lpool *p;
	bool broken, keep;

	if (!c)
		return;
	p = c->pool;
	/* An open or failed transaction, or a result still being read, is not the next user's. */
	broken = PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE;
	keep = !broken && now_ms() < c->expires_ms;
	atomic_fetch_add_explicit(&p->ctr.released, 1, memory_order_relaxed);
	if (broken)
		atomic_fetch_add_explicit(&p->ctr.errors, 1, memory_order_relaxed);
	pthread_mutex_lock(&p->mu);
	if (keep && !p->closing) {
		conn_ready_locked(p, c);
		c = NULL;
	} else {
		conn_forget_locked(p, c);
	}
	pthread_mutex_unlock(&p->mu);
	if (c) {
		conn_free(c);
		pool_unref(p);
	}
}
