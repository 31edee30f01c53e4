/* client_login.c: a client's login: the startup packet (after SSLRequest), its parameters,
 * authentication (trust, peer, cert, cleartext, md5, SCRAM, hba, auth_query), the welcome, and
 * the login check a server makes of its parameters. */
#include "client.h"
#include "client_int.h"
#include "auth.h"
#include "auth_query.h"
#include "cancel.h"
#include "client_admit.h"
#include "client_hba.h"
#include "client_sasl.h"
#include "client_tls.h"
#include "door.h"
#include "login_defaults.h"
#include "log.h"
#include "params.h"
#include "pause.h"
#include "pool.h"
#include "proto.h"
#include "server.h"
#include "stats.h"
#include "throttle.h"
#include "tls.h"
#include "welcome.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a client is in its login (c->auth_step). */
enum client_auth_step {
	AUTH_STEP_START = 0, /* reading the startup packet */
	AUTH_STEP_PASSWORD,  /* cleartext or md5 password requested */
	AUTH_STEP_DONE,	     /* authenticated, waiting for the login to finish */
	AUTH_STEP_SASL,	     /* SCRAM exchange in progress (c->scram) */
};

static const struct client_console *the_console; /* admin/'s, set once before workers start */

static shoal_rc client_startup_packet(struct client *c, const struct startup_msg *m, uint32_t len);

void client_set_console(const struct client_console *console)
{
	the_console = console;
}

bool client_is_console_db(const char *dbname)
{
	return the_console && the_console->is_console_db(dbname);
}

/* Has c sent its startup packet (client_startup_timeout)? */
bool client_started(const struct client *c)
{
	return c->auth_step != AUTH_STEP_START || c->user != NULL;
}

/* AuthenticationOk, the server's parameters (the client's own values where it set them), the
 * cancel key, ReadyForQuery. cache: the pool's encoded welcome when server_params is its set. */
static void client_write_welcome(struct client *c, const struct param_list *server_params,
				 struct welcome_block **cache)
{
	struct buf *o = &c->c.out;
	welcome_write(o, cache, server_params, &c->params);
	proto_write_backend_key(o, c->cancel_pid, cancel_key_of(c), c->cancel_key_len);
	proto_write_ready(o, 'I');
}

/* A login completed: logged, and counted for SHOW STATS (client_login_count); the health
 * probe's logins are neither. */
static void client_log_login(struct client *c)
{
	if (!c->internal)
		stats_add(&c->pool->stats[c->c.w->id].client_login_count, 1);
	enum log_level lvl = config_current()->log_connections && !c->internal ? LOG_INFO : LOG_DEBUG;
	if (!log_enabled(lvl))
		return;
	char tls[96] = "";
	if (c->c.tls) { /* PgBouncer's "tls=TLSv1.3/TLS_AES_256_GCM_SHA384" */
		str_copy(tls, sizeof(tls), " tls=");
		tls_describe(&c->c, tls + 5, sizeof(tls) - 5);
	}
	log_msg(lvl, "%s login ok (pool %s@%s, %s mode, worker %d)%s", c->c.name, c->pool->user,
		c->pool->name, config_pool_mode_name(pool_mode_of(c->pool)), c->c.w->id, tls);
}

/* Must a server see this client's startup parameters before the login can be confirmed? Yes
 * when a value may be refused (anything but application_name that differs from the pool's
 * defaults), so that a bad value fails the login as it would on PostgreSQL. */
static bool client_needs_check(struct client *c, struct pool *p)
{
	if (!p->has_welcome || pool_mode_of(p) == POOL_SESSION)
		return true;
	for (int i = 0; i < c->params.n; i++) {
		const struct param *cp = &c->params.items[i];
		if (strcasecmp(cp->name, "application_name") == 0)
			continue;
		const struct param *w = params_find_like(&p->welcome, cp);
		if (!w || strcmp(w->value, cp->value) != 0)
			return true;
	}
	return false;
}

/* The stored secret: auth_file's, else what auth_query found (NULL: unknown user). */
static const char *client_secret(const struct client *c)
{
	const char *s = config_find_secret(config_current(), c->user);
	return s ? s : c->aq_secret;
}

