/* prepared_stream.c: the heads of Bind and Parse messages too large to read whole
 * (message_inspect_limit) with prepared-statement rewriting on: only the names are rewritten,
 * the rest is forwarded as it arrives (see prepared.h). */
#include "prepared_int.h"
#include "log.h"
#include "objects.h"
#include "proto.h"
#include "server.h"

#include <string.h>

#define PS_BIND_HEAD_MAX (64 * 1024) /* portal and statement name, at most */

/* A large Bind of d, whose description must be compared with the server statement's first
 * (as send_or_hold holds a whole one): have the server describe it, and read no more of the
 * client (ps_holding) until held_release says it is known. */
static enum ps_bind_way bind_head_wait(struct server *s, const struct ps_def *d, const char *name)
{
	struct ps_server *ps = s->ps;
	if (!srv_lookup(ps, d))
		srv_ensure(s, d, name);
	if (!describe_pending(ps))
		return PS_BIND_WHOLE; /* nothing to wait for: on_bind decides */
	ps->head_wait = true;
	proto_begin(&s->c.out, PQMSG_FLUSH);
	proto_finish(&s->c.out);
	return PS_BIND_MORE;
}

/* The large Bind's statement is described otherwise on this server: bind the parameters
 * instead to a statement that fails as PostgreSQL would have refused it (refuse_bind). */
static enum ps_bind_way bind_head_refuse(struct server *s, const uint8_t *msg, const uint8_t *z2,
					 size_t total, size_t *head)
{
	char sname[32];
	srv_name(refuse_placeholder(s), sname, sizeof(sname));
	const char *portal = (const char *)msg + 5;
	*head = (size_t)(z2 + 1 - msg);
	size_t plen = strlen(portal) + 1, slen = strlen(sname) + 1;
	struct buf *o = &s->c.out;
	proto_put_u8(o, PQMSG_BIND);
	proto_put_u32(o, (uint32_t)(4 + plen + slen + (total - *head)));
	proto_put_bytes(o, portal, plen);
	proto_put_bytes(o, sname, slen);
	op_push_plain(s->ps, OP_BIND, 0);
	s->ps->q[s->ps->qlen - 1].stale = true;
	log_debug("%s: prepared statement described otherwise than the client's: refused",
		  s->c.name);
	return PS_BIND_STREAM;
}

/* A Bind is its statement's name, then the parameters: only the head is rewritten, so a Bind
 * too large to read whole (message_inspect_limit) streams through, holding at most a read of
 * it. Held or refused Binds (a description to check first) are still read whole. */
enum ps_bind_way ps_bind_head(struct client *c, struct server *s, const uint8_t *msg,
			      size_t avail, size_t total, size_t *head)
{
	struct ps_server *ps = ps_srv(s);
	bool check = ps->head_check;
	ps->head_check = false;
	const uint8_t *body = msg + 5, *end = msg + avail;
	const uint8_t *z1 = memchr(body, 0, (size_t)(end - body));
	const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
	if (!z2 && avail < PS_BIND_HEAD_MAX && avail < total)
		return PS_BIND_MORE;
	if (!z2) { /* malformed, or names past all reason: the server says so */
		if (!ps->skipping)
			op_push_plain(ps, OP_BIND, 0);
		return PS_BIND_RAW;
	}
	const char *portal = (const char *)body, *name = (const char *)z1 + 1;
	struct ps_def *d = *name ? client_lookup(c, name) : NULL;
	if (ps->skipping || !d) {
		/* Skipped by the server, unnamed or unknown (26000 with the client's name): as is,
		 * the way ps_client_msg and on_bind pass them. */
		if (ps->skipping)
			return PS_BIND_RAW;
		if (!*name)
			unnamed_ensure(c, s);
		if (!*portal)
			ps->unnamed_portal = 0;
		op_push_plain(ps, OP_BIND, 0);
		return PS_BIND_RAW;
	}
	char sname[32];
	uint64_t id = 0;
	if (d->priv) {
		priv_name(d->priv, sname, sizeof(sname));
		if (!*portal)
			ps->unnamed_portal = 0;
	} else {
		struct srv_stmt *st = srv_lookup(ps, d);
		if (d->desc && (!st || !st->desc))
			return bind_head_wait(s, d, name);
		if (check && st->desc != d->desc)
			return bind_head_refuse(s, msg, z2, total, head);
		st = srv_ensure(s, d, name);
		if (*portal)
			st->bound_in = ps->xact;
		else
			ps->unnamed_portal = st->id;
		srv_name(st->id, sname, sizeof(sname));
		id = st->id;
	}
	*head = (size_t)(z2 + 1 - msg);
	size_t plen = strlen(portal) + 1, slen = strlen(sname) + 1;
	uint32_t len = (uint32_t)(4 + plen + slen + (total - *head));
	struct buf *o = &s->c.out;
	proto_put_u8(o, PQMSG_BIND);
	proto_put_u32(o, len);
	proto_put_bytes(o, portal, plen);
	proto_put_bytes(o, sname, slen);
	op_push_plain(ps, OP_BIND, id);
	return PS_BIND_STREAM;
}

