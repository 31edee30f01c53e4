/* pool.c: acquire and release: linking clients and servers, the FIFO of waiters across workers,
 * and servers handed from one worker to another by mail. */
#include "hosts.h"
#include "pool.h"
#include "acts_call.h"
#include "ledger.h"
#include "log.h"
#include "pause.h"
#include "states.h"
#include "proto.h"
#include "stats.h"
#include "worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

/* ---- acquire / release ----------------------------------------------------------------- */

struct pool_acts pool_acts;

void pool_set_acts(const struct pool_acts *acts)
{
	pool_acts = *acts;
}

/* Under the lock: whether c may be given s. read_your_writes holds a client that wrote through
 * the write alias of the same hosts to hosts that have replayed its write (hosts.c). */
static bool accepts(const struct client *c, const struct server *s)
{
	if (c && c->route) /* read_write_split: the role its transaction needs */
		return hosts_route_allows(s->hset, s->hrec, c->route, c->retry_avoid, c->ryw_since);
	return !c || !c->ryw_since || hosts_ryw_allows(s->hrec, c->ryw_since);
}

int pool_route_wanted_locked(struct pool *p)
{
	/* the first waiter the servers already connecting are not for */
	int skip = (int)list_count(&p->connecting), want = ROUTE_ANY;
	for (struct list *i = p->waiting.next; i != &p->waiting; i = i->next) {
		want = container_of(i, struct client, node)->route;
		if (skip-- <= 0)
			break;
	}
	return want;
}

/* An idle server of an older generation (RECONNECT, a new target, new server TLS settings) is
 * never handed out again: the janitor closes it, as PgBouncer's "obsolete connection". */
static bool idle_live(const struct server *s)
{
	return !s->dying && s->gen == s->pool->gen && (!s->hrec || !hosts_held(s->hset, s->hrec));
}

/* The same, on worker w: one it may hand out itself. */
static bool idle_fresh(const struct server *s, struct worker *w)
{
	return s->c.w == w && idle_live(s);
}

static bool idle_usable(const struct server *s, struct worker *w, const struct client *c)
{
	return idle_fresh(s, w) && (!s->hrec || accepts(c, s));
}

/* Under the lock, read_write_split: a full pool whose idle servers on w are all of the wrong
 * role for c closes one (marked dying here), so that a server of the right role can open. */
static struct server *split_room(struct pool *p, struct worker *w, const struct client *c)
{
	if (p->n_servers - p->n_dying < p->pool_size)
		return NULL;
	for (struct list *i = p->idle.next; i != &p->idle; i = i->next) {
		struct server *s = container_of(i, struct server, node);
		if (idle_fresh(s, w) && !accepts(c, s)) {
			s->dying = true;
			p->n_dying++;
			return s;
		}
	}
	return NULL;
}

/* s's host's index in p's host set, or -1 (a server of an older set: never handed out). */
static int host_index(const struct pool *p, const struct server *s)
{
	for (int i = 0; s->hset == p->hosts && i < p->hosts->n; i++)
		if (p->hosts->h[i] == s->hrec)
			return i;
	return -1;
}

/* Whether c may wait for a busy host's server while another host's is idle: host_turn_wait
 * (0, the default: never; exact shares under saturation cost that much latency), not yet
 * waiting or not for longer; never in session mode (a server in use there is held for a whole
 * session). Past it the client takes the idle one (the janitor hands it over). */
static bool may_wait(const struct pool *p, const struct client *c)
{
	usec_t max = config_current()->host_turn_wait;
	if (!c || !max || pool_mode_of(p) == POOL_SESSION)
		return false;
	if (c->state != CL_WAITING && c->state != CL_WAIT_LOGIN)
		return true;
	return shoal_clock() - c->state_since < max;
}

/* Under the lock: adds the servers of list l to n per host. */
static void count_by_host(const struct pool *p, const struct list *l, int *n)
{
	for (const struct list *i = l->next; i != l; i = i->next) {
		int k = host_index(p, container_of(i, struct server, node));
		if (k >= 0)
			n[k]++;
	}
}

/* Under the lock: a balanced host list (round-robin, least-connections) chooses the host per
 * transaction, not per server connection: the newest usable idle server of each host is a
 * candidate, and hosts_pick_idle picks the host by the rule (so the shares do not follow
 * whichever idle server a client happens to find). */
