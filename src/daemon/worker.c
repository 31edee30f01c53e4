/* worker.c: one thread: its event loop, listeners, command mailbox and janitor tick. */
#include "worker.h"
#include "worker_thread.h"
#include "admin.h"
#include "cancel.h"
#include "client.h"
#include "client_budget.h"
#include "door.h"
#include "throttle.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "objcache.h"
#include "objects.h"
#include "pool.h"
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void worker_mailbox(struct loop_fd *lfd, uint32_t events);
static void worker_tick(void *arg);
static void worker_after_batch(void *arg);

shoal_rc worker_init(struct worker *w, int id, const struct config *cfg, struct worker *first,
		     char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	list_init(&w->login_clients);
	list_init(&w->big_clients);
	list_init(&w->dead_clients);
	list_init(&w->dead_servers);
	list_init(&w->cancel_conns);
	pthread_mutex_init(&w->mail_lock, NULL);
	w->mailbox.fd = -1;
	w->loop = loop_create(WORKER_TICK_USEC, worker_tick, worker_after_batch, w);
	if (!w->loop || listen_open(w, cfg, first, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	w->mailbox.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->mailbox.cb = worker_mailbox;
	if (w->mailbox.fd < 0 || loop_add(w->loop, &w->mailbox, EPOLLIN) != SHOAL_OK) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return SHOAL_ERROR;
	}
	if (handoff_attach(w) != SHOAL_OK) {
		snprintf(err, errlen, "handoff socket: epoll: %s", strerror(errno));
		return SHOAL_ERROR;
	}
	return listen_arm(w, err, errlen);
}

void worker_close_listeners(struct worker *w)
{
	listen_close(w);
}

/* ---- commands, shutdown ---------------------------------------------------------------- */

struct collect {
	void **items;
	int n, cap;
	struct worker *w; /* only connections owned by this worker */
};

static void collect_add(struct collect *col, void *p)
{
	if (col->n == col->cap) {
		col->cap = col->cap ? col->cap * 2 : 64;
		col->items = xrealloc(col->items, sizeof(void *) * (size_t)col->cap);
	}
	col->items[col->n++] = p;
}

static void collect_clients(struct collect *col, struct list *head)
{
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, head)
	{
		struct client *c = container_of(i, struct client, node);
		if (c->c.w == col->w)
			collect_add(col, c);
	}
}

static void collect_servers(struct collect *col, struct list *head)
{
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, head)
	{
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == col->w)
			collect_add(col, s);
	}
}

static void collect_pool_clients(struct pool *p, void *arg)
{
	struct collect *col = arg;
	collect_clients(col, &p->waiting);
	collect_clients(col, &p->handoff);
	collect_clients(col, &p->active_clients);
}

static void collect_pool_servers(struct pool *p, void *arg)
{
	struct collect *col = arg;
	collect_servers(col, &p->idle);
	collect_servers(col, &p->connecting);
	collect_servers(col, &p->checking);
	collect_servers(col, &p->resetting);
	collect_servers(col, &p->used);
}

/* Close every client of this worker, consoles included, with 57P01. */
static void worker_clients_leave(struct worker *w)
{
	struct collect col = {.w = w};
	pool_foreach(collect_pool_clients, &col);
	collect_clients(&col, &w->login_clients); /* only this worker touches its login list */
	admin_close_clients(w);
	for (int i = 0; i < col.n; i++)
		client_close(col.items[i], "57P01", "pooler is shutting down");
	free(col.items);
}

static void worker_close_servers(struct worker *w)
{
	struct collect col = {.w = w};
	pool_foreach(collect_pool_servers, &col);
	for (int i = 0; i < col.n; i++)
		server_close(col.items[i], "pooler is shutting down");
	free(col.items);
}

static void worker_shutdown_now(struct worker *w)
{
	w->stopping = true; /* from now on it opens no servers: its loop is about to end */
	worker_close_listeners(w);
	worker_clients_leave(w);
	worker_close_servers(w);
	w->stopped = true;
	loop_stop(w->loop);
}

/* SHUTDOWN WAIT_FOR_CLIENTS or WAIT_FOR_SERVERS (PgBouncer 1.23+): the TCP listeners close, so
 * that a new instance on the same port (so_reuseport) takes every new connection, and the
 * clients are served as usual (the consoles too) until they leave; the pause of WAIT_FOR_SERVERS
 * is control.c's. shutdown_timeout bounds the wait: then the clients left get 57P01. */
static void worker_begin_drain(struct worker *w)
{
	if (w->draining)
		return;
	const struct config *cfg = config_current();
	w->draining = true;
	w->drain_deadline = shoal_now() + cfg->shutdown_timeout;
	log_info("shutting down: waiting up to %.1f s for the clients to leave",
		 (double)cfg->shutdown_timeout / USEC_PER_SEC);
	listen_close_tcp(w);
}

/* A health probe's end of a socketpair: a client that skips authentication. */
static void worker_accept_internal(struct worker *w, int fd)
{
	if (w->draining) {
		close(fd);
		return;
	}
	client_accept_internal(w, fd);
}

static void worker_read_mail(struct worker *w)
{
	struct mail *m = worker_take_mail(w), *next;
	for (; m; m = next) {
		next = m->next;
		switch (m->kind) {
		case MAIL_ADOPT: pool_on_adopt(w, m->s, m->c); break;
		case MAIL_KICK: pool_on_kick(w, m->p, m->hops); break;
		case MAIL_FAIL: pool_fail_local_waiters(w, m->p, m->data, m->len); break;
		case MAIL_ADMIN: admin_on_mail(w, m); break;
		case MAIL_INTERNAL: worker_accept_internal(w, m->fd); break;
		case MAIL_ACCEPT: listen_adopt(w, m); break;
		}
		free(m);
	}
}