static void client_login_ready(struct client *c)
{
	const struct config *cfg = config_current();
	door_login_end(c);
	if (!c->internal && !door_join(c, c->admin)) {
		client_close(c, "53300", "no more connections allowed (max_client_conn)");
		return;
	}
	if (!client_admit(c))
		return; /* a client-count limit is full: closed */
	if (c->ops) {
		c->ops->login_ok(c);
		return;
	}
	if (!c->db) { /* authenticated: now it may learn that the database does not exist */
		char msg[200];
		snprintf(msg, sizeof(msg), "no such database: %s", c->dbname);
		client_close(c, "3D000", msg);
		return;
	}
	if (cancel_register(c) != SHOAL_OK) {
		client_close(c, "53000", "cannot generate a cancel key");
		return;
	}
	struct pool *p = pool_get(cfg, c->db, c->dbname, c->user, c->repl);
	if (!p) {
		client_close(c, "53400", POOL_MAX_MSG);
		return;
	}
	c->pool = p;
	if (!c->internal || c->db->user) /* a forced user=: the configuration's own pool */
		pool_show(p);
	auth_query_share_secret(c, p);
	if (c->scram) /* a SCRAM login's keys (the secret is looked up only then) */
		client_sasl_share_keys(c, p, client_secret(c));
	client_sasl_end(c);
	login_apply_db_defaults(&c->params, c->db);
	c->db = NULL; /* it points into this login's configuration, which a later reload may free */
	params_copy(&c->login, &c->params); /* what RESET goes back to (txn.c) */
	client_app_name_set(c);
	pool_lock(p);
	p->n_clients++;
	bool check = client_needs_check(c, p);
	if (!check) /* formatted from the pool's list under its lock: no copy of the list */
		client_write_welcome(c, &p->welcome, &p->welcome_block);
	pool_unlock(p);
	if (check) {
		c->needs_login_check = true; /* pool_acquire queues it as CL_WAIT_LOGIN */
		pool_acquire(c);
		return;
	}
	client_log_login(c);
	client_set_state(c, CL_IDLE);
	if (client_flush(c) == SHOAL_OK)
		client_process(c);
}

static void client_auth_failed(struct client *c)
{
	char msg[200];
	snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"", c->user);
	if (throttle_log_failure())
		log_warn("%s: %s", c->c.name, msg);
	else
		c->quiet_close = true; /* counted in throttle_tick's line */
	throttle_failed(c);
	client_close(c, "28P01", msg);
}

static void client_ask_password(struct client *c, int auth_type)
{
	c->auth_method = (uint8_t)auth_type;
	if (auth_type == AUTH_MD5) {
		if (auth_random(c->md5_salt, 4) != SHOAL_OK) {
			client_close(c, "53000", "cannot generate a salt");
			return;
		}
		proto_write_auth(&c->c.out, PQAUTH_MD5, c->md5_salt, 4);
	} else {
		proto_write_auth(&c->c.out, PQAUTH_CLEARTEXT, NULL, 0);
	}
	c->auth_step = AUTH_STEP_PASSWORD;
	if (client_flush(c) != SHOAL_OK)
		return; /* closed */
}

static void client_ask_scram(struct client *c, const char *secret)
{
	if (client_sasl_begin(c, secret) != SHOAL_OK) {
		client_close(c, "53000", "cannot start SCRAM authentication");
		return;
	}
	c->auth_step = AUTH_STEP_SASL;
	if (client_flush(c) != SHOAL_OK)
		return; /* closed */
}

/* Methods that need no password: the OS user (peer) or the TLS client certificate (cert). */
static void client_auth_no_password(struct client *c, bool ok, const char *method)
{
	char msg[200];
	if (ok) {
		client_login_ready(c);
		return;
	}
	snprintf(msg, sizeof(msg), "%s authentication failed for user \"%s\"", method, c->user);
	log_warn("%s: %s", c->c.name, msg);
	client_close(c, "28000", msg);
}