/* Does a message awaiting its reply add or remove the client's statement name (an error may
 * still undo it)? */
static bool name_pending(const struct ps_server *ps, const char *name)
{
	for (size_t i = ps->qhead; i < ps->qlen; i++)
		if (ps->q[i].cname && strcmp(ps->q[i].cname, name) == 0)
			return true;
	return false;
}

/* A Parse too large to read whole, with its text not kept. */
static enum ps_bind_way parse_head_named(struct client *c, struct server *s, const char *name,
					 size_t rest)
{
	struct ps_server *ps = s->ps;
	struct ps_def *old = client_lookup(c, name);
	char sname[32];
	/* Answered as on_parse answers it, when the whole has arrived: in a failed transaction,
	 * over max_client_prepared_bytes, or while whether the name is live is still unknown. */
	if (known_aborted(s) || client_over_cap(c, strlen(name)) || name_pending(ps, name))
		return PS_BIND_WHOLE;
	if (old) { /* 42P05 once the text is found valid, as in on_parse */
		srv_name(srv_placeholder(s, "", (const uint8_t *)"\0", 2), sname, sizeof(sname));
		op_push_plain(ps, OP_PARSE, 0);
	} else {
		struct ps_def *d = def_new((const uint8_t *)"", 0);
		d->priv = ++ps->next_id;
		priv_name(d->priv, sname, sizeof(sname));
		client_add(c, name, d);
		op_push(ps, OP_PARSE, name, NULL, 0);
	}
	size_t slen = strlen(sname) + 1;
	proto_put_u8(&s->c.out, PQMSG_PARSE);
	proto_put_u32(&s->c.out, (uint32_t)(4 + slen + rest));
	proto_put_bytes(&s->c.out, sname, slen);
	return PS_BIND_STREAM;
}

/* A Parse is its statement's name, then the text: a Parse too large to read whole
 * (message_inspect_limit) streams through under a private name (its client is pinned: the
 * text cannot be prepared on another server), or unchanged for the unnamed statement. */
enum ps_bind_way ps_parse_head(struct client *c, struct server *s, const uint8_t *msg,
			       size_t avail, size_t total, size_t *head)
{
	struct ps_server *ps = ps_srv(s);
	const uint8_t *z = memchr(msg + 5, 0, avail - 5);
	if (!z && avail < PS_BIND_HEAD_MAX && avail < total)
		return PS_BIND_MORE;
	if (ps->skipping)
		return PS_BIND_RAW; /* discarded by the server */
	if (!z) { /* malformed, or a name past all reason: the server says so */
		op_push_plain(ps, OP_PARSE, 0);
		return PS_BIND_RAW;
	}
	const char *name = (const char *)msg + 5;
	if (*name) {
		*head = (size_t)(z + 1 - msg);
		return parse_head_named(c, s, name, total - *head);
	}
	/* The server's unnamed statement is the client's, which Shoal cannot prepare elsewhere:
	 * the client keeps this server. */
	struct ps_client *pc = ps_cli(c);
	op_push(ps, OP_PARSE_UNNAMED, NULL, pc->unnamed, 0);
	def_free(pc->unnamed);
	pc->unnamed = NULL;
	ps->unnamed_owner = unnamed_changed(pc);
	return PS_BIND_RAW;
}
