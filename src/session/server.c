/* server.c: server connections: connect, TLS, startup packet, events, retire, death. Login is
 * server_login.c, setup/reset server_setup.c, reading and forwarding server_read.c. */
#include "server.h"
#include "server_int.h"
#include "cancel.h"
#include "client.h"
#include "hosts.h"
#include "log.h"
#include "net.h"
#include "objcache.h"
#include "params.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "states.h"
#include "tls.h"
#include "txn.h"
#include "worker.h"

#include <assert.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static atomic_uint_fast64_t next_server_id = 1;
static __thread struct objcache server_cache; /* freed servers, for this thread's next ones */

static void server_event(struct loop_fd *lfd, uint32_t events);

bool server_is_clean(const struct server *s)
{
	return s->pending == 0 && !s->ext_open && !s->copy_in && s->ready_status == 'I' &&
	       s->c.fwd_left == 0 && buf_avail(&s->c.in) == 0 && ps_idle(s);
}

static usec_t jittered_lifetime(usec_t lifetime)
{
	/* Up to 20% shorter, so a pool opened at once does not recycle at once. */
	return lifetime - (usec_t)((double)lifetime * 0.2 * (rand() / (RAND_MAX + 1.0)));
}

/* Pass-through keys, if a client's SCRAM login gave the pool some (pool lock held). */
static void server_copy_scram_keys(struct server *s, const struct pool *p)
{
	s->has_scram_keys = p->has_scram_keys;
	memcpy(s->scram_client_key, p->scram_client_key, sizeof(s->scram_client_key));
	memcpy(s->scram_server_key, p->scram_server_key, sizeof(s->scram_server_key));
}

static void server_init(struct server *s, struct worker *w, struct pool *p, struct host_rec *check)
{
	const struct config *cfg = config_current();
	s->pool = p;
	s->c.w = w;
	s->c.loop = w->loop;
	s->c.lfd.fd = -1;
	s->c.lfd.cb = server_event;
	s->c.wide_reads = true;
	s->id = atomic_fetch_add(&next_server_id, 1);
	s->ready_status = 'I';
	list_init(&s->node);
	s->connect_time = shoal_now();
	pool_lock(p); /* a reload may replace the pool's password and target */
	usec_t lifetime = pool_timeout(p->server_lifetime, cfg->server_lifetime);
	if (lifetime > 0)
		s->lifetime_end = s->connect_time + jittered_lifetime(lifetime);
	s->password = p->password ? xstrdup(p->password) : NULL;
	s->host = p->host;
	s->dbname = p->server_db;
	s->port = p->port;
	s->gen = p->gen;
	s->hset = p->hosts;
	int want = p->hosts && p->hosts->split ? pool_route_wanted_locked(p) : ROUTE_ANY;
	server_copy_scram_keys(s, p);
	pool_unlock(p);
	if (check) { /* a health check of that host: no pick, not counted in its servers */
		s->check = true;
		s->hrec = check;
		s->host = check->host;
		s->port = check->port;
	} else if (s->hset) { /* NULL when no host is usable: server_connect closes it */
		char err[200];
		s->hrec = hosts_pick_for(s->hset, want, err, sizeof(err));
		if (s->hrec) {
			s->host = s->hrec->host;
			s->port = s->hrec->port;
		} else {
			log_warn("pool %s@%s: %s", p->user, p->name, err);
		}
	}
	snprintf(s->c.name, sizeof(s->c.name), "S-%llu %s@%s:%d/%s", (unsigned long long)s->id,
		 p->server_user, s->host, s->port, s->dbname);
}

