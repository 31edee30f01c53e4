/* pool.c: pools and the ledger: acquire/release, FIFO waiters, limits, state lists, janitor. */
#include "pool.h"
#include "cancel.h"
#include "client.h"
#include "log.h"
#include "server.h"
#include "stats.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static pthread_mutex_t ledger = PTHREAD_MUTEX_INITIALIZER;
static struct list all_pools = {&all_pools, &all_pools};

void ledger_lock(void)
{
	pthread_mutex_lock(&ledger);
}

void ledger_unlock(void)
{
	pthread_mutex_unlock(&ledger);
}

static int pick(int entry, int global)
{
	return entry >= 0 ? entry : global;
}

static void pool_load_limits(struct pool *p, const struct config *cfg, const struct db_entry *db)
{
	const struct user_entry *u = config_find_user(cfg, p->user);
	int mode = db->pool_mode;
	if (u && u->pool_mode != POOL_INHERIT)
		mode = u->pool_mode;
	p->pool_mode = mode != POOL_INHERIT ? mode : cfg->pool_mode;
	p->pool_size = pick(db->pool_size, u ? pick(u->pool_size, cfg->default_pool_size)
					   : cfg->default_pool_size);
	p->min_pool_size = pick(db->min_pool_size, cfg->min_pool_size);
	p->reserve_pool_size = pick(db->reserve_pool_size, cfg->reserve_pool_size);
	p->max_db_connections = pick(db->max_db_connections, cfg->max_db_connections);
	p->max_user_connections = u ? pick(u->max_user_connections, cfg->max_user_connections)
				    : cfg->max_user_connections;
}

static struct pool *pool_new(const struct config *cfg, const struct db_entry *db,
			     const char *dbname, const char *user)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	p->name = xstrdup(dbname);
	p->user = xstrdup(user);
	p->server_user = xstrdup(db->user ? db->user : user);
	p->server_db = xstrdup(db->dbname ? db->dbname : dbname);
	p->port = db->port > 0 ? db->port : 5432;
	p->host = xstrdup(db->host ? db->host : config_default_host(p->port));
	const char *pw = db->password ? db->password : config_find_secret(cfg, p->server_user);
	p->password = pw ? xstrdup(pw) : NULL;
	list_init(&p->idle);
	list_init(&p->used);
	list_init(&p->connecting);
	list_init(&p->resetting);
	list_init(&p->transit);
	list_init(&p->waiting);
	list_init(&p->handoff);
	list_init(&p->active_clients);
	pool_load_limits(p, cfg, db);
	list_append(&all_pools, &p->node);
	log_info("pool %s@%s created: server %s@%s:%d/%s, mode %s, size %d", p->user, p->name,
		 p->server_user, p->host, p->port, p->server_db, config_pool_mode_name(p->pool_mode),
		 p->pool_size);
	return p;
}

struct pool *pool_get(const struct config *cfg, const struct db_entry *db, const char *dbname,
		      const char *user)
{
	const char *pool_user = db->user ? db->user : user;
	ledger_lock();
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools)
	{
		struct pool *p = container_of(i, struct pool, node);
		if (strcmp(p->name, dbname) == 0 && strcmp(p->user, pool_user) == 0) {
			ledger_unlock();
			return p;
		}
	}
	struct pool *p = pool_new(cfg, db, dbname, pool_user);
	ledger_unlock();
	return p;
}

void pool_create_static(const struct config *cfg)
{
	for (int i = 0; i < cfg->ndbs; i++) {
		const struct db_entry *db = &cfg->dbs[i];
		if (db->user && strcmp(db->name, "*") != 0)
			pool_get(cfg, db, db->name, db->user);
	}
}

void pool_apply_config(const struct config *cfg)
{
	ledger_lock();
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools)
	{
		struct pool *p = container_of(i, struct pool, node);
		const struct db_entry *db = config_find_db(cfg, p->name);
		if (!db)
			continue;
		pool_load_limits(p, cfg, db);
		const char *pw = db->password ? db->password : config_find_secret(cfg, p->server_user);
		if (!pw || !p->password || strcmp(pw, p->password) != 0) {
			free(p->password); /* the worker that reads it runs this reload itself */
			p->password = pw ? xstrdup(pw) : NULL;
		}
	}
	ledger_unlock();
}

void pool_free_all(void)
{
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools)
	{
		struct pool *p = container_of(i, struct pool, node);
		list_del(&p->node);
		params_free(&p->welcome);
		free(p->name);
		free(p->user);
		free(p->server_user);
		free(p->server_db);
		free(p->host);
		free(p->password);
		free(p);
	}
}

