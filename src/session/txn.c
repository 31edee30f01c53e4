/* txn.c: transaction-pooling hooks: SQL sniffing for pins and tracked SETs, prepared statements. */
#include "txn.h"
#include "log.h"
#include "objects.h"
#include "params.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "worker.h"
#include "sqlscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A SET/RESET sent outside a transaction, applied to the client's tracked parameters when the
 * server confirms it (ReadyForQuery 'I' with no error in between). */
struct txn_set {
	char *name;  /* NULL: no SET, only forget */
	char *value; /* SQL text; NULL: RESET */
	bool failed;
	bool forget;  /* DEALLOCATE ALL / DISCARD ALL: the client's statements go */
	bool discard; /* DISCARD ALL: its tracked SETs go too */
	bool discarded; /* DISCARD ALL completed: PostgreSQL committed it, a later error keeps it */
	bool in_block;    /* sent inside a transaction block: known only when the block ends */
	bool rolled_back; /* a ROLLBACK (or ROLLBACK TO SAVEPOINT) ran since */
};

/* A client's RESET of parameters it set at login, on its way to the server: applied at its
 * ReadyForQuery if nothing failed (txn_server_ready). */
struct txn_restore {
	int skip;    /* ReadyForQuery messages still owed to earlier requests */
	bool failed; /* an ErrorResponse came for this request: its RESET was rolled back */
	bool all;    /* RESET ALL, DISCARD ALL, or names that could not all be kept */
	bool inlined; /* the SETs that put them back went in the client's own Query */
	bool discard;   /* a DISCARD ALL is among them: its CommandComplete is looked for */
	bool committed; /* that DISCARD ALL completed: PostgreSQL committed it at once */
	int n, nset;
	char names[SQL_MAX_RESETS][SQL_NAME_MAX];
	/* Names SET again after the reset, before its ReadyForQuery: left as they are. */
	char set_again[SQL_MAX_RESETS * 2][SQL_NAME_MAX];
};

/* Replies to the SETs Shoal added to a client's Query: the numbers of the CommandComplete
 * messages to drop (1 for the Query's first statement's), counted once earlier requests are
 * answered. */
struct txn_swallow {
	int skip; /* ReadyForQuery messages still owed to earlier requests */
	int seen, next, n;
	/* Where Shoal's text went into the Query, in characters of the client's text before it,
	 * and how many characters it has: error and notice positions (P) are moved back by it. */
	int npos;
	int pos_at[SQL_MAX_RESETS], pos_len[SQL_MAX_RESETS];
	int at[]; /* ascending */
};

static bool active(const struct server *s)
{
	return pool_mode_of(s->pool) != POOL_SESSION;
}

/* By type first: most messages (Execute, Sync, CopyData, ...) are wanted in no mode. */
bool txn_wants_whole(const struct server *s, uint8_t type)
{
	/* session mode: only a client's RESET of its login values is looked for */
	if (type == PQMSG_QUERY || type == PQMSG_PARSE)
		return active(s) || (s->client && s->client->login.n > 0);
	return (type == PQMSG_BIND || type == PQMSG_DESCRIBE || type == PQMSG_CLOSE) &&
	       ps_enabled(s) && active(s);
}

bool txn_stream(struct client *c, struct server *s, uint8_t type)
{
	if (type == PQMSG_PARSE && ps_enabled(s))
		return false; /* streamed by ps_parse_head, under a private name */
	if (type != PQMSG_QUERY && type != PQMSG_PARSE)
		return false;
	/* Unread, it might do anything a statement can: keep the client on this server, and
	 * forget what this server is known to hold (a DEALLOCATE ALL may be inside). In session
	 * mode it stays anyway; only a RESET of a login value inside goes unseen. */
	if (active(s)) {
		txn_pin(c, "a statement larger than message_inspect_limit");
		ps_server_forget(s);
	}
	txn_client_note(s, type);
	return true;
}