/* auth_type = hba: the first matching auth_hba_file rule picks the method. */
static void client_start_hba(struct client *c, const char *secret)
{
	char msg[400];
	switch (client_hba_method(c, msg, sizeof(msg))) {
	case HBA_TRUST:
		client_login_ready(c);
		return;
	case HBA_MD5:
		if (secret && auth_secret_is_scram(secret))
			client_ask_scram(c, secret);
		else
			client_ask_password(c, AUTH_MD5);
		return;
	case HBA_SCRAM:
		client_ask_scram(c, secret);
		return;
	case HBA_PASSWORD:
		client_ask_password(c, AUTH_PLAIN);
		return;
	case HBA_PEER:
		client_auth_no_password(c, client_peer_ok(c), "Peer");
		return;
	case HBA_CERT:
		client_auth_no_password(c, client_cert_ok(c), "certificate");
		return;
	case HBA_REJECT:
	case HBA_NO_MATCH:
		break;
	}
	log_warn("%s: %s", c->c.name, msg);
	client_close(c, "28000", msg);
}

static void client_start_auth(struct client *c)
{
	const struct config *cfg = config_current();
	int type = cfg->auth_type;
	if (c->internal) {
		/* the health probe, over a socketpair made in this process */
		client_login_ready(c);
		return;
	}
	/* Users not in auth_file may be looked up with auth_query first (asynchronously). */
	if (type != AUTH_TRUST && type != AUTH_ANY && type != AUTH_CERT && auth_query_wanted(c) &&
	    auth_query_start(c) != SHOAL_OK)
		return; /* started (resumes later), or refused and closed */
	switch (type) { /* the secret is looked up only by the methods that use it */
	case AUTH_TRUST:
	case AUTH_ANY:
		client_login_ready(c);
		return;
	case AUTH_HBA:
		client_start_hba(c, client_secret(c));
		return;
	case AUTH_CERT:
		client_auth_no_password(c, client_cert_ok(c), "certificate");
		return;
	case AUTH_MD5: {
		/* As PgBouncer: a stored SCRAM secret can only be checked by SCRAM. */
		const char *secret = client_secret(c);
		if (secret && auth_secret_is_scram(secret))
			client_ask_scram(c, secret);
		else
			client_ask_password(c, type);
		return;
	}
	case AUTH_PLAIN:
		client_ask_password(c, type);
		return;
	case AUTH_SCRAM:
		client_ask_scram(c, client_secret(c));
		return;
	default: {
		char msg[128];
		snprintf(msg, sizeof(msg), "auth_type %s is not supported yet",
			 config_auth_type_name(type));
		client_close(c, "28000", msg);
	}
	}
}

static void client_check_password(struct client *c, const uint8_t *body, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, body, len);
	const char *pw = pqr_cstr(&r);
	if (!pw || r.pos != len) {
		client_close(c, "08P01", "invalid packet: malformed password message");
		return;
	}
	const char *secret = client_secret(c);
	bool ok = c->auth_method == AUTH_MD5 ? auth_check_md5(secret, c->user, c->md5_salt, pw)
					     : auth_check_plain(secret, c->user, pw);
	if (!ok) {
		client_auth_failed(c);
		return;
	}
	c->auth_step = AUTH_STEP_DONE;
	client_login_ready(c);
}

static void client_sasl_message(struct client *c, const uint8_t *body, size_t len)
{
	const char *err = NULL;
	switch (client_sasl_step(c, body, len, &err)) {
	case SASL_CONTINUE:
		if (client_flush(c) != SHOAL_OK)
			log_debug("%s: closed while sending a SCRAM challenge", c->c.name);
		return;
	case SASL_FAILED:
		client_auth_failed(c);
		return;
	case SASL_MALFORMED: {
		char msg[200];
		snprintf(msg, sizeof(msg), "%s", err ? err : "malformed SCRAM message");
		log_warn("%s: SCRAM: %s", c->c.name, msg);
		client_close(c, "08P01", msg);
		return;
	}
	case SASL_SUCCESS:
		c->auth_step = AUTH_STEP_DONE;
		client_login_ready(c);
		return;
	}
}

static bool is_false(const char *v)
{
	return !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcasecmp(v, "no") ||
	       !strcmp(v, "0");
}

