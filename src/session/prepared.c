/* prepared.c: protocol-level prepared statements across pooled servers (see prepared.h). */
#include "prepared.h"
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

/* A statement's definition: the Parse body after the name (query, NUL, Int16 n, n OIDs). */
struct ps_def {
	uint64_t hash;
	uint32_t len;
	uint8_t body[];
};

/* A chained hash map over byte keys. */
struct hent {
	struct hent *next;
	uint64_t hash;
	uint32_t klen;
	void *val;
	uint8_t key[];
};

struct hmap {
	struct hent **b;
	size_t nb, n;
};

/* One statement prepared on a server. */
struct srv_stmt {
	uint64_t id; /* server-side name SHOAL_<id> */
	struct list lru;
	struct hent *e;	   /* its entry in ps_server.stmts (key: the definition) */
	uint64_t bound_in; /* ps_server.xact when a Bind to a named portal last used it */
};

enum op_kind {
	OP_PARSE, /* client Parse, forwarded (maybe renamed) */
	OP_BIND,
	OP_DESCRIBE,
	OP_EXECUTE,
	OP_CLOSE, /* client Close of a portal or the unnamed statement, forwarded */
	OP_SYNC,
	OP_QUERY,
	OP_FUNC,
	OP_INJ_PARSE,	      /* injected: its ParseComplete is swallowed */
	OP_INJ_CLOSE,	      /* injected eviction: its CloseComplete is swallowed */
	OP_PARSE_UNNAMED,     /* client Parse of the unnamed statement (def: the client's previous
			       * one, srv_id: the server's previous owner, restored if skipped) */
	OP_INJ_PARSE_UNNAMED, /* injected: the client's unnamed statement, on another server */
	OP_CLOSE_UNNAMED,     /* client Close of the unnamed statement (def, srv_id: as above) */
	OP_CLOSE_NAMED,	      /* client Close of a named statement sent on (cname/def: undo) */
	OP_SYN_PARSE,	      /* answered locally: ParseComplete emitted in its turn */
	OP_SYN_CLOSE,	      /* answered locally: CloseComplete emitted in its turn */
};

/* A message sent to the server whose reply is awaited, and how to undo what it did to the
 * name maps if the server skips it or refuses it. */
struct ps_op {
	uint8_t kind;
	char *cname; /* client statement name it added (PARSE/SYN_PARSE) or removed (SYN_CLOSE) */
	struct ps_def *def; /* that statement's definition (owned) */
	uint64_t srv_id;    /* server statement it added (PARSE/INJ_PARSE), 0: none */
};

struct ps_server {
	struct hmap stmts; /* definition -> struct srv_stmt */
	struct list lru;   /* least recently used first */
	size_t nbytes;
	uint64_t next_id;
	struct ps_op *q; /* replies awaited, oldest at q[qhead] */
	size_t qhead, qlen, qcap;
	bool skipping; /* an error came before the Sync was sent: the server skips until it */
	uint64_t unnamed_owner;	 /* id of the client whose unnamed statement the server holds, 0 */
	uint64_t xact;		 /* counts transactions ended (ReadyForQuery 'I') */
	uint64_t unnamed_portal; /* statement the unnamed portal was last bound from, 0: none */
};

struct ps_client {
	struct hmap names;	/* client statement name -> struct ps_def */
	struct ps_def *unnamed; /* its unnamed statement (it outlives transactions), or NULL */
};

/* ---- hash map ---------------------------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static struct hent *hmap_get(const struct hmap *m, const void *k, size_t n, uint64_t h)
{
	if (!m->nb)
		return NULL;
	for (struct hent *e = m->b[h % m->nb]; e; e = e->next)
		if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0)
			return e;
	return NULL;
}

static void hmap_grow(struct hmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	struct hent **b = xcalloc(nb, sizeof(*b));
	for (size_t i = 0; i < m->nb; i++) {
		for (struct hent *e = m->b[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash % nb];
			b[e->hash % nb] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

static struct hent *hmap_put(struct hmap *m, const void *k, size_t n, uint64_t h, void *val)
{
	if (m->n >= m->nb)
		hmap_grow(m);
	struct hent *e = xmalloc(sizeof(*e) + n);
	e->hash = h;
	e->klen = (uint32_t)n;
	e->val = val;
	memcpy(e->key, k, n);
	e->next = m->b[h % m->nb];
	m->b[h % m->nb] = e;
	m->n++;
	return e;
}

/* Unlink and free e; returns its value. */
static void *hmap_del(struct hmap *m, struct hent *e)
{
	struct hent **pp = &m->b[e->hash % m->nb];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	m->n--;
	void *val = e->val;
	free(e);
	return val;
}