int pool_mode_of(const struct pool *p)
{
	return p->pool_mode;
}

void pool_foreach(pool_visit_fn fn, void *arg)
{
	ledger_lock();
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools) fn(container_of(i, struct pool, node), arg);
	ledger_unlock();
}

static struct list *server_list(struct pool *p, enum server_state st)
{
	switch (st) {
	case SV_CONNECTING: return &p->connecting;
	case SV_IDLE: return &p->idle;
	case SV_SETUP:
	case SV_ACTIVE: return &p->used;
	case SV_RESET: return &p->resetting;
	case SV_TRANSIT: return &p->transit;
	default: return NULL;
	}
}

static void server_state_locked(struct server *s, enum server_state st)
{
	list_del(&s->node);
	s->state = st;
	s->state_since = shoal_now();
	struct list *l = server_list(s->pool, st);
	if (l)
		list_append(l, &s->node);
}

void server_set_state(struct server *s, enum server_state st)
{
	ledger_lock();
	server_state_locked(s, st);
	ledger_unlock();
}

static struct list *client_list(struct client *c, enum client_state st)
{
	switch (st) {
	case CL_LOGIN: return &c->c.w->login_clients;
	case CL_WAIT_LOGIN:
	case CL_WAITING: return &c->pool->waiting;
	case CL_HANDOFF: return &c->pool->handoff;
	case CL_IDLE:
	case CL_LINKED: return &c->pool->active_clients;
	default: return NULL;
	}
}

static void client_state_locked(struct client *c, enum client_state st)
{
	list_del(&c->node);
	c->state = st;
	c->state_since = shoal_now();
	struct list *l = client_list(c, st);
	if (l)
		list_append(l, &c->node);
}

void client_set_state(struct client *c, enum client_state st)
{
	ledger_lock();
	client_state_locked(c, st);
	ledger_unlock();
}

/* ---- limits ---------------------------------------------------------------------------- */

static int servers_where(bool (*match)(const struct pool *, const struct pool *),
			 const struct pool *ref)
{
	int n = 0;
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools)
	{
		struct pool *p = container_of(i, struct pool, node);
		if (match(p, ref))
			n += p->n_servers;
	}
	return n;
}

static bool same_db(const struct pool *a, const struct pool *b)
{
	return strcmp(a->name, b->name) == 0;
}

static bool same_user(const struct pool *a, const struct pool *b)
{
	return strcmp(a->server_user, b->server_user) == 0;
}

/* Under the ledger lock: may one more server be opened? */
static bool can_open(const struct pool *p, bool reserve, usec_t now)
{
	if (now < p->next_connect_at)
		return false;
	int limit = p->pool_size + (reserve ? p->reserve_pool_size : 0);
	if (p->n_servers >= limit)
		return false;
	if (p->max_db_connections > 0 && servers_where(same_db, p) >= p->max_db_connections)
		return false;
	if (p->max_user_connections > 0 &&
	    servers_where(same_user, p) >= p->max_user_connections)
		return false;
	return true;
}

/* Under the ledger lock: claim up to want new server slots; returns how many were claimed. */
int pool_claim_slots(struct pool *p, int want, bool reserve, usec_t now)
{
	int n = 0;
	while (n < want && can_open(p, reserve, now)) {
		p->n_servers++;
		n++;
	}
	return n;
}

void pool_open_servers(struct worker *w, struct pool *p, int n)
{
	while (n-- > 0)
		server_connect(w, p);
}

/* Open servers for clients that wait without one being opened for them. */
void pool_open_for_waiters(struct worker *w, struct pool *p, bool reserve)
{
	ledger_lock();
	int want = (int)list_count(&p->waiting) - (int)list_count(&p->connecting);
	int n = want > 0 ? pool_claim_slots(p, want, reserve, shoal_now()) : 0;
	ledger_unlock();
	pool_open_servers(w, p, n);
}

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

static void pool_link(struct client *c, struct server *s)
{
	usec_t now = shoal_now();
	if (c->state == CL_WAITING || c->state == CL_WAIT_LOGIN || c->state == CL_HANDOFF)
		stats_add(&c->pool->stats[c->c.w->id].wait_time, (uint64_t)(now - c->state_since));
	c->server = s;
	s->client = c;
	client_set_state(c, CL_LINKED);
	server_set_state(s, SV_SETUP);
	server_begin_link(s);
}

