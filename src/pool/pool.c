/* pool.c: acquire and release: linking clients and servers, the FIFO of waiters across workers,
 * and servers handed from one worker to another by mail. */
#include "pool.h"
#include "cancel.h"
#include "client.h"
#include "ledger.h"
#include "log.h"
#include "pause.h"
#include "server.h"
#include "stats.h"
#include "worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

/* ---- acquire / release ----------------------------------------------------------------- */

/* Under the lock: the most recently idle server on worker w (with one worker: the list's tail). */
static struct server *idle_on(struct pool *p, struct worker *w)
{
	for (struct list *i = p->idle.prev; i != &p->idle; i = i->prev) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == w && !s->dying)
			return s;
	}
	return NULL;
}

/* Under the lock: a worker other than w holding an idle server of p, or NULL. */
static struct worker *idle_elsewhere(struct pool *p, struct worker *w)
{
	for (struct list *i = p->idle.prev; i != &p->idle; i = i->prev) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w != w && !s->dying)
			return s->c.w;
	}
	return NULL;
}

static void pool_kick(struct worker *to, struct pool *p, int hops)
{
	struct mail *m = xcalloc(1, sizeof(*m));
	m->kind = MAIL_KICK;
	m->p = p;
	m->hops = hops;
	worker_mail(to, m);
}

/* Under the pool's lock, on c's worker: c and s become linked. Done in the same locked section
 * that chose them, so no other worker can see c waiting or s idle in between. */
static void link_locked(struct client *c, struct server *s)
{
	if (c->state == CL_WAITING || c->state == CL_WAIT_LOGIN || c->state == CL_HANDOFF) {
		usec_t waited = shoal_clock() - c->state_since;
		stats_add(&c->pool->stats[c->c.w->id].wait_time, (uint64_t)waited);
		hist_observe(&c->pool->hists[c->c.w->id].wait, waited);
	}
	stats_add(&c->pool->stats[c->c.w->id].assign_count, 1);
	c->server = s;
	s->client = c;
	client_state_locked(c, CL_LINKED);
	server_state_locked(s, SV_SETUP);
}

void pool_acquire(struct client *c)
{
	struct pool *p = c->pool;
	struct worker *w = c->c.w, *other = NULL;
	pool_lock(p);
	if (c->state == CL_HANDOFF) {
		pool_unlock(p); /* a server is already on its way */
		return;
	}
	bool paused = pause_is_paused(p->name); /* PAUSE: new work waits for RESUME */
	struct server *s = paused ? NULL : idle_on(p, w);
	if (s) {
		link_locked(c, s);
	} else {
		client_state_locked(c, c->needs_login_check ? CL_WAIT_LOGIN : CL_WAITING);
		other = paused ? NULL : idle_elsewhere(p, w);
	}
	pool_unlock(p);
	if (s) {
		server_begin_link(s);
		return;
	}
	if (paused && pause_shutdown()) { /* no server will come: refused now, as PgBouncer */
		client_close(c, "57P01", "pooler is shutting down");
		return;
	}
	conn_pause(&c->c, true);
	log_debug("%s waits for a server", c->c.name);
	if (other)
		pool_kick(other, p, 1); /* it hands its idle server to the first waiter */
	else
		pool_open_for_waiters(w, p, false);
}

void pool_on_kick(struct worker *w, struct pool *p, int hops)
{
	struct worker *other = NULL;
	pool_lock(p);
	bool waiters = !list_empty(&p->waiting);
	/* Left on the idle list: pool_server_ready moves it under the lock, and only this worker
	 * takes its own idle servers. */
	struct server *s = waiters ? idle_on(p, w) : NULL;
	if (!s && waiters && hops < worker_count())
		other = idle_elsewhere(p, w);
	pool_unlock(p);
	if (s)
		pool_server_ready(s);
	else if (other)
		pool_kick(other, p, hops + 1);
	else if (waiters)
		pool_open_for_waiters(w, p, false);
}

/* Under the lock: the admin console reads the link of other workers' connections. */
void pool_unlink(struct client *c, struct server *s)
{
	struct pool *p = c && c->pool ? c->pool : s ? s->pool : NULL;
	if (p)
		pool_lock(p);
	if (c)
		c->server = NULL;
	if (s)
		s->client = NULL;
	if (p)
		pool_unlock(p);
}

void pool_release(struct server *s)
{
	struct client *c = s->client;
	if (c) {
		cancel_set_target(c, NULL); /* its key must not cancel the next client's query */
		pool_lock(s->pool); /* one locked section: unlinked and idle together */
		c->server = NULL;
		s->client = NULL;
		client_state_locked(c, CL_IDLE);
		pool_unlock(s->pool);
	} else {
		pool_unlink(NULL, s);
	}
	pool_server_ready(s);
}

static void pool_server_ready_one(struct server *s);

/* Handing a server on can finish another client's login, which hands the server on again:
 * servers readied from inside that chain are queued and handed on here, one after the other,
 * instead of recursing once per waiting client. */
void pool_server_ready(struct server *s)
{
	static __thread int depth;
	static __thread struct server *head, *tail;
	if (depth > 0) {
		s->ready_next = NULL;
		if (tail)
			tail->ready_next = s;
		else
			head = s;
		tail = s;
		return;
	}
	depth++;
	for (;;) {
		if (!s->c.dead)
			pool_server_ready_one(s);
		s = head;
		if (!s)
			break;
		head = s->ready_next;
		if (!head)
			tail = NULL;
	}
	depth--;
}