void server_connect_check(struct worker *w, struct pool *p, struct host_rec *check)
{
	struct server *s = objcache_take(&server_cache, sizeof(*s));
	char err[300];
	server_init(s, w, p, check);
	if (!check) /* the pool's statistics count the connections it serves with */
		atomic_fetch_add_explicit(&p->server_connects, 1, memory_order_relaxed);
	server_set_state(s, SV_CONNECTING);
	if (s->hset && !s->hrec) {
		server_close(s, "no usable host");
		return;
	}
	s->c.lfd.fd =
	    net_connect(s->host, s->port, config_current()->tcp_socket_buffer, err, sizeof(err));
	if (s->c.lfd.fd < 0) {
		server_close(s, err);
		return;
	}
	if (loop_add(w->loop, &s->c.lfd, EPOLLOUT) != SHOAL_OK) {
		server_close(s, "epoll registration failed");
		return;
	}
	log_debug("%s connecting", s->c.name);
}

void server_connect(struct worker *w, struct pool *p)
{
	server_connect_check(w, p, NULL);
}

void server_free(struct server *s)
{
	if (pool_server_free_deferred(s))
		return; /* a forwarded cancel still names it: the last one answered frees it */
	params_free(&s->params);
	txn_server_free(s);
	scram_client_free(&s->scram);
	OPENSSL_cleanse(s->scram_client_key, sizeof(s->scram_client_key));
	buf_free(&s->setup_error);
	if (s->password) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	objcache_give(&server_cache, s, sizeof(*s));
}

void server_close(struct server *s, const char *reason)
{
	if (s->c.dead)
		return;
	struct client *c = s->client;
	bool failed_login = !s->login_ok;
	/* A message half forwarded to the client: an error of ours would land inside it. */
	bool mid_message = c && s->state == SV_ACTIVE && s->c.fwd_left > 0;
	log_msg(s->check ? LOG_DEBUG : failed_login || c ? LOG_WARN : LOG_INFO,
		"%s closing because: %s", s->c.name, reason);
	if (c) {
		pool_unlink(c, s);
		cancel_set_target(c, NULL);
	}
	conn_close(&s->c);
	/* With another host usable, one host's failure is its breaker's, not the pool's backoff:
	 * the waiters get a connection to the next host at once. */
	bool pool_failed = failed_login && !s->check; /* the check's own breaker has it */
	if (s->check)
		server_check_gone(s, reason);
	else if (s->hrec && hosts_server_gone(s->hset, s->hrec, failed_login, s->conn_lost, reason))
		pool_failed = false;
	pool_server_gone(s, pool_failed, reason);
	server_state_mark(s, SV_CLOSED);
	list_append(&s->c.w->dead_servers, &s->node);
	if (!c)
		return;
	/* read_write_split: a read no byte of whose answer reached the client goes again */
	if (c->retry && !s->fatal_seen && !mid_message && client_split_retry(c, s->hrec, reason))
		return;
	if (s->fatal_seen) {
		client_close(c, NULL, "server sent FATAL and closed");
	} else if (mid_message) {
		char msg[300];
		snprintf(msg, sizeof(msg), "server connection lost inside a message (%s): %s",
			 s->c.name, reason);
		client_close(c, NULL, msg);
	} else {
		char msg[300];
		snprintf(msg, sizeof(msg), "server connection lost (%s): %s", s->c.name, reason);
		client_close(c, "08006", msg);
	}
}

void server_send_cancel(struct server *s)
{
	cancel_send(s->c.w, s);
}

/* A send to a linked server found its side closed (EPIPE, or ECONNRESET: a TCP server that
 * exited with unread input). PostgreSQL writes why before it exits (an ERROR and a FATAL, e.g.
 * "protocol synchronization was lost"), and those bytes are still readable: drop what cannot be
 * sent, and let the read side forward them and close on the EOF that follows, as a direct
 * connection would see it. */
static bool server_send_broken(struct server *s, int err)
{
	if (s->c.tls || s->state != SV_ACTIVE || !s->client || (err != EPIPE && err != ECONNRESET))
		return false;
	if (!s->send_broken)
		log_debug("%s: send: %s; reading what it sent before closing", s->c.name,
			  strerror(err));
	s->send_broken = true;
	s->c.out.off = s->c.out.len = 0;
	conn_update_events(&s->c);
	return true;
}