/* replication=: "" for none, "true" (physical) or "database" (logical), NULL when invalid. */
static const char *client_repl_kind(const char *v)
{
	if (is_false(v))
		return "";
	if (!strcasecmp(v, "database"))
		return "database";
	if (!strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
	    !strcmp(v, "1"))
		return "true";
	return NULL;
}

/* ignore_startup_parameters: dropped, as PgBouncer drops them (not carried to servers). */
static void client_drop_ignored(struct client *c)
{
	const char *list = config_current()->ignore_startup_parameters;
	for (int i = c->params.n - 1; list && *list && i >= 0; i--)
		if (config_user_in_list(list, c->params.items[i].name))
			params_remove(&c->params, c->params.items[i].name);
}

/* Startup parameters: identity, options, and session settings to carry to servers. Returns an
 * error message for the client (sqlstate in *state), or NULL. */
static const char *client_take_params(struct client *c, const struct startup_msg *m,
				      const char **state, const char **unknown, int *nunknown)
{
	for (int i = 0; i < m->nparams; i++) {
		const char *k = m->params[i].name, *v = m->params[i].value;
		char k0 = k[0]; /* compared first: most names are none of these */
		if (k0 == 'u' && !strcmp(k, "user")) {
			client_name_set(&c->user, c->user_buf, v);
		} else if (k0 == 'd' && !strcmp(k, "database")) {
			client_name_set(&c->dbname, c->dbname_buf, v);
		} else if (k0 == 'r' && !strcmp(k, "replication")) {
			const char *r = client_repl_kind(v);
			if (!r) {
				*state = "22023";
				return "invalid value for parameter \"replication\"";
			}
			free(c->repl);
			c->repl = *r ? xstrdup(r) : NULL;
		} else if (k0 == 'o' && !strcmp(k, "options")) {
			if (params_parse_options(v, &c->params) != SHOAL_OK) {
				*state = "42601";
				return "invalid command-line argument in startup option "
				       "\"options\"";
			}
		} else if (k0 == '_' && !strncmp(k, "_pq_.", 5)) {
			unknown[(*nunknown)++] = k;
		} else if (params_valid_name(k)) {
			params_set(&c->params, k, v, false);
		} else {
			*state = "42704";
			return "unrecognized configuration parameter in startup packet";
		}
	}
	client_drop_ignored(c);
	if (params_find(&c->params, "role") || params_find(&c->params, "session_authorization")) {
		/* A pooled server would keep the identity for the next client. */
		*state = "0A000";
		return "startup parameters \"role\" and \"session_authorization\" are not "
		       "supported "
		       "by Shoal";
	}
	if (!c->user || !*c->user) {
		*state = "28000";
		return "no PostgreSQL user name specified in startup packet";
	}
	if (!c->dbname || !*c->dbname)
		client_name_set(&c->dbname, c->dbname_buf, c->user);
	return NULL;
}

/* " user@db" after the name's "C-<id> <peer>", cut to fit (it is for log lines). */
static void client_name_add_login(struct client *c)
{
	char *name = c->c.name;
	size_t cap = sizeof(c->c.name), n = strlen(name);
	size_t ul = strlen(c->user), dl = strlen(c->dbname);
	if (n + ul + dl + 2 >= cap) {
		n = str_cat(name, cap, n, " ");
		n = str_cat(name, cap, n, c->user);
		n = str_cat(name, cap, n, "@");
		str_cat(name, cap, n, c->dbname);
		return;
	}
	name[n++] = ' ';
	memcpy(name + n, c->user, ul);
	n += ul;
	name[n++] = '@';
	memcpy(name + n, c->dbname, dl + 1);
}

