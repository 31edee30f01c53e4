/* server.c: server connections: connect, login, linked traffic, setup/reset, death. */
#include "server.h"
#include "stats.h"
#include "tls.h"
#include "auth.h"
#include "auth_query.h"
#include "cancel.h"
#include "client.h"
#include "client_budget.h"
#include "error_stats.h"
#include "hosts.h"
#include "log.h"
#include "net.h"
#include "params.h"
#include "pool.h"
#include "states.h"
#include "proto.h"
#include "prepared.h"
#include "txn.h"
#include "worker.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static atomic_uint_fast64_t next_server_id = 1;

static void server_event(struct loop_fd *lfd, uint32_t events);
static void server_process(struct server *s);

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
	server_copy_scram_keys(s, p);
	pool_unlock(p);
	if (check) { /* a health check of that host: no pick, not counted in its servers */
		s->check = true;
		s->hrec = check;
		s->host = check->host;
		s->port = check->port;
	} else if (s->hset) { /* NULL when no host is usable: server_connect closes it */
		char err[200];
		s->hrec = hosts_pick(s->hset, err, sizeof(err));
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
	struct server *s = xcalloc(1, sizeof(*s));
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
	free(s);
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

static shoal_rc server_flush(struct server *s)
{
	if (conn_flush(&s->c) == SHOAL_ERROR) {
		server_close(s, strerror(errno));
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

static void server_tls_step(struct server *s)
{
	char err[300];
	shoal_rc rc = tls_handshake(&s->c, err, sizeof(err));
	if (rc == SHOAL_ERROR) {
		server_tls_failed(s, err);
		return;
	}
	if (rc == SHOAL_OK) {
		s->tls_phase = 0;
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
		s->tls_phase = 2;
		server_tls_step(s);
	} else if (a == 'N' && mode < TLS_REQUIRE) {
		s->tls_phase = 0;
		server_send_startup(s);
	} else if (a == 'N') {
		server_tls_failed(s, "server does not support TLS (server_tls_sslmode requires it)");
	} else {
		server_tls_failed(s, "invalid answer to SSLRequest");
	}
}

static void server_tls_event(struct server *s)
{
	if (s->tls_phase == 2) {
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
		s->tls_phase = 1;
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
	if (s->tls_phase) {
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

/* ---- login ----------------------------------------------------------------------------- */

static void server_send_password(struct server *s, const char *pw)
{
	proto_begin(&s->c.out, PQMSG_PASSWORD);
	proto_put_str(&s->c.out, pw);
	proto_finish(&s->c.out);
}

/* A login the server refuses for good (auth, missing database): waiting clients get its error. */
static void server_login_refused(struct server *s, const char *sqlstate, const char *msg)
{
	struct buf e = {0};
	proto_write_error(&e, "FATAL", sqlstate, msg);
	if (!s->check)
		pool_fail_waiters(s->c.w, s->pool, e.data, e.len);
	buf_free(&e);
	server_close(s, msg);
}

static const char *need_plain_password(struct server *s, const char *method)
{
	const char *pw = s->password;
	if (pw && !auth_secret_is_md5(pw) && !auth_secret_is_scram(pw))
		return pw;
	char msg[256];
	snprintf(msg, sizeof(msg),
		 "server login failed: %s authentication needs a plaintext password for user \"%s\"",
		 method, s->pool->server_user);
	server_login_refused(s, "28000", msg);
	return NULL;
}

static void server_auth_sasl(struct server *s, struct pq_reader *r)
{
	bool scram = false;
	const char *mech;
	while ((mech = pqr_cstr(r)) != NULL && *mech)
		scram |= strcmp(mech, "SCRAM-SHA-256") == 0;
	if (!scram) {
		server_login_refused(s, "28000", "server login failed: no supported SASL mechanism");
		return;
	}
	/* Pass-through: a SCRAM secret and the keys a client's proof gave us replace the password. */
	bool keys = s->has_scram_keys && s->password && auth_secret_is_scram(s->password);
	if (!keys && !need_plain_password(s, "SCRAM-SHA-256"))
		return;
	char first[128];
	if (scram_client_first(&s->scram, first, sizeof(first)) != SHOAL_OK) {
		server_close(s, "SCRAM: cannot make a nonce");
		return;
	}
	if (keys)
		scram_client_use_keys(&s->scram, s->scram_client_key, s->scram_server_key);
	proto_begin(&s->c.out, PQMSG_PASSWORD);
	proto_put_str(&s->c.out, "SCRAM-SHA-256");
	proto_put_u32(&s->c.out, (uint32_t)strlen(first));
	proto_put_bytes(&s->c.out, first, strlen(first));
	proto_finish(&s->c.out);
}

static void server_auth_sasl_continue(struct server *s, struct pq_reader *r)
{
	char final[512];
	size_t n = r->len - r->pos;
	const char *data = (const char *)pqr_bytes(r, n);
	const char *pw = s->scram.use_keys ? NULL : s->password;
	if (scram_client_final(&s->scram, pw, data, n, final, sizeof(final)) !=
	    SHOAL_OK) {
		server_close(s, "SCRAM: malformed server-first-message");
		return;
	}
	proto_begin(&s->c.out, PQMSG_PASSWORD);
	proto_put_bytes(&s->c.out, final, strlen(final));
	proto_finish(&s->c.out);
}

static void server_handle_auth(struct server *s, const uint8_t *body, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, body, len);
	uint32_t code = pqr_u32(&r);
	const char *pw;
	char md5[36];
	switch (code) {
	case PQAUTH_OK:
		/* After SCRAM, only a server that proved it knows the password is accepted. */
		if (s->scram.client_first_bare && !s->scram.verified)
			server_close(s, "SCRAM: server accepted the login without its signature");
		return;
	case PQAUTH_CLEARTEXT:
		if ((pw = need_plain_password(s, "password")) != NULL)
			server_send_password(s, pw);
		return;
	case PQAUTH_MD5: {
		const uint8_t *salt = pqr_bytes(&r, 4);
		if (!salt || !s->password || auth_secret_is_scram(s->password)) {
			server_login_refused(s, "28000", "server login failed: md5 needs a password");
			return;
		}
		auth_md5_response(s->password, s->pool->server_user, salt, md5);
		server_send_password(s, md5);
		return;
	}
	case PQAUTH_SASL: server_auth_sasl(s, &r); return;
	case PQAUTH_SASL_CONTINUE: server_auth_sasl_continue(s, &r); return;
	case PQAUTH_SASL_FINAL:
		if (scram_verify_server(&s->scram, (const char *)body + 4, len - 4) != SHOAL_OK)
			server_close(s, "SCRAM: server signature does not verify");
		return;
	default: {
		char msg[128];
		snprintf(msg, sizeof(msg), "server login failed: unsupported auth method %u", code);
		server_login_refused(s, "28000", msg);
	}
	}
}

static void server_login_error(struct server *s, const uint8_t *msg, size_t len)
{
	struct pq_error e;
	char reason[512];
	if (proto_parse_error(msg + 5, len - 5, &e) != SHOAL_OK || !e.sqlstate) {
		server_close(s, "malformed ErrorResponse during login");
		return;
	}
	/* PgBouncer's "server login failed: FATAL <message>", with the SQLSTATE */
	snprintf(reason, sizeof(reason), "server login failed: %s %s (%s)",
		 e.severity_nl ? e.severity_nl : e.severity ? e.severity : "FATAL",
		 e.message ? e.message : "?", e.sqlstate);
	/* Wrong password, missing role or database: retrying cannot help, so waiting clients get
	 * the server's own error. Anything else (starting up, too many connections) is retried,
	 * except for a replication pool: a walsender refusing a role (42501) or a startup
	 * parameter answers its waiting client, whose parameters the server was opened with. */
	if (!s->check && (strncmp(e.sqlstate, "28", 2) == 0 || strcmp(e.sqlstate, "3D000") == 0 ||
			  s->pool->repl)) {
		char text[400]; /* logged before the clients' lines, as PgBouncer orders them */
		str_copy(text, sizeof(text), e.message ? e.message : "server login failed");
		log_warn("%s %s", s->c.name, reason);
		pool_fail_waiters(s->c.w, s->pool, msg, len);
		server_close(s, text);
		return;
	}
	server_close(s, reason);
}

/* target_session_attrs: the host's role is read as part of the login, before the server is
 * ready, with the query libpq uses for each value (both facts at once, for SHOW HOSTS). */
static void server_send_role_check(struct server *s)
{
	s->role_check = true;
	s->role_standby = s->role_read_only = false;
	proto_write_query(&s->c.out, "SELECT pg_catalog.pg_is_in_recovery(), "
				     "pg_catalog.current_setting('transaction_read_only')");
	server_flush(s);
}

/* The role query's row: two text columns, 't'/'f' and 'on'/'off'. */
static void server_role_row(struct server *s, const uint8_t *body, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, body, len);
	if (pqr_u16(&r) != 2)
		return;
	uint32_t n = pqr_u32(&r);
	const uint8_t *v = n <= 8 ? pqr_bytes(&r, n) : NULL;
	s->role_standby = v && n >= 1 && v[0] == 't';
	n = pqr_u32(&r);
	v = n <= 8 ? pqr_bytes(&r, n) : NULL;
	s->role_read_only = v && n == 2 && memcmp(v, "on", 2) == 0;
}

static void server_login_ready(struct server *s);

static void server_login_done(struct server *s)
{
	if (s->check) { /* logged in: ask; answered: record and close */
		if (!s->role_check) {
			s->role_check = true;
			server_check_send(s);
			server_flush(s);
		} else {
			server_check_finish(s);
		}
		return;
	}
	if (s->hrec && !s->role_check)
		hosts_login_ok(s->hrec);
	if (s->hrec && hosts_wants_role(s->hset) && !s->role_check) {
		server_send_role_check(s);
		return;
	}
	if (s->role_check) {
		s->role_check = false;
		if (!hosts_role_seen(s->hset, s->hrec, s->role_standby, s->role_read_only)) {
			char why[160];
			snprintf(why, sizeof(why), "host is a %s%s: target_session_attrs=%s wants "
				 "another", s->role_standby ? "standby" : "primary",
				 s->role_read_only ? " (read-only)" : "",
				 config_tsa_name(s->hset->tsa));
			s->login_ok = true; /* not a failure: the next connection tries another host */
			server_close(s, why);
			return;
		}
	}
	server_login_ready(s);
}

static void server_login_ready(struct server *s)
{
	struct pool *p = s->pool;
	s->login_ok = true;
	scram_client_free(&s->scram);
	pool_lock(p);
	p->connect_failures = 0;
	p->next_connect_at = 0;
	if (!p->has_welcome) {
		params_copy(&p->welcome, &s->params);
		p->has_welcome = true;
	}
	pool_unlock(p);
	/* PgBouncer's wording (operators and its tests look for it), plus Shoal's details */
	log_info("%s new connection to server (from %s:%d), backend pid %u, worker %d", s->c.name,
		 s->local_addr, s->local_port, s->be_pid, s->c.w->id);
	const struct db_entry *db = config_find_db(config_current(), p->name);
	if (db && db->connect_query && *db->connect_query) {
		s->connect_query = true; /* done like a reset query: the server is idle after it */
		server_begin_reset_with(s, db->connect_query);
		return;
	}
	pool_server_ready(s);
}

static void server_param(struct server *s, const uint8_t *body, size_t len, bool initial)
{
	const char *name, *value;
	if (proto_parse_param(body, len, &name, &value) != SHOAL_OK)
		return;
	params_set(&s->params, name, value, initial);
	/* The client changed it (SET) or we applied its value: remember the server's spelling. */
	if (s->client && params_settable(name) &&
	    (s->state == SV_ACTIVE || params_find(&s->client->params, name)))
		params_set(&s->client->params, name, value, false);
}

/* A ParameterStatus (whole) for the client. Held (hold) while its login values are put back
 * after a RESET (txn.c, server_begin_resync): PostgreSQL reports only the value the session
 * ends with, so the client hears a name once, and only if it changed (server_send_held). */
static void server_status_msg(struct server *s, struct client *c, const uint8_t *msg, size_t len,
			      bool hold)
{
	const char *name, *value;
	if (proto_parse_param(msg + 5, len - 5, &name, &value) != SHOAL_OK) {
		buf_append(&c->c.out, msg, len);
		return;
	}
	if (!hold) {
		struct param *told = s->held_status.n ? params_find(&s->held_status, name) : NULL;
		if (told) /* a resync still to come: the client now knows this value */
			params_set(&s->held_status, name, value, false);
		server_param(s, msg + 5, len - 5, false);
		buf_append(&c->c.out, msg, len);
		return;
	}
	if (!params_find(&s->held_status, name)) {
		/* what the client was told: its own value, else the pool's (the server's first) */
		const char *old = params_get(&c->params, name);
		const struct param *sp = old ? NULL : params_find(&s->params, name);
		if (sp)
			old = sp->initial ? sp->initial : sp->value;
		params_set(&s->held_status, name, old ? old : "", false);
	}
	server_param(s, msg + 5, len - 5, false);
}

/* The held ParameterStatus messages go to the client: the names whose value changed. keep: a
 * resync is still to come (requests were pipelined behind the RESET); the names stay held, with
 * what the client has now been told, so that it hears the login value when it is back. */
static void server_send_held(struct server *s, struct client *c, bool keep)
{
	for (int i = 0; i < s->held_status.n; i++) {
		struct param *h = &s->held_status.items[i];
		const char *now = params_get(&s->params, h->name);
		if (!now || strcmp(now, h->value) == 0)
			continue;
		proto_write_param(&c->c.out, h->name, now);
		if (keep)
			params_set(&s->held_status, h->name, now, false);
	}
	if (!keep)
		params_free(&s->held_status);
}

static void server_login_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
{
	const uint8_t *body = msg + 5;
	size_t blen = len - 5;
	struct pq_reader r;
	switch (type) {
	case PQMSG_AUTH: server_handle_auth(s, body, blen); break;
	case PQMSG_PARAMETER_STATUS: server_param(s, body, blen, true); break;
	case PQMSG_BACKEND_KEY:
		pqr_init(&r, body, blen);
		s->be_pid = pqr_u32(&r);
		s->be_key = pqr_u32(&r);
		break;
	case PQMSG_DATA_ROW:
		if (s->check)
			server_check_row(s, body, blen);
		else if (s->role_check)
			server_role_row(s, body, blen);
		break;
	case PQMSG_ERROR: server_login_error(s, msg, len); return;
	case PQMSG_READY: server_login_done(s); return;
	default: break; /* NoticeResponse, NegotiateProtocolVersion */
	}
	if (!s->c.dead)
		server_flush(s);
}

/* ---- setup (on link) and reset (session mode release) ---------------------------------- */

void server_begin_link(struct server *s)
{
	struct client *c = s->client;
	s->resync = false; /* the diff below covers it */
	if (c->aq_running) {
		auth_query_send(s);
		return;
	}
	struct buf sql = {0};
	/* A walsender takes no SET: its startup packet carried the client's parameters. */
	int n = s->pool->repl ? 0 : params_diff_sql(&c->params, &s->params, &sql, true);
	if (n == 0) {
		server_set_state(s, SV_ACTIVE);
		cancel_set_target(c, s);
		client_on_linked(c);
		return;
	}
	buf_append(&sql, "", 1);
	conn_pause(&c->c, true); /* its messages wait in the socket until the setup is done */
	log_debug("%s setup for %s: %s", s->c.name, c->c.name, (const char *)sql.data);
	params_assume_applied(&c->params, &s->params);
	txn_server_reset(s, (const char *)sql.data);
	proto_write_query(&s->c.out, (const char *)sql.data);
	buf_free(&sql);
	s->pending = 1;
	server_flush(s);
}

void server_begin_reset(struct server *s)
{
	server_begin_reset_with(s, config_current()->server_reset_query);
}

void server_begin_reset_with(struct server *s, const char *q)
{
	if (!q || !*q) {
		pool_server_ready(s);
		return;
	}
	txn_server_reset(s, q);
	server_set_state(s, SV_RESET);
	conn_pause(&s->c, false); /* it may have been paused for a slow client */
	/* DISCARD ALL resets every session parameter to its login value. */
	struct param_list none = {0};
	params_assume_applied(&none, &s->params);
	proto_write_query(&s->c.out, q);
	s->pending = 1;
	server_flush(s);
}

static void server_after_ready(struct server *s, struct client *c, char status);
static void server_end_resync(struct server *s, struct client *c);

/* The client's RESET reached a parameter it set at login (txn.c): PostgreSQL would go back to
 * the client's login value, a pooled server goes back to its own. The client's value is put
 * back with the same SET/RESET diff as on link, between the server's ReadyForQuery and the
 * client's: the client gets the new ParameterStatus first, as from PostgreSQL. Its next request
 * waits in its buffer meanwhile (it is routed only to an SV_ACTIVE server). */
static void server_begin_resync(struct server *s)
{
	struct client *c = s->client;
	struct buf sql = {0};
	s->resync = false;
	if (params_diff_sql(&c->params, &s->params, &sql, s->held_ready == 'I') == 0) {
		server_end_resync(s, c);
		return;
	}
	buf_append(&sql, "", 1);
	log_debug("%s resync for %s: %s", s->c.name, c->c.name, (const char *)sql.data);
	params_assume_applied(&c->params, &s->params);
	ps_server_query_sent(s); /* a simple Query drops the unnamed statement */
	server_set_state(s, SV_SETUP);
	proto_write_query(&s->c.out, (const char *)sql.data);
	buf_free(&sql);
	s->pending = 1;
	server_flush(s);
}

/* The held ReadyForQuery goes to the client, then what follows any ReadyForQuery. */
static void server_end_resync(struct server *s, struct client *c)
{
	char status = s->held_ready;
	s->held_ready = 0;
	server_set_state(s, SV_ACTIVE);
	server_send_held(s, c, false);
	proto_write_ready(&c->c.out, status);
	server_after_ready(s, c, status);
	if (!c->c.dead && c->server == s && client_flush(c) == SHOAL_OK)
		client_resume(c);
}

static void server_setup_done(struct server *s)
{
	struct client *c = s->client;
	s->pending = 0;
	if (s->auth_query) {
		auth_query_done(s);
		return;
	}
	if (s->state == SV_RESET && s->connect_query) {
		/* its error is logged; the server is kept, as PgBouncer keeps it */
		s->connect_query = false;
		s->setup_failed = false;
		if (s->ready_status != 'I')
			server_close(s, "connect_query left a transaction open");
		else
			pool_server_ready(s);
		return;
	}
	if (s->state == SV_RESET) {
		if (s->setup_failed)
			server_close(s, "server_reset_query failed");
		else if (s->ready_status != 'I')
			server_close(s, "server_reset_query left a transaction open");
		else
			pool_server_ready(s);
		return;
	}
	if (s->held_ready && !s->setup_failed) {
		server_end_resync(s, c);
		return;
	}
	if (s->setup_failed) {
		pool_unlink(c, s);
		client_close_with(c, s->setup_error.data, s->setup_error.len,
				  "session parameters refused by the server");
		server_close(s, "session parameters refused");
		return;
	}
	server_set_state(s, SV_ACTIVE);
	cancel_set_target(c, s);
	client_on_linked(c);
}

/* The server's error becomes the client's FATAL: it refused the client's startup parameters. */
static void server_keep_setup_error(struct server *s, const uint8_t *msg, size_t len)
{
	struct pq_error e;
	if (proto_parse_error(msg + 5, len - 5, &e) != SHOAL_OK)
		return;
	s->setup_failed = true;
	buf_free(&s->setup_error);
	proto_write_error(&s->setup_error, "FATAL", e.sqlstate ? e.sqlstate : "08P01",
			  e.message ? e.message : "invalid startup parameter");
	log_warn("%s: %s failed: %s", s->c.name,
		 s->connect_query	? "connect_query"
		 : s->state == SV_RESET ? "reset"
					: "setup",
		 e.message ? e.message : "?");
}

/* Messages while no client's traffic flows: login, idle, setup and reset. Whole messages. */
static void server_quiet_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
{
	enum server_state state = s->state; /* an atomic: clang does not switch on one */
	switch (state) {
	case SV_CONNECTING: server_login_msg(s, type, msg, len); return;
	case SV_SETUP:
	case SV_RESET:
		if (type == PQMSG_READY) {
			s->ready_status = (char)msg[5];
			server_setup_done(s);
		} else if (type == PQMSG_ERROR) {
			server_keep_setup_error(s, msg, len);
		} else if (type == PQMSG_PARAMETER_STATUS && s->held_ready) {
			/* a resync: the client hears it with the ReadyForQuery, as after a RESET */
			server_status_msg(s, s->client, msg, len, true);
		} else if (type == PQMSG_PARAMETER_STATUS) {
			server_param(s, msg + 5, len - 5, false);
		} else if (type == PQMSG_DATA_ROW && s->auth_query) {
			auth_query_row(s, msg, len);
		}
		return;
	default: break;
	}
	/* Idle: a parameter change or a notice can arrive; an error is the server going away. */
	if (type == PQMSG_PARAMETER_STATUS) {
		server_param(s, msg + 5, len - 5, false);
	} else if (type == PQMSG_ERROR) {
		struct pq_error e;
		if (proto_parse_error(msg + 5, len - 5, &e) == SHOAL_OK && e.message)
			log_info("%s idle server error: %s", s->c.name, e.message);
	} else if (type != PQMSG_NOTICE && type != PQMSG_NOTIFY) {
		server_close(s, "unexpected message from an idle server");
	}
}

/* ---- linked traffic -------------------------------------------------------------------- */

static void server_stats_ready(struct server *s, struct client *c, char status)
{
	struct pool *p = s->pool;
	usec_t now = shoal_clock();
	struct pool_stats *st = &p->stats[s->c.w->id];
	stats_add(&st->query_count, 1);
	if (c->query_start) {
		stats_add(&st->query_time, (uint64_t)(now - c->query_start));
		hist_observe(&p->hists[s->c.w->id].query, now - c->query_start);
	}
	if (status == 'I') {
		stats_add(&st->xact_count, 1);
		if (s->xact_start) {
			stats_add(&st->xact_time, (uint64_t)(now - s->xact_start));
			hist_observe(&p->hists[s->c.w->id].xact, now - s->xact_start);
		}
		s->xact_start = 0;
	}
	stats_add(&st->bytes_recv, s->c.bytes_out - s->stats_out); /* what clients sent */
	stats_add(&st->bytes_sent, s->c.bytes_in - s->stats_in);
	s->stats_out = s->c.bytes_out;
	s->stats_in = s->c.bytes_in;
	c->query_start = s->pending > 0 ? now : 0;
	c->last_activity = now;
}

/* After a ReadyForQuery reached the client: end of transaction means release (transaction and
 * statement modes) or a refused transaction block (statement mode). */
static void server_after_ready(struct server *s, struct client *c, char status)
{
	int mode = pool_mode_of(s->pool);
	if (s->pending > 0)
		return;
	if (mode == POOL_STATEMENT && status != 'I') {
		client_close(c, "08P01", "transaction blocks not allowed in statement pooling mode");
		return;
	}
	if (s->held_ready) {
		server_begin_resync(s);
		return;
	}
	if (mode != POOL_SESSION && !c->pin_reason && !c->owns_server && server_is_clean(s) &&
	    c->c.fwd_left == 0) {
		if (client_flush(c) != SHOAL_OK)
			return; /* the client is gone; client_close dealt with the server */
		pool_release(s);
		client_resume(c);
	}
}

/* Can a query of Shoal's own go to s now, between two of the client's requests? */
static bool server_can_resync(const struct server *s, const struct client *c, char status)
{
	return s->pending == 0 && status != 'E' && !s->ext_open && !s->copy_in &&
	       c->c.fwd_left == 0 && ps_idle(s);
}

static void server_ready_msg(struct server *s, struct client *c, const uint8_t *msg)
{
	char status = (char)msg[5];
	s->ready_status = status;
	if (s->pending > 0)
		s->pending--;
	s->timeout_cancel = false;
	/* read_your_writes: noted before the client can see the end of its transaction */
	if (status == 'I' && s->hset && c && config_current()->read_your_writes)
		hosts_ryw_note(s->hset, s->pool->user, c->addr);
	txn_server_ready(s, c, status);
	server_stats_ready(s, c, status);
	if (s->held_status.n > 0 && !(s->resync && server_can_resync(s, c, status)))
		server_send_held(s, c, s->resync);
	/* Statement mode refuses the transaction: the client sees the error instead of 'T'. */
	if (pool_mode_of(s->pool) == POOL_STATEMENT && status != 'I' && s->pending == 0)
		return;
	if (s->resync && server_can_resync(s, c, status)) {
		s->held_ready = status; /* sent after the client's login values are back */
		return;
	}
	buf_append(&c->c.out, msg, 6);
}

static void server_error_msg(struct server *s, struct client *c, const uint8_t *msg, size_t len)
{
	struct pq_error e;
	s->copy_in = false; /* an error ends copy-in mode; later CopyData is dropped */
	if (ps_stale_reply(s, &c->c.out))
		return;
	if (proto_parse_error(msg + 5, len - 5, &e) != SHOAL_OK) {
		buf_append(&c->c.out, msg, len);
		return;
	}
	error_stats_count(e.sqlstate, ERR_FROM_SERVER);
	if (e.severity_nl ? strcmp(e.severity_nl, "FATAL") == 0 || strcmp(e.severity_nl, "PANIC") == 0
			  : (e.severity && strcmp(e.severity, "FATAL") == 0))
		s->fatal_seen = true;
	if (s->timeout_cancel && e.sqlstate && strcmp(e.sqlstate, "57014") == 0) {
		proto_write_error(&c->c.out, "ERROR", "57014",
				  "query timeout (canceling statement after query_timeout)");
		return;
	}
	txn_position_out(s, &c->c.out, msg, len);
}

/* COPY FROM STDIN began. PostgreSQL ignores the Syncs that follow the Execute until the copy
 * ends, so they will not be answered: take them off the count of pending requests. */
static void server_copy_in_msg(struct server *s, struct client *c, const uint8_t *msg, size_t len)
{
	s->copy_in = true;
	s->pending -= s->syncs_since_exec < s->pending ? s->syncs_since_exec : s->pending;
	s->syncs_since_exec = 0;
	buf_append(&c->c.out, msg, len);
}

/* A message the server sends whole to the client after inspecting it. */
static void server_active_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
{
	struct client *c = s->client;
	switch (type) {
	case PQMSG_READY: server_ready_msg(s, c, msg); break;
	case PQMSG_ERROR: server_error_msg(s, c, msg, len); break;
	case PQMSG_PARAMETER_STATUS:
		server_status_msg(s, c, msg, len, txn_holds_status(s));
		break;
	case PQMSG_COPY_IN: server_copy_in_msg(s, c, msg, len); break;
	case PQMSG_NOTICE: txn_position_out(s, &c->c.out, msg, len); break;
	case PQMSG_COMMAND_COMPLETE:
		if (txn_server_tag(s, c, msg, len))
			buf_append(&c->c.out, msg, len);
		break;
	default: buf_append(&c->c.out, msg, len); break;
	}
}

static bool server_inspects(const struct server *s, uint8_t type)
{
	if (s->state != SV_ACTIVE)
		return true;
	return type == PQMSG_READY || type == PQMSG_ERROR || type == PQMSG_PARAMETER_STATUS ||
	       type == PQMSG_COPY_IN ||
	       (type == PQMSG_COMMAND_COMPLETE && (s->txn_set || s->swallow || s->restore) &&
		txn_wants_tags(s)) ||
	       (type == PQMSG_NOTICE && s->swallow); /* positions to move back (txn.c) */
}

/* A client message held until a description was known (prepared.c) has been sent on: push it
 * to the server and read the client again. */
static void server_after_held(struct server *s, struct client *c)
{
	if (!ps_take_resume(s))
		return;
	if (conn_flush(&s->c) == SHOAL_ERROR) {
		server_close(s, errno ? strerror(errno) : "send failed");
		return;
	}
	client_resume(c);
}

/* One step over s->c.in: SHOAL_OK to continue, SHOAL_AGAIN to wait for bytes or for the client
 * to drain, SHOAL_ERROR when the server died. */
static shoal_rc server_step(struct server *s)
{
	struct client *c = s->state == SV_ACTIVE ? s->client : NULL;
	if (s->c.fwd_left) {
		if (!conn_forward(&s->c, c ? &c->c : NULL))
			return SHOAL_AGAIN;
		if (c)
			ps_emit(s, c); /* replies Shoal stands in for, due after this one */
		return SHOAL_OK;
	}
	struct pq_header h;
	shoal_rc rc = proto_header(buf_head(&s->c.in), buf_avail(&s->c.in), &h);
	if (rc == SHOAL_AGAIN)
		return SHOAL_AGAIN;
	if (rc == SHOAL_ERROR || h.len > proto_server_msg_cap(h.type) ||
	    (h.type == PQMSG_READY && h.len != 5)) {
		server_close(s, "invalid message length from server");
		return SHOAL_ERROR;
	}
	/* Replies to injected messages are seen whole to drop them (and read descriptions). */
	bool swallowable = c && s->ps && ps_may_want_whole(h.type) && ps_wants_whole(s, h.type);
	if (!server_inspects(s, h.type) && !swallowable) {
		/* A DataRow moves no reply queue and is no error: nothing to note, nothing due. */
		bool row = h.type == PQMSG_DATA_ROW;
		if (c && !row && !txn_server_msg(s, h.type, NULL, 0))
			return SHOAL_ERROR; /* closed: replies out of step */
		conn_start_forward(&s->c, h.type, h.len);
		if (!conn_forward(&s->c, c ? &c->c : NULL))
			return SHOAL_AGAIN; /* the rest of it has not arrived */
		if (c && !row)
			ps_emit(s, c);
		return SHOAL_OK;
	}
	size_t total = (size_t)h.len + 1;
	if (buf_avail(&s->c.in) < total)
		return SHOAL_AGAIN; /* the buffer grows with the bytes that arrive */
	const uint8_t *msg = buf_head(&s->c.in);
	if (c && !txn_server_msg(s, h.type, msg, total)) {
		if (s->c.dead)
			return SHOAL_ERROR;
		buf_consume(&s->c.in, total); /* the reply to a message Shoal injected */
		ps_emit(s, c);
		server_after_held(s, c);
		return s->c.dead ? SHOAL_ERROR : SHOAL_OK;
	}
	if (c) {
		char status = h.type == PQMSG_READY ? (char)msg[5] : 0;
		server_active_msg(s, h.type, msg, total);
		buf_consume(&s->c.in, total);
		ps_emit(s, c);
		server_after_held(s, c);
		if (h.type == PQMSG_READY)
			server_after_ready(s, c, status);
	} else {
		/* Copied and consumed first: the handler may finish a login or a setup and hand the
		 * server on, and a server is clean only with nothing left unread. */
		uint8_t small[512];
		uint8_t *copy = total <= sizeof(small) ? small : xmalloc(total);
		memcpy(copy, msg, total);
		buf_consume(&s->c.in, total);
		server_quiet_msg(s, h.type, copy, total);
		if (copy != small)
			free(copy);
	}
	return s->c.dead ? SHOAL_ERROR : SHOAL_OK;
}

/* Send what is queued for the client. False when it cannot take more now (the server is paused
 * until the client drains: backpressure) or when either side died. */
static bool server_push(struct server *s, struct client *c)
{
	if (buf_avail(&c->c.out) == 0)
		return true;
	if (client_flush(c) != SHOAL_OK || s->c.dead)
		return false;
	if (buf_avail(&c->c.out) <= CONN_HIGH_WATER)
		return true;
	if (s->client == c)
		conn_pause(&s->c, true); /* resumed by the client's EPOLLOUT */
	return false;
}

static void server_process(struct server *s)
{
	struct client *c = NULL;
	while (!s->c.dead && buf_avail(&s->c.in) > 0) {
		c = s->state == SV_ACTIVE ? s->client : NULL;
		if (c && buf_avail(&c->c.out) > CONN_HIGH_WATER && !server_push(s, c))
			return;
		if (server_step(s) != SHOAL_OK)
			break;
	}
	if (c && !c->c.dead)
		(void)server_push(s, c);
}

void server_resume(struct server *s)
{
	if (s->c.dead)
		return;
	conn_pause(&s->c, false);
	server_process(s);
}

void server_link_settle(struct server *s)
{
	struct client *c = s->client;
	if (c && !c->c.dead)
		client_budget_account(c);
	if (!c || s->c.dead || c->c.dead || s->state != SV_ACTIVE || c->state != CL_LINKED)
		return;
	if (s->c.paused && buf_avail(&c->c.out) <= CONN_HIGH_WATER)
		server_resume(s);
	/* (A client whose message is held stays paused: server_after_held resumes it.) */
	if (!c->c.dead && c->server == s && s->state == SV_ACTIVE && c->c.paused &&
	    !txn_holding(s) &&
	    buf_avail(&s->c.out) <= CONN_HIGH_WATER && buf_avail(&c->c.out) <= CONN_HIGH_WATER)
		client_resume(c);
}