shoal_rc server_flush(struct server *s)
{
	if (conn_flush(&s->c) == SHOAL_ERROR) {
		int err = errno;
		if (server_send_broken(s, err))
			return SHOAL_OK;
		server_close(s, err ? strerror(err) : "send failed");
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

static void server_send_startup(struct server *s);

/* server_tls_sslmode applies to TCP servers; a Unix socket is never encrypted. */
static bool server_wants_tls(const struct server *s)
{
	return tls_server_mode() != TLS_DISABLE && s->host[0] != '/';
}

/* Read what the server sent; on EOF or an error the server is closed (SHOAL_ERROR). */
static shoal_rc server_read(struct server *s)
{
	shoal_rc rc = conn_read(&s->c);
	if (rc == SHOAL_ERROR) {
		s->conn_lost = !s->retiring; /* an evicted server's EOF is what it was asked for */
		server_close(s, s->retiring	 ? s->retiring
				: errno ? strerror(errno)
					: "server closed the connection");
	}
	return rc;
}

void server_retire(struct server *s, const char *reason)
{
	log_info("%s retiring: %s", s->c.name, reason);
	s->retiring = reason;
	s->retire_at = shoal_now();
	proto_begin(&s->c.out, PQMSG_TERMINATE);
	proto_finish(&s->c.out);
	if (server_flush(s) != SHOAL_OK)
		return; /* closed */
	if (shutdown(s->c.lfd.fd, SHUT_WR) != 0)
		server_close(s, reason);
}

/* A TLS failure no retry can fix (refused, certificate does not verify): waiting clients get
 * the reason at once rather than a query_wait_timeout later. */
static void server_tls_failed(struct server *s, const char *msg)
{
	char full[400];
	snprintf(full, sizeof(full), "server login failed: %s", msg);
	struct buf e = {0};
	proto_write_error(&e, "FATAL", "08006", full);
	pool_fail_waiters(s->c.w, s->pool, e.data, e.len);
	buf_free(&e);
	server_close(s, full);
}

/* The one mover of s->tls_phase: SSLRequest sent, then a plaintext answer or the handshake,
 * which ends in none again. Other moves are defects, asserted in debug builds. */
static void server_tls_move(struct server *s, enum server_tls_phase to)
{
	static const unsigned legal[] __attribute__((unused)) = {
	    [SV_TLS_NONE] = 1u << SV_TLS_REQUESTED,
	    [SV_TLS_REQUESTED] = 1u << SV_TLS_HANDSHAKE | 1u << SV_TLS_NONE,
	    [SV_TLS_HANDSHAKE] = 1u << SV_TLS_NONE,
	};
	assert(legal[s->tls_phase] & (1u << to));
	s->tls_phase = to;
}

static void server_tls_step(struct server *s)
{
	char err[300];
	shoal_rc rc = tls_handshake(&s->c, err, sizeof(err));
	if (rc == SHOAL_ERROR) {
		server_tls_failed(s, err);
		return;
	}
	if (rc == SHOAL_OK) {
		server_tls_move(s, SV_TLS_NONE);
		log_debug("%s TLS established", s->c.name);
		server_send_startup(s);
	}
}

/* The answer to our SSLRequest: 'S' starts the handshake, 'N' goes on in plaintext if the mode
 * allows it. */
static void server_tls_answer(struct server *s)
{
	int mode = tls_server_mode();
	char err[300];
	uint8_t a = buf_head(&s->c.in)[0];
	/* Anything after the answer was sent before encryption started: it could have been
	 * injected by a man in the middle (CVE-2021-23214), so it is refused, as libpq does. */
	if (buf_avail(&s->c.in) > 1) {
		server_tls_failed(s, "received unencrypted data after SSL response");
		return;
	}
	buf_consume(&s->c.in, 1);
	if (a == 'S') {
		if (tls_connect(&s->c, s->host, mode, err, sizeof(err)) != SHOAL_OK) {
			server_tls_failed(s, err);
			return;
		}
		server_tls_move(s, SV_TLS_HANDSHAKE);
		server_tls_step(s);
	} else if (a == 'N' && mode < TLS_REQUIRE) {
		server_tls_move(s, SV_TLS_NONE);
		server_send_startup(s);
	} else if (a == 'N') {
		server_tls_failed(s, "server does not support TLS (server_tls_sslmode requires it)");
	} else {
		server_tls_failed(s, "invalid answer to SSLRequest");
	}
}

static void server_tls_event(struct server *s)
{
	if (s->tls_phase == SV_TLS_HANDSHAKE) {
		server_tls_step(s);
		return;
	}
	if (buf_avail(&s->c.out) > 0 && server_flush(s) != SHOAL_OK)
		return;
	if (server_read(s) == SHOAL_OK)
		server_tls_answer(s);
}

static void server_on_connected(struct server *s)
{
	int e = net_connect_result(s->c.lfd.fd);
	if (e != 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "connect failed: %s", strerror(e));
		server_close(s, msg);
		return;
	}
	s->connected = true;
	client_tcp_opts(s->c.lfd.fd);
	net_local_info(s->c.lfd.fd, s->local_addr, sizeof(s->local_addr), &s->local_port);
	if (server_wants_tls(s)) {
		proto_begin(&s->c.out, 0);
		proto_put_u32(&s->c.out, PQ_SSL_CODE);
		proto_finish(&s->c.out);
		server_tls_move(s, SV_TLS_REQUESTED);
		server_flush(s);
		return;
	}
	server_send_startup(s);
}

/* A replication server takes the first waiting client's startup parameters: a walsender
 * accepts no SET afterwards. Under the pool's lock (the client may live on another worker; its
 * list does not change while it waits to log in). */
static void server_put_repl_params(struct server *s)
{
	struct pool *p = s->pool;
	proto_put_str(&s->c.out, "replication");
	proto_put_str(&s->c.out, p->repl);
	pool_lock(p);
	if (!list_empty(&p->waiting)) {
		struct client *c = container_of(p->waiting.next, struct client, node);
		for (int i = 0; i < c->params.n; i++) {
			if (c->params.items[i].raw)
				continue;
			proto_put_str(&s->c.out, c->params.items[i].name);
			proto_put_str(&s->c.out, c->params.items[i].value);
		}
	}
	pool_unlock(p);
}

static void server_send_startup(struct server *s)
{
	proto_begin(&s->c.out, 0);
	proto_put_u32(&s->c.out, PQ_PROTOCOL_3_0);
	proto_put_str(&s->c.out, "user");
	proto_put_str(&s->c.out, s->pool->server_user);
	proto_put_str(&s->c.out, "database");
	proto_put_str(&s->c.out, s->dbname);
	if (s->pool->repl)
		server_put_repl_params(s);
	proto_put_u8(&s->c.out, 0);
	proto_finish(&s->c.out);
	server_flush(s);
}

static void server_event(struct loop_fd *lfd, uint32_t events)
{
	struct server *s = container_of(lfd, struct server, c.lfd);
	if (s->c.dead || s->state == SV_TRANSIT)
		return; /* on its way to another worker: that one reads it */
	if (!s->connected) {
		server_on_connected(s);
		return;
	}
	if (s->tls_phase != SV_TLS_NONE) {
		server_tls_event(s);
		return;
	}
	if ((events & EPOLLOUT) && server_flush(s) != SHOAL_OK)
		return;
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || conn_hold(&s->c, events)) {
		server_link_settle(s);
		return;
	}
	if (server_read(s) == SHOAL_OK)
		server_process(s);
	server_link_settle(s);
}
