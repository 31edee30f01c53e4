/* prepared.c: protocol-level prepared statements across pooled servers (see prepared.h). */
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
#include <limits.h>
#include <string.h>

static _Atomic uint64_t unnamed_tokens;
static _Atomic uint64_t def_serials;

/* A statement left the server's cache: what the memo remembers may be gone. */
static void cache_changed(struct ps_server *ps)
{
	memset(ps->memo, 0, sizeof(ps->memo));
}

/* The client's unnamed statement changed: a server holding the previous one no longer holds
 * the client's. */
uint64_t unnamed_changed(struct ps_client *pc)
{
	pc->unnamed_token = atomic_fetch_add_explicit(&unnamed_tokens, 1, memory_order_relaxed) + 1;
	return pc->unnamed_token;
}

/* ---- definitions and names --------------------------------------------------------------- */

struct ps_def *def_new(const uint8_t *body, size_t len)
{
	struct ps_def *d = xmalloc(sizeof(*d) + len);
	d->len = (uint32_t)len;
	d->hash = hash_bytes(body, len);
	d->desc = 0;
	d->params = NULL;
	d->plen = 0;
	d->priv = 0;
	d->serial = atomic_fetch_add_explicit(&def_serials, 1, memory_order_relaxed) + 1;
	memcpy(d->body, body, len);
	return d;
}

void def_free(struct ps_def *d)
{
	if (d)
		free(d->params);
	free(d);
}

/* d was described: h, and the ParameterDescription body p (plen bytes). */
void def_learn(struct ps_def *d, uint64_t h, const uint8_t *p, size_t plen)
{
	d->desc = h;
	free(d->params);
	d->params = plen ? xmalloc(plen) : NULL;
	d->plen = (uint32_t)plen;
	if (plen)
		memcpy(d->params, p, plen);
}

struct ps_def *def_dup(const struct ps_def *d)
{
	struct ps_def *c = def_new(d->body, d->len);
	def_learn(c, d->desc, d->params, d->plen);
	c->priv = d->priv;
	c->serial = d->serial; /* the same body */
	return c;
}

bool def_same(const struct ps_def *a, const struct ps_def *b)
{
	return a->priv == b->priv && a->len == b->len && memcmp(a->body, b->body, a->len) == 0;
}

/* "SHOAL_<id>": formatted on every Bind, without snprintf. */
void srv_name(uint64_t id, char *out, size_t n)
{
	char digits[21];
	u64_put(digits, id);
	str_cat(out, n, str_cat(out, n, 0, "SHOAL_"), digits);
}

/* "SHOAL_p<id>": a private statement's name on its server. */
void priv_name(uint64_t id, char *out, size_t n)
{
	char digits[21];
	u64_put(digits, id);
	str_cat(out, n, str_cat(out, n, 0, "SHOAL_p"), digits);
}

/* Decided when the pool was created (ledger.c), whatever later reloads say: a client's names
 * and each server's reply queue stay in step for the pool's whole life. */
bool ps_enabled(const struct server *s)
{
	return s->pool->ps_on;
}

struct ps_server *ps_srv_new(struct server *s)
{
	s->ps = xcalloc(1, sizeof(*s->ps));
	list_init(&s->ps->lru);
	list_init(&s->ps->retired);
	s->ps->xact = 1; /* bound_in 0: never bound */
	return s->ps;
}

struct ps_client *ps_cli(struct client *c)
{
	if (!c->ps)
		c->ps = xcalloc(1, sizeof(*c->ps));
	return c->ps;
}

struct ps_def *client_lookup_n(struct client *c, const char *name, size_t n)
{
	struct ps_client *pc = ps_cli(c);
	struct hent *e = pc->last;
	if (e && e->klen == n && memcmp(e->key, name, n) == 0)
		return e->val;
	e = hmap_get(&pc->names, name, n, hash_bytes(name, n));
	if (!e)
		return NULL;
	pc->last = e;
	return e->val;
}