static struct server *idle_balanced(struct pool *p, struct worker *w, const struct client *c)
{
	struct server *newest[SHOAL_MAX_HOSTS] = {0};
	bool idle[SHOAL_MAX_HOSTS] = {0};
	int in_use[SHOAL_MAX_HOSTS] = {0}, found = 0, n = p->hosts->n;
	for (struct list *i = p->idle.prev; i != &p->idle && found < n; i = i->prev) {
		struct server *s = container_of(i, struct server, node);
		int k = host_index(p, s);
		if (k >= 0 && !newest[k] && idle_fresh(s, w)) {
			newest[k] = s;
			found++;
		}
	}
	for (int k = 0; k < n; k++) /* read_your_writes holds c to some hosts */
		idle[k] = newest[k] && accepts(c, newest[k]);
	count_by_host(p, &p->used, in_use);
	count_by_host(p, &p->connecting, in_use); /* soon in use: its host is in rotation */
	int k = hosts_pick_idle(p->hosts, p->host_credit, idle, in_use, may_wait(p, c));
	p->host_deferred = k == -2;
	return k < 0 ? NULL : newest[k];
}

/* Under the lock: the most recently idle server on worker w (with one worker: the list's tail)
 * that c (NULL: anyone) may take. A balanced host list chooses by host; a random one takes the
 * oldest, so transactions go round the hosts too. */
static struct server *idle_on_hosts(struct pool *p, struct worker *w, const struct client *c)
{
	if (hosts_balance_idle(p->hosts))
		return idle_balanced(p, w, c);
	if (hosts_rotate_idle(p->hosts)) {
		for (struct list *i = p->idle.next; i != &p->idle; i = i->next) {
			struct server *s = container_of(i, struct server, node);
			if (idle_usable(s, w, c))
				return s;
		}
		return NULL;
	}
	for (struct list *i = p->idle.prev; i != &p->idle; i = i->prev) {
		struct server *s = container_of(i, struct server, node);
		if (idle_usable(s, w, c))
			return s;
	}
	return NULL;
}

/* The same; one host (the common case) takes the short way. */
static inline struct server *idle_on(struct pool *p, struct worker *w, const struct client *c)
{
	if (p->hosts)
		return idle_on_hosts(p, w, c);
	for (struct list *i = p->idle.prev; i != &p->idle; i = i->prev) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == w && !s->dying && s->gen == p->gen) /* as idle_usable */
			return s;
	}
	return NULL;
}

/* Under the lock: the first waiter that may take s (all may, unless read_your_writes holds
 * some), or NULL. */
static struct client *waiter_for(struct pool *p, const struct server *s)
{
	for (struct list *i = p->waiting.next; i != &p->waiting; i = i->next) {
		struct client *c = container_of(i, struct client, node);
		if (accepts(c, s))
			return c;
	}
	return NULL;
}

void pool_serve_waiters(struct worker *w, struct pool *p)
{
	if (pause_is_paused(p->name))
		return; /* the janitor closes its idle servers instead */
	for (int n = 0; n < 64; n++) { /* bounded: each pass hands one server on */
		struct server *s = NULL;
		pool_lock(p);
		if (list_empty(&p->waiting)) {
			pool_unlock(p);
			return;
		}
		for (struct list *i = p->idle.next; i != &p->idle && !s; i = i->next) {
			struct server *t = container_of(i, struct server, node);
			if (idle_usable(t, w, NULL) && waiter_for(p, t))
				s = t;
		}
		pool_unlock(p);
		if (!s)
			return;
		pool_server_ready(s);
		if (s->state == SV_IDLE)
			return; /* its waiter waits on for another host's server (host_turn_wait) */
	}
}

/* Under the lock: a worker other than w holding an idle server of p, or NULL. */
static struct worker *idle_elsewhere(struct pool *p, struct worker *w)
{
	for (struct list *i = p->idle.prev; i != &p->idle; i = i->prev) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w != w && idle_live(s))
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

int pool_idle_for_waiters_locked(struct pool *p, int max)
{
	int n = 0;
	for (struct list *i = p->idle.next; i != &p->idle && n < max; i = i->next) {
		struct server *s = container_of(i, struct server, node);
		if (idle_live(s) && waiter_for(p, s))
			n++;
	}
	return n;
}