/* ---- definitions and names --------------------------------------------------------------- */

static struct ps_def *def_new(const uint8_t *body, size_t len)
{
	struct ps_def *d = xmalloc(sizeof(*d) + len);
	d->len = (uint32_t)len;
	d->hash = hash_bytes(body, len);
	memcpy(d->body, body, len);
	return d;
}

static struct ps_def *def_dup(const struct ps_def *d)
{
	return def_new(d->body, d->len);
}

/* "SHOAL_<id>": formatted on every Bind, without snprintf. */
static void srv_name(uint64_t id, char *out, size_t n)
{
	char digits[21];
	u64_put(digits, id);
	str_cat(out, n, str_cat(out, n, 0, "SHOAL_"), digits);
}

/* Decided when the pool was created (ledger.c), whatever later reloads say: a client's names
 * and each server's reply queue stay in step for the pool's whole life. */
bool ps_enabled(const struct server *s)
{
	return s->pool->ps_on;
}

static struct ps_server *ps_srv(struct server *s)
{
	if (!s->ps) {
		s->ps = xcalloc(1, sizeof(*s->ps));
		list_init(&s->ps->lru);
		s->ps->xact = 1; /* bound_in 0: never bound */
	}
	return s->ps;
}

static struct ps_client *ps_cli(struct client *c)
{
	if (!c->ps)
		c->ps = xcalloc(1, sizeof(*c->ps));
	return c->ps;
}

static struct ps_def *client_lookup(struct client *c, const char *name)
{
	struct hent *e =
	    hmap_get(&ps_cli(c)->names, name, strlen(name), hash_bytes(name, strlen(name)));
	return e ? e->val : NULL;
}

static void client_add(struct client *c, const char *name, struct ps_def *d)
{
	size_t n = strlen(name);
	hmap_put(&ps_cli(c)->names, name, n, hash_bytes(name, n), d);
}

/* Remove name; returns its definition (caller owns) or NULL. */
static struct ps_def *client_remove(struct client *c, const char *name)
{
	struct hmap *m = &ps_cli(c)->names;
	struct hent *e = hmap_get(m, name, strlen(name), hash_bytes(name, strlen(name)));
	return e ? hmap_del(m, e) : NULL;
}

/* ---- the reply queue ---------------------------------------------------------------------- */

static void op_push(struct ps_server *ps, uint8_t kind, const char *cname, const struct ps_def *d,
		    uint64_t srv_id)
{
	if (ps->qhead > 0 && ps->qhead == ps->qlen)
		ps->qhead = ps->qlen = 0;
	if (ps->qlen == ps->qcap) {
		if (ps->qhead > 0) {
			memmove(ps->q, ps->q + ps->qhead, (ps->qlen - ps->qhead) * sizeof(*ps->q));
			ps->qlen -= ps->qhead;
			ps->qhead = 0;
		} else {
			ps->qcap = ps->qcap ? ps->qcap * 2 : 16;
			ps->q = xrealloc(ps->q, ps->qcap * sizeof(*ps->q));
		}
	}
	struct ps_op *op = &ps->q[ps->qlen++];
	op->kind = kind;
	op->cname = cname ? xstrdup(cname) : NULL;
	op->def = d ? def_dup(d) : NULL;
	op->srv_id = srv_id;
}

static struct ps_op *op_head(struct ps_server *ps)
{
	return ps && ps->qhead < ps->qlen ? &ps->q[ps->qhead] : NULL;
}