struct ps_def *client_lookup(struct client *c, const char *name)
{
	return client_lookup_n(c, name, strlen(name));
}

/* What a client's named statement costs it (max_client_prepared_bytes). */
size_t client_cost(size_t name_len, const struct ps_def *d)
{
	return name_len + d->len;
}

void client_add(struct client *c, const char *name, struct ps_def *d)
{
	size_t n = strlen(name);
	hmap_put(&ps_cli(c)->names, name, n, hash_bytes(name, n), d);
	c->ps->nbytes += client_cost(n, d);
}

/* Remove name; returns its definition (caller owns) or NULL. */
struct ps_def *client_remove(struct client *c, const char *name)
{
	struct hmap *m = &ps_cli(c)->names;
	size_t n = strlen(name);
	struct hent *e = hmap_get(m, name, n, hash_bytes(name, n));
	if (!e)
		return NULL;
	c->ps->nbytes -= client_cost(e->klen, e->val);
	if (c->ps->last == e)
		c->ps->last = NULL;
	return hmap_del(m, e);
}

/* ---- the reply queue ---------------------------------------------------------------------- */

/* Does op add or remove a client name that a skip would give back (name_in_doubt)? */
bool op_names(const struct ps_op *op)
{
	return op->cname &&
	       (op->kind == OP_PARSE || op->kind == OP_CLOSE_NAMED || op->kind == OP_SYN_CLOSE);
}

void op_room(struct ps_server *ps)
{
	if (ps->qhead == ps->qlen)
		ps->qhead = ps->qlen = 0;
	if (ps->qlen < ps->qcap)
		return;
	if (ps->qhead > 0) {
		memmove(ps->q, ps->q + ps->qhead, (ps->qlen - ps->qhead) * sizeof(*ps->q));
		ps->qlen -= ps->qhead;
		ps->qhead = 0;
	} else {
		ps->qcap = ps->qcap ? ps->qcap * 2 : 16;
		ps->q = xrealloc(ps->q, ps->qcap * sizeof(*ps->q));
	}
}

void op_push(struct ps_server *ps, uint8_t kind, const char *cname, const struct ps_def *d,
	     uint64_t srv_id)
{
	op_room(ps);
	struct ps_op *op = &ps->q[ps->qlen++];
	op->kind = kind;
	op->stale = false;
	op->cname = cname ? xstrdup(cname) : NULL;
	ps->named += op_names(op);
	op->def = d ? def_dup(d) : NULL;
	op->srv_id = srv_id;
}

struct ps_op *op_head(struct ps_server *ps)
{
	return ps && ps->qhead < ps->qlen ? &ps->q[ps->qhead] : NULL;
}

static void op_free(struct ps_server *ps, struct ps_op *op)
{
	ps->named -= op_names(op);
	if (op->cname) {
		free(op->cname);
		op->cname = NULL;
	}
	if (op->def) {
		def_free(op->def);
		op->def = NULL;
	}
}

__attribute__((noinline)) void op_pop_slow(struct ps_server *ps)
{
	op_free(ps, &ps->q[ps->qhead++]);
	if (ps->doubt_wait) { /* what it waited for may be known now: name_in_doubt again */
		ps->doubt_wait = false;
		ps->resume = true;
	}
}

bool ps_idle(const struct server *s)
{
	return !s->ps || (s->ps->qhead == s->ps->qlen && !s->ps->skipping && !s->ps->held);
}

/* ---- the server's cache ------------------------------------------------------------------- */

/* The memo first: clients Bind the same few statements on a server transaction after
 * transaction. */
struct srv_stmt *srv_lookup(struct ps_server *ps, const struct ps_def *d)
{
	size_t i = d->serial % SRV_MEMO;
	if (ps->memo[i].serial == d->serial)
		return ps->memo[i].st;
	struct hent *e = hmap_get(&ps->stmts, d->body, d->len, d->hash);
	if (!e)
		return NULL;
	ps->memo[i].serial = d->serial;
	ps->memo[i].st = e->val;
	return e->val;
}

