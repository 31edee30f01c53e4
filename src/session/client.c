/* client.c: client connections: startup, authentication, welcome, routing, death. */
#include "client.h"
#include "auth.h"
#include "auth_query.h"
#include "cancel.h"
#include "client_admit.h"
#include "client_budget.h"
#include "client_hba.h"
#include "client_sasl.h"
#include "client_tls.h"
#include "door.h"
#include "error_stats.h"
#include "log.h"
#include "net.h"
#include "params.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "pause.h"
#include "server.h"
#include "stats.h"
#include "throttle.h"
#include "tls.h"
#include "txn.h"
#include "worker.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Where a client is in its login (c->auth_step). */
enum client_auth_step {
	AUTH_STEP_START = 0, /* reading the startup packet */
	AUTH_STEP_PASSWORD,  /* cleartext or md5 password requested */
	AUTH_STEP_DONE,	     /* authenticated, waiting for the login to finish */
	AUTH_STEP_SASL,	     /* SCRAM exchange in progress (c->scram) */
};

static atomic_uint_fast64_t next_client_id = 1;
static atomic_int total_clients;
static const struct client_console *the_console; /* admin/'s, set once before workers start */

static void client_event(struct loop_fd *lfd, uint32_t events);
static void client_read(struct client *c);
static void client_process(struct client *c);
static shoal_rc client_startup_packet(struct client *c, const struct startup_msg *m, uint32_t len);

int client_count(void)
{
	return atomic_load(&total_clients);
}

void client_set_console(const struct client_console *console)
{
	the_console = console;
}

bool client_is_console_db(const char *dbname)
{
	return the_console && the_console->is_console_db(dbname);
}

static struct client *client_new(struct worker *w, int fd, const struct sockaddr_storage *addr)
{
	struct client *c = xcalloc(1, sizeof(*c));
	char peer[80];
	c->c.w = w;
	c->c.loop = w->loop;
	c->c.lfd.fd = fd;
	c->c.lfd.cb = client_event;
	c->id = atomic_fetch_add(&next_client_id, 1);
	list_init(&c->node);
	c->connect_time = c->last_activity = shoal_now();
	net_peer_name(addr, peer, sizeof(peer));
	net_addr_info(fd, addr, c->addr, sizeof(c->addr), &c->port, c->local_addr,
		      sizeof(c->local_addr), &c->local_port);
	c->unix_peer = addr->ss_family == AF_UNIX;
	char id[21];
	u64_put(id, c->id);
	size_t n = str_cat(c->c.name, sizeof(c->c.name), 0, "C-"); /* "C-<id> <peer>" */
	n = str_cat(c->c.name, sizeof(c->c.name), n, id);
	n = str_cat(c->c.name, sizeof(c->c.name), n, " ");
	str_cat(c->c.name, sizeof(c->c.name), n, peer);
	c->is_unix = addr->ss_family == AF_UNIX;
	if (addr->ss_family != AF_UNIX)
		client_tcp_opts(fd);
	atomic_fetch_add(&total_clients, 1);
	w->n_clients++;
	client_set_state(c, CL_LOGIN);
	if (loop_add(w->loop, &c->c.lfd, EPOLLIN) != SHOAL_OK) {
		client_close(c, NULL, "epoll registration failed");
		return NULL;
	}
	log_debug("%s connected", c->c.name);
	return c;
}

void client_tcp_opts(int fd)
{
	const struct config *cfg = config_current();
	struct net_tcp_opts o = {.keepalive = cfg->tcp_keepalive,
				 .keepcnt = cfg->tcp_keepcnt,
				 .keepidle = cfg->tcp_keepidle,
				 .keepintvl = cfg->tcp_keepintvl,
				 .user_timeout = cfg->tcp_user_timeout};
	net_set_tcp_opts(fd, &o);
}

struct client *client_accept(struct worker *w, int fd, const struct sockaddr_storage *addr)
{
	bool room = door_room(w);
	struct client *c = client_new(w, fd, addr);
	if (!c)
		return NULL;
	door_login_begin(c);
	if (!room) {
		door_refuse(c);
		return NULL;
	}
	return c;
}

/* Has c sent its startup packet (client_startup_timeout)? */
bool client_started(const struct client *c)
{
	return c->auth_step != AUTH_STEP_START || c->user != NULL;
}

void client_accept_internal(struct worker *w, int fd)
{
	struct sockaddr_storage addr = {.ss_family = AF_UNIX};
	struct client *c = client_new(w, fd, &addr);
	if (!c)
		return;
	c->internal = true;
	atomic_fetch_sub(&total_clients, 1); /* probes never take a slot of max_client_conn */
	snprintf(c->c.name, sizeof(c->c.name), "C-%llu health-probe", (unsigned long long)c->id);
}