static void client_startup(struct client *c, const struct startup_msg *m)
{
	const char *state = NULL, *unknown[PQ_MAX_STARTUP_PARAMS];
	int nunknown = 0;
	const char *err = client_take_params(c, m, &state, unknown, &nunknown);
	if (err) {
		client_close(c, state, err);
		return;
	}
	/* 3.2 (PostgreSQL 18) brings long cancel keys; a newer minor or protocol options get
	 * NegotiateProtocolVersion with what we speak, as PostgreSQL 18 does: the newest minor
	 * we know when a newer one was asked, else the one asked. */
	uint32_t minor = m->code & 0xffff;
	c->proto_minor = (minor > PQ_LATEST_MINOR ? PQ_LATEST_MINOR : minor);
	if (minor > PQ_LATEST_MINOR || nunknown > 0)
		proto_write_negotiate(&c->c.out, c->proto_minor, unknown, nunknown);
	client_name_add_login(c);
	const struct config *cfg = config_current();
	if (client_tls_required(c)) {
		client_close(c, "28000", "SSL required");
		return;
	}
	/* Clients still logging in do not count against max_client_conn (max_login_clients
	 * bounds them): slow ones cannot lock out logged-in clients, nor the console, which has
	 * admin_reserved_conn slots of its own. Checked again when the login ends. */
	bool console = client_is_console_db(c->dbname);
	if (!c->internal && !door_fits(console)) { /* probes take no slot */
		client_close(c, "53300", "no more connections allowed (max_client_conn)");
		return;
	}
	int wait;
	if (throttle_blocked(c, &wait)) { /* logged once when it began (throttle.c) */
		char msg[160];
		snprintf(msg, sizeof(msg), "too many failed logins from %s: try again in %d s "
			 "(auth_failure_limit)", c->addr, wait);
		c->quiet_close = true;
		client_close(c, "28000", msg);
		return;
	}
	/* Shutting down, the Unix socket still takes console logins (PgBouncer 1.25); a TCP
	 * client taken from the backlog as the listener closed is served (WAIT_FOR_CLIENTS). */
	if ((pause_shutdown() || (c->c.w->draining && c->is_unix)) && !(console && c->is_unix)) {
		client_close(c, "57P01", "pooler is shutting down");
		return;
	}
	if (console) {
		shoal_rc rc = the_console->startup(c);
		if (rc == SHOAL_OK)
			client_start_auth(c);
		else if (rc == SHOAL_AGAIN)
			client_login_ready(c); /* the pooler's own user: counted, then admitted */
		return;
	}
	if (pause_is_disabled(c->dbname)) {
		char msg[200]; /* PgBouncer's text */
		snprintf(msg, sizeof(msg), "database \"%s\" is disabled", c->dbname);
		client_close(c, "08P01", msg);
		return;
	}
	/* An unknown database (c->db NULL) is refused only once the client has authenticated
	 * (client_login_ready), as PgBouncer does: answering first would tell anyone which
	 * databases exist. Its auth exchange runs against the user's secret, or a mock one. */
	c->db = config_find_db(cfg, c->dbname);
	client_start_auth(c);
}

/* A Terminate instead of a startup packet: a driver that connects and gives up at once.
 * PostgreSQL closes without a word (a bad startup length is only logged there), so Shoal does
 * too rather than answer with an error the driver would surface. */
static shoal_rc client_terminate_first(struct client *c)
{
	static const uint8_t terminate[5] = {PQMSG_TERMINATE, 0, 0, 0, 4};
	if (buf_avail(&c->c.in) < sizeof(terminate))
		return SHOAL_AGAIN;
	if (memcmp(buf_head(&c->c.in), terminate, sizeof(terminate)) == 0)
		client_close(c, NULL, "client closed the connection");
	else
		client_close(c, "08P01", "invalid packet: bad startup packet length");
	return SHOAL_ERROR;
}

