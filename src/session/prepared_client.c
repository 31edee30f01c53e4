/* prepared_client.c: a client's Parse, Bind, Describe, Close and Execute through the
 * statement cache of its server (see prepared.h). */
#include "prepared_int.h"
#include "list.h"
#include "log.h"
#include "objects.h"
#include "pool.h"
#include "proto.h"
#include "worker.h"
#include "server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- client messages ---------------------------------------------------------------------- */

static void emit_now(struct client *c, struct server *s)
{
	ps_emit(s, c);
}

/* The client's unnamed statement changes; the server's is the client's from now on. */
static void parse_unnamed(struct client *c, struct server *s, const uint8_t *body, size_t len)
{
	struct ps_client *pc = ps_cli(c);
	op_push(s->ps, OP_PARSE_UNNAMED, NULL, pc->unnamed, 0);
	def_free(pc->unnamed);
	pc->unnamed = def_new(body, len);
	s->ps->unnamed_owner = unnamed_changed(pc);
}

/* The client's unnamed statement is gone, and so is the server's. */
static void forget_unnamed(struct client *c, struct server *s)
{
	uint64_t none = 0; /* unknown */
	/* A client that never used the extended protocol has no unnamed statement to forget (and
	 * gets no state for it: simple-protocol traffic); the server's is unknown then, so a
	 * later Bind of it is preceded by a Close (unnamed_ensure), as for another client's. */
	if (c && c->ps) {
		struct ps_client *pc = ps_cli(c);
		def_free(pc->unnamed);
		pc->unnamed = NULL;
		none = unnamed_changed(pc);
	}
	if (s->ps)
		s->ps->unnamed_owner = none;
}

/* A Bind or Describe of the unnamed statement: the server's must be this client's. Another
 * client's (or one from before a Query destroyed it) is replaced by the client's own, or closed
 * so that the server answers 26000 as PostgreSQL would. */
void unnamed_ensure(struct client *c, struct server *s)
{
	struct ps_server *ps = s->ps;
	struct ps_client *pc = ps_cli(c);
	if (!pc->unnamed_token)
		unnamed_changed(pc);
	if (ps->unnamed_owner == pc->unnamed_token)
		return;
	if (pc->unnamed) {
		put_parse(&s->c.out, "", pc->unnamed);
		op_push_plain(ps, OP_INJ_PARSE_UNNAMED, 0);
	} else {
		put_close(&s->c.out, 'S', "");
		op_push_plain(ps, OP_INJ_CLOSE_UNNAMED, 0);
	}
	ps->unnamed_owner = pc->unnamed_token;
}

/* Would a new statement of cost bytes take the client past max_client_prepared_bytes? */
bool client_over_cap(struct client *c, size_t cost)
{
	int64_t cap = config_current()->max_client_prepared_bytes;
	return cap > 0 && ps_cli(c)->nbytes + cost > (size_t)cap;
}

/* Refuse the client's Parse (53200, ps_stale_reply) the way PostgreSQL refuses one: the server
 * fails a Parse Shoal sends in its place (a syntax error under a name nothing uses), so that it
 * skips to the Sync and aborts the transaction as for any error in extended protocol. */
static void parse_refuse(struct client *c, struct server *s)
{
	static const uint8_t body[] = "SHOAL_OUT_OF_MEMORY\0\0"; /* query, Int16 0 types */
	char sname[32];
	snprintf(sname, sizeof(sname), "SHOAL_x%" PRIu64, ++s->ps->next_id);
	struct ps_def *d = def_new(body, sizeof(body));
	put_parse(&s->c.out, sname, d);
	def_free(d);
	op_push_plain(s->ps, OP_PARSE, 0);
	s->ps->q[s->ps->qlen - 1].stale = true;
	if (!c->ps->warned)
		log_warn("%s: Parse refused: its prepared statements would exceed "
			 "max_client_prepared_bytes (%zu bytes held)",
			 c->c.name, c->ps->nbytes);
	c->ps->warned = true;
}