void client_free(struct client *c)
{
	params_free(&c->params);
	params_free(&c->login);
	client_sasl_end(c);
	if (c->aq_secret)
		explicit_bzero(c->aq_secret, strlen(c->aq_secret));
	free(c->aq_secret);
	txn_client_free(c);
	free(c->user);
	free(c->dbname);
	free(c->repl);
	free(c);
}

shoal_rc client_flush(struct client *c)
{
	if (c->c.dead)
		return SHOAL_ERROR;
	if (conn_flush(&c->c) == SHOAL_ERROR) {
		client_close(c, NULL, errno ? strerror(errno) : "send failed");
		return SHOAL_ERROR;
	}
	buf_shed(&c->c.out);
	return SHOAL_OK;
}

/* A linked server outlives its client only if it is between transactions. */
static void client_let_go_of_server(struct client *c)
{
	struct server *s = c->server;
	if (!s)
		return;
	pool_unlink(c, s);
	cancel_set_target(c, NULL);
	bool clean = s->state == SV_ACTIVE && server_is_clean(s) && c->c.fwd_left == 0;
	if (s->pool->repl)
		server_close(s, "replication client disconnected"); /* never reused */
	else if (!clean)
		server_close(s, s->state == SV_SETUP ? "client left during setup"
						     : "client disconnected inside a transaction");
	else if (c->pin_reason)
		server_begin_reset_with(s, "DISCARD ALL"); /* whatever it left on its server */
	else if (pool_mode_of(s->pool) == POOL_SESSION || c->owns_server ||
		 config_current()->server_reset_query_always)
		server_begin_reset(s);
	else
		pool_server_ready(s);
}

static void client_close_common(struct client *c, const char *reason)
{
	struct worker *w = c->c.w;
	bool quiet = !reason || strcmp(reason, "client closed the connection") == 0 ||
		     !config_current()->log_disconnections || door_quiet(c, reason);
	door_leave(c);
	log_msg(quiet ? LOG_DEBUG : LOG_INFO, "%s closing because: %s", c->c.name,
		reason ? reason : "done");
	if (buf_avail(&c->c.out) > 0 && conn_flush(&c->c) != SHOAL_OK)
		log_debug("%s: could not send the last bytes", c->c.name);
	c->c.dead = true; /* before the server is let go: nothing may route to this client */
	door_login_end(c);
	client_let_go_of_server(c);
	client_admit_release(c);
	if (c->ops)
		c->ops->gone(c);
	else
		pool_client_gone(c);
	cancel_unregister(c);
	conn_close(&c->c);
	client_budget_forget(c);
	list_append(&w->dead_clients, &c->node);
	if (!c->internal)
		atomic_fetch_sub(&total_clients, 1);
	w->n_clients--;
}

void client_close(struct client *c, const char *sqlstate, const char *msg)
{
	if (c->c.dead)
		return;
	struct server *s = c->server;
	if (s && s->state == SV_ACTIVE && s->c.fwd_left > 0)
		sqlstate = NULL; /* a server message is half forwarded: no error inside it */
	if (sqlstate) {
		c->c.paused = false;
		error_stats_count(sqlstate, ERR_FROM_POOLER);
		proto_write_error(&c->c.out, "FATAL", sqlstate, msg);
	}
	client_close_common(c, msg);
}

void client_close_with(struct client *c, const uint8_t *errmsg, size_t len, const char *reason)
{
	if (c->c.dead)
		return;
	struct pq_error e; /* a server's refusal of the login, passed on: count its SQLSTATE */
	if (len > PQ_HEADER_LEN && errmsg[0] == PQMSG_ERROR &&
	    proto_parse_error(errmsg + PQ_HEADER_LEN, len - PQ_HEADER_LEN, &e) == SHOAL_OK)
		error_stats_count(e.sqlstate, ERR_FROM_SERVER);
	buf_append(&c->c.out, errmsg, len);
	client_close_common(c, reason);
}

static void client_event(struct loop_fd *lfd, uint32_t events)
{
	struct client *c = container_of(lfd, struct client, c.lfd);
	if (c->c.dead)
		return;
	if ((events & EPOLLOUT) && client_flush(c) != SHOAL_OK)
		return;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !conn_hold(&c->c, events))
		client_read(c);
	if (!c->c.dead && c->server)
		server_link_settle(c->server);
	if (!c->c.dead)
		client_budget_account(c);
}