static void worker_mailbox(struct loop_fd *lfd, uint32_t events)
{
	struct worker *w = container_of(lfd, struct worker, mailbox);
	uint64_t v;
	UNUSED(events);
	if (read(lfd->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("mailbox read: %s", strerror(errno));
	worker_read_mail(w);
	int cmds = atomic_exchange(&w->cmds, 0);
	if (cmds & WCMD_SHUTDOWN_NOW)
		worker_shutdown_now(w);
	else if (cmds & WCMD_SHUTDOWN_WAIT_CLIENTS)
		worker_begin_drain(w);
}

static void worker_flush_outbox(struct worker *w)
{
	struct mail *m = w->outbox, *next;
	w->outbox = NULL;
	for (; m; m = next) {
		next = m->next;
		loop_del(w->loop, &m->s->c.lfd);
		worker_mail(m->to, m);
	}
}

/* ---- timers ---------------------------------------------------------------------------- */

static void worker_login_timeouts(struct worker *w, usec_t now)
{
	usec_t t = config_current()->client_login_timeout;
	if (t <= 0)
		return;
	struct collect col = {.w = w};
	collect_clients(&col, &w->login_clients); /* only this worker touches its login list */
	for (int i = 0; i < col.n; i++) {
		struct client *c = col.items[i];
		if (now - c->connect_time >= t)
			client_close(c, "08P01", "client_login_timeout");
	}
	free(col.items);
}

static void worker_tick(void *arg)
{
	struct worker *w = arg;
	usec_t now = shoal_now();
	if (w->stopped)
		return;
	listen_tick(w, now);
	worker_login_timeouts(w, now);
	door_tick(w, now, client_started);
	if (w->id == 0)
		throttle_tick(now);
	if (w->id == 0 && now - w->reaped_at >= USEC_PER_SEC) {
		w->reaped_at = now;
		(void)pool_reap(now, config_current()->autodb_idle_timeout);
	}
	cancel_reap(w, now);
	pool_janitor(w, now);
	admin_tick(w);
	if (!w->draining)
		return;
	handoff_tick(w);
	if (w->n_clients == 0 && !listen_closing(w)) {
		log_info("all clients have left");
		worker_shutdown_now(w);
	} else if (now >= w->drain_deadline) {
		log_warn("shutdown_timeout reached with %d clients left; closing them", w->n_clients);
		worker_shutdown_now(w);
	}
}

/* The oldest configuration this worker's objects point into: clients logging in keep their
 * [databases] entry until their login ends (client.c). */
static uint64_t worker_config_pin(struct worker *w)
{
	if (!config_retired_pending())
		return CONFIG_NO_PIN;
	const struct config *cur = config_current();
	uint64_t pin = CONFIG_NO_PIN;
	for (struct list *i = w->login_clients.next; i != &w->login_clients; i = i->next) {
		const struct db_entry *db = container_of(i, struct client, node)->db;
		if (db && (db < cur->dbs || db >= cur->dbs + cur->ndbs)) {
			uint64_t g = config_gen_of_db(db);
			pin = g < pin ? g : pin;
		}
	}
	return pin;
}

static void worker_after_batch(void *arg)
{
	struct worker *w = arg;
	struct list *i, *tmp;
	client_budget_enforce(w);
	worker_flush_outbox(w);
	list_for_each_safe(i, tmp, &w->dead_clients)
	{
		struct client *c = container_of(i, struct client, node);
		bool awaited = false; /* mail with a server for it is on its way */
		if (c->pool) {
			pool_lock(c->pool);
			awaited = c->incoming != NULL;
			pool_unlock(c->pool);
		}
		if (awaited)
			continue;
		list_del(i);
		client_free(c);
	}
	list_for_each_safe(i, tmp, &w->dead_servers)
	{
		list_del(i);
		server_free(container_of(i, struct server, node));
	}
	config_quiescent(&w->cfg_reader, worker_config_pin(w));
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	config_reader_join(&w->cfg_reader);
	buf_cache_enable(); /* both drained below */
	objcache_enable();
	loop_run(w->loop);
	cancel_reap(w, 0);
	worker_after_batch(w);
	buf_cache_drain();
	objcache_drain_all();
	config_reader_leave(&w->cfg_reader);
	return NULL;
}

shoal_rc worker_start(struct worker *w)
{
	return pthread_create(&w->thread, NULL, worker_thread, w) == 0 ? SHOAL_OK : SHOAL_ERROR;
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
	worker_close_listeners(w);
	handoff_detach(w);
	/* The socket's path goes only now: while any worker drains, its dup of the socket still
	 * takes console logins (a worker without clients stops early, maybe worker 0). */
	const struct config *cfg = config_current();
	if (w->id == 0 && cfg->unix_socket_dir && *cfg->unix_socket_dir) {
		char path[512];
		snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", cfg->unix_socket_dir, cfg->listen_port);
		unlink(path);
	}
	/* Every worker has stopped: mail still here carries servers nobody will adopt. */
	struct mail *m = worker_take_mail(w), *next;
	for (; m; m = next) {
		next = m->next;
		if (m->kind == MAIL_ADOPT)
			pool_drop_adopted(w, m->s, m->c);
		else if (m->kind == MAIL_INTERNAL || m->kind == MAIL_ACCEPT)
			close(m->fd);
		free(m);
	}
	worker_after_batch(w);
	if (w->mailbox.fd >= 0)
		close(w->mailbox.fd);
	loop_destroy(w->loop);
	pthread_mutex_destroy(&w->mail_lock);
}