static void op_free(struct ps_op *op)
{
	free(op->cname);
	free(op->def);
	op->cname = NULL;
	op->def = NULL;
}

static void op_pop(struct ps_server *ps)
{
	op_free(&ps->q[ps->qhead++]);
}

bool ps_idle(const struct server *s)
{
	return !s->ps || (s->ps->qhead == s->ps->qlen && !s->ps->skipping);
}

/* ---- the server's cache ------------------------------------------------------------------- */

static struct srv_stmt *srv_lookup(struct ps_server *ps, const struct ps_def *d)
{
	struct hent *e = hmap_get(&ps->stmts, d->body, d->len, d->hash);
	return e ? e->val : NULL;
}

static void srv_drop(struct ps_server *ps, struct srv_stmt *st)
{
	ps->nbytes -= st->e->klen;
	list_del(&st->lru);
	hmap_del(&ps->stmts, st->e);
	free(st);
}

static void put_parse(struct buf *o, const char *name, const struct ps_def *d)
{
	proto_begin(o, PQMSG_PARSE);
	proto_put_str(o, name);
	proto_put_bytes(o, d->body, d->len);
	proto_finish(o);
}

static void put_close(struct buf *o, char what, const char *name)
{
	proto_begin(o, PQMSG_CLOSE);
	proto_put_u8(o, (uint8_t)what);
	proto_put_str(o, name);
	proto_finish(o);
}

/* Nothing in flight and the last ReadyForQuery said the transaction block failed: PostgreSQL
 * refuses every Parse (25P02) but for transaction control, and so a Close too. */
static bool known_aborted(const struct server *s)
{
	return s->pending == 0 && s->ready_status == 'E';
}

/* Make room for one more statement of len bytes: Close the least recently used ones. Only when
 * the server is known not to be in a failed transaction block, where the Close would fail in
 * the client's place; meanwhile the cache may exceed its bounds. */
/* Cache statistics per pool, for /metrics (pool_view.c): a hit is a statement the linked server
 * already had, a miss one that had to be prepared there, an eviction a Close to make room. */