/* The socket is readable (or failed): take what arrived and act on it. */
static void client_read(struct client *c)
{
	shoal_rc rc = conn_read(&c->c);
	if (rc == SHOAL_ERROR) {
		client_close(c, NULL, errno ? strerror(errno) : "client closed the connection");
		return;
	}
	if (rc == SHOAL_OK) {
		c->last_activity = shoal_clock();
		client_process(c);
		if (!c->c.dead)
			buf_shed(&c->c.in); /* between requests a client holds no buffers */
	}
}

/* ---- login ----------------------------------------------------------------------------- */

/* AuthenticationOk, the server's parameters (the client's own values where it set them), the
 * cancel key, ReadyForQuery. */
static void client_write_welcome(struct client *c, const struct param_list *server_params)
{
	struct buf *o = &c->c.out;
	proto_write_auth(o, PQAUTH_OK, NULL, 0);
	for (int i = 0; i < server_params->n; i++) {
		const struct param *p = &server_params->items[i];
		if (!p->initial)
			continue; /* not reported by the server: a value we SET for some client */
		const struct param *mine = params_find_like(&c->params, p);
		proto_write_param(o, p->name, mine ? mine->value : p->value);
	}
	proto_write_backend_key(o, c->cancel_pid, c->cancel_key, c->cancel_key_len);
	proto_write_ready(o, 'I');
}

/* A login completed: logged, and counted for SHOW STATS (client_login_count); the health
 * probe's logins are neither. */
