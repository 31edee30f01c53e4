/* prepared_describe.c: statements whose description changed on a server (0A000) and the
 * descriptions Shoal learns with its own Describe (see prepared.h). */
#include "prepared_int.h"
#include "list.h"
#include "log.h"
#include "objects.h"
#include "pool.h"
#include "proto.h"
#include "worker.h"
#include "server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- descriptions and stale statements ---------------------------------------------------
 *
 * PostgreSQL fixes a prepared statement's result type when it is prepared: if its tables change
 * so that the result type would change, Bind and Describe refuse it (0A000 "cached plan must not
 * change result type") and the driver prepares it again. A pooler that prepares the client's
 * text afresh on another server would instead hand the client rows of the new shape under the
 * description it already holds. So every server statement is described once when prepared, each
 * client statement keeps the description of the server statement it was parsed as, and a client
 * statement used where the server's statement is described otherwise is refused with the same
 * error: its Bind or Describe is replaced by one the server fails (and skips to the Sync, and
 * fails the transaction block) exactly where PostgreSQL would, and that error by the 0A000
 * (held_refuse). */

/* A RowDescription as PostgreSQL compares result types (equalTupleDescs): per column its name,
 * type OID, length and typmod; not the table OID and column number, which a table dropped and
 * created again changes without changing the result type. */
static uint64_t desc_row(uint64_t h, const uint8_t *body, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, body, len);
	uint16_t n = pqr_u16(&r);
	h = hash_more(h, &n, sizeof(n));
	for (uint16_t i = 0; i < n && !r.err; i++) {
		const char *name = pqr_cstr(&r);
		(void)pqr_bytes(&r, 6); /* table OID, column number */
		const uint8_t *type = pqr_bytes(&r, 10);
		(void)pqr_bytes(&r, 2); /* format: always text in a statement's description */
		if (type) {
			h = hash_more(h, name, strlen(name) + 1);
			h = hash_more(h, type, 10);
		}
	}
	return h;
}

bool describe_pending(const struct ps_server *ps)
{
	for (size_t i = ps->qhead; i < ps->qlen; i++)
		if (ps->q[i].kind == OP_INJ_DESCRIBE)
			return true;
	return false;
}

/* The client's Bind (held: portal, statement, the rest) bound instead to a statement with the
 * same parameters whose planning fails (the planner folds 1/0): the server checks everything
 * PostgreSQL checks before it makes the plan (parameter count, failed transaction block, portal
 * name, parameter values) and fails where PostgreSQL would have found the result type changed. */
uint64_t refuse_placeholder(struct server *s)
{
	struct ps_server *ps = s->ps;
	const uint8_t *types = (const uint8_t *)"\0"; /* no parameters, if none described */
	size_t tlen = 2;
	if (buf_avail(&ps->pdesc) > 5) {
		types = buf_head(&ps->pdesc) + 5; /* ParameterDescription: Int16 n, n OIDs */
		tlen = buf_avail(&ps->pdesc) - 5;
	}
	return srv_placeholder(s, "SELECT 1/0", types, tlen);
}

static void refuse_bind(struct server *s, const struct ps_held *h)
{
	uint64_t id = refuse_placeholder(s);
	struct pq_reader r;
	pqr_init(&r, h->msg + 5, h->len - 5);
	const char *portal = pqr_cstr(&r);
	(void)pqr_cstr(&r);
	char name[32];
	srv_name(id, name, sizeof(name));
	proto_begin(&s->c.out, PQMSG_BIND);
	proto_put_str(&s->c.out, portal ? portal : "");
	proto_put_str(&s->c.out, name);
	proto_put_bytes(&s->c.out, h->msg + 5 + r.pos, h->len - 5 - r.pos);
	proto_finish(&s->c.out);
}

/* Send, in place of the held message, one the server fails where PostgreSQL would have failed
 * the client's: that ErrorResponse becomes 0A000 (ps_stale_reply). A Describe is of a name
 * nothing uses: PostgreSQL checks nothing else before it finds the result type changed. */