void txn_pin(struct client *c, const char *reason)
{
	if (c->pin_reason)
		return;
	/* Under the pool lock: SHOW CLIENTS reads it from other workers. */
	if (c->pool)
		pool_lock(c->pool);
	c->pin_reason = reason;
	if (c->pool)
		pool_unlock(c->pool);
	log_info("%s pinned to its server for the rest of its session: %s", c->c.name, reason);
}

/* Is name listed in track_extra_parameters (comma/space separated, case-insensitive)? */
static bool tracked_name(const char *name)
{
	const char *list = config_current()->track_extra_parameters;
	size_t n = strlen(name);
	for (const char *p = list ? list : ""; *p;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		size_t w = strcspn(p, ", \t");
		if (w == n && strncasecmp(p, name, n) == 0)
			return true;
		p += w;
	}
	return false;
}

static void txn_set(struct client *c, struct server *s, struct sql_facts *f)
{
	const struct param *sp = f->set_name[0] ? params_find(&s->params, f->set_name) : NULL;
	if (sp && sp->initial)
		return; /* the server reports it: ParameterStatus keeps the client's value */
	/* Nothing in flight: the server's state is known. In a block ('T'), the SET counts only if
	 * the block commits (see txn_server_ready). */
	bool quiet = (s->ready_status == 'I' || s->ready_status == 'T') && s->pending == 0 &&
		     !s->ext_open && !(s->txn_set && s->txn_set->name);
	if (!f->set_trackable || !quiet) {
		txn_pin(c, "SET inside a failed transaction or with other statements");
		return;
	}
	if (!tracked_name(f->set_name)) {
		txn_pin(c, "SET of a parameter not in track_extra_parameters");
		return;
	}
	struct txn_set *t = s->txn_set ? s->txn_set : xcalloc(1, sizeof(*t));
	t->name = xstrdup(f->set_name);
	t->value = f->set_reset ? NULL : f->set_value;
	t->in_block = s->ready_status == 'T';
	if (!f->set_reset)
		f->set_value = NULL;
	s->txn_set = t;
}

/* Where name is (case-insensitively) in a list of n names; -1 if absent. */
static int names_find(char (*list)[SQL_NAME_MAX], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(list[i], name) == 0)
			return i;
	return -1;
}

/* Remove name from a list of n names; returns the new count. */
static int names_drop(char (*list)[SQL_NAME_MAX], int n, const char *name)
{
	int i = names_find(list, n, name);
	if (i < 0)
		return n;
	if (i != n - 1)
		memcpy(list[i], list[n - 1], SQL_NAME_MAX); /* i < n - 1: distinct slots */
	return n - 1;
}

/* RESET name, SET name TO DEFAULT, RESET ALL, DISCARD ALL: PostgreSQL goes back to the value
 * the session started with, which for a startup parameter is the client's. A pooled server
 * started with other values (and Shoal applied the client's with SET), so the client's are put
 * back: in its own Query, right after the RESET (txn_inline_resets), else once the server
 * confirms the RESET (txn_server_ready, then server_setup.c's resync). Returns the note, or NULL. */
static struct txn_restore *txn_note_resets(struct client *c, struct server *s,
					   const struct sql_facts *f)
{
	bool all = f->reset_all || f->discard_all;
	int login_names = 0;
	for (int i = 0; i < f->nresets; i++)
		login_names += params_find(&c->login, f->reset_names[i]) != NULL;
	if (c->login.n == 0 || (!all && login_names == 0))
		return NULL;
	struct txn_restore *r = s->restore ? s->restore : xcalloc(1, sizeof(*r));
	s->restore = r;
	r->skip = s->pending; /* this request's ReadyForQuery comes after those */
	r->failed = false;
	r->all |= all;
	r->discard |= f->discard_all;
	if (all)
		r->nset = 0;
	for (int i = 0; i < f->nresets; i++) {
		const char *name = f->reset_names[i];
		if (!params_find(&c->login, name))
			continue;
		r->nset = names_drop(r->set_again, r->nset, name);
		if (r->all || names_find(r->names, r->n, name) >= 0)
			continue;
		if (r->n == SQL_MAX_RESETS)
			r->all = true;
		else
			strcpy(r->names[r->n++], name);
	}
	return r;
}