void srv_drop(struct ps_server *ps, struct srv_stmt *st)
{
	if (st->e) {
		ps->nbytes -= st->e->klen;
		hmap_del(&ps->stmts, st->e);
		cache_changed(ps);
	}
	list_del(&st->lru);
	free(st);
}

/* Take st out of the cache (its text is prepared afresh when next used) but keep it until it
 * can be closed on the server: a portal may still be bound from it. */
void srv_retire(struct ps_server *ps, struct srv_stmt *st)
{
	ps->nbytes -= st->e->klen;
	hmap_del(&ps->stmts, st->e);
	cache_changed(ps);
	st->e = NULL;
	list_del(&st->lru);
	list_append(&ps->retired, &st->lru);
}

void put_parse(struct buf *o, const char *name, const struct ps_def *d)
{
	proto_begin(o, PQMSG_PARSE);
	proto_put_str(o, name);
	proto_put_bytes(o, d->body, d->len);
	proto_finish(o);
}

void put_describe_stmt(struct buf *o, const char *name)
{
	proto_begin(o, PQMSG_DESCRIBE);
	proto_put_u8(o, 'S');
	proto_put_str(o, name);
	proto_finish(o);
}

void put_close(struct buf *o, char what, const char *name)
{
	proto_begin(o, PQMSG_CLOSE);
	proto_put_u8(o, (uint8_t)what);
	proto_put_str(o, name);
	proto_finish(o);
}

/* Nothing in flight and the last ReadyForQuery said the transaction block failed: PostgreSQL
 * refuses every Parse (25P02) but for transaction control, and so a Close too. */
bool known_aborted(const struct server *s)
{
	return s->pending == 0 && s->ready_status == 'E';
}

/* Make room for one more statement of len bytes: Close the least recently used ones. Only when
 * the server is known not to be in a failed transaction block, where the Close would fail in
 * the client's place; meanwhile the cache may exceed its bounds. */
/* Cache statistics per pool, for /metrics (pool_view.c): a hit is a statement the linked server
 * already had, a miss one that had to be prepared there, an eviction a Close to make room. */
