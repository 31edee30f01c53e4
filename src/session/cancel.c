/* cancel.c: the cancel-key registry (shared by all workers, under its own lock) and outgoing
 * CancelRequest connections. */
#include "cancel.h"
#include "auth.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "proto.h"
#include "worker.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define CANCEL_BUCKETS 4096

/* The target server changes on every link: the client's worker writes it under the entry's own
 * lock, not reg_lock, so links on different workers do not contend. cancel_handle takes
 * reg_lock, then the entry's lock, then the target's pool lock (that order only). The entry is
 * freed under reg_lock. While an entry names a server, that server is alive and linked to the
 * entry's client: its client clears the target before unlinking it or closing it. */
struct cancel_entry {
	struct cancel_entry *next;
	uint32_t pid, key;
	pthread_mutex_t lock;
	struct server *server; /* the target, or NULL */
	const char *host;      /* the target's (kept until exit: see objects.h) */
	int port;
	uint32_t be_pid, be_key;
};

/* What a forwarded cancel needs, copied so that it does not read a server another worker owns. */
struct cancel_target {
	struct server *server; /* counted in server->cancels until the connection is done */
	const char *host;
	int port;
	uint32_t be_pid, be_key;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cancel_entry *buckets[CANCEL_BUCKETS];

static struct cancel_entry **find_slot(uint32_t pid)
{
	struct cancel_entry **e = &buckets[pid % CANCEL_BUCKETS];
	while (*e && (*e)->pid != pid)
		e = &(*e)->next;
	return e;
}

/* ---- pids shared by several entries ----------------------------------------------------
 * A session-mode client is told its server's real pid (cancel_use_pid), and two PostgreSQL
 * hosts may both have a backend with that pid: entries are found by pid and key together, and
 * a client's own entry by its address. */

static struct cancel_entry **find_own_slot(const struct client *c)
{
	struct cancel_entry **e = &buckets[c->cancel_pid % CANCEL_BUCKETS];
	while (*e && *e != c->cancel_entry)
		e = &(*e)->next;
	return e;
}

/* Under reg_lock: the entry with this pid and key, or NULL. */
static struct cancel_entry *find_keyed(uint32_t pid, uint32_t key)
{
	for (struct cancel_entry *e = buckets[pid % CANCEL_BUCKETS]; e; e = e->next)
		/* Constant-time key comparison: the key is the only secret a cancel carries. */
		if (e->pid == pid && CRYPTO_memcmp(&e->key, &key, sizeof(key)) == 0)
			return e;
	return NULL;
}

void cancel_use_pid(struct client *c, uint32_t pid)
{
	struct cancel_entry *e = c->cancel_entry;
	if (!e || pid == 0 || pid == c->cancel_pid)
		return;
	pthread_mutex_lock(&reg_lock);
	if (!find_keyed(pid, e->key)) { /* (pid, key) must name one client */
		struct cancel_entry **slot = find_own_slot(c);
		*slot = e->next;
		e->pid = pid;
		e->next = buckets[pid % CANCEL_BUCKETS];
		buckets[pid % CANCEL_BUCKETS] = e;
		c->cancel_pid = pid;
	}
	pthread_mutex_unlock(&reg_lock);
}

/* Random bytes for keys, fetched from OpenSSL a block at a time: one RAND_bytes call costs as
 * much as the rest of a login, and the block is as unpredictable as each call's output. */
static shoal_rc cancel_random(uint32_t r[2])
{
	static __thread uint32_t block[64];
	static __thread size_t left;
	if (left < 2) {
		if (auth_random(block, sizeof(block)) != SHOAL_OK)
			return SHOAL_ERROR;
		left = sizeof(block) / sizeof(block[0]);
	}
	r[0] = block[--left];
	r[1] = block[--left];
	block[left] = block[left + 1] = 0; /* a key handed out is not kept */
	return SHOAL_OK;
}

shoal_rc cancel_register(struct client *c)
{
	struct cancel_entry *e = xcalloc(1, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_lock(&reg_lock);
	for (;;) {
		uint32_t r[2];
		if (cancel_random(r) != SHOAL_OK) {
			pthread_mutex_unlock(&reg_lock);
			pthread_mutex_destroy(&e->lock);
			free(e);
			return SHOAL_ERROR;
		}
		/* At or above 2^22 (Linux's PID_MAX_LIMIT): never the pid of a real backend, so a
		 * client that passes it to pg_terminate_backend cannot hit someone else's, and it
		 * never meets the real pids session-mode clients are given (cancel_use_pid). */
		e->pid = (r[0] & 0x7fffffff) | CANCEL_PID_FLOOR;
		e->key = r[1];
		if (e->pid != 0 && *find_slot(e->pid) == NULL)
			break;
	}
	*find_slot(e->pid) = e;
	pthread_mutex_unlock(&reg_lock);
	c->cancel_pid = e->pid;
	c->cancel_key = e->key;
	c->cancel_entry = e;
	return SHOAL_OK;
}

void cancel_unregister(struct client *c)
{
	if (!c->cancel_pid)
		return;
	pthread_mutex_lock(&reg_lock);
	struct cancel_entry **slot = find_own_slot(c), *e = *slot;
	if (e) {
		*slot = e->next;
		pthread_mutex_destroy(&e->lock);
		free(e);
	}
	pthread_mutex_unlock(&reg_lock);
	c->cancel_pid = 0;
	c->cancel_entry = NULL;
}

void cancel_set_target(struct client *c, struct server *s)
{
	struct cancel_entry *e = c->cancel_entry;
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->server = s;
	if (s) {
		e->host = s->host;
		e->port = s->port;
		e->be_pid = s->be_pid;
		e->be_key = s->be_key;
	}
	pthread_mutex_unlock(&e->lock);
}

/* Under reg_lock: a copy of e's target, counted as one more cancel on its way to that server;
 * false if the client has none (no statement of its own can be running: not forwarded). */
static bool take_target(struct cancel_entry *e, struct cancel_target *t)
{
	pthread_mutex_lock(&e->lock);
	*t = (struct cancel_target){e->server, e->host, e->port, e->be_pid, e->be_key};
	if (t->server) /* under e->lock: the server cannot be unlinked or closed meanwhile */
		pool_cancel_forwarded(t->server);
	pthread_mutex_unlock(&e->lock);
	return t->server != NULL;
}

static void cancel_forward(struct worker *w, const struct cancel_target *t, int client_fd);

void cancel_handle(struct client *c, uint32_t pid, uint32_t key)
{
	struct cancel_target t = {0};
	bool found = false;
	pthread_mutex_lock(&reg_lock);
	struct cancel_entry *e = find_keyed(pid, key);
	if (e)
		found = take_target(e, &t);
	pthread_mutex_unlock(&reg_lock);
	if (!found) {
		log_info("cancel request from %s for unknown key or idle client ignored",
			 c->c.name);
		return;
	}
	log_info("cancel request from %s forwarded to %s:%d pid %u", c->c.name, t.host, t.port,
		 t.be_pid);
	/* The requester's socket stays open (a duplicate outlives client_close) until the server
	 * has closed the forwarded one: a libpq-style client waits for that EOF before its next
	 * query, which PostgreSQL sends only once it has signalled the backend. */
	int client_fd = dup(c->c.lfd.fd);
	if (client_fd < 0)
		log_warn("cancel: dup: %s", strerror(errno));
	cancel_forward(c->c.w, &t, client_fd);
}

/* An outgoing CancelRequest connection: connect, send 16 bytes, wait for the server to close. */
struct cancel_conn {
	struct loop_fd lfd;
	struct list node; /* in the worker's cancel_conns */
	struct worker *w;
	struct buf out;
	usec_t started;
	struct server *server; /* whose cancels count this one */
	int client_fd;	       /* the requester's socket, closed last (-1: none) */
};

/* Done (answered, failed or timed out): the server may serve another client, and only then
 * the requester learns the cancel is over. */
static void cancel_conn_done(struct cancel_conn *cc)
{
	list_del(&cc->node);
	loop_del(cc->w->loop, &cc->lfd);
	close(cc->lfd.fd);
	buf_free(&cc->out);
	pool_cancel_answered(cc->w, cc->server);
	if (cc->client_fd >= 0)
		close(cc->client_fd);
	free(cc);
}

static void cancel_conn_event(struct loop_fd *lfd, uint32_t events)
{
	struct cancel_conn *cc = container_of(lfd, struct cancel_conn, lfd);
	if ((events & EPOLLOUT) && buf_avail(&cc->out) > 0) {
		ssize_t n = send(lfd->fd, buf_head(&cc->out), buf_avail(&cc->out), MSG_NOSIGNAL);
		if (n > 0)
			buf_consume(&cc->out, (size_t)n);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n > 0 && buf_avail(&cc->out) > 0)
			return;
		/* Sent (or failed): wait for the server to close, which it does after acting. */
		loop_set(cc->w->loop, lfd, n > 0 ? EPOLLIN : 0);
		if (n > 0)
			return;
	}
	cancel_conn_done(cc);
}

static void cancel_forward(struct worker *w, const struct cancel_target *t, int client_fd)
{
	char err[256];
	struct cancel_conn *cc = xcalloc(1, sizeof(*cc));
	cc->w = w;
	cc->server = t->server;
	cc->client_fd = client_fd;
	cc->started = shoal_now();
	list_append(&w->cancel_conns, &cc->node);
	cc->lfd.fd = net_connect(t->host, t->port, err, sizeof(err));
	cc->lfd.cb = cancel_conn_event;
	if (cc->lfd.fd < 0) {
		log_warn("cancel: %s", err);
	} else if (loop_add(w->loop, &cc->lfd, EPOLLOUT) != SHOAL_OK) {
		log_warn("cancel: epoll: %s", strerror(errno));
	} else {
		proto_write_cancel(&cc->out, t->be_pid, t->be_key);
		return;
	}
	if (cc->lfd.fd >= 0)
		close(cc->lfd.fd);
	list_del(&cc->node);
	pool_cancel_answered(w, cc->server);
	if (client_fd >= 0)
		close(client_fd);
	free(cc);
}

void cancel_send(struct worker *w, struct server *s)
{
	pool_cancel_forwarded(s);
	struct cancel_target t = {s, s->host, s->port, s->be_pid, s->be_key};
	cancel_forward(w, &t, -1);
}

void cancel_reap(struct worker *w, usec_t now)
{
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &w->cancel_conns)
	{
		struct cancel_conn *cc = container_of(i, struct cancel_conn, node);
		if (now == 0 || now - cc->started >= CANCEL_CONN_TIMEOUT) {
			if (now)
				log_warn("cancel: no answer from the server in time; giving up");
			cancel_conn_done(cc);
		}
	}
}