static void ps_count(_Atomic uint64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static void srv_evict(struct server *s, size_t len)
{
	struct ps_server *ps = s->ps;
	const struct config *cfg = config_current();
	if (s->pending > 0 || s->ready_status == 'E')
		return;
	struct list *pos = ps->lru.next;
	/* Closing a statement closes the portals bound from it: a statement bound to a named portal
	 * in the current transaction, or to the unnamed portal since, stays (the cache may exceed
	 * its bounds meanwhile). */
	while (pos != &ps->lru && (ps->stmts.n + 1 > (size_t)cfg->max_prepared_statements ||
				   ps->nbytes + len > (size_t)cfg->max_prepared_statement_bytes)) {
		struct srv_stmt *st = container_of(pos, struct srv_stmt, lru);
		pos = pos->next;
		if (st->bound_in == ps->xact || st->id == ps->unnamed_portal)
			continue;
		char name[32];
		srv_name(st->id, name, sizeof(name));
		put_close(&s->c.out, 'S', name);
		op_push(ps, OP_INJ_CLOSE, NULL, NULL, 0);
		ps_count(&s->pool->ps_evictions);
		log_debug("%s: evicting prepared statement %s", s->c.name, name);
		srv_drop(ps, st);
	}
}

static struct srv_stmt *srv_add(struct server *s, const struct ps_def *d)
{
	struct ps_server *ps = s->ps;
	srv_evict(s, d->len);
	struct srv_stmt *st = xcalloc(1, sizeof(*st));
	st->id = ++ps->next_id;
	st->e = hmap_put(&ps->stmts, d->body, d->len, d->hash, st);
	list_append(&ps->lru, &st->lru);
	ps->nbytes += d->len;
	return st;
}

static void srv_touch(struct ps_server *ps, struct srv_stmt *st)
{
	list_del(&st->lru);
	list_append(&ps->lru, &st->lru);
}

/* The server statement for d, prepared there first (injected Parse) if it lacks it. */
static uint64_t srv_ensure(struct server *s, const struct ps_def *d)
{
	struct srv_stmt *st = srv_lookup(s->ps, d);
	if (st) {
		srv_touch(s->ps, st);
		ps_count(&s->pool->ps_hits);
		return st->id;
	}
	ps_count(&s->pool->ps_misses);
	st = srv_add(s, d);
	char name[32];
	srv_name(st->id, name, sizeof(name));
	put_parse(&s->c.out, name, d);
	op_push(s->ps, OP_INJ_PARSE, NULL, d, st->id);
	return st->id;
}

/* Forget server statement id for d (its Parse failed or was skipped: not on the server). */
static void srv_forget_id(struct ps_server *ps, const struct ps_def *d, uint64_t id)
{
	struct srv_stmt *st = d ? srv_lookup(ps, d) : NULL;
	if (st && st->id == id)
		srv_drop(ps, st);
}

void ps_server_idle(struct server *s)
{
	if (s->ps)
		s->ps->xact++;
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
}

void ps_client_forget(struct client *c)
{
	struct hmap *m = c->ps ? &c->ps->names : NULL;
	for (size_t i = 0; m && i < m->nb; i++)
		while (m->b[i])
			free(hmap_del(m, m->b[i]));
}

/* ---- client messages ---------------------------------------------------------------------- */

static void emit_now(struct client *c, struct server *s)
{
	ps_emit(s, c);
}

/* The client's unnamed statement changes; the server's is the client's from now on. */
static void parse_unnamed(struct client *c, struct server *s, const uint8_t *body, size_t len)
{
	struct ps_client *pc = ps_cli(c);
	op_push(s->ps, OP_PARSE_UNNAMED, NULL, pc->unnamed, s->ps->unnamed_owner);
	free(pc->unnamed);
	pc->unnamed = def_new(body, len);
	s->ps->unnamed_owner = c->id;
}

static void forget_unnamed(struct client *c, struct server *s)
{
	if (c && c->ps) {
		free(c->ps->unnamed);
		c->ps->unnamed = NULL;
	}
	if (s->ps)
		s->ps->unnamed_owner = 0;
}

/* A Bind or Describe of the unnamed statement: the server's must be this client's. Another
 * client's (or one from before a Query destroyed it) is replaced by the client's own, or closed
 * so that the server answers 26000 as PostgreSQL would. */
static void unnamed_ensure(struct client *c, struct server *s)
{
	struct ps_server *ps = s->ps;
	struct ps_def *d = ps_cli(c)->unnamed;
	if (ps->unnamed_owner == c->id)
		return;
	if (d) {
		put_parse(&s->c.out, "", d);
		op_push(ps, OP_INJ_PARSE_UNNAMED, NULL, NULL, 0);
		ps->unnamed_owner = c->id;
	} else {
		put_close(&s->c.out, 'S', "");
		op_push(ps, OP_INJ_CLOSE, NULL, NULL, 0);
		ps->unnamed_owner = 0;
	}
}

static void on_parse(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	const char *name = pqr_cstr(&r);
	if (!name || !*name) {
		if (name)
			parse_unnamed(c, s, msg + 5 + r.pos, len - 5 - r.pos);
		else
			op_push(s->ps, OP_PARSE, NULL, NULL, 0); /* malformed: the server says so */
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
		struct srv_stmt *live = old ? srv_lookup(s->ps, old) : NULL;
		if (live)
			srv_name(live->id, sname, sizeof(sname));
		else
			snprintf(sname, sizeof(sname), "SHOAL_x%" PRIu64, ++s->ps->next_id);
		put_parse(&s->c.out, sname, d);
		op_push(s->ps, OP_PARSE, old ? NULL : name, NULL, 0);
		if (!old)
			client_add(c, name, d);
		else
			free(d);
		return;
	}
	if (old) {
		/* PostgreSQL refuses a second Parse of a live name (42P05): let the server say it,
		 * by parsing under the server name of the statement it already has. */
		srv_name(srv_ensure(s, old), sname, sizeof(sname));
		put_parse(&s->c.out, sname, d);
		op_push(s->ps, OP_PARSE, NULL, NULL, 0);
		free(d);
		return;
	}
	client_add(c, name, d);
	struct srv_stmt *st = srv_lookup(s->ps, d);
	if (st) {
		srv_touch(s->ps, st);
		ps_count(&s->pool->ps_hits);
		op_push(s->ps, OP_SYN_PARSE, name, NULL, 0);
		emit_now(c, s);
		return;
	}
	ps_count(&s->pool->ps_misses);
	st = srv_add(s, d);
	srv_name(st->id, sname, sizeof(sname));
	put_parse(&s->c.out, sname, d);
	op_push(s->ps, OP_PARSE, name, d, st->id);
}

static void on_bind(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	const char *portal = pqr_cstr(&r);
	size_t name_at = r.pos;
	const char *name = pqr_cstr(&r);
	struct ps_def *d = name && *name ? client_lookup(c, name) : NULL;
	if (name && !*name)
		unnamed_ensure(c, s);
	if (!d && portal && !*portal)
		s->ps->unnamed_portal = 0;
	if (!d) {
		/* Unnamed, unknown (the server answers 26000 with the client's name) or malformed.
		 */
		buf_append(&s->c.out, msg, len);
	} else {
		char sname[32];
		uint64_t id = srv_ensure(s, d);
		if (*portal)
			srv_lookup(s->ps, d)->bound_in = s->ps->xact;
		else
			s->ps->unnamed_portal = id;
		srv_name(id, sname, sizeof(sname));
		struct buf *o = &s->c.out;
		proto_begin(o, PQMSG_BIND);
		proto_put_str(o, portal);
		proto_put_str(o, sname);
		proto_put_bytes(o, msg + 5 + r.pos, len - 5 - r.pos);
		proto_finish(o);
	}
	UNUSED(name_at);
	op_push(s->ps, OP_BIND, NULL, NULL, 0);
}

static void on_describe(struct client *c, struct server *s, const uint8_t *msg, size_t len)
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
	} else {
		char sname[32];
		srv_name(srv_ensure(s, d), sname, sizeof(sname));
		proto_begin(&s->c.out, PQMSG_DESCRIBE);
		proto_put_u8(&s->c.out, 'S');
		proto_put_str(&s->c.out, sname);
		proto_finish(&s->c.out);
	}
	op_push(s->ps, OP_DESCRIBE, NULL, NULL, 0);
}