static void held_refuse(struct server *s, const struct ps_held *h)
{
	if (h->kind == OP_BIND)
		refuse_bind(s, h);
	else
		put_describe_stmt(&s->c.out, "SHOAL_stale");
	op_push(s->ps, h->kind, NULL, NULL, 0);
	s->ps->q[s->ps->qlen - 1].stale = true;
}

/* The descriptions a held message waited for are known: send it, or refuse it. */
void held_release(struct server *s)
{
	struct ps_server *ps = s->ps;
	struct ps_held *h = ps->held;
	if (ps->head_wait && !describe_pending(ps)) {
		ps->head_wait = false;
		ps->head_check = true;
		ps->resume = true;
	}
	if (!h || describe_pending(ps))
		return;
	ps->held = NULL;
	ps->resume = true;
	struct srv_stmt *st = srv_lookup(ps, h->def);
	if (ps->skipping) {
		buf_append(&s->c.out, h->msg, h->len); /* discarded, like all up to the Sync */
	} else if (!st || st->desc == h->def->desc) {
		buf_append(&s->c.out, h->msg, h->len);
		op_push(ps, h->kind, NULL, h->def, st ? st->id : 0);
	} else {
		log_debug("%s: prepared statement described otherwise than the client's: refused",
			  s->c.name);
		held_refuse(s, h);
	}
	free(h->msg);
	def_free(h->def);
	free(h);
}

/* Send a client's Bind or Describe (built in m) of d, now SHOAL_<st->id>; or hold it (and
 * stop reading the client) until st's description is known, if d has one to compare. */
/* The client's statement has a description and the server's is still in flight: a Bind or
 * Describe of it waits until they can be compared. */
bool must_hold(const struct ps_def *d, const struct srv_stmt *st)
{
	return d->desc && !st->desc;
}

void send_or_hold(struct server *s, uint8_t kind, struct buf *m, const struct ps_def *d,
		  const struct srv_stmt *st)
{
	if (must_hold(d, st)) {
		struct ps_held *h = xcalloc(1, sizeof(*h));
		h->kind = kind;
		h->len = buf_avail(m);
		h->msg = xmalloc(h->len);
		memcpy(h->msg, buf_head(m), h->len);
		h->def = def_dup(d);
		s->ps->held = h;
		/* PostgreSQL keeps its replies until a Sync or Flush: ask for them now. */
		proto_begin(&s->c.out, PQMSG_FLUSH);
		proto_finish(&s->c.out);
	} else {
		buf_append(&s->c.out, buf_head(m), buf_avail(m));
		op_push_plain(s->ps, kind, st->id); /* no copy of d per Bind: by id */
	}
	buf_free(m);
}

/* The replies to an injected Describe: its ParameterDescription, then RowDescription/NoData. */
void describe_params(struct ps_server *ps, const uint8_t *msg, size_t len)
{
	ps->desc_acc = hash_more(HASH64_SEED, msg + 5, len - 5);
	buf_consume(&ps->pdesc, buf_avail(&ps->pdesc));
	buf_append(&ps->pdesc, msg, len);
}

/* A Close of the statement sent since keeps a copy of it, to put back if the server skips the
 * Close: that copy takes the description too. */
static void describe_queued(struct ps_server *ps, const struct ps_op *op, uint64_t h)
{
	for (size_t i = ps->qhead + 1; op->cname && i < ps->qlen; i++) {
		struct ps_op *q = &ps->q[i];
		if (q->def && !q->def->desc && q->cname && strcmp(q->cname, op->cname) == 0 &&
		    def_same(q->def, op->def))
			def_learn(q->def, h, buf_head(&ps->pdesc) + 5, buf_avail(&ps->pdesc) - 5);
	}
}

