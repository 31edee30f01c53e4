/* admin_socks.c: SHOW CLIENTS, SERVERS and SOCKETS: one table of columns over the clients and
 * servers of every pool (read under each pool's lock) and the console's own clients. */
#include "admin_int.h"
#include "client.h"
#include "pool.h"
#include "proto.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

/* ---- SHOW CLIENTS / SERVERS / SOCKETS: one table of columns -------------------------------- */

/* What a socket row is about, read under its pool's lock (or the admin lock). */
struct sock {
	char type; /* 'C' or 'S' */
	const char *user, *db, *state, *addr, *local_addr, *app_name;
	const char *pinned; /* clients: why it keeps its server (txn.c), or "" */
	const char *repl;   /* pool's replication=: NULL none */
	int port, local_port, remote_pid;
	usec_t connect_time, request_time, wait_since; /* wait_since 0: not waiting */
	const void *ptr, *link;
	uint64_t id;
};

typedef void (*sock_get_fn)(struct admin_row *r, const struct sock *s);
struct sock_col {
	const char *name;
	char type;
	sock_get_fn get;
};

static void g_type(struct admin_row *r, const struct sock *s)
{
	row_fmt(r, "%c", s->type);
}
static void g_user(struct admin_row *r, const struct sock *s)
{
	row_str(r, s->user);
}
static void g_db(struct admin_row *r, const struct sock *s)
{
	row_str(r, s->db);
}
static void g_repl(struct admin_row *r, const struct sock *s)
{
	/* PgBouncer's names: replication=database is logical, true physical */
	row_str(r, !s->repl ? "none" : strcmp(s->repl, "database") == 0 ? "logical" : "physical");
}
static void g_state(struct admin_row *r, const struct sock *s)
{
	row_str(r, s->state);
}
static void g_addr(struct admin_row *r, const struct sock *s)
{
	row_str(r, s->addr);
}
static void g_port(struct admin_row *r, const struct sock *s)
{
	row_int(r, s->port);
}
static void g_laddr(struct admin_row *r, const struct sock *s)
{
	row_str(r, s->local_addr);
}
static void g_lport(struct admin_row *r, const struct sock *s)
{
	row_int(r, s->local_port);
}
static void g_ctime(struct admin_row *r, const struct sock *s)
{
	row_time(r, s->connect_time);
}
static void g_rtime(struct admin_row *r, const struct sock *s)
{
	row_time(r, s->request_time);
}
static void g_wait(struct admin_row *r, const struct sock *s)
{
	row_int(r, s->wait_since ? (shoal_now() - s->wait_since) / USEC_PER_SEC : 0);
}
static void g_wait_us(struct admin_row *r, const struct sock *s)
{
	row_int(r, s->wait_since ? (shoal_now() - s->wait_since) % USEC_PER_SEC : 0);
}
static void g_zero(struct admin_row *r, const struct sock *s)
{
	UNUSED(s);
	row_int(r, 0);
}
static void g_ptr(struct admin_row *r, const struct sock *s)
{
	row_fmt(r, "%p", s->ptr);
}
static void g_link(struct admin_row *r, const struct sock *s)
{
	if (s->link)
		row_fmt(r, "%p", s->link);
	else
		row_str(r, "");
}
static void g_rpid(struct admin_row *r, const struct sock *s)
{
	row_int(r, s->remote_pid);
}
static void g_tls(struct admin_row *r, const struct sock *s)
{
	UNUSED(s);
	row_str(r, "");
}
static void g_app(struct admin_row *r, const struct sock *s)
{
	row_str(r, s->app_name);
}
static void g_pinned(struct admin_row *r, const struct sock *s)
{
	row_str(r, s->pinned);
}
static void g_id(struct admin_row *r, const struct sock *s)
{
	row_u64(r, s->id);
}

/* PgBouncer's SKF_STD columns, in order. Shoal's own columns go after them. */
#define SOCK_STD_COLS                                                                              \
	{"type", 's', g_type}, {"user", 's', g_user}, {"database", 's', g_db},                     \
	    {"replication", 's', g_repl}, {"state", 's', g_state}, {"addr", 's', g_addr},          \
	    {"port", 'i', g_port}, {"local_addr", 's', g_laddr}, {"local_port", 'i', g_lport},     \
	    {"connect_time", 'T', g_ctime}, {"request_time", 'T', g_rtime}, {"wait", 'i', g_wait}, \
	    {"wait_us", 'i', g_wait_us}, {"close_needed", 'i', g_zero}, {"ptr", 's', g_ptr},       \
	    {"link", 's', g_link}, {"remote_pid", 'i', g_rpid}, {"tls", 's', g_tls},               \
	    {"application_name", 's', g_app}, {"prepared_statements", 'i', g_zero},                \
	{                                                                                          \
		"id", 'i', g_id                                                                    \
	}

/* Shoal's column: why a client in transaction mode keeps its server for the rest of its session
 * (docs/transaction-pooling.md), or "". */