/* A SET of a login value pipelined behind a RESET of it, before the RESET's ReadyForQuery: on
 * PostgreSQL the later SET wins, so that name is not put back. */
static void txn_note_set_again(const struct client *c, struct server *s,
			       const struct sql_facts *f)
{
	struct txn_restore *r = s->restore;
	if (!r || !f->has_set || !f->set_name[0] || f->nresets > 0 ||
	    !params_find(&c->login, f->set_name))
		return;
	r->n = names_drop(r->names, r->n, f->set_name);
	r->nset = names_drop(r->set_again, r->nset, f->set_name);
	if (r->nset < (int)(sizeof(r->set_again) / sizeof(r->set_again[0])))
		strcpy(r->set_again[r->nset++], f->set_name);
	else
		r->failed = true; /* too many to follow: put none back */
}

/* Append ";SET name = value" for each login value RESET entry i of f puts back; the count. */
static int append_login_sets(struct buf *sql, const struct client *c, const struct server *s,
			     const struct sql_facts *f, int i)
{
	const char *name = f->reset_names[i];
	int n = 0;
	for (int j = 0; j < c->login.n; j++) {
		const struct param *lp = &c->login.items[j];
		if (*name && strcasecmp(lp->name, name) != 0)
			continue;
		buf_append(sql, ";", 1);
		params_append_set(sql, lp, &s->params);
		n++;
	}
	return n;
}

/* Characters in n bytes of the client's text, as PostgreSQL counts an error position: in UTF-8
 * its lead bytes; in another encoding only ASCII text is counted here (-1 otherwise). */
static int text_chars(const char *p, size_t n, bool utf8)
{
	int k = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)p[i];
		if (b >= 0x80 && !utf8)
			return -1;
		k += (b & 0xC0) != 0x80;
	}
	return k;
}

/* The client's Query q with the SETs of its login values after each RESET of them, into sql;
 * w gets which statements and characters are Shoal's. False if the positions of the text
 * cannot be counted (non-ASCII text in an encoding other than UTF-8). */
static bool txn_write_inlined(const struct client *c, const struct server *s,
			      const struct sql_facts *f, const char *q, struct buf *sql,
			      struct txn_swallow *w)
{
	const char *enc = params_get(&c->params, "client_encoding");
	bool utf8 = enc && (strcasecmp(enc, "UTF8") == 0 || strcasecmp(enc, "UTF-8") == 0);
	uint32_t prev = 0;
	int added = 0, chars = 0;
	for (int i = 0; i < f->nresets; i++) {
		int k = text_chars(q + prev, f->reset_ends[i] - prev, utf8);
		buf_append(sql, q + prev, f->reset_ends[i] - prev);
		prev = f->reset_ends[i];
		size_t at = sql->len;
		int n = append_login_sets(sql, c, s, f, i);
		int l = text_chars((const char *)sql->data + at, sql->len - at, utf8);
		if (k < 0 || l < 0)
			return false;
		chars += k;
		w->pos_at[w->npos] = chars;
		w->pos_len[w->npos++] = l;
		for (int j = 0; j < n; j++)
			w->at[w->n++] = f->reset_stmts[i] + added + j + 1;
		added += n;
	}
	buf_append(sql, q + prev, strlen(q + prev));
	return true;
}

/* A Query with RESETs of login values: sent with a SET of each right after its RESET,
 * so the statements after it in the same Query see the login value, as on PostgreSQL, and a
 * rollback of the Query's (implicit or explicit) transaction undoes both. The replies to those
 * are dropped (txn_server_tag) and positions in errors and notices moved back
 * (txn_position_out). Not for a lone DISCARD ALL (PostgreSQL refuses it with other statements)
 * or names the scan could not read. True when the Query was written to s. */
