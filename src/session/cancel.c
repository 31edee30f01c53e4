/* cancel.c: the cancel-key registry (shared by all workers, under its own lock) and outgoing
 * CancelRequest connections. */
#include "cancel.h"
#include "auth.h"
#include "dns.h"
#include "spin.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "proto.h"
#include "worker.h"

#include <assert.h>
#include <stdatomic.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define CANCEL_BUCKETS 4096

/* The target server changes on every link: the client's worker writes it under the entry's own
 * lock, not reg_lock, so links on different workers do not contend. cancel_handle takes
 * reg_lock, then the entry's lock, then the target's pool lock (that order only). The entry is
 * given back (entry_give) under reg_lock. While an entry names a server, that server is alive
 * and linked to the entry's client: its client clears the target before unlinking it or
 * closing it. */
struct cancel_entry {
	struct cancel_entry *next;
	uint32_t pid;
	uint8_t key[CANCEL_KEY_LEN];
	size_t keylen;
	struct spin lock;
	struct server *server; /* the target, or NULL */
	const char *host;      /* the target's (kept until exit: see objects.h) */
	int port;
	uint32_t be_pid, be_key;
};

/* What a forwarded cancel needs, copied so that it does not read a server another worker owns.
 * To a server: be_pid and be_key (a 3.0 key). To a peer: server is NULL, and the pid and key
 * are the request's own with one hop less. */