void ps_count(_Atomic uint64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* Closing a statement closes the portals bound from it: one bound to a named portal in the
 * current transaction, or to the unnamed portal since, must stay. */
bool srv_in_use(const struct ps_server *ps, const struct srv_stmt *st)
{
	return st->bound_in == ps->xact || st->id == ps->unnamed_portal;
}

static void srv_put_close(struct server *s, struct srv_stmt *st, const char *why)
{
	put_close(&s->c.out, 'S', st->name);
	op_push_plain(s->ps, OP_INJ_CLOSE, 0);
	log_debug("%s: %s prepared statement %s", s->c.name, why, st->name);
}

/* Close the retired statements no portal may use (same conditions as eviction). */
static void srv_close_retired(struct server *s)
{
	struct ps_server *ps = s->ps;
	if (s->pending > 0 || s->ready_status == 'E')
		return;
	for (struct list *pos = ps->retired.next, *next; pos != &ps->retired; pos = next) {
		struct srv_stmt *st = container_of(pos, struct srv_stmt, lru);
		next = pos->next;
		if (!srv_in_use(ps, st)) {
			srv_put_close(s, st, "closing retired");
			srv_drop(ps, st);
		}
	}
}

static void srv_evict(struct server *s, size_t len)
{
	struct ps_server *ps = s->ps;
	const struct config *cfg = config_current();
	if (s->pending > 0 || s->ready_status == 'E')
		return;
	srv_close_retired(s);
	struct list *pos = ps->lru.next;
	/* A statement in use stays: the cache may exceed its bounds meanwhile. */
	while (pos != &ps->lru && (ps->stmts.n + 1 > (size_t)cfg->max_prepared_statements ||
				   ps->nbytes + len > (size_t)cfg->max_prepared_statement_bytes)) {
		struct srv_stmt *st = container_of(pos, struct srv_stmt, lru);
		pos = pos->next;
		if (srv_in_use(ps, st))
			continue;
		srv_put_close(s, st, "evicting");
		ps_count(&s->pool->ps_evictions);
		srv_drop(ps, st);
	}
}

/* A new server statement: its id and its name. */
static struct srv_stmt *srv_stmt_new(struct ps_server *ps)
{
	struct srv_stmt *st = xcalloc(1, sizeof(*st));
	st->id = ++ps->next_id;
	srv_name(st->id, st->name, sizeof(st->name));
	st->nlen = (uint8_t)strlen(st->name);
	return st;
}

struct srv_stmt *srv_add(struct server *s, const struct ps_def *d)
{
	struct ps_server *ps = s->ps;
	srv_evict(s, d->len);
	struct srv_stmt *st = srv_stmt_new(ps);
	st->e = hmap_put(&ps->stmts, d->body, d->len, d->hash, st);
	list_append(&ps->lru, &st->lru);
	ps->nbytes += d->len;
	return st;
}

static void srv_touch(struct ps_server *ps, struct srv_stmt *st)
{
	if (ps->lru.prev == &st->lru)
		return; /* the most recently used already */
	list_del(&st->lru);
	list_append(&ps->lru, &st->lru);
}

/* A server statement for Shoal's own use, retired at once (closed when safe): query, then the
 * parameter types as in a Parse (Int16 n, n OIDs). Returns its id. */
uint64_t srv_placeholder(struct server *s, const char *query, const uint8_t *types,
				size_t tlen)
{
	struct ps_server *ps = s->ps;
	struct srv_stmt *st = srv_stmt_new(ps);
	list_append(&ps->retired, &st->lru);
	proto_begin(&s->c.out, PQMSG_PARSE);
	proto_put_str(&s->c.out, st->name);
	proto_put_str(&s->c.out, query);
	proto_put_bytes(&s->c.out, types, tlen);
	proto_finish(&s->c.out);
	op_push_plain(ps, OP_INJ_PARSE, st->id);
	return st->id;
}

/* Learn a new server statement's description: an injected Describe, its replies swallowed.
 * cname: the client statement it was prepared for, which takes the description if it has none. */
void srv_describe(struct server *s, struct srv_stmt *st, const char *cname,
		  const struct ps_def *d)
{
	put_describe_stmt(&s->c.out, st->name);
	op_push(s->ps, OP_INJ_DESCRIBE, cname, d, st->id);
}

/* The server statement for d, prepared there first (injected Parse and Describe) if it lacks
 * it. A cached statement described otherwise than the client's statement may be the stale one
 * (prepared before its table changed): it is retired and the text prepared afresh, so that the
 * client's description is compared with what PostgreSQL says now (send_or_hold). */
struct srv_stmt *srv_ensure(struct server *s, const struct ps_def *d, const char *cname)
{
	struct srv_stmt *st = srv_lookup(s->ps, d);
	if (st && st->desc && d->desc && st->desc != d->desc) {
		srv_retire(s->ps, st);
		st = NULL;
	}
	if (st) {
		srv_touch(s->ps, st);
		ps_count(&s->pool->ps_hits);
		return st;
	}
	ps_count(&s->pool->ps_misses);
	st = srv_add(s, d);
	put_parse(&s->c.out, st->name, d);
	op_push(s->ps, OP_INJ_PARSE, NULL, d, st->id);
	srv_describe(s, st, cname, d);
	return st;
}

/* Forget server statement id for d (its Parse failed or was skipped: not on the server). */
static void srv_forget_id(struct ps_server *ps, const struct ps_def *d, uint64_t id)
{
	struct srv_stmt *st = d ? srv_lookup(ps, d) : NULL;
	if (st && st->id == id)
		srv_drop(ps, st);
}

/* ---- server replies ----------------------------------------------------------------------- */

/* The unnamed statement as it was before a skipped message changed it (def, owned; NULL: none)
 * goes back: to the client, or, when a later message (after the Sync, not skipped) has changed
 * it again since, to that message, which gives it back in turn if it is skipped too. The server
 * prepares it again (or closes its own) when it is next used. */
static void unnamed_restore(struct client *c, struct ps_server *ps, struct ps_op *later,
			    struct ps_def *def)
{
	if (later) {
		def_free(later->def);
		later->def = def;
		return;
	}
	if (c && c->ps) {
		def_free(c->ps->unnamed);
		c->ps->unnamed = def;
		unnamed_changed(c->ps);
	} else {
		def_free(def);
	}
	ps->unnamed_owner = 0;
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
		if (failed) {
			def_free(def);
			def = NULL;
		}
		unnamed_restore(c, ps, later, def);
		break;
	case OP_INJ_PARSE_UNNAMED:
	case OP_INJ_CLOSE_UNNAMED:
		if (!later)
			ps->unnamed_owner = 0;
		break;
	case OP_CLOSE_UNNAMED: /* not closed after all */
	case OP_QUERY:	       /* skipped: the unnamed statement was not destroyed */
		op->def = NULL;
		unnamed_restore(c, ps, later, def);
		break;
	case OP_PARSE:
		if (op->cname && c)
			def_free(client_remove(c, op->cname));
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
static __attribute__((noinline)) void on_error(struct server *s)
{
	struct ps_server *ps = s->ps;
	size_t end = ps->qhead;
	while (end < ps->qlen && ps->q[end].kind != OP_SYNC)
		end++;
	struct ps_op *later = unnamed_changed_at(ps, end);
	for (size_t i = end; i-- > ps->qhead;) {
		/* A Query (or FunctionCall) is skipped too: no ReadyForQuery answers it. */
		if ((ps->q[i].kind == OP_QUERY || ps->q[i].kind == OP_FUNC) && s->pending > 0)
			s->pending--;
		op_rollback(s->client, ps, &ps->q[i], i == ps->qhead, later);
	}
	while (ps->qhead < end)
		op_pop(ps);
	if (ps->qhead == ps->qlen)
		ps->skipping = true; /* the Sync is yet to come */
	/* A Describe a held message waited for was skipped. */
	held_release(s);
}

/* The client's statement could not be prepared again for its held Describe: PostgreSQL, which
 * still has it, would have sent its ParameterDescription before the error (unless refusing the
 * Describe in a failed transaction block, which it checks first). */
static void held_parse_failed(struct ps_server *ps, const struct ps_op *h, const char *sqlstate)
{
	const struct ps_held *hd = ps->held;
	if (h->kind != OP_INJ_PARSE || !hd || hd->kind != OP_DESCRIBE || !h->def ||
	    !def_same(h->def, hd->def) || !hd->def->params || strcmp(sqlstate, "25P02") == 0)
		return;
	buf_consume(&ps->pdesc, buf_avail(&ps->pdesc));
	proto_begin(&ps->pdesc, 't');
	proto_put_bytes(&ps->pdesc, hd->def->params, hd->def->plen);
	proto_finish(&ps->pdesc);
	ps->stale_error = 't';
}

/* The cached statement with this id, or NULL (a walk: only on PostgreSQL's own 0A000). */
static struct srv_stmt *srv_cached_by_id(struct ps_server *ps, uint64_t id)
{
	for (struct list *i = ps->lru.next; i != &ps->lru; i = i->next) {
		struct srv_stmt *st = container_of(i, struct srv_stmt, lru);
		if (st->id == id)
			return st;
	}
	return NULL;
}

/* An ErrorResponse to the head op, before the queue is rolled back: one Shoal sent to fail is
 * answered with 0A000 (ps_stale_reply); PostgreSQL's own 0A000 for a Bind or Describe of a
 * cached statement retires that statement, so that the next use prepares the text afresh. */
static __attribute__((noinline)) void on_error_head(struct ps_server *ps, const struct ps_op *h,
						    const uint8_t *msg, size_t len)
{
	struct pq_error e;
	if (!msg || proto_parse_error(msg + 5, len - 5, &e) != SHOAL_OK || !e.sqlstate)
		return;
	held_parse_failed(ps, h, e.sqlstate);
	if (h->stale) {
		/* Only the error that stands for the 0A000: an earlier check may fail first. */
		const char *want = h->kind == OP_BIND	 ? "22012"
				   : h->kind == OP_PARSE ? "42601"
							 : "26000";
		if (strcmp(e.sqlstate, want) == 0)
			ps->stale_error = h->kind == OP_BIND	? PQMSG_BIND
					  : h->kind == OP_PARSE ? PQMSG_PARSE
								: PQMSG_DESCRIBE;
		return;
	}
	if ((h->kind != OP_BIND && h->kind != OP_DESCRIBE) || !h->srv_id ||
	    strcmp(e.sqlstate, "0A000") != 0)
		return;
	struct srv_stmt *st = srv_cached_by_id(ps, h->srv_id);
	if (st)
		srv_retire(ps, st);
}

/* COPY FROM STDIN began: the Syncs sent after its Execute are ignored by the server, up to the
 * message that ends the copy if the client sent one already (copy_end). */
static __attribute__((noinline)) void on_copy_in(const struct server *s, struct ps_server *ps)
{
	size_t i = ps->qhead + 1;
	int left = s->copy_end ? s->copy_end_syncs : INT_MAX;
	while (i < ps->qlen && ps->q[i].kind == OP_SYNC && left-- > 0) {
		op_free(ps, &ps->q[i]);
		memmove(&ps->q[i], &ps->q[i + 1], (ps->qlen - i - 1) * sizeof(*ps->q));
		ps->qlen--;
	}
}

static __attribute__((noinline, cold)) bool out_of_step(struct server *s, uint8_t type)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "reply '%c' out of step with the prepared-statement queue (%d)",
		 type, s->ps->q[s->ps->qhead].kind);
	server_close(s, msg);
	return false;
}