void pool_kick_idle_elsewhere(struct worker *w, struct pool *p)
{
	pool_lock(p);
	struct worker *other = list_empty(&p->waiting) ? NULL : idle_elsewhere(p, w);
	pool_unlock(p);
	if (other)
		pool_kick(other, p, 1);
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

/* PgBouncer's check_fast_fail: while logins fail and no server is left, a new request is refused
 * at once with the reason, instead of waiting out query_wait_timeout. Clients already waiting
 * when the failures began keep waiting: a restart of the server is usually short. */
static void refuse_failing(struct client *c, struct pool *p, const char *why)
{
	char msg[sizeof(p->last_connect_error) + 96];
	snprintf(msg, sizeof(msg), "server login has been failing, try again later "
		 "(server_login_retry)%s%s", *why ? ": " : "", why);
	client_close(c, "08P01", msg);
	pool_open_probe(c->c.w, p);
}

void pool_acquire(struct client *c)
{
	struct pool *p = c->pool;
	struct worker *w = c->c.w, *other = NULL;
	bool deferred = false;
	const struct config *cfg = config_current();
	c->ryw_since = cfg->read_your_writes ? hosts_ryw_since(p->hosts, p->user, c->addr,
							      cfg->read_your_writes_window)
					     : 0;
	pool_lock(p);
	if (c->state == CL_HANDOFF) {
		pool_unlock(p); /* a server is already on its way */
		return;
	}
	/* primary_wait_timeout: a write alias's request waits for a primary instead (the janitor
	 * fails it after that long while none may be one, else after query_wait_timeout) */
	if (pool_login_failing(p) && !(cfg->primary_wait_timeout > 0 && hosts_writes(p->hosts))) {
		char why[sizeof(p->last_connect_error)];
		str_copy(why, sizeof(why), p->last_connect_error);
		if (c->state == CL_LOGIN) /* counted in n_clients already: leave as a pool client */
			client_state_locked(c, CL_WAIT_LOGIN);
		pool_unlock(p);
		refuse_failing(c, p, why);
		return;
	}
	bool paused = pause_is_paused(p->name); /* PAUSE: new work waits for RESUME */
	struct server *s = paused ? NULL : idle_on(p, w, c), *room = NULL;
	if (s) {
		link_locked(c, s);
	} else {
		room = c->route && !paused ? split_room(p, w, c) : NULL;
		client_state_locked(c, c->needs_login_check ? CL_WAIT_LOGIN : CL_WAITING);
		other = paused ? NULL : idle_elsewhere(p, w);
		/* waits for the host next in turn: a server of it comes back soon, no new one */
		deferred = p->hosts && p->host_deferred;
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
	if (room)
		server_close(room, "read_write_split: an idle server of the other role makes room");
	if (other)
		pool_kick(other, p, 1); /* it hands its idle server to the first waiter */
	else if (!deferred)
		pool_open_for_waiters(w, p, false);
}

void pool_requeue(struct client *c)
{
	pool_lock(c->pool);
	client_state_locked(c, CL_IDLE);
	pool_unlock(c->pool);
	pool_acquire(c);
}

/* Under the lock: a server of p on worker w held for cancels that have all been answered. */
static struct server *answered_on(struct pool *p, struct worker *w)
{
	for (struct list *i = p->used.next; i != &p->used; i = i->next) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == w && s->state == SV_BEING_CANCELED && s->cancels == 0)
			return s;
	}
	return NULL;
}

