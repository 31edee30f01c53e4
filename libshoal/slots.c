/* slots.c: the pool's bookkeeping under its lock: taking a slot for a new connection, handing a
 * ready connection or a freed slot to the first waiter (FIFO), forgetting a closed connection. */
#include <stdlib.h>

#include "internal.h"

int pool_total_locked(const struct lpool *p)
{
	return p->idle.count + p->busy.count + p->opening;
}

static struct waiter *pop_waiter(struct lpool *p)
{
	struct waiter *w = p->wait_head;

	if (w) {
		p->wait_head = w->next;
		if (!p->wait_head)
			p->wait_tail = NULL;
		w->next = NULL;
	}
	return w;
}

int64_t lifetime_locked(struct lpool *p)
{
	int64_t lifetime = p->o.max_lifetime_ms;

	/* Jitter (up to 10% earlier) keeps connections opened together from retiring together. */
	if (lifetime > 0)
		lifetime -= (int64_t)rand_below(&p->rng, (uint64_t)lifetime / 10 + 1);
	return lifetime;
}

struct shoal_conn *slot_take_locked(struct lpool *p)
{
	struct shoal_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->pool = p;
	c->state = LC_OPENING;
	c->expires_ms = lifetime_locked(p);
	p->opening++;
	pool_ref(p);
	return c;
}

void slot_freed_locked(struct lpool *p)
{
	struct waiter *w;
	struct shoal_conn *c;

	if (p->closing || !p->wait_head || pool_total_locked(p) >= p->o.max)
		return;
	if (!(c = slot_take_locked(p)))
		return; /* out of memory: the waiter times out */
	w = pop_waiter(p);
	c->acquired_at = w->site;
	w->conn = c;
	w->slot = true;
	pthread_cond_signal(&w->cv);
}

void conn_ready_locked(struct lpool *p, struct shoal_conn *c)
{
	struct waiter *w = pop_waiter(p);

	if (w) {
		c->acquired_at = w->site;
		conn_set_state(p, c, LC_BUSY);
		w->conn = c;
		pthread_cond_signal(&w->cv);
		return;
	}
	c->last_used_ms = now_ms();
	conn_set_state(p, c, LC_IDLE);
}

void conn_forget_locked(struct lpool *p, struct shoal_conn *c)
{
	if (c->state == LC_OPENING)
		p->opening--;
	else
		list_remove(c->state == LC_IDLE ? &p->idle : &p->busy, c);
	if (c->pg)
		atomic_fetch_add_explicit(&p->ctr.destroyed, 1, memory_order_relaxed);
	slot_freed_locked(p);
	if (p->closing)
		pthread_cond_broadcast(&p->changed); /* close() is draining */
}

/* Open c; on success lend it to the caller (mine) or to the pool. */
int slot_fill(struct lpool *p, struct shoal_conn *c, int64_t deadline_ms, bool mine)
{
	int rc = conn_open(p, c, deadline_ms);

	pthread_mutex_lock(&p->mu);
	if (rc == SHOAL_OK) {
		atomic_fetch_add_explicit(&p->ctr.created, 1, memory_order_relaxed);
		if (p->closing)
			rc = err_set(SHOAL_ECLOSED, "pool closed while connecting");
	} else {
		atomic_fetch_add_explicit(&p->ctr.errors, 1, memory_order_relaxed);
	}
	if (rc != SHOAL_OK)
		conn_forget_locked(p, c);
	else if (mine)
		conn_set_state(p, c, LC_BUSY);
	else
		conn_ready_locked(p, c);
	pthread_mutex_unlock(&p->mu);
	if (rc != SHOAL_OK) {
		conn_free(c);
		pool_unref(p);
	}
	return rc;
}