void describe_done(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
{
	struct ps_server *ps = s->ps;
	struct ps_op *op = op_head(ps);
	uint64_t h = type == 'T' ? desc_row(ps->desc_acc, msg + 5, len - 5)
				 : hash_more(ps->desc_acc, "n", 1);
	h += !h; /* 0 means unknown */
	struct srv_stmt *st = srv_lookup(ps, op->def);
	if (st && st->id == op->srv_id)
		st->desc = h;
	struct ps_def *cd = op->cname && s->client ? client_lookup(s->client, op->cname) : NULL;
	if (cd && !cd->desc && def_same(cd, op->def))
		def_learn(cd, h, buf_head(&ps->pdesc) + 5, buf_avail(&ps->pdesc) - 5);
	describe_queued(ps, op, h);
	op_pop(ps);
	held_release(s);
}

bool ps_holding(const struct server *s)
{
	/* named first: on most messages nothing is in doubt, and the call is skipped */
	return s->ps && (s->ps->held || s->ps->head_wait || (s->ps->named && name_in_doubt(s)));
}

bool ps_take_resume(struct server *s)
{
	bool r = s->ps && s->ps->resume;
	if (r)
		s->ps->resume = false;
	return r;
}

bool ps_stale_reply(struct server *s, struct buf *out)
{
	struct ps_server *ps = s->ps;
	if (!ps || !ps->stale_error)
		return false;
	uint8_t what = ps->stale_error;
	ps->stale_error = 0;
	if (what == PQMSG_PARSE) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "out of memory: this client's prepared statements would exceed "
			 "max_client_prepared_bytes (%" PRId64 " bytes); close some first",
			 config_current()->max_client_prepared_bytes);
		proto_write_error(out, "ERROR", "53200", msg);
		return true;
	}
	if (what != PQMSG_BIND) /* a Describe: PostgreSQL sends the parameters first */
		buf_append(out, buf_head(&ps->pdesc), buf_avail(&ps->pdesc));
	if (what == 't')
		return false; /* and then the server's own error */
	proto_write_error(out, "ERROR", "0A000", "cached plan must not change result type");
	return true;
}

/* Is the cache over its bounds (a statement larger than max_prepared_statement_bytes is added
 * all the same; a reload may lower them)? */
static bool srv_over(const struct ps_server *ps, const struct config *cfg)
{
	return ps->stmts.n > (size_t)cfg->max_prepared_statements ||
	       ps->nbytes > (size_t)cfg->max_prepared_statement_bytes;
}

/* Over the bounds: statements not in use leave the cache, and Shoal's memory, now; the server
 * closes them when next safe (srv_close_retired). Out of line: seldom needed, see
 * ps_server_idle. */
static __attribute__((noinline)) void srv_trim(struct ps_server *ps, const struct config *cfg)
{
	struct list *pos = ps->lru.next;
	while (pos != &ps->lru && srv_over(ps, cfg)) {
		struct srv_stmt *st = container_of(pos, struct srv_stmt, lru);
		pos = pos->next;
		if (!srv_in_use(ps, st))
			srv_retire(ps, st);
	}
}

void ps_server_idle(struct server *s)
{
	if (!s->ps)
		return;
	s->ps->xact++;
	/* The transaction's end dropped the unnamed portal too, if nothing was sent since. */
	if (s->pending == 0 && !s->ext_open)
		s->ps->unnamed_portal = 0;
	/* Asked here first, as most transactions find nothing to trim; an empty cache (simple-
	 * protocol traffic) needs not even the configuration. */
	if (s->pending == 0 && !s->ps->held && !list_empty(&s->ps->lru) &&
	    srv_over(s->ps, config_current()))
		srv_trim(s->ps, config_current());
}

void ps_server_query_sent(struct server *s)
{
	if (s->ps)
		s->ps->unnamed_owner = 0;
}

void ps_server_forget(struct server *s)
{
	struct ps_server *ps = s->ps;
	if (!ps)
		return;
	while (!list_empty(&ps->lru))
		srv_drop(ps, container_of(ps->lru.next, struct srv_stmt, lru));
	while (!list_empty(&ps->retired))
		srv_drop(ps, container_of(ps->retired.next, struct srv_stmt, lru));
}

void ps_client_forget(struct client *c)
{
	struct hmap *m = c->ps ? &c->ps->names : NULL;
	for (size_t i = 0; m && i < m->nb; i++)
		while (m->b[i])
			def_free(hmap_del(m, m->b[i]));
	if (c->ps) {
		c->ps->nbytes = 0;
		c->ps->last = NULL;
	}
}