void pool_on_kick(struct worker *w, struct pool *p, int hops)
{
	struct worker *other = NULL;
	for (;;) { /* servers whose cancels were answered on another worker come back first */
		pool_lock(p);
		struct server *done = answered_on(p, w);
		pool_unlock(p);
		if (!done)
			break;
		pool_server_ready(done);
	}
	pool_lock(p);
	bool waiters = !list_empty(&p->waiting);
	/* Left on the idle list: pool_server_ready moves it under the lock, and only this worker
	 * takes its own idle servers. */
	struct server *s = waiters ? idle_on(p, w, NULL) : NULL;
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

/* Under the lock, on s's worker: a waiter c gets s, or (a balanced host list) the idle server
 * whose host is next by the rule, s going idle: each transaction counts in the shares, also
 * the ones that waited. Returns the server linked, or NULL: c waits on for the host next in
 * turn (host_turn_wait), s is idle. */
static struct server *link_balanced(struct client *c, struct server *s)
{
	struct pool *p = s->pool; /* one host (hosts NULL): the short way, no call */
	if (p->hosts && hosts_balance_idle(p->hosts) && host_index(p, s) >= 0) {
		if (s->state != SV_IDLE)
			server_state_locked(s, SV_IDLE);
		struct server *t = idle_balanced(p, s->c.w, c);
		if (!t && p->host_deferred)
			return NULL;
		s = t ? t : s; /* s is a candidate unless held: then it is still the one */
	}
	link_locked(c, s);
	return s;
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
	if (s->cancels > 0) {
		/* A cancel forwarded for its last client may still reach the backend: PostgreSQL
		 * signals it before closing the cancel connection, so only then may the next
		 * client's statement start there. pool_cancel_answered brings it back. */
		int n = s->cancels;
		server_state_locked(s, SV_BEING_CANCELED);
		pool_unlock(p);
		log_debug("%s waits for %d forwarded cancel(s) to be answered", s->c.name, n);
		return;
	}
	/* max_replica_lag, or a split brain on a write alias: not handed out again */
	bool held = hosts_held(s->hset, s->hrec);
	bool recycle = s->gen != p->gen || pause_is_paused(p->name) || held;
	bool over = recycle || p->n_servers > p->pool_size + p->reserve_pool_size;
	if (!over && (c = waiter_for(p, s)) != NULL) {
		remote = c->c.w != s->c.w;
		if (remote) {
			usec_t since = c->state_since; /* its wait goes on until it is linked */
			c->incoming = s;
			client_state_locked(c, CL_HANDOFF);
			c->state_since = since;
			server_state_locked(s, SV_TRANSIT);
		} else {
			struct server *t = link_balanced(c, s);
			s = t ? t : s;
			c = t ? c : NULL; /* s is idle now */
		}
	} else if (!over && !p->repl) {
		server_state_locked(s, SV_IDLE);
	}
	pool_unlock(p);
	if (!over && !c && p->repl) /* opened with its client's parameters: never idle */
		server_close(s, "replication client was closed");
	else if (recycle)
		server_close(s, held		    ? "its host lags or is one of two primaries"
				: s->gen != p->gen ? "reconnect (new target or RECONNECT)"
						   : "paused");
	else if (over)
		server_close(s, "pool is over its size (reload)");
	else if (remote)
		pool_send_server(s, c);
	else if (c)
		server_begin_link(s);
}

void pool_cancel_forwarded(struct server *s)
{
	pool_lock(s->pool);
	s->cancels++;
	pool_unlock(s->pool);
}

void pool_cancel_answered(struct worker *w, struct server *s)
{
	struct pool *p = s->pool;
	pool_lock(p);
	s->cancels--;
	bool last = s->cancels == 0;
	bool wake = last && s->state == SV_BEING_CANCELED;
	bool free_now = last && s->free_deferred;
	struct worker *owner = s->c.w; /* fixed while it is not in transit */
	pool_unlock(p);
	if (free_now)
		server_free(s); /* its owner closed it meanwhile and left it to us */
	else if (wake && owner == w)
		pool_server_ready(s);
	else if (wake)
		pool_kick(owner, p, worker_count()); /* the owner hands it on (pool_on_kick) */
}

bool pool_server_free_deferred(struct server *s)
{
	pool_lock(s->pool);
	bool defer = s->cancels > 0;
	s->free_deferred = defer;
	pool_unlock(s->pool);
	return defer;
}

void pool_on_adopt(struct worker *w, struct server *s, struct client *c)
{
	struct pool *p = s->pool;
	uint32_t ev = EPOLLIN | (buf_avail(&s->c.out) > 0 ? EPOLLOUT : 0);
	bool registered = loop_add(w->loop, &s->c.lfd, ev) == SHOAL_OK;
	pool_lock(p);
	s->c.w = w;
	s->c.loop = w->loop;
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

/* Under the lock: one more failed round of logins. The wait before the next login doubles from
 * 100 ms up to server_login_retry, with jitter (50-100%) so that pools do not retry in lockstep.
 * A restart of PostgreSQL fails every login in flight at once; they are one round, so the pool
 * retries after ~100 ms, not after the cap (issue 16). */
static void pool_backoff_grow(struct pool *p)
{
	const struct config *cfg = config_current();
	usec_t now = shoal_now();
	p->connect_failures++;
	usec_t delay = 100 * 1000LL << (p->connect_failures > 10 ? 10 : p->connect_failures - 1);
	if (delay > cfg->server_login_retry)
		delay = cfg->server_login_retry;
	delay = delay / 2 + (usec_t)((double)(delay / 2) * (rand() / (RAND_MAX + 1.0)));
	p->next_connect_at = now + delay;
	p->backoff_raised_at = now;
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
	if (!s->check)
		hosts_count_state(s->hrec, (int)s->state, -1, SV_IDLE);
	if (s->check)
		pool_release_check_slot(p);
	else
		pool_release_slot(p);
	if (s->dying)
		p->n_dying--;
	/* A login started before the backoff last grew, or opened while its wait still ran (the
	 * rest of a batch claimed before: a Unix socket refuses at once), is of a counted round. */
	if (failed_login && s->connect_time > p->backoff_raised_at &&
	    shoal_now() >= p->next_connect_at)
		pool_backoff_grow(p);
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
	if (p && c->state != CL_LOGIN)
		p->n_clients--;
	client_state_locked(c, CL_CLOSED); /* off its list, out of the pool's client counts */
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
		struct pq_error e; /* the log says the server's message, as PgBouncer's does */
		bool parsed = len > PQ_HEADER_LEN &&
			      proto_parse_error(errmsg + PQ_HEADER_LEN, len - PQ_HEADER_LEN, &e) ==
				  SHOAL_OK &&
			      e.message;
		client_close_with(c, errmsg, len, parsed ? e.message : "server login failed");
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