static void on_close(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	uint8_t what = pqr_u8(&r);
	const char *name = pqr_cstr(&r);
	if (what == 'S' && name && !*name) {
		struct ps_client *pc = ps_cli(c);
		op_push(s->ps, OP_CLOSE_UNNAMED, NULL, pc->unnamed, s->ps->unnamed_owner);
		forget_unnamed(c, s);
		buf_append(&s->c.out, msg, len);
		return;
	}
	if (what != 'S' || !name) {
		buf_append(&s->c.out, msg, len);
		op_push(s->ps, OP_CLOSE, NULL, NULL, 0);
		return;
	}
	struct ps_def *d = client_remove(c, name);
	if (known_aborted(s)) {
		/* PostgreSQL refuses it (25P02): let the server say so, on a name nothing uses. */
		char sname[32];
		snprintf(sname, sizeof(sname), "SHOAL_x%" PRIu64, ++s->ps->next_id);
		put_close(&s->c.out, 'S', sname);
		op_push(s->ps, OP_CLOSE_NAMED, d ? name : NULL, d, 0);
		free(d);
		return;
	}
	/* The server keeps the statement for other clients; closing an unknown name is not an
	 * error in PostgreSQL either. */
	op_push(s->ps, OP_SYN_CLOSE, d ? name : NULL, d, 0);
	free(d);
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
			op_push(ps, OP_SYNC, NULL, NULL, 0);
		}
		return;
	}
	switch (type) {
	case PQMSG_EXECUTE:
		op_push(ps, OP_EXECUTE, NULL, NULL, 0);
		break;
	case PQMSG_SYNC:
		op_push(ps, OP_SYNC, NULL, NULL, 0);
		break;
	case PQMSG_QUERY:
		/* A simple Query destroys the unnamed statement, unless the server skips it: its op
		 * keeps the statement (moved, not copied) to give it back then. */
		op_push(ps, OP_QUERY, NULL, NULL, ps->unnamed_owner);
		if (s->client && s->client->ps) {
			ps->q[ps->qlen - 1].def = s->client->ps->unnamed;
			s->client->ps->unnamed = NULL;
		}
		forget_unnamed(s->client, s);
		break;
	case PQMSG_FUNCTION_CALL:
		op_push(ps, OP_FUNC, NULL, NULL, 0);
		break;
	default:
		break;
	}
}

