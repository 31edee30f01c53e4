/* server_read.c: reading a server: each message checked, then forwarded to the linked client
 * as it arrives or inspected whole (ReadyForQuery, errors, ParameterStatus, COPY), with
 * backpressure; an unlinked server's messages go to its login or setup. */
#include "server.h"
#include "server_int.h"
#include "auth_query.h"
#include "client.h"
#include "client_budget.h"
#include "error_stats.h"
#include "hosts.h"
#include "log.h"
#include "params.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "stats.h"
#include "txn.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void server_param(struct server *s, const uint8_t *body, size_t len, bool initial)
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
void server_status_msg(struct server *s, struct client *c, const uint8_t *msg, size_t len,
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
void server_send_held(struct server *s, struct client *c, bool keep)
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
		hosts_count_xact(s->hrec);
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
void server_after_ready(struct server *s, struct client *c, char status)
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
	if (s->pending == 0 && !s->ext_open) { /* all answered: no COPY is still to start */
		s->copy_end = 0;
		s->copy_may_start = false;
	}
	s->timeout_cancel = false;
	/* read_your_writes: noted before the client can see the end of its transaction */
	if (status == 'I' && s->hset && c && config_current()->read_your_writes &&
	    !(s->hset->split && c->route == ROUTE_STANDBY)) /* the split's reads: not writes */
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
 * ends, so they will not be answered: take them off the count of pending requests. If the
 * client already ended it (copy_end), the copy is over, and the Syncs after that end are
 * answered. */
static void server_copy_in_msg(struct server *s, struct client *c, const uint8_t *msg, size_t len)
{
	int ignored = s->copy_end ? s->copy_end_syncs : s->syncs_since_exec;
	s->copy_in = !s->copy_end;
	s->copy_end = 0;
	s->pending -= ignored < s->pending ? ignored : s->pending;
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

/* For an active server: is a message of this type read whole and looked at? */
static bool server_inspects(const struct server *s, uint8_t type)
{
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
	if (server_flush(s) == SHOAL_ERROR)
		return;
	client_resume(c);
}

/* Whether an ErrorResponse (whole) is the notice of a server going away: FATAL, 57P01
 * (terminated, shut down) or 57P02 (a crash). */
static bool server_going_away(const uint8_t *msg, size_t len)
{
	struct pq_error e;
	return proto_parse_error(msg + 5, len - 5, &e) == SHOAL_OK && e.sqlstate &&
	       strncmp(e.sqlstate, "57P0", 4) == 0 &&
	       (e.severity_nl ? strcmp(e.severity_nl, "FATAL") == 0
			      : e.severity && strcmp(e.severity, "FATAL") == 0);
}

/* read_write_split's retry: the next message for client c (s active and linked to it), which keeps a copy of
 * its read. Held back (SHOAL_OK; SHOAL_AGAIN until it is whole; SHOAL_ERROR: s closed) so that
 * a server dying meanwhile has sent the client nothing: a RowDescription (PostgreSQL sends it
 * before it computes the first row) until the answer's next message, or the FATAL of a server
 * going away (the read goes again once the connection ends). RETRY_GO_ON: it is the answer, the
 * copy goes (the held RowDescription to the client first), the message goes its usual way. */
#define RETRY_GO_ON (-1)
__attribute__((cold, noinline)) static int server_retry_step(struct server *s, struct client *c)
{
	struct pq_header hh, *h = &hh;
	if (s->c.fwd_left) /* the rest of a message already under way */
		return RETRY_GO_ON;
	shoal_rc rc = proto_header(buf_head(&s->c.in), buf_avail(&s->c.in), h);
	if (rc != SHOAL_OK)
		return RETRY_GO_ON; /* server_step waits, or closes s */
	size_t total = (size_t)h->len + 1;
	if (h->len > proto_server_msg_cap(h->type))
		return RETRY_GO_ON;
	if (h->type == PQMSG_ROW_DESCRIPTION || h->type == PQMSG_ERROR) {
		if (buf_avail(&s->c.in) < total)
			return SHOAL_AGAIN;
		if (h->type == PQMSG_ROW_DESCRIPTION) {
			if (!txn_server_msg(s, h->type, NULL, 0))
				return SHOAL_ERROR; /* closed: replies out of step */
			buf_append(&c->retry->head, buf_head(&s->c.in), total);
			buf_consume(&s->c.in, total);
			ps_emit(s, c);
			return SHOAL_OK;
		}
		if (server_going_away(buf_head(&s->c.in), total)) {
			log_info("%s: the server is going away under a read to send again", s->c.name);
			buf_consume(&s->c.in, total);
			return SHOAL_OK;
		}
	}
	client_split_answered(c);
	return RETRY_GO_ON;
}

/* The rest of a message being forwarded as it arrives. */
static shoal_rc server_forward_rest(struct server *s, struct client *c)
{
	if (!conn_forward(&s->c, c ? &c->c : NULL))
		return SHOAL_AGAIN;
	if (c)
		ps_emit(s, c); /* replies Shoal stands in for, due after this one */
	return SHOAL_OK;
}

/* A message of an active server forwarded as it arrives, the reply queue noting it. */
static shoal_rc server_stream(struct server *s, struct client *c, const struct pq_header *h)
{
	if (!txn_server_msg(s, h->type, NULL, 0))
		return SHOAL_ERROR; /* closed: replies out of step */
	conn_start_forward(&s->c, h->type, h->len);
	if (!conn_forward(&s->c, &c->c))
		return SHOAL_AGAIN; /* the rest of it has not arrived */
	ps_emit(s, c);
	return SHOAL_OK;
}

/* server_step past its common case: a message some hook looks at, or any message of a server
 * with no client's traffic flowing (c NULL). Out of line, so that the common step needs no
 * large stack frame. */
static __attribute__((noinline)) shoal_rc server_step_rest(struct server *s, struct client *c,
							    struct pq_header h)
{
	/* Replies to injected messages are seen whole to drop them (and read descriptions). */
	bool swallowable = c && s->ps && ps_may_want_whole(h.type) && ps_wants_whole(s, h.type);
	if (s->state == SV_ACTIVE && !server_inspects(s, h.type) && !swallowable) {
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

/* One step over s->c.in (c: its client while s is active, else NULL): SHOAL_OK to continue,
 * SHOAL_AGAIN to wait for bytes or for the client to drain, SHOAL_ERROR when the server died. */
static shoal_rc server_step(struct server *s, struct client *c)
{
	struct pq_header h;
	if (s->c.fwd_left)
		return server_forward_rest(s, c);
	shoal_rc rc = proto_header(buf_head(&s->c.in), buf_avail(&s->c.in), &h);
	if (rc == SHOAL_AGAIN)
		return SHOAL_AGAIN;
	if (rc == SHOAL_ERROR || h.len > proto_server_msg_cap(h.type) ||
	    (h.type == PQMSG_READY && h.len != 5)) {
		server_close(s, "invalid message length from server");
		return SHOAL_ERROR;
	}
	if (c && !server_inspects(s, h.type)) {
		/* Most replies to a client's traffic: forwarded as they arrive with nothing to note
		 * (a DataRow moves no reply queue and is no error). The queue is asked only for a
		 * client with no prepared-statement state (simple-protocol traffic): another's
		 * replies mostly answer its extended-protocol messages, and the asking would be in
		 * vain. */
		if (h.type == PQMSG_DATA_ROW || (!c->ps && ps_passes(s, h.type))) {
			conn_start_forward(&s->c, h.type, h.len);
			return conn_forward(&s->c, &c->c) ? SHOAL_OK : SHOAL_AGAIN;
		}
		/* The extended protocol's replies: forwarded as they arrive, the queue noting them,
		 * unless one may answer a message Shoal injected (then it is read whole). */
		if (!(s->ps && ps_may_want_whole(h.type) && ps_wants_whole(s, h.type)))
			return server_stream(s, c, &h);
	}
	return server_step_rest(s, c, h);
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

/* read_write_split: the messages before the answer of a read that may be sent again. False
 * when server_process must stop (wait for bytes, or s or its client closed). */
__attribute__((cold, noinline)) static bool server_retry_process(struct server *s)
{
	for (;;) {
		struct client *c = s->state == SV_ACTIVE ? s->client : NULL;
		if (s->c.dead || !buf_avail(&s->c.in) || !c || !c->retry)
			return !s->c.dead;
		int held = server_retry_step(s, c);
		if (held == RETRY_GO_ON)
			return true; /* the answer: on the usual way */
		if (held != SHOAL_OK)
			return false;
	}
}

void server_process(struct server *s)
{
	struct client *c = s->client;
	/* read_write_split's retry: checked once per batch of bytes, not per message */
	if (c && __builtin_expect(c->retry != NULL, 0) && !server_retry_process(s))
		return;
	c = NULL;
	while (!s->c.dead && buf_avail(&s->c.in) > 0) {
		c = s->state == SV_ACTIVE ? s->client : NULL;
		if (c && buf_avail(&c->c.out) > CONN_HIGH_WATER && !server_push(s, c))
			return;
		if (server_step(s, c) != SHOAL_OK) /* (a push that succeeded moved no state) */
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