static __attribute__((noinline)) void on_parse(struct client *c, struct server *s,
					       const uint8_t *msg, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	const char *name = pqr_cstr(&r);
	if (!name || !*name) {
		if (name)
			parse_unnamed(c, s, msg + 5 + r.pos, len - 5 - r.pos);
		else
			op_push_plain(s->ps, OP_PARSE, 0); /* malformed: the server says so */
		buf_append(&s->c.out, msg, len);
		return;
	}
	struct ps_def *d = def_new(msg + 5 + r.pos, len - 5 - r.pos);
	struct ps_def *old = client_lookup(c, name);
	char sname[32];
	if (known_aborted(s)) {
		/* Let the server give PostgreSQL's own answer (42601, 25P02; or success for
		 * ROLLBACK and the like) under a name nothing else uses; for a live name, under
		 * its server name if the server has it, so that a ROLLBACK gets 42P05 as in
		 * PostgreSQL. */
		struct srv_stmt *live = old && !old->priv ? srv_lookup(s->ps, old) : NULL;
		if (live)
			srv_name(live->id, sname, sizeof(sname));
		else
			snprintf(sname, sizeof(sname), "SHOAL_x%" PRIu64, ++s->ps->next_id);
		put_parse(&s->c.out, sname, d);
		op_push(s->ps, OP_PARSE, old ? NULL : name, NULL, 0);
		if (!old)
			client_add(c, name, d);
		else
			def_free(d);
		return;
	}
	if (old) {
		/* PostgreSQL refuses a second Parse of a live name (42P05), once the text is found
		 * valid: let the server say it, by parsing under a name it has. */
		srv_name(srv_placeholder(s, "", (const uint8_t *)"\0", 2), sname, sizeof(sname));
		put_parse(&s->c.out, sname, d);
		op_push_plain(s->ps, OP_PARSE, 0);
		def_free(d);
		return;
	}
	if (client_over_cap(c, client_cost(strlen(name), d))) {
		def_free(d);
		parse_refuse(c, s);
		return;
	}
	/* Prepared afresh even if the server has the text: its statement may be stale (its
	 * tables changed the result type since), which a fresh Parse never is. */
	client_add(c, name, d);
	struct srv_stmt *st = srv_lookup(s->ps, d);
	if (st)
		srv_retire(s->ps, st);
	ps_count(&s->pool->ps_misses);
	st = srv_add(s, d);
	srv_name(st->id, sname, sizeof(sname));
	put_parse(&s->c.out, sname, d);
	op_push(s->ps, OP_PARSE, name, d, st->id);
	srv_describe(s, st, name, d);
}

/* The NUL-terminated string at body[pos..len): its length in *n, or NULL if unterminated. A
 * loop, not memchr: portal and statement names are short (the portal mostly empty). */
static const char *cstr_at(const uint8_t *body, size_t len, size_t pos, size_t *n)
{
	for (size_t i = pos; i < len; i++) {
		if (!body[i]) {
			*n = i - pos;
			return (const char *)body + pos;
		}
	}
	return NULL;
}

/* A Bind of portal (plen bytes) from the server statement sname (slen bytes); rest: the
 * client's Bind after the statement name. One reservation, lengths known: a Bind per
 * transaction comes this way. */
static void put_bind(struct buf *o, const char *portal, size_t plen, const char *sname, size_t slen,
		     const uint8_t *rest, size_t n)
{
	size_t len = 4 + plen + 1 + slen + 1 + n;
	buf_reserve(o, 1 + len + SRV_NAME_MAX); /* the name is copied whole: a fixed-size copy */
	uint8_t *p = o->data + o->len;
	uint32_t be = htonl((uint32_t)len);
	p[0] = PQMSG_BIND;
	memcpy(p + 1, &be, 4);
	if (plen)
		memcpy(p + 5, portal, plen);
	p[5 + plen] = 0;
	memcpy(p + 5 + plen + 1, sname, SRV_NAME_MAX);
	p[5 + plen + 1 + slen] = 0;
	memcpy(p + 5 + plen + 1 + slen + 1, rest, n);
	o->len += 1 + len;
}

/* A Bind of the client's statement d on the server: its statement there, prepared first if
 * the server lacks it. */
static void bind_stmt(struct server *s, const char *portal, size_t plen, const char *name,
		      struct ps_def *d, const uint8_t *rest, size_t n)
{
	if (d->priv) {
		char sname[SRV_NAME_MAX];
		priv_name(d->priv, sname, sizeof(sname));
		put_bind(&s->c.out, portal, plen, sname, strlen(sname), rest, n);
		op_push_plain(s->ps, OP_BIND, 0);
		return;
	}
	struct srv_stmt *st = srv_ensure(s, d, name);
	if (*portal)
		st->bound_in = s->ps->xact;
	else
		s->ps->unnamed_portal = st->id;
	if (!must_hold(d, st)) { /* the common case: written in place, no copy */
		put_bind(&s->c.out, portal, plen, st->name, st->nlen, rest, n);
		op_push_plain(s->ps, OP_BIND, st->id);
		return;
	}
	struct buf m = {0};
	put_bind(&m, portal, plen, st->name, st->nlen, rest, n);
	send_or_hold(s, OP_BIND, &m, d, st);
}