void pool_acquire(struct client *c)
{
	struct pool *p = c->pool;
	struct worker *w = c->c.w, *other = NULL;
	ledger_lock();
	struct server *s = idle_on(p, w);
	if (s) {
		list_del(&s->node);
	} else {
		if (c->state != CL_WAIT_LOGIN)
			client_state_locked(c, CL_WAITING);
		other = idle_elsewhere(p, w);
	}
	ledger_unlock();
	if (s) {
		pool_link(c, s);
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
	ledger_lock();
	bool waiters = !list_empty(&p->waiting);
	struct server *s = waiters ? idle_on(p, w) : NULL;
	if (s)
		list_del(&s->node);
	else if (waiters && hops < worker_count())
		other = idle_elsewhere(p, w);
	ledger_unlock();
	if (s)
		pool_server_ready(s);
	else if (other)
		pool_kick(other, p, hops + 1);
	else if (waiters)
		pool_open_for_waiters(w, p, false);
}

void pool_unlink(struct client *c, struct server *s)
{
	if (c)
		c->server = NULL;
	if (s)
		s->client = NULL;
}

void pool_release(struct server *s)
{
	struct client *c = s->client;
	pool_unlink(c, s);
	if (c) {
		cancel_set_target(c, NULL); /* its key must not cancel the next client's query */
		client_set_state(c, CL_IDLE);
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
	if (s->lifetime_end && shoal_now() >= s->lifetime_end) {
		server_close(s, "server_lifetime reached");
		return;
	}
	struct client *c = NULL;
	bool remote = false;
	ledger_lock();
	bool over = p->n_servers > p->pool_size + p->reserve_pool_size;
	if (!over && !list_empty(&p->waiting)) {
		c = container_of(p->waiting.next, struct client, node);
		remote = c->c.w != s->c.w;
		if (remote) {
			c->incoming = s;
			client_state_locked(c, CL_HANDOFF);
			server_state_locked(s, SV_TRANSIT);
		} else {
			list_del(&c->node);
		}
	}
	ledger_unlock();
	if (over) {
		server_close(s, "pool is over its size (reload)");
		return;
	}
	conn_pause(&s->c, false); /* it may have been paused for a slow client */
	if (remote)
		pool_send_server(s, c);
	else if (c)
		pool_link(c, s);
	else
		server_set_state(s, SV_IDLE);
}

void pool_on_adopt(struct worker *w, struct server *s, struct client *c)
{
	ledger_lock();
	s->c.w = w;
	c->incoming = NULL;
	ledger_unlock();
	uint32_t ev = EPOLLIN | (buf_avail(&s->c.out) > 0 ? EPOLLOUT : 0);
	if (loop_add(w->loop, &s->c.lfd, ev) != SHOAL_OK) {
		server_close(s, "epoll registration failed");
		if (!c->c.dead)
			pool_acquire(c);
		return;
	}
	if (c->c.dead)
		pool_server_ready(s);
	else
		pool_link(c, s);
}

void pool_drop_adopted(struct worker *w, struct server *s, struct client *c)
{
	ledger_lock();
	s->c.w = w;
	c->incoming = NULL;
	ledger_unlock();
	server_close(s, "pooler is shutting down");
}

void pool_server_gone(struct server *s, bool failed_login)
{
	struct pool *p = s->pool;
	ledger_lock();
	list_del(&s->node);
	p->n_servers--;
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
	ledger_unlock();
	if (!failed_login)
		pool_open_for_waiters(s->c.w, p, false);
}

void pool_client_gone(struct client *c)
{
	ledger_lock();
	list_del(&c->node);
	if (c->pool && c->state != CL_LOGIN)
		c->pool->n_clients--;
	c->state = CL_CLOSED;
	ledger_unlock();
}

void pool_fail_local_waiters(struct worker *w, struct pool *p, const uint8_t *errmsg, size_t len)
{
	for (;;) {
		struct client *c = NULL;
		ledger_lock();
		for (struct list *i = p->waiting.next; i != &p->waiting && !c; i = i->next) {
			struct client *x = container_of(i, struct client, node);
			if (x->c.w == w)
				c = x;
		}
		ledger_unlock();
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

struct pool **pool_snapshot(int *n)
{
	ledger_lock();
	int k = 0, cap = (int)list_count(&all_pools);
	struct pool **ps = xmalloc(sizeof(*ps) * (size_t)(cap ? cap : 1));
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools) ps[k++] = container_of(i, struct pool, node);
	ledger_unlock();
	*n = k;
	return ps;
}