struct cancel_target {
	struct server *server; /* counted in server->cancels until the connection is done */
	const char *host;
	int port;
	uint32_t be_pid, be_key;
	uint8_t key[PQ_CANCEL_KEY_MAX]; /* to a peer */
	size_t keylen;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cancel_entry *buckets[CANCEL_BUCKETS];

/* Entries given back by closed clients, kept (up to CANCEL_SPARE_MAX) for the next logins so
 * that a login costs no malloc and free for its entry; under reg_lock. */
#define CANCEL_SPARE_MAX 256
static struct cancel_entry *spare;
static int nspare;

/* Under reg_lock: a zeroed entry, a spare one (zeroed when given back) when there is. */
static struct cancel_entry *entry_take(void)
{
	struct cancel_entry *e = spare;
	if (!e)
		return xcalloc(1, sizeof(*e));
	spare = e->next;
	nspare--;
	e->next = NULL; /* the rest was zeroed by entry_give */
	return e;
}

/* Under reg_lock: e is out of the registry; its key is wiped. */
static void entry_give(struct cancel_entry *e)
{
	if (nspare >= CANCEL_SPARE_MAX) {
		free(e);
		return;
	}
	memset(e, 0, sizeof(*e));
	e->next = spare;
	spare = e;
	nspare++;
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
static struct cancel_entry *find_keyed(uint32_t pid, const uint8_t *key, size_t keylen)
{
	for (struct cancel_entry *e = buckets[pid % CANCEL_BUCKETS]; e; e = e->next)
		/* Constant-time key comparison: the key is the only secret a cancel carries. Its
		 * length is no secret (it follows the client's protocol version). */
		if (e->pid == pid && e->keylen == keylen && CRYPTO_memcmp(e->key, key, keylen) == 0)
			return e;
	return NULL;
}

void cancel_use_pid(struct client *c, uint32_t pid)
{
	struct cancel_entry *e = c->cancel_entry;
	/* With peering on, the pid carries this instance's id (3.0 keys): it must stay Shoal's. */
	if (!e || pid == 0 || pid == c->cancel_pid || config_current()->peer_id != 0)
		return;
	pthread_mutex_lock(&reg_lock);
	if (!find_keyed(pid, e->key, e->keylen)) { /* (pid, key) must name one client */
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
static shoal_rc cancel_random(uint8_t *out, size_t n)
{
	static __thread uint8_t block[4096];
	static __thread size_t left;
	assert(n <= sizeof(block));
	if (left < n) {
		if (auth_random(block, sizeof(block)) != SHOAL_OK)
			return SHOAL_ERROR;
		left = sizeof(block);
	}
	left -= n;
	memcpy(out, block + left, n);
	explicit_bzero(block + left, n); /* a key handed out is not kept */
	return SHOAL_OK;
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* A fresh (pid, key) for a client of protocol minor `minor`, naming peer `self` (0: none).
 * 3.0: PgBouncer's peering layout, so that PgBouncer peers can route Shoal's keys and back:
 * the pid's second byte is the peer id's low byte, its third the high byte; the key's low two
 * bits count the hops left. 3.2: 28 random bytes, then the trailer (tag, peer id big-endian,
 * hops left). */
static shoal_rc make_key(int minor, int self, uint32_t *pid, uint8_t *key, size_t *keylen)
{
	uint8_t r[4 + CANCEL_KEY_LEN];
	*keylen = minor >= 2 ? CANCEL_KEY_LEN : PQ_CANCEL_KEY_V30;
	if (cancel_random(r, 4 + *keylen) != SHOAL_OK)
		return SHOAL_ERROR;
	memcpy(key, r + 4, *keylen);
	if (self && *keylen == PQ_CANCEL_KEY_V30) {
		r[1] = (uint8_t)(self & 0xff);
		r[2] = (uint8_t)(self >> 8);
		key[3] |= CANCEL_HOPS;
	} else if (*keylen == CANCEL_KEY_LEN) {
		key[CANCEL_KEY_LEN - 4] = CANCEL_KEY_TAG;
		key[CANCEL_KEY_LEN - 3] = (uint8_t)(self >> 8);
		key[CANCEL_KEY_LEN - 2] = (uint8_t)(self & 0xff);
		key[CANCEL_KEY_LEN - 1] = CANCEL_HOPS;
	}
	/* Positive, and at or above 2^22 (Linux's PID_MAX_LIMIT): never the pid of a real
	 * backend, so a client that passes it to pg_terminate_backend cannot hit someone else's,
	 * and it never meets the real pids session-mode clients are given (cancel_use_pid). */
	*pid = be32(r) & 0x7fffffff;
	if (*pid < CANCEL_PID_FLOOR)
		*pid |= (uint32_t)1 << 24; /* the first byte carries no peer id */
	explicit_bzero(r, sizeof(r));
	return SHOAL_OK;
}

shoal_rc cancel_register(struct client *c)
{
	int self = config_current()->peer_id;
	uint32_t pid;
	uint8_t key[CANCEL_KEY_LEN];
	size_t keylen;
	for (;;) {
		/* Made before the lock (a RAND_bytes call once per 4 KB of keys). (pid, key) names
		 * one client. With peering only 15 bits of a 3.0 pid are random: pids may repeat,
		 * the pair does not. */
		if (make_key(c->proto_minor, self, &pid, key, &keylen) != SHOAL_OK)
			return SHOAL_ERROR;
		pthread_mutex_lock(&reg_lock);
		if (!find_keyed(pid, key, keylen))
			break;
		pthread_mutex_unlock(&reg_lock);
	}
	struct cancel_entry *e = entry_take();
	spin_init(&e->lock);
	e->pid = pid;
	memcpy(e->key, key, keylen);
	explicit_bzero(key, sizeof(key));
	e->keylen = keylen;
	struct cancel_entry **b = &buckets[pid % CANCEL_BUCKETS];
	e->next = *b;
	*b = e;
	pthread_mutex_unlock(&reg_lock);
	c->cancel_pid = pid;
	c->cancel_key_len = (uint8_t)keylen;
	c->cancel_entry = e;
	return SHOAL_OK;
}

shoal_rc cancel_adopt(struct client *c, uint32_t pid, const uint8_t *key, size_t keylen)
{
	if (pid == 0 || (keylen != PQ_CANCEL_KEY_V30 && keylen != CANCEL_KEY_LEN))
		return SHOAL_ERROR;
	pthread_mutex_lock(&reg_lock);
	if (find_keyed(pid, key, keylen)) {
		pthread_mutex_unlock(&reg_lock);
		return SHOAL_ERROR;
	}
	struct cancel_entry *e = entry_take();
	spin_init(&e->lock);
	e->pid = pid;
	memcpy(e->key, key, keylen);
	e->keylen = keylen;
	struct cancel_entry **b = &buckets[pid % CANCEL_BUCKETS];
	e->next = *b;
	*b = e;
	pthread_mutex_unlock(&reg_lock);
	c->cancel_pid = pid;
	c->cancel_key_len = (uint8_t)keylen;
	c->cancel_entry = e;
	return SHOAL_OK;
}

const uint8_t *cancel_key_of(const struct client *c)
{
	return c->cancel_entry ? c->cancel_entry->key : NULL; /* set at creation, never changed */
}

void cancel_unregister(struct client *c)
{
	if (!c->cancel_pid)
		return;
	pthread_mutex_lock(&reg_lock);
	struct cancel_entry **slot = find_own_slot(c), *e = *slot;
	if (e) {
		*slot = e->next;
		entry_give(e);
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
	spin_lock(&e->lock);
	e->server = s;
	if (s) {
		e->host = s->host;
		e->port = s->port;
		e->be_pid = s->be_pid;
		e->be_key = s->be_key;
	}
	spin_unlock(&e->lock);
}

/* Under reg_lock: a copy of e's target, counted as one more cancel on its way to that server;
 * false if the client has none (no statement of its own can be running: not forwarded). */
static bool take_target(struct cancel_entry *e, struct cancel_target *t)
{
	spin_lock(&e->lock);
	t->server = e->server;
	t->host = e->host;
	t->port = e->port;
	t->be_pid = e->be_pid;
	t->be_key = e->be_key;
	if (t->server) /* under e->lock: the server cannot be unlinked or closed meanwhile */
		pool_cancel_forwarded(t->server);
	spin_unlock(&e->lock);
	return t->server != NULL;
}

static void cancel_forward(struct worker *w, const struct cancel_target *t, int client_fd);

/* Where a key says it was issued: *peer (0: no peer id in it) and *hops (forwards left), and at
 * `canon` the key as it was handed out (hops restored), for the local lookup. */
static void key_route(uint32_t pid, const uint8_t *key, size_t keylen, uint8_t *canon, int *peer,
		      int *hops)
{
	memcpy(canon, key, keylen);
	*peer = 0;
	*hops = 0;
	if (keylen == PQ_CANCEL_KEY_V30) {
		*peer = (int)((pid >> 16) & 0xff) | (int)((pid >> 8) & 0xff) << 8;
		*hops = key[3] & CANCEL_HOPS;
		canon[3] |= CANCEL_HOPS;
	} else if (keylen == CANCEL_KEY_LEN && key[CANCEL_KEY_LEN - 4] == CANCEL_KEY_TAG) {
		*peer = key[CANCEL_KEY_LEN - 3] << 8 | key[CANCEL_KEY_LEN - 2];
		*hops = key[CANCEL_KEY_LEN - 1];
		canon[CANCEL_KEY_LEN - 1] = CANCEL_HOPS;
	}
}

/* The requester's socket stays open (a duplicate outlives client_close) until the server or
 * peer has closed the forwarded one: a libpq-style client waits for that EOF before its next
 * query, which PostgreSQL sends only once it has signalled the backend. */
static void forward_keeping_requester(struct client *c, const struct cancel_target *t)
{
	int client_fd = dup(c->c.lfd.fd);
	if (client_fd < 0)
		log_warn("cancel: dup: %s", strerror(errno));
	cancel_forward(c->c.w, t, client_fd);
}

/* The request's pid and key with hops left set to `hops`, for a peer. */
static void peer_target(struct cancel_target *t, uint32_t pid, const uint8_t *key, size_t keylen,
			int hops)
{
	t->be_pid = pid;
	memcpy(t->key, key, keylen);
	t->keylen = keylen;
	if (keylen == PQ_CANCEL_KEY_V30)
		t->key[3] = (uint8_t)((t->key[3] & ~CANCEL_HOPS) | hops);
	else
		t->key[CANCEL_KEY_LEN - 1] = (uint8_t)hops;
}

/* peer_discovery_dns: the issuer is not in [peers], so send the request to every instance the
 * name resolves to, with no hops left: the issuer finds its own key, every other drops it, and
 * nobody forwards it again. Each forward keeps its own duplicate of the requester's socket,
 * which therefore closes once the last instance has answered. */
static bool cancel_to_all(struct client *c, uint32_t pid, const uint8_t *key, size_t keylen,
			  int peer)
{
	const struct config *cfg = config_current();
	struct sockaddr_storage addr[32];
	socklen_t len[32];
	if (!cfg->peer_discovery_dns || !cfg->peer_discovery_dns[0])
		return false;
	int n = dns_lookup_all(cfg->peer_discovery_dns, cfg->listen_port, addr, len, 32);
	log_info("cancel request from %s for peer %d sent to the %d instance(s) of %s", c->c.name,
		 peer, n, cfg->peer_discovery_dns);
	for (int i = 0; i < n; i++) {
		char host[64];
		if (getnameinfo((struct sockaddr *)&addr[i], len[i], host, sizeof(host), NULL, 0,
				NI_NUMERICHOST) != 0)
			continue;
		struct cancel_target t = {.host = host, .port = cfg->listen_port};
		peer_target(&t, pid, key, keylen, 0);
		forward_keeping_requester(c, &t);
	}
	return true;
}

/* Cancel requests forwarded to each [peers] id (cancel_forwarded_to). Static and zero until
 * used: the pages of ids never forwarded to are never touched. */
static _Atomic uint64_t forwarded_to[CANCEL_PEER_ID_MAX + 1];

uint64_t cancel_forwarded_to(int peer)
{
	return peer >= 1 && peer <= CANCEL_PEER_ID_MAX ? atomic_load(&forwarded_to[peer]) : 0;
}

/* A key issued by another peer: pass it on, one hop less, to the [peers] entry it names (or to
 * every instance of peer_discovery_dns). */
static void cancel_to_peer(struct client *c, uint32_t pid, const uint8_t *key, size_t keylen,
			   int peer, int hops)
{
	if (hops == 0) {
		log_info("cancel request from %s for peer %d not forwarded: no hops left",
			 c->c.name, peer);
		return;
	}
	const struct peer_entry *pe = config_find_peer(config_current(), peer);
	if (!pe) {
		/* Peer 0 is no instance (ids start at 1): a key that names none, e.g. a forged one,
		 * is not sent around the fleet. */
		if (peer == 0 || !cancel_to_all(c, pid, key, keylen, peer))
			log_info("cancel request from %s for unknown peer id %d ignored", c->c.name,
				 peer);
		return;
	}
	struct cancel_target t = {.host = pe->host, .port = pe->port};
	peer_target(&t, pid, key, keylen, hops - 1);
	log_info("cancel request from %s forwarded to peer %d (%s:%d)", c->c.name, peer, pe->host,
		 pe->port);
	if (peer <= CANCEL_PEER_ID_MAX)
		atomic_fetch_add(&forwarded_to[peer], 1);
	forward_keeping_requester(c, &t);
}

void cancel_handle(struct client *c, uint32_t pid, const uint8_t *key, size_t keylen)
{
	uint8_t canon[PQ_CANCEL_KEY_MAX];
	int peer, hops, self = config_current()->peer_id;
	if (keylen > PQ_CANCEL_KEY_MAX)
		return;
	key_route(pid, key, keylen, canon, &peer, &hops);
	if (self == 0) /* no peering: the key is compared as it came */
		memcpy(canon, key, keylen);
	struct cancel_target t = {0};
	bool found = false;
	/* Looked up here first even when it names another peer: a client handed over from the
	 * process it names (handoff.c) keeps the key that process issued. */
	pthread_mutex_lock(&reg_lock);
	struct cancel_entry *e = find_keyed(pid, canon, keylen);
	if (e)
		found = take_target(e, &t);
	pthread_mutex_unlock(&reg_lock);
	explicit_bzero(canon, sizeof(canon));
	if (!e && self != 0 && peer != self) {
		cancel_to_peer(c, pid, key, keylen, peer, hops);
		return;
	}
	if (!found) {
		log_info("cancel request from %s for unknown key or idle client ignored",
			 c->c.name);
		return;
	}
	log_info("cancel request from %s forwarded to %s:%d pid %u", c->c.name, t.host, t.port,
		 t.be_pid);
	forward_keeping_requester(c, &t);
}

/* An outgoing CancelRequest connection: connect, send it, wait for the other end to close. */
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
	if (cc->server)
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
	cc->lfd.fd =
	    net_connect(t->host, t->port, config_current()->tcp_socket_buffer, err, sizeof(err));
	cc->lfd.cb = cancel_conn_event;
	if (cc->lfd.fd < 0) {
		log_warn("cancel: %s", err);
	} else if (loop_add(w->loop, &cc->lfd, EPOLLOUT) != SHOAL_OK) {
		log_warn("cancel: epoll: %s", strerror(errno));
	} else {
		if (t->server) { /* servers speak 3.0: their keys are 4 bytes */
			uint8_t k[PQ_CANCEL_KEY_V30];
			proto_key_bytes(t->be_key, k);
			proto_write_cancel(&cc->out, t->be_pid, k, sizeof(k));
		} else {
			proto_write_cancel(&cc->out, t->be_pid, t->key, t->keylen);
		}
		return;
	}
	if (cc->lfd.fd >= 0)
		close(cc->lfd.fd);
	list_del(&cc->node);
	if (cc->server)
		pool_cancel_answered(w, cc->server);
	if (client_fd >= 0)
		close(client_fd);
	free(cc);
}

void cancel_send(struct worker *w, struct server *s)
{
	pool_cancel_forwarded(s);
	struct cancel_target t = {.server = s,
				  .host = s->host,
				  .port = s->port,
				  .be_pid = s->be_pid,
				  .be_key = s->be_key};
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
				log_warn("cancel: no answer from the other end in time; giving up");
			cancel_conn_done(cc);
		}
	}
}