/* ---- server replies ----------------------------------------------------------------------- */

/* The unnamed statement as it was before a skipped message changed it: the client's and the
 * server's current one, or, when a later message (after the Sync, not skipped) has changed it
 * again since, what that message will restore if it is skipped in turn. */
static void unnamed_restore(struct client *c, struct ps_server *ps, struct ps_op *later,
			    struct ps_def *def, uint64_t owner)
{
	if (later) {
		free(later->def);
		later->def = def;
		later->srv_id = owner;
		return;
	}
	if (c && c->ps) {
		free(c->ps->unnamed);
		c->ps->unnamed = def;
	} else {
		free(def);
	}
	ps->unnamed_owner = owner;
}

/* Undo what a skipped (or, failed, refused) message did to the maps. later: the first message
 * after the skipped ones that changes the client's unnamed statement, or NULL. */
static void op_rollback(struct client *c, struct ps_server *ps, struct ps_op *op, bool failed,
			struct ps_op *later)
{
	struct ps_def *def = op->def;
	switch (op->kind) {
	case OP_PARSE_UNNAMED:
		/* A failed Parse has already dropped the previous unnamed statement; a skipped one
		 * left it in place. */
		op->def = NULL;
		if (failed)
			free(def);
		unnamed_restore(c, ps, later, failed ? NULL : def, failed ? 0 : op->srv_id);
		break;
	case OP_INJ_PARSE_UNNAMED:
		if (!later)
			ps->unnamed_owner = 0;
		break;
	case OP_CLOSE_UNNAMED: /* not closed after all */
	case OP_QUERY:	       /* skipped: the unnamed statement was not destroyed */
		op->def = NULL;
		unnamed_restore(c, ps, later, def, op->srv_id);
		break;
	case OP_PARSE:
	case OP_SYN_PARSE:
		if (op->cname && c)
			free(client_remove(c, op->cname));
		if (op->srv_id)
			srv_forget_id(ps, op->def, op->srv_id);
		break;
	case OP_INJ_PARSE:
		srv_forget_id(ps, op->def, op->srv_id);
		break;
	case OP_SYN_CLOSE:
	case OP_CLOSE_NAMED:
		if (op->cname && c && !client_lookup(c, op->cname)) {
			client_add(c, op->cname, op->def);
			op->def = NULL;
		}
		break;
	default:
		break; /* an eviction Close skipped leaves an orphan whose name is never reused */
	}
}

static bool is_extended(uint8_t kind)
{
	return kind != OP_SYNC && kind != OP_QUERY && kind != OP_FUNC;
}

/* The first message from i on that changes the client's unnamed statement, or NULL. */
static struct ps_op *unnamed_changed_at(struct ps_server *ps, size_t i)
{
	for (; i < ps->qlen; i++) {
		uint8_t k = ps->q[i].kind;
		if (k == OP_PARSE_UNNAMED || k == OP_CLOSE_UNNAMED || k == OP_QUERY)
			return &ps->q[i];
	}
	return NULL;
}

/* An ErrorResponse to the head: the server skips everything up to the next Sync. Undo the head
 * and the skipped messages, newest first (a Close then a Parse of one name undo in that order).
 * Messages after that Sync may have been sent already; what they did stays. */