static void on_bind(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	const uint8_t *body = msg + 5;
	size_t blen = len - 5, plen = 0, nlen = 0;
	const char *portal = cstr_at(body, blen, 0, &plen);
	const char *name = portal ? cstr_at(body, blen, plen + 1, &nlen) : NULL;
	struct ps_def *d = name && nlen ? client_lookup_n(c, name, nlen) : NULL;
	if (name && !nlen)
		unnamed_ensure(c, s);
	if (!d && portal && !plen)
		s->ps->unnamed_portal = 0;
	if (!d) {
		/* Unnamed, unknown (the server answers 26000 with the client's name) or malformed.
		 */
		buf_append(&s->c.out, msg, len);
		op_push_plain(s->ps, OP_BIND, 0);
		return;
	}
	size_t at = plen + 1 + nlen + 1;
	bind_stmt(s, portal, plen, name, d, body + at, blen - at);
}

/* A Describe of a statement, or a malformed one. */
static __attribute__((noinline)) void describe_stmt(struct client *c, struct server *s,
						    const uint8_t *msg, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	uint8_t what = pqr_u8(&r);
	const char *name = pqr_cstr(&r);
	struct ps_def *d = what == 'S' && name && *name ? client_lookup(c, name) : NULL;
	if (what == 'S' && name && !*name)
		unnamed_ensure(c, s);
	if (!d) {
		buf_append(&s->c.out, msg, len);
		op_push_plain(s->ps, OP_DESCRIBE, 0);
		return;
	}
	char sname[32];
	if (d->priv) {
		priv_name(d->priv, sname, sizeof(sname));
		put_describe_stmt(&s->c.out, sname);
		op_push_plain(s->ps, OP_DESCRIBE, 0);
		return;
	}
	struct srv_stmt *st = srv_ensure(s, d, name);
	if (!must_hold(d, st)) {
		put_describe_stmt(&s->c.out, st->name);
		op_push_plain(s->ps, OP_DESCRIBE, st->id);
		return;
	}
	struct buf m = {0};
	put_describe_stmt(&m, st->name);
	send_or_hold(s, OP_DESCRIBE, &m, d, st);
}

static void on_describe(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	if (len > 5 && msg[5] != 'S') { /* a portal's (each -M prepared transaction): as it is */
		buf_append(&s->c.out, msg, len);
		op_push_plain(s->ps, OP_DESCRIBE, 0);
		return;
	}
	describe_stmt(c, s, msg, len);
}

static __attribute__((noinline)) void on_close(struct client *c, struct server *s,
					       const uint8_t *msg, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	uint8_t what = pqr_u8(&r);
	const char *name = pqr_cstr(&r);
	if (what == 'S' && name && !*name) {
		struct ps_client *pc = ps_cli(c);
		op_push(s->ps, OP_CLOSE_UNNAMED, NULL, pc->unnamed, 0);
		forget_unnamed(c, s);
		buf_append(&s->c.out, msg, len);
		return;
	}
	if (what != 'S' || !name) {
		buf_append(&s->c.out, msg, len);
		op_push_plain(s->ps, OP_CLOSE, 0);
		return;
	}
	struct ps_def *d = client_remove(c, name);
	if (known_aborted(s)) {
		/* PostgreSQL refuses it (25P02): let the server say so, on a name nothing uses. */
		char sname[32];
		snprintf(sname, sizeof(sname), "SHOAL_x%" PRIu64, ++s->ps->next_id);
		put_close(&s->c.out, 'S', sname);
		op_push(s->ps, OP_CLOSE_NAMED, d ? name : NULL, d, 0);
		def_free(d);
		return;
	}
	if (d && d->priv) { /* the server's statement is the client's alone */
		char sname[32];
		priv_name(d->priv, sname, sizeof(sname));
		put_close(&s->c.out, 'S', sname);
		op_push(s->ps, OP_CLOSE_NAMED, name, d, 0);
		def_free(d);
		return;
	}
	/* The server keeps the statement for other clients; closing an unknown name is not an
	 * error in PostgreSQL either. */
	op_push(s->ps, OP_SYN_CLOSE, d ? name : NULL, d, 0);
	def_free(d);
	emit_now(c, s);
}