static bool txn_inline_resets(struct client *c, struct server *s, const struct sql_facts *f,
			      const char *q, struct txn_restore *r)
{
	/* r: only this Query's (one pipelined earlier may still await its answer) */
	if (!r || f->nresets == 0 || s->swallow || f->reset_unsure)
		return false;
	struct buf sql = {0};
	struct txn_swallow *w =
	    xcalloc(1, sizeof(*w) + (size_t)(f->nresets * c->login.n) * sizeof(w->at[0]));
	if (!txn_write_inlined(c, s, f, q, &sql, w)) {
		buf_free(&sql);
		free(w);
		return false;
	}
	w->skip = s->pending;
	s->swallow = w;
	r->inlined = true;
	proto_begin(&s->c.out, PQMSG_QUERY);
	proto_put_bytes(&s->c.out, sql.data, sql.len);
	proto_put_u8(&s->c.out, 0);
	proto_finish(&s->c.out);
	log_debug("%s: login values put back inside its Query (%d SET)", c->c.name, w->n);
	buf_free(&sql);
	return true;
}

/* The SQL text of a whole Query or Parse message and its length (*n, found by the reader: no
 * strlen after it); NULL if malformed (the server answers it). */
static const char *query_text(const uint8_t *msg, size_t len, size_t *n)
{
	/* A Query that ends in a NUL (any well-formed one): its text ends inside it, at the first
	 * NUL, which strlen finds with less setup than the reader's bounded search. */
	if (msg[0] == PQMSG_QUERY && len > PQ_HEADER_LEN && msg[len - 1] == '\0') {
		const char *q = (const char *)msg + PQ_HEADER_LEN;
		*n = strlen(q);
		return q;
	}
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	if (msg[0] == PQMSG_PARSE)
		(void)pqr_cstr(&r);
	size_t at = r.pos;
	const char *q = pqr_cstr(&r);
	*n = q ? r.pos - at - 1 : 0;
	return q;
}

/* Could the scan's facts name a login value to put back (txn_note_resets)? Tested inline: most
 * queries RESET nothing, and the note and the inlining need no call for them. */
static bool any_resets(const struct sql_facts *f)
{
	return f->nresets > 0 || f->reset_all || f->discard_all;
}

/* Session mode. True when the message was written to s (rewritten). */
static bool txn_sniff_resets(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	size_t n;
	const char *q = query_text(msg, len, &n);
	if (!q || sqlscan_plain(q, n))
		return false; /* (most queries) nothing to pin, track or put back */
	struct sql_facts f;
	sqlscan(q, n, &f);
	txn_note_set_again(c, s, &f);
	bool fresh = !s->restore;
	struct txn_restore *r = any_resets(&f) ? txn_note_resets(c, s, &f) : NULL;
	bool written = msg[0] == PQMSG_QUERY && fresh && r && txn_inline_resets(c, s, &f, q, r);
	sql_facts_free(&f);
	return written;
}

/* Transaction and statement modes. True when the message was written to s (rewritten). */
static bool txn_sniff(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	size_t n;
	const char *q = query_text(msg, len, &n);
	if (!q || sqlscan_plain(q, n))
		return false; /* (most queries) nothing to pin, track or put back */
	struct sql_facts f;
	sqlscan(q, n, &f);
	txn_note_set_again(c, s, &f);
	bool fresh = !s->restore;
	struct txn_restore *r = any_resets(&f) ? txn_note_resets(c, s, &f) : NULL;
	if (f.pin_reason)
		txn_pin(c, f.pin_reason);
	if (f.deallocate_all || f.discard_all) {
		/* The server may drop every statement, other clients' too: forget them now (a
		 * statement forgotten in vain is prepared again). The client's own go when the
		 * server confirms (in a failed transaction block it refuses). */
		ps_server_forget(s);
		if (!s->txn_set)
			s->txn_set = xcalloc(1, sizeof(*s->txn_set));
		s->txn_set->forget = true;
		s->txn_set->discard |= f.discard_all;
	}
	if (f.has_set)
		txn_set(c, s, &f);
	bool written = msg[0] == PQMSG_QUERY && fresh && r && txn_inline_resets(c, s, &f, q, r);
	sql_facts_free(&f);
	return written;
}