/* The first waiter lives on another worker: the server travels there by mail. */
static void pool_send_server(struct server *s, struct client *c)
{
	struct mail *m = xcalloc(1, sizeof(*m));
	m->kind = MAIL_ADOPT;
	m->s = s;
	m->c = c;
	m->to = c->c.w;
	worker_send_server(s->c.w, m);
}

static void pool_server_ready_one(struct server *s)
{
	struct pool *p = s->pool;
	if (s->lifetime_end && shoal_clock() >= s->lifetime_end) {
		server_close(s, "server_lifetime reached");
		return;
	}
	struct client *c = NULL;
	bool remote = false;
	conn_pause(&s->c, false); /* it may have been paused for a slow client */
	/* One locked section decides: a waiter (here or elsewhere) gets it, or it becomes idle. A
	 * client on another worker looking for an idle server finds it or finds itself served. */
	pool_lock(p);
	bool recycle = s->gen != p->gen || pause_is_paused(p->name);
	bool over = recycle || p->n_servers > p->pool_size + p->reserve_pool_size;
	if (!over && !list_empty(&p->waiting)) {
		c = container_of(p->waiting.next, struct client, node);
		remote = c->c.w != s->c.w;
		if (remote) {
			usec_t since = c->state_since; /* its wait goes on until it is linked */
			c->incoming = s;
			client_state_locked(c, CL_HANDOFF);
			c->state_since = since;
			server_state_locked(s, SV_TRANSIT);
		} else {
			link_locked(c, s);
		}
	} else if (!over) {
		server_state_locked(s, SV_IDLE);
	}
	pool_unlock(p);
	if (recycle)
		server_close(s, s->gen != p->gen ? "reconnect (new target or RECONNECT)" : "paused");
	else if (over)
		server_close(s, "pool is over its size (reload)");
	else if (remote)
		pool_send_server(s, c);
	else if (c)
		server_begin_link(s);
}

void pool_on_adopt(struct worker *w, struct server *s, struct client *c)
{
	struct pool *p = s->pool;
	uint32_t ev = EPOLLIN | (buf_avail(&s->c.out) > 0 ? EPOLLOUT : 0);
	bool registered = loop_add(w->loop, &s->c.lfd, ev) == SHOAL_OK;
	pool_lock(p);
	s->c.w = w;
	c->incoming = NULL;
	bool take = registered && !c->c.dead && c->state == CL_HANDOFF;
	if (take)
		link_locked(c, s);
	else if (!c->c.dead && c->state == CL_HANDOFF)
		client_state_locked(c, CL_WAITING); /* back in the queue: the server failed here */
	pool_unlock(p);
	if (!registered)
		server_close(s, "epoll registration failed");
	else if (take)
		server_begin_link(s);
	else
		pool_server_ready(s); /* its client left meanwhile: hand it on from here */
}

void pool_drop_adopted(struct worker *w, struct server *s, struct client *c)
{
	pool_lock(s->pool);
	s->c.w = w;
	c->incoming = NULL;
	pool_unlock(s->pool);
	server_close(s, "pooler is shutting down");
}

void pool_server_gone(struct server *s, bool failed_login, const char *reason)
{
	struct pool *p = s->pool;
	pool_lock(p);
	if (failed_login) {
		snprintf(p->last_connect_error, sizeof(p->last_connect_error), "%s", reason);
		atomic_fetch_add_explicit(&p->server_login_failures, 1, memory_order_relaxed);
	}
	list_del(&s->node);
	pool_release_slot(p);
	if (s->dying)
		p->n_dying--;
	if (failed_login) {
		const struct config *cfg = config_current();
		p->connect_failures++;
		usec_t delay = 100 * 1000LL << (p->connect_failures > 10 ? 10 : p->connect_failures - 1);
		if (delay > cfg->server_login_retry)
			delay = cfg->server_login_retry;
		/* Jitter (50-100%) so that pools do not reconnect in lockstep. */
		delay = delay / 2 + (usec_t)((double)(delay / 2) * (rand() / (RAND_MAX + 1.0)));
		p->next_connect_at = shoal_now() + delay;
	}
	pool_unlock(p);
	/* A stopping worker leaves waiters elsewhere to their own workers' janitor ticks. */
	if (!failed_login && !s->c.w->stopping)
		pool_open_for_waiters(s->c.w, p, false);
}

void pool_client_gone(struct client *c)
{
	struct pool *p = c->pool;
	if (p)
		pool_lock(p);
	list_del(&c->node);
	if (p && c->state != CL_LOGIN)
		p->n_clients--;
	c->state = CL_CLOSED;
	if (p)
		pool_unlock(p);
}

void pool_fail_local_waiters(struct worker *w, struct pool *p, const uint8_t *errmsg, size_t len)
{
	for (;;) {
		struct client *c = NULL;
		pool_lock(p);
		for (struct list *i = p->waiting.next; i != &p->waiting && !c; i = i->next) {
			struct client *x = container_of(i, struct client, node);
			if (x->c.w == w)
				c = x;
		}
		pool_unlock(p);
		if (!c)
			return;
		client_close_with(c, errmsg, len, "server login failed");
	}
}

void pool_fail_waiters(struct worker *w, struct pool *p, const uint8_t *errmsg, size_t len)
{
	pool_fail_local_waiters(w, p, errmsg, len);
	for (int i = 0; i < worker_count(); i++) {
		struct worker *o = worker_get(i);
		if (o == w)
			continue;
		struct mail *m = xcalloc(1, sizeof(*m) + len);
		m->kind = MAIL_FAIL;
		m->p = p;
		m->len = len;
		memcpy(m->data, errmsg, len);
		worker_mail(o, m);
	}
}