static void client_log_login(struct client *c)
{
	if (!c->internal)
		stats_add(&c->pool->stats[c->c.w->id].client_login_count, 1);
	char tls[96] = "";
	if (c->c.tls) { /* PgBouncer's "tls=TLSv1.3/TLS_AES_256_GCM_SHA384" */
		str_copy(tls, sizeof(tls), " tls=");
		tls_describe(&c->c, tls + 5, sizeof(tls) - 5);
	}
	log_msg(config_current()->log_connections && !c->internal ? LOG_INFO : LOG_DEBUG,
		"%s login ok (pool %s@%s, %s mode, worker %d)%s", c->c.name, c->pool->user,
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
	client_sasl_share_keys(c, p, client_secret(c));
	client_sasl_end(c);
	if (c->db->application_name && !params_find(&c->params, "application_name"))
		params_set(&c->params, "application_name", c->db->application_name, false);
	const char *app = params_get(&c->params, "application_name");
	str_copy(c->app_name, sizeof(c->app_name), app ? app : "");
	params_copy(&c->login, &c->params); /* what RESET goes back to (txn.c) */
	pool_lock(p);
	p->n_clients++;
	bool check = client_needs_check(c, p);
	if (!check) /* formatted from the pool's list under its lock: no copy of the list */
		client_write_welcome(c, &p->welcome);
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
	log_warn("%s: %s", c->c.name, msg);
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
	const char *secret = client_secret(c);
	switch (type) {
	case AUTH_TRUST:
	case AUTH_ANY:
		client_login_ready(c);
		return;
	case AUTH_HBA:
		client_start_hba(c, secret);
		return;
	case AUTH_CERT:
		client_auth_no_password(c, client_cert_ok(c), "certificate");
		return;
	case AUTH_MD5:
		/* As PgBouncer: a stored SCRAM secret can only be checked by SCRAM. */
		if (secret && auth_secret_is_scram(secret))
			client_ask_scram(c, secret);
		else
			client_ask_password(c, type);
		return;
	case AUTH_PLAIN:
		client_ask_password(c, type);
		return;
	case AUTH_SCRAM:
		client_ask_scram(c, secret);
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
		if (!strcmp(k, "user")) {
			free(c->user);
			c->user = xstrdup(v);
		} else if (!strcmp(k, "database")) {
			free(c->dbname);
			c->dbname = xstrdup(v);
		} else if (!strcmp(k, "replication")) {
			const char *r = client_repl_kind(v);
			if (!r) {
				*state = "22023";
				return "invalid value for parameter \"replication\"";
			}
			free(c->repl);
			c->repl = *r ? xstrdup(r) : NULL;
		} else if (!strcmp(k, "options")) {
			if (params_parse_options(v, &c->params) != SHOAL_OK) {
				*state = "42601";
				return "invalid command-line argument in startup option "
				       "\"options\"";
			}
		} else if (!strncmp(k, "_pq_.", 5)) {
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
	if (!c->dbname || !*c->dbname) {
		free(c->dbname);
		c->dbname = xstrdup(c->user);
	}
	return NULL;
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
	size_t n = str_cat(c->c.name, sizeof(c->c.name), strlen(c->c.name), " "); /* " user@db" */
	n = str_cat(c->c.name, sizeof(c->c.name), n, c->user);
	n = str_cat(c->c.name, sizeof(c->c.name), n, "@");
	str_cat(c->c.name, sizeof(c->c.name), n, c->dbname);
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
static shoal_rc client_login_step(struct client *c)
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

/* ---- after login ----------------------------------------------------------------------- */

/* Validate the header of the next client message. SHOAL_ERROR closes the client. */
static shoal_rc client_check_header(struct client *c, struct pq_header *h)
{
	shoal_rc rc = proto_header(buf_head(&c->c.in), buf_avail(&c->c.in), h);
	if (rc == SHOAL_AGAIN)
		return SHOAL_AGAIN;
	if (rc == SHOAL_ERROR) {
		client_close(c, "08P01", "invalid packet: message length below 4");
		return SHOAL_ERROR;
	}
	uint32_t cap = proto_client_msg_cap(h->type);
	if (cap == 0 || h->type == PQMSG_PASSWORD) {
		char msg[96];
		snprintf(msg, sizeof(msg), "invalid packet: unexpected message type 0x%02x",
			 h->type);
		client_close(c, "08P01", msg);
		return SHOAL_ERROR;
	}
	if (h->len > cap || (int64_t)h->len > config_current()->max_packet_size) {
		char msg[96];
		snprintf(msg, sizeof(msg), "packet too large: %u bytes (type '%c')", h->len,
			 h->type);
		client_close(c, "08P01", msg);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

/* Bookkeeping for a message about to reach the server. */
static void client_note_msg(struct client *c, struct server *s, uint8_t type)
{
	switch (type) {
	case PQMSG_SYNC:
		if (s->copy_in)
			break; /* PostgreSQL ignores Sync in copy-in mode: no ReadyForQuery comes */
		s->syncs_since_exec++;
		s->ext_open = false;
		/* fallthrough */
	case PQMSG_QUERY:
	case PQMSG_FUNCTION_CALL:
		if (type != PQMSG_SYNC)
			s->syncs_since_exec = 0;
		if (s->pending++ == 0)
			c->query_start = shoal_clock();
		if (!s->xact_start)
			s->xact_start = c->query_start ? c->query_start : shoal_clock();
		break;
	case PQMSG_PARSE:
	case PQMSG_BIND:
		stats_add(type == PQMSG_PARSE ? &c->pool->stats[c->c.w->id].parse_count
					      : &c->pool->stats[c->c.w->id].bind_count,
			  1);
		s->ext_open = true;
		break;
	case PQMSG_EXECUTE:
		s->syncs_since_exec = 0; /* fallthrough */
	case PQMSG_DESCRIBE:
	case PQMSG_CLOSE:
	case PQMSG_FLUSH:
		s->ext_open = true;
		break;
	case PQMSG_COPY_DONE:
	case PQMSG_COPY_FAIL:
		s->copy_in = false;
		break;
	default:
		break;
	}
}

/* Forward the message whose header is h as it arrives. */
static shoal_rc client_forward_start(struct client *c, struct server *s, const struct pq_header *h)
{
	client_note_msg(c, s, h->type);
	conn_start_forward(&c->c, h->type, h->len);
	return SHOAL_OK;
}

/* A message too large to read whole (message_inspect_limit): SHOAL_OK when it is being
 * forwarded as it arrives, SHOAL_AGAIN to wait for a Bind's statement name, SHOAL_ERROR (not a
 * failure) when it must be read whole after all. */
static shoal_rc client_try_stream(struct client *c, struct server *s, const struct pq_header *h,
				  size_t total)
{
	bool parse = h->type == PQMSG_PARSE && ps_enabled(s);
	if (h->type != PQMSG_BIND && !parse) {
		if (!txn_stream(c, s, h->type))
			return SHOAL_ERROR;
		return client_forward_start(c, s, h); /* noted by txn_stream */
	}
	size_t head = 0;
	const uint8_t *m = buf_head(&c->c.in);
	size_t avail = buf_avail(&c->c.in);
	enum ps_bind_way way = parse ? ps_parse_head(c, s, m, avail, total, &head)
				     : ps_bind_head(c, s, m, avail, total, &head);
	if (way == PS_BIND_MORE) {
		if (txn_holding(s))
			conn_pause(&c->c, true); /* a description first: resumed when it came */
		return SHOAL_AGAIN;
	}
	if (way == PS_BIND_WHOLE)
		return SHOAL_ERROR;
	if (parse) /* its text is on this server only */
		txn_pin(c, "a prepared statement larger than message_inspect_limit");
	if (way == PS_BIND_RAW)
		return client_forward_start(c, s, h);
	client_note_msg(c, s, h->type);
	buf_consume(&c->c.in, head);
	c->c.fwd_type = h->type;
	c->c.fwd_left = (uint32_t)(total - head);
	return SHOAL_OK;
}

/* One step of routing: SHOAL_OK to continue, SHOAL_AGAIN to wait, SHOAL_ERROR when closed. */
static shoal_rc client_route_step(struct client *c)
{
	struct server *s = c->server;
	if (c->c.fwd_left)
		return conn_forward(&c->c, &s->c) ? SHOAL_OK : SHOAL_AGAIN;
	if (txn_holding(s)) {
		conn_pause(&c->c, true); /* resumed when the held message is sent on */
		return SHOAL_AGAIN;
	}
	struct pq_header h;
	shoal_rc rc = client_check_header(c, &h);
	if (rc != SHOAL_OK)
		return rc;
	if (h.type == PQMSG_TERMINATE) {
		client_close(c, NULL, "client closed the connection");
		return SHOAL_ERROR;
	}
	size_t total = (size_t)h.len + 1;
	if (txn_wants_whole(s, h.type)) {
		if (total > (size_t)config_current()->message_inspect_limit) {
			shoal_rc st = client_try_stream(c, s, &h, total);
			if (st != SHOAL_ERROR)
				return st; /* streaming, or waiting for the rest of a Bind's head */
		}
		if (buf_avail(&c->c.in) < total)
			return SHOAL_AGAIN; /* the buffer grows with the bytes that arrive */
		txn_client_msg(c, s, buf_head(&c->c.in), total);
		client_note_msg(c, s, h.type);
		buf_consume(&c->c.in, total);
		return SHOAL_OK;
	}
	txn_client_note(s, h.type);
	return client_forward_start(c, s, &h);
}

/* Send what is queued for the server. False when it cannot take more now (the client is paused
 * until the server drains) or when the server died. */
static bool client_push(struct client *c, struct server *s)
{
	if (buf_avail(&s->c.out) > 0 && conn_flush(&s->c) == SHOAL_ERROR) {
		server_close(s, errno ? strerror(errno) : "send failed");
		return false;
	}
	/* Replies Shoal answers itself (prepared.c) go to the client: bounded the same way. */
	if (buf_avail(&c->c.out) > CONN_HIGH_WATER && client_flush(c) != SHOAL_OK)
		return false;
	if (buf_avail(&s->c.out) <= CONN_HIGH_WATER && buf_avail(&c->c.out) <= CONN_HIGH_WATER)
		return true;
	conn_pause(&c->c, true); /* resumed by server_link_settle once both have drained */
	return false;
}

static void client_route(struct client *c)
{
	struct server *s = c->server;
	while (!c->c.dead && c->server == s && buf_avail(&c->c.in) > 0) {
		if ((buf_avail(&s->c.out) > CONN_HIGH_WATER ||
		     buf_avail(&c->c.out) > CONN_HIGH_WATER) &&
		    !client_push(c, s))
			return;
		if (client_route_step(c) != SHOAL_OK)
			break;
	}
	if (!c->c.dead && !s->c.dead)
		(void)client_push(c, s);
	if (!c->c.dead && buf_avail(&c->c.out) > 0 && client_flush(c) != SHOAL_OK)
		return; /* replies Shoal answered itself (prepared.c) could not be sent: closed */
}

/* A client without a server has sent something: a Terminate, or work that needs a server. */
static void client_idle_input(struct client *c)
{
	struct pq_header h;
	if (client_check_header(c, &h) != SHOAL_OK)
		return;
	if (h.type == PQMSG_TERMINATE) {
		client_close(c, NULL, "client closed the connection");
		return;
	}
	pool_acquire(c);
}

static void client_process(struct client *c)
{
	while (!c->c.dead && c->state == CL_LOGIN) {
		if (client_login_step(c) != SHOAL_OK)
			return;
	}
	if (c->c.dead || buf_avail(&c->c.in) == 0)
		return;
	if (c->ops)
		c->ops->input(c);
	else if (c->state == CL_IDLE)
		client_idle_input(c);
	else if (c->state == CL_LINKED && c->server && c->server->state == SV_ACTIVE)
		client_route(c);
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
		client_write_welcome(c, &s->params);
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

void client_resume(struct client *c)
{
	if (c->c.dead)
		return;
	if (c->state == CL_IDLE || c->state == CL_LINKED)
		conn_pause(&c->c, false);
	client_process(c);
}