static const struct sock_col client_cols[] = {SOCK_STD_COLS, {"pinned", 's', g_pinned}};
static const struct sock_col server_cols[] = {SOCK_STD_COLS};
static const struct sock_col socket_cols[] = {
    SOCK_STD_COLS,
    {"recv_pos", 'i', g_zero},
    {"pkt_pos", 'i', g_zero},
    {"pkt_remain", 'i', g_zero},
    {"send_pos", 'i', g_zero},
    {"send_remain", 'i', g_zero},
    {"pkt_avail", 'i', g_zero},
    {"send_avail", 'i', g_zero},
};

struct sock_table {
	const struct sock_col *cols;
	int n;
	bool clients, servers;
	struct buf *out;
};

static void sock_header(struct sock_table *t)
{
	char types[ADMIN_MAX_COLS + 1];
	const char *names[ADMIN_MAX_COLS];
	for (int i = 0; i < t->n; i++) {
		types[i] = t->cols[i].type;
		names[i] = t->cols[i].name;
	}
	types[t->n] = '\0';
	admin_header(t->out, types, names);
}

static void sock_row(struct sock_table *t, const struct sock *s)
{
	struct admin_row r = {0};
	for (int i = 0; i < t->n; i++)
		t->cols[i].get(&r, s);
	admin_write_row(t->out, &r);
}

static const char *client_state_name(const struct client *c)
{
	enum client_state state = c->state; /* an atomic: clang does not switch on one */
	switch (state) {
	case CL_LINKED:
		return "active";
	case CL_IDLE:
		return c->pool ? "idle" : "active";
	default:
		return "waiting";
	}
}

static void client_sock(const struct client *c, struct sock *s)
{
	memset(s, 0, sizeof(*s));
	s->type = 'C';
	s->user = c->user;
	s->db = c->dbname;
	s->state = client_state_name(c);
	s->addr = c->addr;
	s->port = c->port;
	s->local_addr = c->local_addr;
	s->local_port = c->local_port;
	s->app_name = c->app_name;
	s->pinned = c->pin_reason ? c->pin_reason : "";
	s->repl = c->repl;
	s->connect_time = c->connect_time;
	s->request_time = c->state_since;
	if (c->state == CL_WAITING || c->state == CL_WAIT_LOGIN || c->state == CL_HANDOFF)
		s->wait_since = c->state_since;
	s->ptr = c;
	s->link = c->server;
	s->id = c->id;
}

static const char *server_state_name(const struct server *sv)
{
	enum server_state state = sv->state;
	switch (state) {
	case SV_IDLE:
		return "idle";
	case SV_RESET:
		return "used";
	case SV_CONNECTING:
		return "new";
	case SV_BEING_CANCELED:
		return "being_canceled"; /* PgBouncer's name */
	default:
		return "active";
	}
}

static void server_sock(const struct server *sv, struct sock *s)
{
	memset(s, 0, sizeof(*s));
	s->type = 'S';
	s->user = sv->pool->server_user;
	s->db = sv->pool->name;
	s->repl = sv->pool->repl;
	s->state = server_state_name(sv);
	s->addr = sv->host;
	s->port = sv->port;
	s->local_addr = "";
	s->app_name = "";
	if (sv->state != SV_CONNECTING) { /* written by its worker during login */
		s->local_addr = sv->local_addr;
		s->local_port = sv->local_port;
	}
	s->connect_time = sv->connect_time;
	s->request_time = sv->state_since;
	s->ptr = sv;
	s->link = sv->client;
	if (sv->state != SV_CONNECTING) /* written by its worker during login */
		s->remote_pid = (int)sv->be_pid;
	s->id = sv->id;
}

static void sock_clients(struct sock_table *t, struct list *head)
{
	struct sock s;
	for (struct list *i = head->next; i != head; i = i->next) {
		client_sock(container_of(i, struct client, node), &s);
		sock_row(t, &s);
	}
}

static void sock_servers(struct sock_table *t, struct list *head)
{
	struct sock s;
	for (struct list *i = head->next; i != head; i = i->next) {
		server_sock(container_of(i, struct server, node), &s);
		sock_row(t, &s);
	}
}

static void sock_pool(struct pool *p, void *arg)
{
	struct sock_table *t = arg;
	if (t->clients) {
		sock_clients(t, &p->active_clients);
		sock_clients(t, &p->waiting);
		sock_clients(t, &p->handoff);
	}
	if (t->servers) {
		sock_servers(t, &p->used);
		sock_servers(t, &p->transit);
		sock_servers(t, &p->idle);
		sock_servers(t, &p->resetting);
		sock_servers(t, &p->connecting);
	}
}

static void sock_admin(struct client *c, void *arg)
{
	struct sock s;
	client_sock(c, &s);
	sock_row(arg, &s);
}

static void show_socks(struct client *c, const struct sock_col *cols, int n, bool cl, bool sv)
{
	struct sock_table t = {cols, n, cl, sv, &c->c.out};
	sock_header(&t);
	if (cl)
		admin_foreach_client(sock_admin, &t);
	pool_foreach(sock_pool, &t);
}

void show_clients(struct client *c)
{
	show_socks(c, client_cols, (int)ARRAY_LEN(client_cols), true, false);
}

void show_servers(struct client *c)
{
	show_socks(c, server_cols, (int)ARRAY_LEN(server_cols), false, true);
}

void show_sockets(struct client *c)
{
	show_socks(c, socket_cols, (int)ARRAY_LEN(socket_cols), true, true);
}