/* Before login: the startup packet (possibly after SSLRequest/GSSENCRequest), then passwords. */
shoal_rc client_login_step(struct client *c)
{
	struct buf *in = &c->c.in;
	if (c->auth_step == AUTH_STEP_PASSWORD || c->auth_step == AUTH_STEP_SASL) {
		struct pq_header h;
		shoal_rc rc = proto_header(buf_head(in), buf_avail(in), &h);
		if (rc == SHOAL_AGAIN)
			return SHOAL_AGAIN;
		if (rc == SHOAL_ERROR || h.type != PQMSG_PASSWORD || h.len > 4096) {
			client_close(c, "08P01", "invalid packet: expected a password message");
			return SHOAL_ERROR;
		}
		if (buf_avail(in) < (size_t)h.len + 1)
			return SHOAL_AGAIN;
		/* Copied and consumed first: a good password finishes the login at once, and what
		 * follows the password message is read as the client's first query. */
		uint8_t body[4096];
		size_t blen = h.len - 4;
		memcpy(body, buf_head(in) + 5, blen);
		buf_consume(in, (size_t)h.len + 1);
		if (c->auth_step == AUTH_STEP_SASL)
			client_sasl_message(c, body, blen);
		else
			client_check_password(c, body, blen);
		explicit_bzero(body, blen);
		return c->c.dead ? SHOAL_ERROR : SHOAL_OK;
	}
	if (c->auth_step != AUTH_STEP_START)
		return SHOAL_AGAIN; /* authenticated, waiting for the login to finish */
	if (buf_avail(in) < 1)
		return SHOAL_AGAIN;
	if (client_tls_gate(c) != SHOAL_OK)
		return c->c.dead ? SHOAL_ERROR : SHOAL_AGAIN;
	if (buf_avail(in) < 4)
		return SHOAL_AGAIN;
	const uint8_t *p = buf_head(in);
	if (p[0] == PQMSG_TERMINATE)
		return client_terminate_first(c);
	uint32_t len =
	    ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
	if (len < 8 || len > PQ_MAX_STARTUP) {
		client_close(c, "08P01", "invalid packet: bad startup packet length");
		return SHOAL_ERROR;
	}
	if (buf_avail(in) < len)
		return SHOAL_AGAIN;
	struct startup_msg m;
	proto_parse_startup(p, len, &m);
	return client_startup_packet(c, &m, len);
}

static shoal_rc client_startup_packet(struct client *c, const struct startup_msg *m, uint32_t len)
{
	switch (m->kind) {
	case STARTUP_SSL:
		if (client_tls_offered(c))
			return client_start_tls(c, len);
		/* fallthrough */
	case STARTUP_GSSENC:
		if (c->c.tls) {
			client_close(c, "08P01", "invalid packet: encryption requested twice");
			return SHOAL_ERROR;
		}
		/* No TLS here or no GSS at all: 'N' tells the client to go on in plaintext. */
		buf_consume(&c->c.in, len);
		buf_append(&c->c.out, "N", 1);
		return client_flush(c);
	case STARTUP_CANCEL:
		cancel_handle(c, m->cancel_pid, m->cancel_key, m->cancel_key_len);
		client_close(c, NULL, "cancel request handled");
		return SHOAL_ERROR;
	case STARTUP_NORMAL:
		/* Consumed first: login may finish at once and read what follows. The strings in m
		 * stay readable: consuming moves offsets, and nothing is read into the buffer
		 * before client_startup has copied them. */
		buf_consume(&c->c.in, len);
		client_startup(c, m);
		return c->c.dead ? SHOAL_ERROR : SHOAL_OK;
	default: {
		char msg[160];
		snprintf(msg, sizeof(msg), "invalid packet: %s",
			 m->error ? m->error : "bad startup");
		client_close(c, "08P01", msg);
		return SHOAL_ERROR;
	}
	}
}

/* Session mode: the client owns s for its whole life, so it is told s's real pid, as a direct
 * connection would be (pg_terminate_backend, pg_stat_activity.pid, pg_locks.pid all match it).
 * The cancel key stays Shoal's: a CancelRequest still comes here. The client keeps s even if a
 * reload turns its pool to transaction mode (server_after_ready), or its pid would name
 * another client's backend. */
static void client_take_server_pid(struct client *c, struct server *s)
{
	cancel_use_pid(c, s->be_pid);
	c->owns_server = c->cancel_pid == s->be_pid;
}

void client_on_linked(struct client *c)
{
	struct server *s = c->server;
	if (c->needs_login_check) {
		c->needs_login_check = false;
		if (pool_mode_of(c->pool) == POOL_SESSION)
			client_take_server_pid(c, s);
		client_write_welcome(c, &s->params, NULL);
		client_log_login(c);
		if (client_flush(c) != SHOAL_OK)
			return;
		if (pool_mode_of(c->pool) != POOL_SESSION && server_is_clean(s)) {
			pool_release(s);
			client_resume(c);
			return;
		}
	}
	client_resume(c);
}

void client_auth_resume(struct client *c)
{
	if (c->c.dead)
		return;
	conn_pause(&c->c, false);
	client_start_auth(c);
}