bool ps_wants_whole(const struct server *s, uint8_t type)
{
	if (type == '1' || type == '3')
		return true;
	if (type != 't' && type != 'T' && type != 'n')
		return false; /* most replies (DataRow, CommandComplete, ...): no queue lookup */
	const struct ps_op *h = op_head(s->ps);
	return h && h->kind == OP_INJ_DESCRIBE;
}

/* ps_server_msg past its common cases: kept out of line so that those need no stack frame. */
static __attribute__((noinline)) bool server_msg(struct server *s, uint8_t type, const uint8_t *msg,
						 size_t len)
{
	struct ps_server *ps = s->ps;
	struct ps_op *h = op_head(ps);
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
		    k != OP_CLOSE_NAMED && k != OP_INJ_CLOSE_UNNAMED)
			return out_of_step(s, type);
		op_pop(ps);
		return k != OP_INJ_CLOSE && k != OP_INJ_CLOSE_UNNAMED;
	case 't': /* ParameterDescription */
		if (k != OP_INJ_DESCRIBE)
			return true;
		describe_params(ps, msg, len);
		return false;
	case 'T': /* RowDescription */
	case 'n': /* NoData */
		if (k == OP_INJ_DESCRIBE) {
			describe_done(s, type, msg, len);
			return false;
		}
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
		if (is_extended(k)) {
			on_error_head(ps, h, msg, len);
			on_error(s);
		}
		return true;
	case PQMSG_READY:
		if (k != OP_SYNC && k != OP_QUERY && k != OP_FUNC)
			return out_of_step(s, type);
		op_pop(ps);
		return true;
	case PQMSG_COPY_IN:
		if (k == OP_EXECUTE)
			on_copy_in(s, ps);
		return true;
	default:
		return true;
	}
}

