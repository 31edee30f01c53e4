/* server_login.c: a server's login: authentication (cleartext, md5, SCRAM-SHA-256 with
 * pass-through keys), refusals passed to waiting clients, the target_session_attrs role check,
 * connect_query, and the pool's welcome parameters. */
#include "server.h"
#include "server_int.h"
#include "auth.h"
#include "hosts.h"
#include "log.h"
#include "params.h"
#include "pool.h"
#include "proto.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

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

void server_login_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
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