void txn_client_msg(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	if (!active(s)) {
		if (!txn_sniff_resets(c, s, msg, len))
			buf_append(&s->c.out, msg, len);
		return;
	}
	if ((msg[0] == PQMSG_QUERY || msg[0] == PQMSG_PARSE) && txn_sniff(c, s, msg, len)) {
		ps_client_note(s, msg[0]);
		return;
	}
	if (msg[0] != PQMSG_QUERY && ps_enabled(s)) {
		ps_client_msg(c, s, msg, len);
		return;
	}
	buf_append(&s->c.out, msg, len);
	ps_client_note(s, msg[0]);
}

void txn_client_note(struct server *s, uint8_t type)
{
	if (active(s))
		ps_client_note(s, type);
}

bool txn_server_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
{
	if (type == PQMSG_ERROR && s->txn_set)
		s->txn_set->failed = true;
	if (type == PQMSG_ERROR && s->restore && s->restore->skip == 0) {
		/* After a DISCARD ALL that PostgreSQL committed, the error rolls back (or skips)
		 * only what came behind it: the SETs after it no longer count. */
		if (s->restore->committed)
			s->restore->nset = 0;
		else
			s->restore->failed = true;
	}
	return ps_server_msg(s, type, msg, len);
}

/* The client's position of a position in the Query Shoal sent: Shoal's text taken out. */
static long txn_client_position(const struct txn_swallow *w, long pos)
{
	long p = pos - 1, cut = 0;
	for (int i = 0; i < w->npos && p >= w->pos_at[i] + cut + w->pos_len[i]; i++)
		cut += w->pos_len[i];
	return p - cut + 1;
}

/* The 'P' field of an ErrorResponse or NoticeResponse (msg whole): its offset, or 0. */
static size_t position_field(const uint8_t *msg, size_t len)
{
	size_t i = 5;
	while (i < len && msg[i]) {
		size_t n = strnlen((const char *)msg + i + 1, len - i - 1);
		if (i + 1 + n >= len)
			return 0; /* not terminated */
		if (msg[i] == 'P')
			return i;
		i += n + 2;
	}
	return 0;
}

void txn_position_out(const struct server *s, struct buf *out, const uint8_t *msg, size_t len)
{
	const struct txn_swallow *w = s->swallow;
	size_t at = w && w->skip == 0 && w->npos > 0 ? position_field(msg, len) : 0;
	if (at == 0) {
		buf_append(out, msg, len);
		return;
	}
	const char *old = (const char *)msg + at + 1;
	size_t end = at + 1 + strlen(old) + 1; /* terminated: position_field checked */
	char num[24];
	snprintf(num, sizeof(num), "%ld", txn_client_position(w, strtol(old, NULL, 10)));
	proto_begin(out, msg[0]);
	proto_put_bytes(out, msg + 5, at + 1 - 5);
	proto_put_str(out, num);
	proto_put_bytes(out, msg + end, len - end);
	proto_finish(out);
}

bool txn_holds_status(const struct server *s)
{
	return s->restore && !s->restore->inlined && s->restore->skip == 0 && !s->restore->failed;
}

static void txn_set_free(struct server *s)
{
	if (!s->txn_set)
		return;
	free(s->txn_set->name);
	free(s->txn_set->value);
	free(s->txn_set);
	s->txn_set = NULL;
}

bool txn_wants_tags(const struct server *s)
{
	return (s->txn_set && (s->txn_set->in_block || s->txn_set->discard)) || s->swallow ||
	       (s->restore && s->restore->discard);
}

static void txn_swallow_free(struct server *s)
{
	free(s->swallow);
	s->swallow = NULL;
}