/* The op kind (plus one) a reply of this type answers by popping it and passing on, as
 * server_msg would: the replies of a Bind, Describe, Execute and Sync, most extended traffic
 * (a FunctionCall's ReadyForQuery takes the long way). 0: none. */
static const uint8_t plain_answers[256] = {
	['2'] = OP_BIND + 1,	/* BindComplete */
	['T'] = OP_DESCRIBE + 1, /* RowDescription */
	['n'] = OP_DESCRIBE + 1, /* NoData */
	['C'] = OP_EXECUTE + 1, /* CommandComplete */
	['I'] = OP_EXECUTE + 1, /* EmptyQueryResponse */
	['s'] = OP_EXECUTE + 1, /* PortalSuspended */
	[PQMSG_READY] = OP_SYNC + 1,
};

/* A reply while an extended-protocol message's is awaited: one that plainly answers it pops
 * it here, the rest take server_msg's switch. Out of line, so that a Query's replies need no
 * stack frame or register moves in ps_server_msg. */
static __attribute__((noinline)) bool extended_reply(struct server *s, uint8_t type,
						     const uint8_t *msg, size_t len)
{
	struct ps_server *ps = s->ps;
	if (plain_answers[type] != ps->q[ps->qhead].kind + 1)
		return server_msg(s, type, msg, len);
	op_pop(ps);
	return true;
}