void ps_client_msg(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	ps_srv(s);
	if (s->ps->skipping) {
		buf_append(&s->c.out, msg, len); /* the server discards it: no reply, no effect */
		return;
	}
	switch (msg[0]) {
	case PQMSG_PARSE:
		on_parse(c, s, msg, len);
		break;
	case PQMSG_BIND:
		on_bind(c, s, msg, len);
		break;
	case PQMSG_DESCRIBE:
		on_describe(c, s, msg, len);
		break;
	case PQMSG_CLOSE:
		on_close(c, s, msg, len);
		break;
	default:
		buf_append(&s->c.out, msg, len);
		break;
	}
}

void ps_client_note(struct server *s, uint8_t type)
{
	if (!s->ps && !ps_enabled(s))
		return;
	struct ps_server *ps = ps_srv(s);
	if (type == PQMSG_SYNC && s->copy_in)
		return; /* ignored by the server in copy-in mode */
	if (ps->skipping) {
		if (type == PQMSG_SYNC) {
			ps->skipping = false;
			op_push_plain(ps, OP_SYNC, 0);
		}
		return;
	}
	switch (type) {
	case PQMSG_EXECUTE:
		op_push_plain(ps, OP_EXECUTE, 0);
		break;
	case PQMSG_SYNC:
		op_push_plain(ps, OP_SYNC, 0);
		break;
	case PQMSG_QUERY:
		if (ps->qhead == ps->qlen && ps->qcap && !(s->client && s->client->ps)) {
			/* simple-protocol traffic: the queue's one op, nothing to move or copy */
			ps->qhead = 0;
			ps->qlen = 1;
			ps->q[0] = (struct ps_op){.kind = OP_QUERY};
			ps->unnamed_owner = 0; /* as forget_unnamed() for a client without state */
			break;
		}
		/* A simple Query destroys the unnamed statement, unless the server skips it: its op
		 * keeps the statement (moved, not copied) to give it back then. */
		op_push_plain(ps, OP_QUERY, 0);
		if (s->client && s->client->ps) {
			ps->q[ps->qlen - 1].def = s->client->ps->unnamed;
			s->client->ps->unnamed = NULL;
		}
		forget_unnamed(s->client, s);
		break;
	case PQMSG_FUNCTION_CALL:
		op_push_plain(ps, OP_FUNC, 0);
		break;
	default:
		break;
	}
}

/* The statement name the message at m names (Parse, Bind, Describe or Close of a statement),
 * or NULL: another message, the unnamed statement, or not all of its head read yet. */
static const char *msg_stmt_name(const uint8_t *m, size_t avail)
{
	if (avail < 6)
		return NULL;
	size_t len = ((size_t)m[1] << 24 | (size_t)m[2] << 16 | (size_t)m[3] << 8 | m[4]) + 1;
	if (len < 6)
		return NULL;
	struct pq_reader r;
	pqr_init(&r, m + 5, (avail < len ? avail : len) - 5);
	switch (m[0]) {
	case PQMSG_BIND:
		if (!pqr_cstr(&r))
			return NULL;
		break;
	case PQMSG_DESCRIBE:
	case PQMSG_CLOSE:
		if (pqr_u8(&r) != 'S')
			return NULL;
		break;
	case PQMSG_PARSE:
		break;
	default:
		return NULL;
	}
	const char *name = pqr_cstr(&r);
	return name && *name ? name : NULL;
}

/* PostgreSQL skips a Parse or Close that follows an error up to the Sync; Shoal's map of the
 * client's names took it as done when sent. A message of the same batch is skipped with it, so
 * it is no matter; one after that Sync must wait until the server has answered it (ParseComplete,
 * or the error that rolls it back, op_rollback), or it would see a statement that does not
 * exist (Bind: the server's name in its 26000; Parse: 42P05 where PostgreSQL succeeds). */
bool name_in_doubt(const struct server *s)
{
	struct ps_server *ps = s->ps;
	const struct client *c = s->client;
	if (!ps || !ps->named || ps->skipping || !c || c->c.fwd_left)
		return false;
	const char *name = msg_stmt_name(buf_head(&c->c.in), buf_avail(&c->c.in));
	if (!name)
		return false;
	bool found = false;
	for (size_t i = ps->qhead; i < ps->qlen; i++) {
		const struct ps_op *op = &ps->q[i];
		if (found && op->kind == OP_SYNC) {
			ps->doubt_wait = true;
			return true;
		}
		found = found || (op_names(op) && strcmp(op->cname, name) == 0);
	}
	return false;
}
