/* close.c: shoal_pool_close(): stop lending, fail the waiters, close idle connections, wait for
 * borrowed ones up to drain_ms, stop the janitor. The pool's memory goes with the last
 * reference: a connection still borrowed keeps it until released. */
#include <errno.h>

#include "internal.h"

/* Set closing, wake every waiter and the janitor; return the idle list, now forgotten. */
static struct shoal_conn *begin_close_locked(struct lpool *p)
{
	struct shoal_conn *dead = NULL, *c;

	p->closing = true;
	for (struct waiter *w = p->wait_head, *next; w; w = next) {
		next = w->next;
		w->next = NULL;
		w->closed = true;
		pthread_cond_signal(&w->cv);
	}
	p->wait_head = p->wait_tail = NULL;
	while ((c = p->idle.head) != NULL) {
		conn_forget_locked(p, c);
		c->next = dead;
		dead = c;
	}
	pthread_cond_broadcast(&p->changed);
	return dead;
}

/* Wait until nothing is borrowed or being opened, or deadline_ms; how many are left. */
static int drain_locked(struct lpool *p, int64_t deadline_ms)
{
	struct timespec ts;

	deadline_ts(deadline_ms, &ts);
	while (p->busy.count + p->opening > 0)
		if (pthread_cond_timedwait(&p->changed, &p->mu, &ts) == ETIMEDOUT)
			break;
	return p->busy.count + p->opening;
}

int shoal_pool_close(shoal_pool *h, int drain_ms)
{
	struct lpool *p = registry_get(h);
	struct shoal_conn *dead, *next;
	int left;

	if (!p)
		return err_set(SHOAL_ECLOSED, "pool is already closed (or was never opened)");
	registry_remove(h, p); /* new calls with h now get SHOAL_ECLOSED */
	pthread_mutex_lock(&p->mu);
	if (p->closing) { /* a concurrent close got here first */
		pthread_mutex_unlock(&p->mu);
		pool_unref(p);
		return err_set(SHOAL_ECLOSED, "pool is already closing");
	}
	dead = begin_close_locked(p);
	pthread_mutex_unlock(&p->mu);
	for (; dead; dead = next) {
		next = dead->next;
		conn_free(dead);
		pool_unref(p);
	}
	pthread_mutex_lock(&p->mu);
	left = drain_locked(p, now_ms() + (drain_ms > 0 ? drain_ms : 0));
	pthread_mutex_unlock(&p->mu);
	janitor_stop(p);
	pool_unref(p);
	if (left > 0)
		return err_set(
		    SHOAL_EDRAIN,
		    "%d connections still borrowed after %d ms; each closes when released", left,
		    drain_ms);
	return SHOAL_OK;
}
