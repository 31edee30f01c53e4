/* server_setup.c: a server between clients: the SET/RESET that fits it to a client on link,
 * server_reset_query on release, the resync after a client's RESET, and how each ends. */
#include "server.h"
#include "server_int.h"
#include "auth_query.h"
#include "cancel.h"
#include "client.h"
#include "log.h"
#include "params.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "txn.h"

#include <string.h>

void server_begin_link(struct server *s)
{
	struct client *c = s->client;
	s->resync = false; /* the diff below covers it */
	if (c->aq == AQ_RUNNING) {
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

static void server_end_resync(struct server *s, struct client *c);

/* The client's RESET reached a parameter it set at login (txn.c): PostgreSQL would go back to
 * the client's login value, a pooled server goes back to its own. The client's value is put
 * back with the same SET/RESET diff as on link, between the server's ReadyForQuery and the
 * client's: the client gets the new ParameterStatus first, as from PostgreSQL. Its next request
 * waits in its buffer meanwhile (it is routed only to an SV_ACTIVE server). */
void server_begin_resync(struct server *s)
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

void server_setup_done(struct server *s)
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
void server_keep_setup_error(struct server *s, const uint8_t *msg, size_t len)
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