static void on_error(struct server *s)
{
	struct ps_server *ps = s->ps;
	size_t end = ps->qhead;
	while (end < ps->qlen && ps->q[end].kind != OP_SYNC)
		end++;
	struct ps_op *later = unnamed_changed_at(ps, end);
	for (size_t i = end; i-- > ps->qhead;)
		op_rollback(s->client, ps, &ps->q[i], i == ps->qhead, later);
	while (ps->qhead < end)
		op_pop(ps);
	if (ps->qhead == ps->qlen)
		ps->skipping = true; /* the Sync is yet to come */
}

/* COPY FROM STDIN began: the Syncs sent after its Execute are ignored by the server. */
static void on_copy_in(struct ps_server *ps)
{
	size_t i = ps->qhead + 1;
	while (i < ps->qlen && ps->q[i].kind == OP_SYNC) {
		op_free(&ps->q[i]);
		memmove(&ps->q[i], &ps->q[i + 1], (ps->qlen - i - 1) * sizeof(*ps->q));
		ps->qlen--;
	}
}

static bool out_of_step(struct server *s, uint8_t type)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "reply '%c' out of step with the prepared-statement queue (%d)",
		 type, s->ps->q[s->ps->qhead].kind);
	server_close(s, msg);
	return false;
}

bool ps_server_msg(struct server *s, uint8_t type)
{
	struct ps_server *ps = s->ps;
	struct ps_op *h = op_head(ps);
	if (!h)
		return true;
	uint8_t k = h->kind;
	switch (type) {
	case '1': /* ParseComplete */
		if (k != OP_PARSE && k != OP_INJ_PARSE && k != OP_PARSE_UNNAMED &&
		    k != OP_INJ_PARSE_UNNAMED)
			return out_of_step(s, type);
		op_pop(ps);
		return k == OP_PARSE || k == OP_PARSE_UNNAMED;
	case '2': /* BindComplete */
		if (k != OP_BIND)
			return out_of_step(s, type);
		op_pop(ps);
		return true;
	case '3': /* CloseComplete */
		if (k != OP_CLOSE && k != OP_INJ_CLOSE && k != OP_CLOSE_UNNAMED &&
		    k != OP_CLOSE_NAMED)
			return out_of_step(s, type);
		op_pop(ps);
		return k != OP_INJ_CLOSE;
	case 'T': /* RowDescription */
	case 'n': /* NoData */
		if (k == OP_DESCRIBE)
			op_pop(ps);
		return true;
	case 'C': /* CommandComplete */
	case 'I': /* EmptyQueryResponse */
	case 's': /* PortalSuspended */
		if (k == OP_EXECUTE)
			op_pop(ps);
		return true;
	case PQMSG_ERROR:
		if (is_extended(k))
			on_error(s);
		return true;
	case PQMSG_READY:
		if (k != OP_SYNC && k != OP_QUERY && k != OP_FUNC)
			return out_of_step(s, type);
		op_pop(ps);
		return true;
	case PQMSG_COPY_IN:
		if (k == OP_EXECUTE)
			on_copy_in(ps);
		return true;
	default:
		return true;
	}
}

void ps_emit(struct server *s, struct client *c)
{
	struct ps_server *ps = s->ps;
	struct ps_op *h;
	if (s->c.fwd_left)
		return; /* in the middle of forwarding a reply to this client */
	while ((h = op_head(ps)) != NULL && (h->kind == OP_SYN_PARSE || h->kind == OP_SYN_CLOSE)) {
		proto_begin(&c->c.out, h->kind == OP_SYN_PARSE ? '1' : '3');
		proto_finish(&c->c.out);
		op_pop(ps);
	}
}

void ps_client_free(struct client *c)
{
	if (!c->ps)
		return;
	ps_client_forget(c);
	free(c->ps->unnamed);
	free(c->ps->names.b);
	free(c->ps);
	c->ps = NULL;
}

void ps_server_free(struct server *s)
{
	struct ps_server *ps = s->ps;
	if (!ps)
		return;
	ps_server_forget(s);
	while (ps->qhead < ps->qlen)
		op_pop(ps);
	free(ps->q);
	free(ps->stmts.b);
	free(ps);
	s->ps = NULL;
}
