/* client_route.c: a logged-in client's messages: each header checked, then the message
 * forwarded to the linked server as it arrives or read whole for txn.c and prepared.c, with
 * backpressure; without a server, a request that needs one asks the pool. */
#include "client.h"
#include "client_int.h"
#include "hosts.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "server.h"
#include "stats.h"
#include "txn.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

/* The copy the last Execute/Query may start: a message that ends it (CopyDone, CopyFail, or
 * one PostgreSQL refuses with 08P01; Sync and Flush it ignores, CopyData it takes), sent
 * before the server's CopyInResponse came, is read by PostgreSQL in order once it began. */
static void client_note_copy_end(struct server *s, uint8_t type)
{
	if (type == PQMSG_COPY_DATA || type == PQMSG_SYNC || type == PQMSG_FLUSH)
		return;
	if (s->copy_in) {
		s->copy_in = false; /* PostgreSQL ends it (an error unless CopyDone) */
		s->copy_end = 0;
	} else if (type == PQMSG_QUERY || type == PQMSG_EXECUTE || type == PQMSG_FUNCTION_CALL) {
		s->copy_may_start = true;
		/* A new statement, where a copy may start anew; unless the end was a CopyDone or
		 * CopyFail, or a Sync came between the last statement and the end: then the end
		 * most likely ends that one's copy (the Sync ignored), and after a refused message
		 * PostgreSQL skips what follows up to the next Sync. */
		if (s->copy_end != PQMSG_COPY_DONE && s->copy_end != PQMSG_COPY_FAIL &&
		    s->copy_end_syncs == 0)
			s->copy_end = 0;
	} else if (!s->copy_end && s->copy_may_start) {
		/* (with no statement outstanding, no copy is to start: a CopyDone is ignored) */
		s->copy_end = type;
		s->copy_end_syncs = s->syncs_since_exec;
		s->syncs_since_exec = 0; /* the Syncs after the end are answered */
	}
}

/* Bookkeeping for a message about to reach the server. */
static void client_note_msg(struct client *c, struct server *s, uint8_t type)
{
	client_note_copy_end(s, type);
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
	default:
		break;
	}
}

/* Forward the message whose header is h as it arrives: what of it is here goes at once (the
 * next step would, with nothing between: an Execute or Sync is usually all here), unless the
 * buffers are over their high water, where client_route pushes first. */
static shoal_rc client_forward_start(struct client *c, struct server *s, const struct pq_header *h)
{
	client_note_msg(c, s, h->type);
	conn_start_forward(&c->c, h->type, h->len);
	if (buf_avail(&s->c.out) > CONN_HIGH_WATER || buf_avail(&c->c.out) > CONN_HIGH_WATER)
		return SHOAL_OK;
	return conn_forward(&c->c, &s->c) ? SHOAL_OK : SHOAL_AGAIN;
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
	/* read_write_split: a read sent to a standby on its own; what the client sends after it
	 * waits for the server's release, and then finds its own server */
	if (c->route_single && s->pending > 0) {
		conn_pause(&c->c, true);
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
	if (buf_avail(&s->c.out) > 0 && server_flush(s) == SHOAL_ERROR)
		return false;
	/* Replies Shoal answers itself (prepared.c) go to the client: bounded the same way. */
	if (buf_avail(&c->c.out) > CONN_HIGH_WATER && client_flush(c) != SHOAL_OK)
		return false;
	if (buf_avail(&s->c.out) <= CONN_HIGH_WATER && buf_avail(&c->c.out) <= CONN_HIGH_WATER)
		return true;
	conn_pause(&c->c, true); /* resumed by server_link_settle once both have drained */
	return false;
}

void client_route(struct client *c)
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
void client_idle_input(struct client *c)
{
	for (;;) {
		struct pq_header h;
		if (client_check_header(c, &h) != SHOAL_OK)
			return;
		if (h.type == PQMSG_TERMINATE) {
			client_close(c, NULL, "client closed the connection");
			return;
		}
		/* read_write_split: a host list's pool looks (a route left from a split a reload
		 * turned off is cleared there) */
		if (c->pool->hosts && (c->pool->hosts->split || c->route)) {
			enum split_step st = client_split_start(c, &h);
			if (st == SPLIT_WAIT || (st == SPLIT_DONE && (c->c.dead || !buf_avail(&c->c.in))))
				return;
			if (st == SPLIT_DONE)
				continue; /* the next message, after Shoal's answer to a SET shoal.route */
		}
		pool_acquire(c);
		return;
	}
}
