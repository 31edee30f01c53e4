/* admin.c: the admin console: who may log in, the welcome, reading simple queries, parsing them
 * as PgBouncer does (one command word and at most one argument, or SET key = value), and
 * dispatching to SHOW (admin_show.c) or control commands (admin_ctl.c). */
#include "admin_int.h"
#include "admin_parse.h"
#include "client.h"
#include "control.h"
#include "log.h"
#include "proto.h"
#include "shoal_version.h"
#include "states.h"
#include "worker.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Console clients of every worker; each is on this list once logged in. */
static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list admin_clients = {&admin_clients, &admin_clients};
static int n_admin;

bool admin_is_console_db(const char *dbname)
{
	return strcmp(dbname, "pgbouncer") == 0 || strcmp(dbname, "shoal") == 0;
}

static bool peer_is_me(struct client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (!c->unix_peer || getsockopt(c->c.lfd.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == geteuid();
}

static const struct client_ops admin_client_ops = {
	.login_ok = admin_login_ok,
	.input = admin_process,
	.gone = admin_client_gone,
};

const struct client_console admin_console = {
	.is_console_db = admin_is_console_db,
	.startup = admin_startup,
};

shoal_rc admin_startup(struct client *c)
{
	const struct config *cfg = config_current();
	if (peer_is_me(c)) {
		c->admin = ADMIN_FULL; /* the pooler's own user over the Unix socket */
		c->ops = &admin_client_ops;
		return SHOAL_AGAIN;
	}
	if (config_user_in_list(cfg->admin_users, c->user))
		c->admin = ADMIN_FULL;
	else if (config_user_in_list(cfg->stats_users, c->user))
		c->admin = ADMIN_STATS;
	if (c->admin) {
		c->ops = &admin_client_ops;
		return SHOAL_OK;
	}
	char msg[200];
	snprintf(msg, sizeof(msg), "not allowed to connect to the admin console: \"%s\"", c->user);
	log_warn("%s: %s", c->c.name, msg);
	client_close(c, "28000", msg);
	return SHOAL_ERROR;
}

void admin_login_ok(struct client *c)
{
	struct buf *o = &c->c.out;
	proto_write_auth(o, PQAUTH_OK, NULL, 0);
	proto_write_param(o, "server_version", SHOAL_VERSION "/shoal");
	proto_write_param(o, "client_encoding", "UTF8");
	proto_write_param(o, "server_encoding", "UTF8");
	proto_write_param(o, "DateStyle", "ISO");
	proto_write_param(o, "TimeZone", "GMT");
	proto_write_param(o, "standard_conforming_strings", "on");
	proto_write_param(o, "is_superuser", "on");
	static const uint8_t no_key[PQ_CANCEL_KEY_V30]; /* the console has nothing to cancel */
	proto_write_backend_key(o, 0, no_key, sizeof(no_key));
	proto_write_ready(o, 'I');
	pthread_mutex_lock(&admin_lock);
	list_del(&c->node); /* off the worker's login list */
	client_state_mark(c, CL_IDLE);
	c->state_since = shoal_now();
	list_append(&admin_clients, &c->node);
	n_admin++;
	pthread_mutex_unlock(&admin_lock);
	log_info("%s admin console login ok (%s)", c->c.name,
		 c->admin == ADMIN_FULL ? "admin" : "stats only");
	if (client_flush(c) == SHOAL_OK)
		admin_process(c);
}

void admin_client_gone(struct client *c)
{
	pthread_mutex_lock(&admin_lock);
	if (c->state != CL_LOGIN)
		n_admin--;
	list_del(&c->node);
	client_state_mark(c, CL_CLOSED);
	pthread_mutex_unlock(&admin_lock);
	admin_wait_free(c->admin_wait);
	c->admin_wait = NULL;
}

void admin_foreach_client(admin_client_fn fn, void *arg)
{
	pthread_mutex_lock(&admin_lock);
	for (struct list *i = admin_clients.next; i != &admin_clients; i = i->next)
		fn(container_of(i, struct client, node), arg);
	pthread_mutex_unlock(&admin_lock);
}

int admin_client_count(void)
{
	pthread_mutex_lock(&admin_lock);
	int n = n_admin;
	pthread_mutex_unlock(&admin_lock);
	return n;
}

/* Clients of worker w, collected under the lock and closed after it (closing takes it). */
static int collect_mine(struct worker *w, struct client **out, int max)
{
	int n = 0;
	pthread_mutex_lock(&admin_lock);
	for (struct list *i = admin_clients.next; i != &admin_clients && n < max; i = i->next) {
		struct client *c = container_of(i, struct client, node);
		if (c->c.w == w)
			out[n++] = c;
	}
	pthread_mutex_unlock(&admin_lock);
	return n;
}

void admin_close_clients(struct worker *w)
{
	struct client *cs[64];
	int n;
	while ((n = collect_mine(w, cs, 64)) > 0)
		for (int i = 0; i < n; i++)
			client_close(cs[i], "57P01", "pooler is shutting down");
}

/* ---- replies ---------------------------------------------------------------------------- */

void admin_error(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("%s admin console: %s", c->c.name, msg);
	proto_write_error(&c->c.out, "ERROR", sqlstate, msg);
}

void admin_notice(struct client *c, const char *msg, const char *detail)
{
	struct buf *b = &c->c.out;
	proto_begin(b, PQMSG_NOTICE);
	proto_put_u8(b, 'S');
	proto_put_str(b, "NOTICE");
	proto_put_u8(b, 'C');
	proto_put_str(b, "00000");
	proto_put_u8(b, 'M');
	proto_put_str(b, msg);
	if (detail) {
		proto_put_u8(b, 'D');
		proto_put_str(b, detail);
	}
	proto_put_u8(b, 0);
	proto_finish(b);
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* The session parameters the console pretends to have (PgBouncer's fake_params): drivers SET
 * and SHOW them when they connect. SET of one is ignored, SHOW answers the value. */
const char *const admin_fake_params[ADMIN_FAKE_PARAMS][2] = {
    {"client_encoding", "UTF-8"},
    {"default_transaction_isolation", "read committed"},
    {"standard_conforming_strings", "on"},
    {"datestyle", "ISO"},
    {"timezone", "GMT"},
};

static void admin_set(struct client *c, const char *key, const char *val)
{
	for (size_t i = 0; i < ADMIN_FAKE_PARAMS; i++)
		if (strcasecmp(key, admin_fake_params[i][0]) == 0) {
			admin_notice(c, "SET ignored", NULL);
			proto_write_command_complete(&c->c.out, "SET");
			return;
		}
	if (c->admin != ADMIN_FULL) {
		admin_error(c, "08P01", "admin access needed");
		return;
	}
	char tag[600];
	snprintf(tag, sizeof(tag), "SET %s=%s", key, val);
	admin_wait_job(c, control_post(key, val, c->c.w), tag);
}

static void admin_command(struct client *c, const char *q)
{
	struct admin_query aq;
	if (admin_hosts_command(c, q) != SHOAL_AGAIN)
		return;
	admin_parse(q, &aq);
	if (aq.kind == AQ_SET) {
		admin_set(c, aq.key, aq.value);
		return;
	}
	if (aq.kind == AQ_COMMAND) {
		if (strcmp(aq.cmd, "show") == 0 || strcmp(aq.cmd, "select") == 0) {
			char what[64];
			snprintf(what, sizeof(what), "%s", aq.arg);
			for (char *p = what; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			if (admin_show(c, what) != SHOAL_AGAIN)
				return;
		} else if (admin_control(c, aq.cmd, aq.arg) != SHOAL_AGAIN) {
			return;
		}
	}
	admin_error(c, "08P01", "invalid command '%s', use SHOW HELP;", *q ? q : "<no query>");
}

/* ---- the message loop --------------------------------------------------------------------- */

/* One message; SHOAL_OK to go on, SHOAL_AGAIN to wait for bytes or a command, SHOAL_ERROR when
 * the client is closed. */
static shoal_rc admin_step(struct client *c)
{
	struct buf *in = &c->c.in;
	struct pq_header h;
	shoal_rc rc = proto_header(buf_head(in), buf_avail(in), &h);
	if (rc == SHOAL_AGAIN)
		return SHOAL_AGAIN;
	if (rc == SHOAL_ERROR || h.len > PQ_SMALL_MSG_LIMIT) {
		client_close(c, "08P01",
			     rc == SHOAL_ERROR ? "invalid packet: bad length"
					       : "packet too large for the admin console");
		return SHOAL_ERROR;
	}
	if (buf_avail(in) < (size_t)h.len + 1)
		return SHOAL_AGAIN;
	if (h.type == PQMSG_TERMINATE) {
		client_close(c, NULL, "client closed the connection");
		return SHOAL_ERROR;
	}
	if (h.type != PQMSG_QUERY) {
		bool ext = strchr("PBEDSCH", h.type) != NULL;
		char msg[96];
		snprintf(msg, sizeof(msg),
			 ext ? "extended query protocol not supported by admin console"
			     : "unsupported packet type for admin console: %d",
			 h.type);
		client_close(c, "08P01", msg);
		return SHOAL_ERROR;
	}
	char q[PQ_SMALL_MSG_LIMIT];
	size_t qlen = h.len - 4;
	memcpy(q, buf_head(in) + 5, qlen);
	buf_consume(in, (size_t)h.len + 1);
	if (qlen == 0 || q[qlen - 1] != '\0') {
		client_close(c, "08P01", "invalid packet: query not terminated");
		return SHOAL_ERROR;
	}
	log_debug("%s admin console: %s", c->c.name, q);
	admin_command(c, q);
	if (c->admin_wait) {
		conn_pause(&c->c, true); /* finished by admin_tick */
		return client_flush(c) == SHOAL_OK ? SHOAL_AGAIN : SHOAL_ERROR;
	}
	proto_write_ready(&c->c.out, 'I');
	return SHOAL_OK;
}

void admin_process(struct client *c)
{
	while (!c->c.dead && !c->admin_wait && buf_avail(&c->c.in) > 0)
		if (admin_step(c) != SHOAL_OK)
			break;
	if (!c->c.dead && buf_avail(&c->c.out) > 0)
		if (client_flush(c) != SHOAL_OK)
			return;
}

void admin_tick(struct worker *w)
{
	struct client *cs[64];
	int n = 0;
	pthread_mutex_lock(&admin_lock);
	for (struct list *i = admin_clients.next; i != &admin_clients && n < 64; i = i->next) {
		struct client *c = container_of(i, struct client, node);
		if (c->c.w == w && c->admin_wait) /* admin_wait is only touched by w */
			cs[n++] = c;
	}
	pthread_mutex_unlock(&admin_lock);
	for (int i = 0; i < n; i++) {
		struct client *c = cs[i];
		if (c->c.dead || !admin_wait_done(c->admin_wait))
			continue;
		admin_wait_finish(c);
		proto_write_ready(&c->c.out, 'I');
		conn_pause(&c->c, false);
		if (client_flush(c) == SHOAL_OK)
			admin_process(c);
	}
}

void admin_free_all(void)
{
}