/* Is this CommandComplete the answer to a SET Shoal added to the client's Query? */
static bool txn_swallowed(struct server *s, struct client *c, const char *tag, size_t n)
{
	struct txn_swallow *w = s->swallow;
	if (!w || w->skip > 0)
		return false;
	w->seen++;
	if (w->next == w->n || w->at[w->next] != w->seen)
		return false;
	w->next++;
	if (n == 3 && memcmp(tag, "SET", 3) == 0)
		return true;
	/* The server split the text otherwise than sqlscan (it cannot happen for the statements
	 * sqlscan knows): stop dropping, the client sees Shoal's SET rather than lose a reply. */
	log_warn("%s: statement %d of its Query answered \"%.*s\", not SET; not dropped",
		 c->c.name, w->seen, (int)n, tag);
	txn_swallow_free(s);
	return false;
}

bool txn_server_tag(struct server *s, struct client *c, const uint8_t *msg, size_t len)
{
	const char *tag = (const char *)msg + 5;
	size_t n = strnlen(tag, len - 5);
	if (txn_swallowed(s, c, tag, n))
		return false;
	if (n == 11 && memcmp(tag, "DISCARD ALL", 11) == 0) {
		/* PostgreSQL commits it at once: an error later in the pipeline keeps it */
		if (s->restore && s->restore->skip == 0)
			s->restore->committed = true;
		if (s->txn_set)
			s->txn_set->discarded = true;
	}
	if (!s->txn_set || !s->txn_set->in_block)
		return true;
	/* ROLLBACK, ROLLBACK TO SAVEPOINT and a COMMIT of a failed block all say "ROLLBACK";
	 * PREPARE TRANSACTION takes the block out of this session. */
	if ((n >= 8 && strncmp(tag, "ROLLBACK", 8) == 0) ||
	    (n >= 19 && strncmp(tag, "PREPARE TRANSACTION", 19) == 0))
		s->txn_set->rolled_back = true;
	return true;
}

static void txn_restore_free(struct server *s)
{
	free(s->restore);
	s->restore = NULL;
}

/* The names the client SET again after its reset hold the client's value on the server: the
 * server's entry is made the client's so that the resync leaves them as they are. */
static void txn_keep_set_again(const struct client *c, struct server *s,
			       const struct txn_restore *r)
{
	for (int i = 0; i < r->nset; i++) {
		const struct param *cp = params_find(&c->params, r->set_again[i]);
		if (!cp) {
			params_remove(&s->params, r->set_again[i]);
			continue;
		}
		params_set(&s->params, cp->name, cp->value, false);
		params_find(&s->params, cp->name)->raw = cp->raw;
	}
}

/* Before the client's value of a reported parameter becomes its login value again: what the
 * client was told, kept with the ParameterStatus messages held until its ReadyForQuery, so that
 * it hears the login value only if that is news to it (server_read.c, server_send_held). */
static void txn_hold_known(const struct client *c, struct server *s, const char *name)
{
	const struct param *sp = params_find(&s->params, name);
	const char *known = params_get(&c->params, name);
	if (sp && sp->initial && known && !params_find(&s->held_status, name))
		params_set(&s->held_status, name, known, false);
}

/* One login value lp goes back into the client's parameters. A value the server reports is
 * known from its ParameterStatus (all are read by the ReadyForQuery): after a RESET inside the
 * client's Query, whose SETs already put the login values back, such a value is the server's
 * truth (a later statement of that Query may have SET it again) and is left alone. */
static void txn_restore_one(struct client *c, struct server *s, const struct txn_restore *r,
			    const struct param *lp)
{
	const struct param *sp = params_find(&s->params, lp->name);
	bool reported = sp && sp->initial;
	if (r->inlined) {
		if (!reported) { /* the server has it again */
			params_set(&c->params, lp->name, lp->value, false);
			params_set(&s->params, lp->name, lp->value, false);
		}
		return;
	}
	txn_hold_known(c, s, lp->name);
	params_set(&c->params, lp->name, lp->value, false);
	if (!reported)
		params_back_to_initial(&s->params, lp->name);
}

/* The client's login values go back into its parameters; the server's are at their own reset
 * values now. The difference is what server_setup.c's resync applies. */
