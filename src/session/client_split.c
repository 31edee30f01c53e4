/* client_split.c: read_write_split on one alias: the role a transaction-mode client's next
 * transaction needs (by its first Query), SET shoal.route answered by Shoal itself, and the one
 * retry of a read whose server died before a byte of its answer reached the client. */
#include "client.h"
#include "client_int.h"
#include "hosts.h"
#include "log.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "sqlscan.h"

#include <stdlib.h>
#include <string.h>

/* A read kept for a retry is at most this long: a longer one goes once, as any statement. */
#define SPLIT_RETRY_MAX 8192

void client_split_forget(struct client *c)
{
	if (!c->retry)
		return;
	buf_free(&c->retry->head);
	free(c->retry);
	c->retry = NULL;
}

void client_split_answered(struct client *c)
{
	const struct buf *head = c->retry ? &c->retry->head : NULL;
	if (head && buf_avail(head))
		buf_append(&c->c.out, buf_head(head), buf_avail(head));
	client_split_forget(c);
}

/* SET shoal.route: answered as PostgreSQL answers a SET outside a transaction block, or with
 * its error for a value it does not take (22023). */
static void split_set(struct client *c, enum sql_route r, size_t total)
{
	buf_consume(&c->c.in, total);
	if (r == SQLR_SET_BAD) {
		proto_write_error(&c->c.out, "ERROR", "22023",
				  "invalid value for parameter \"shoal.route\": use primary, "
				  "standby or auto");
	} else {
		c->route_force = r == SQLR_SET_PRIMARY	 ? ROUTE_PRIMARY
				 : r == SQLR_SET_STANDBY ? ROUTE_STANDBY
							 : 0;
		proto_write_command_complete(&c->c.out, "SET");
	}
	proto_write_ready(&c->c.out, 'I');
	if (client_flush(c) != SHOAL_OK)
		return; /* closed: the caller sees c->c.dead */
}

/* The route of a classified Query: the hint or SET shoal.route first, then the text. */
static int split_route_of(const struct client *c, enum sql_route r)
{
	if (r == SQLR_FORCE_PRIMARY)
		return ROUTE_PRIMARY;
	if (r == SQLR_FORCE_STANDBY)
		return ROUTE_STANDBY;
	if (c->route_force)
		return c->route_force;
	return r == SQLR_READ || r == SQLR_READ_TXN ? ROUTE_STANDBY : ROUTE_PRIMARY;
}

/* The extended protocol: the messages the client sent after the first one (from offset from
 * in its input, all here) are one statement's run up to its Sync: Bind, Describe, Flush, one
 * Execute, Sync. A second Execute or a Sync not here yet leaves the transaction on the primary:
 * no message can wait for a release before its Sync, and the server answers nothing before. */
static bool split_one_run(const struct client *c, size_t from)
{
	const uint8_t *p = buf_head(&c->c.in) + from,
		      *end = buf_head(&c->c.in) + buf_avail(&c->c.in);
	int executes = 0;
	while (end - p >= 5) {
		struct pq_header k;
		if (proto_header(p, (size_t)(end - p), &k) != SHOAL_OK)
			return false;
		if (k.type == PQMSG_SYNC)
			return executes == 1;
		if (k.type == PQMSG_EXECUTE)
			executes++;
		else if (k.type != PQMSG_BIND && k.type != PQMSG_DESCRIBE && k.type != PQMSG_FLUSH)
			return false;
		if ((size_t)(end - p) < (size_t)k.len + 1)
			return false;
		p += (size_t)k.len + 1;
	}
	return false;
}

/* A Parse or a Bind (whole at m, total bytes) that starts a read for a standby: its statement's
 * text (a Parse's own; a Bind's from the prepared statements Shoal keeps) is one, and the rest
 * of its run is split_one_run. A named Parse only with prepared statements on (max_prepared_
 * statements): without, it pins the client to the server it lands on. */
static bool split_ext_read(struct client *c, const uint8_t *m, size_t total)
{
	const uint8_t *name_end = memchr(m + 5, 0, total - 5); /* the statement's or portal's */
	if (!name_end)
		return false;
	const char *sql = (const char *)name_end + 1, *s_end;
	size_t n = 0;
	s_end = memchr(sql, 0, (size_t)(m + total - (const uint8_t *)sql));
	if (!s_end)
		return false;
	if (m[0] == PQMSG_PARSE) {
		if (name_end != m + 5 && !c->pool->ps_on)
			return false;
		n = (size_t)(s_end - sql);
	} else { /* Bind: the statement named after the portal */
		sql = ps_client_text(c, sql, &n);
	}
	return sql && sql_route(sql, n) == SQLR_READ && split_one_run(c, total);
}

enum split_step client_split_start(struct client *c, const struct pq_header *h)
{
	c->route = c->route_force ? c->route_force : ROUTE_PRIMARY;
	c->route_single = false;
	c->retried = false;
	c->retry_avoid = NULL;
	client_split_forget(c);
	if (!c->pool->hosts->split || pool_mode_of(c->pool) == POOL_SESSION) {
		c->route = 0; /* no split (any more) */
		return SPLIT_GO;
	}
	size_t total = (size_t)h->len + 1;
	/* Other messages, and a message too large to hold, go to the primary (or where SET
	 * shoal.route says). */
	if ((h->type != PQMSG_QUERY && h->type != PQMSG_PARSE && h->type != PQMSG_BIND) ||
	    total > (size_t)config_current()->message_inspect_limit || total < 6)
		return SPLIT_GO;
	if (buf_avail(&c->c.in) < total)
		return SPLIT_WAIT; /* the buffer grows with the bytes that arrive */
	const uint8_t *m = buf_head(&c->c.in);
	if (h->type != PQMSG_QUERY) {
		if (!c->route_force && split_ext_read(c, m, total)) {
			c->route = ROUTE_STANDBY;
			c->route_single = true; /* (no retry: the run is not kept) */
		}
		return SPLIT_GO;
	}
	enum sql_route r = sql_route((const char *)m + 5, total - 6); /* its NUL aside */
	if (r >= SQLR_SET_AUTO) {
		split_set(c, r, total);
		return SPLIT_DONE;
	}
	c->route = split_route_of(c, r);
	bool read = c->route == ROUTE_STANDBY && (r == SQLR_READ || r == SQLR_READ_TXN);
	c->route_single = read && r == SQLR_READ;
	if (read && total <= SPLIT_RETRY_MAX) {
		c->retry = xmalloc(sizeof(*c->retry) + total);
		c->retry->head = (struct buf){0};
		memcpy(c->retry->msg, m, total);
		c->retry->len = total;
	}
	return SPLIT_GO;
}

bool client_split_retry(struct client *c, struct host_rec *dead, const char *why)
{
	if (c->c.dead || c->retried || !c->retry || c->c.fwd_left || c->server)
		return false;
	/* The read goes back in front of whatever the client sent after it. */
	struct buf in = {0};
	buf_append(&in, c->retry->msg, c->retry->len);
	if (buf_avail(&c->c.in))
		buf_append(&in, buf_head(&c->c.in), buf_avail(&c->c.in));
	buf_free(&c->c.in);
	c->c.in = in;
	client_split_forget(c);
	c->retried = true;
	c->retry_avoid = dead;
	log_warn("%s: its server died before answering a read (%s): sent again once, to another "
		 "host",
		 c->c.name, why);
	pool_requeue(c);
	return true;
}