bool ps_passes(const struct server *s, uint8_t type)
{
	const struct ps_server *ps = s->ps;
	if (type == '1' || type == '3')
		return !ps; /* ps_wants_whole's own */
	if (!ps || ps->qhead == ps->qlen)
		return true;
	return ps->q[ps->qhead].kind == OP_QUERY && type != PQMSG_READY && type != '2';
}

/* Every server message of a linked server comes here. With no reply awaited, or a simple
 * Query's (simple-protocol traffic), it passes, or its ReadyForQuery ends the Query, without a
 * stack frame; the extended protocol's replies (out of step then) take the long way. */
bool ps_server_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
{
	struct ps_server *ps = s->ps;
	if (!ps || ps->qhead == ps->qlen)
		return true;
	const struct ps_op *h = &ps->q[ps->qhead];
	if (h->kind != OP_QUERY)
		return extended_reply(s, type, msg, len);
	if (type == PQMSG_READY && !h->def && !h->cname) {
		ps->qhead++; /* op_pop with nothing to free */
		return true;
	}
	if (type != PQMSG_READY && type != '1' && type != '2' && type != '3')
		return true;
	return server_msg(s, type, msg, len);
}

static __attribute__((noinline)) void emit_closes(struct ps_server *ps, struct client *c)
{
	struct ps_op *h;
	while ((h = op_head(ps)) != NULL && h->kind == OP_SYN_CLOSE) {
		proto_begin(&c->c.out, '3');
		proto_finish(&c->c.out);
		op_pop(ps);
	}
}

void ps_emit(struct server *s, struct client *c)
{
	struct ps_server *ps = s->ps;
	if (s->c.fwd_left)
		return; /* in the middle of forwarding a reply to this client */
	if (ps && ps->qhead < ps->qlen && ps->q[ps->qhead].kind == OP_SYN_CLOSE)
		emit_closes(ps, c);
}

void ps_client_free(struct client *c)
{
	if (!c->ps)
		return;
	ps_client_forget(c);
	def_free(c->ps->unnamed);
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
	if (ps->held) {
		free(ps->held->msg);
		def_free(ps->held->def);
		free(ps->held);
	}
	buf_free(&ps->pdesc);
	free(ps->q);
	free(ps->stmts.b);
	free(ps);
	s->ps = NULL;
}

const char *ps_client_text(struct client *c, const char *name, size_t *len)
{
	if (!c->ps)
		return NULL;
	const struct ps_def *d = *name ? client_lookup(c, name) : c->ps->unnamed;
	const uint8_t *end = d && d->len ? memchr(d->body, 0, d->len) : NULL;
	if (!end)
		return NULL; /* unknown, or a private statement whose text is not kept */
	*len = (size_t)(end - d->body);
	return (const char *)d->body;
}