static void txn_restore_login(struct client *c, struct server *s, struct txn_restore *r)
{
	if (r->all) {
		params_remove_raw(&c->params); /* tracked SETs are reset too */
		params_forget_unreported(&s->params);
		for (int i = 0; i < c->login.n; i++) {
			const struct param *lp = &c->login.items[i];
			if (names_find(r->set_again, r->nset, lp->name) < 0)
				txn_restore_one(c, s, r, lp);
		}
		txn_keep_set_again(c, s, r);
		return;
	}
	for (int i = 0; i < r->n; i++)
		txn_restore_one(c, s, r, params_find(&c->login, r->names[i]));
}

/* Out of line, as txn_set_ready: most transactions RESET nothing. */
static __attribute__((noinline)) void txn_restore_ready(struct server *s, struct client *c,
							char status)
{
	struct txn_restore *r = s->restore;
	if (r->skip > 0) {
		r->skip--;
		return;
	}
	if (!r->failed && (status != 'E' || r->committed)) {
		txn_restore_login(c, s, r);
		s->resync = !r->inlined;
		if (s->resync)
			log_debug("%s: RESET of login values, putting them back", c->c.name);
		/* Inside a block the put-back SET is undone with the block if it rolls back; what
		 * Shoal tracks for unreported values would then be unsure: keep the server. */
		if (status == 'T' && active(s))
			txn_pin(c, "RESET inside a transaction block");
	}
	txn_restore_free(s);
}

/* Out of line: most transactions SET nothing, and the common ReadyForQuery needs no frame. */
static __attribute__((noinline)) void txn_set_ready(struct server *s, struct client *c,
						    char status);

void txn_server_ready(struct server *s, struct client *c, char status)
{
	if (status == 'I')
		ps_server_idle(s);
	if (s->txn_set)
		txn_set_ready(s, c, status);
	if (s->restore)
		txn_restore_ready(s, c, status);
	if (s->swallow && s->swallow->skip-- == 0)
		txn_swallow_free(s);
}

static void txn_set_ready(struct server *s, struct client *c, char status)
{
	struct txn_set *t = s->txn_set;
	if (t->name && status != 'I')
		t->in_block = true; /* a BEGIN came behind the SET: it is part of that block now */
	if (t->in_block) {
		if (status != 'I')
			return; /* the block goes on */
		if (t->failed || t->rolled_back) {
			/* Committed after a savepoint rollback, or rolled back: the server's value is
			 * not known for sure. */
			txn_pin(c, "SET in a transaction block that did not simply commit");
			txn_set_free(s);
			return;
		}
	}
	if ((!t->failed || t->discarded) && t->forget) {
		ps_client_forget(c);
		if (t->discard) {
			/* The server is back at its login values (its reported parameters came
			 * back by ParameterStatus); the client's tracked SETs are gone. */
			params_remove_raw(&c->params);
			params_forget_unreported(&s->params);
		}
	}
	if (t->name && !t->failed && status == 'I') {
		log_debug("%s tracks %s = %s", c->c.name, t->name, t->value ? t->value : "DEFAULT");
		if (t->value) {
			params_set_raw(&c->params, t->name, t->value);
			params_set_raw(&s->params, t->name, t->value);
		} else {
			params_remove(&c->params, t->name);
			params_remove(&s->params, t->name);
		}
	}
	txn_set_free(s);
}

void txn_server_reset(struct server *s, const char *query)
{
	struct sql_facts f;
	sqlscan(query, strlen(query), &f);
	if (f.deallocate_all || f.discard_all)
		ps_server_forget(s);
	sql_facts_free(&f);
	ps_server_query_sent(s);
	txn_set_free(s);
	txn_restore_free(s);
	txn_swallow_free(s);
	s->resync = false;
	params_free(&s->held_status);
}

void txn_client_free(struct client *c)
{
	ps_client_free(c);
}

void txn_server_free(struct server *s)
{
	txn_set_free(s);
	txn_restore_free(s);
	txn_swallow_free(s);
	params_free(&s->held_status);
	ps_server_free(s);
}
