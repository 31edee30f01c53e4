/* sqlroute.c: read_write_split's look at a client's Query: a read a standby may answer, a
 * read-only transaction, a routing hint, SET shoal.route, or (in doubt) work for the primary. */
#include "sqlscan.h"
#include "sqlscan_int.h"

#include <string.h>
#include <strings.h>

/* Words that make a statement that starts as a read a write (or a doubt): row locks (FOR
 * UPDATE / SHARE / NO KEY UPDATE / KEY SHARE), SELECT INTO, sequences, a transaction id, the
 * session-changing and notifying functions. Anything else a SELECT calls is trusted to read:
 * the documented limit. */
static const char *const writers[] = {
    "update",
    "share",
    "into",
    "nextval",
    "setval",
    "set_config",
    "txid_current",
    "pg_current_xact_id",
    "pg_notify",
    "lo_import",
    "lo_create",
    "lo_unlink",
    "lo_from_bytea",
    "lo_put",
    "dblink_exec",
    "pg_switch_wal",
    "pg_create_restore_point",
    NULL,
};

/* Is token t (an identifier, plain or quoted) the word w, in any case? */
static bool word_is(const char *p, const struct tok *t, const char *w)
{
	size_t n = strlen(w);
	if (t->k == TK_IDENT)
		return t->n == n && strncasecmp(p + t->s, w, n) == 0;
	return t->k == TK_QIDENT && t->bn == n && memcmp(p + t->bs, w, n) == 0;
}

static bool is_writer(const char *p, const struct tok *t)
{
	if (t->k != TK_IDENT && t->k != TK_QIDENT)
		return false;
	for (int i = 0; writers[i]; i++)
		if (word_is(p, t, writers[i]))
			return true;
	/* pg_advisory_* and pg_try_advisory_*: locks (and a pinned client) */
	size_t s = t->k == TK_IDENT ? t->s : t->bs, n = t->k == TK_IDENT ? t->n : t->bn;
	return (n > 12 && strncasecmp(p + s, "pg_advisory_", 12) == 0) ||
	       (n > 16 && strncasecmp(p + s, "pg_try_advisory_", 16) == 0);
}

/* The comment at the head of the text, if it is exactly a routing hint (spaces allowed inside
 * its delimiters): SQLR_FORCE_PRIMARY / SQLR_FORCE_STANDBY, else SQLR_PRIMARY (no hint). */
static enum sql_route head_hint(const char *p, size_t len)
{
	size_t i = 0;
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	if (i + 4 > len || p[i] != '/' || p[i + 1] != '*')
		return SQLR_PRIMARY;
	i += 2;
	while (i < len && p[i] == ' ')
		i++;
	static const char key[] = "shoal:route=";
	size_t k = sizeof(key) - 1;
	if (i + k > len || strncasecmp(p + i, key, k) != 0)
		return SQLR_PRIMARY;
	i += k;
	enum sql_route r = SQLR_PRIMARY;
	if (i + 7 <= len && strncasecmp(p + i, "primary", 7) == 0) {
		r = SQLR_FORCE_PRIMARY;
		i += 7;
	} else if (i + 7 <= len && strncasecmp(p + i, "standby", 7) == 0) {
		r = SQLR_FORCE_STANDBY;
		i += 7;
	}
	while (i < len && p[i] == ' ')
		i++;
	return i + 2 <= len && p[i] == '*' && p[i + 1] == '/' ? r : SQLR_PRIMARY;
}

/* Up to max tokens of the text's only statement into t (';' dropped); the count (which may be
 * over max), or -1 when there are more statements. *writes: a token is_writer(). */
static int one_statement(const char *p, size_t len, struct tok *t, int max, bool *writes)
{
	struct lexer lx = {.p = p, .len = len};
	int n = 0;
	bool semi = false;
	for (;;) {
		struct tok k;
		sql_lex_next(&lx, &k);
		if (k.k == TK_END)
			return n;
		if (k.k == TK_PUNCT && p[k.s] == ';') {
			semi = true;
			continue;
		}
		if (semi)
			return -1; /* a second statement */
		*writes |= is_writer(p, &k);
		if (n < max)
			t[n] = k;
		n++;
	}
}

/* SET [SESSION] shoal.route {= | TO} value: SQLR_SET_*, or SQLR_PRIMARY when it is not one. */
static enum sql_route route_set(const char *p, const struct tok *t, int n)
{
	int i = 1;
	if (i < n && word_is(p, &t[i], "session"))
		i++;
	if (n != i + 5 || !word_is(p, &t[i], "shoal") || t[i + 1].k != TK_PUNCT ||
	    p[t[i + 1].s] != '.' || !word_is(p, &t[i + 2], "route"))
		return SQLR_PRIMARY;
	const struct tok *op = &t[i + 3], *v = &t[i + 4];
	if (!(op->k == TK_PUNCT && p[op->s] == '=') && !word_is(p, op, "to"))
		return SQLR_PRIMARY;
	struct tok w = *v;
	if (v->k == TK_STRING) { /* 'primary': compared as a word */
		w.k = TK_IDENT;
		w.s = v->bs;
		w.n = v->bn;
	}
	if (word_is(p, &w, "primary"))
		return SQLR_SET_PRIMARY;
	if (word_is(p, &w, "standby"))
		return SQLR_SET_STANDBY;
	if (word_is(p, &w, "auto") || word_is(p, &w, "default"))
		return SQLR_SET_AUTO;
	return SQLR_SET_BAD;
}

/* BEGIN / START TRANSACTION with READ ONLY among its modes (and not READ WRITE). */
static bool read_only_begin(const char *p, const struct tok *t, int n)
{
	int i = 1;
	if (word_is(p, &t[0], "start")) {
		if (n < 2 || !word_is(p, &t[1], "transaction"))
			return false;
		i = 2;
	} else if (!word_is(p, &t[0], "begin")) {
		return false;
	}
	bool ro = false;
	for (; i + 1 < n; i++) {
		if (!word_is(p, &t[i], "read"))
			continue;
		if (word_is(p, &t[i + 1], "write"))
			return false;
		ro |= word_is(p, &t[i + 1], "only");
	}
	return ro;
}

#define ROUTE_TOKS 24

enum sql_route sql_route(const char *sql, size_t len)
{
	enum sql_route hint = head_hint(sql, len);
	struct tok t[ROUTE_TOKS];
	bool writes = false;
	int n = one_statement(sql, len, t, ROUTE_TOKS, &writes);
	if (n > 0 && n <= ROUTE_TOKS && word_is(sql, &t[0], "set")) {
		enum sql_route r = route_set(sql, t, n);
		if (r != SQLR_PRIMARY)
			return r;
	}
	if (hint != SQLR_PRIMARY)
		return hint;
	if (n <= 0)
		return SQLR_PRIMARY; /* several statements, or none */
	if (n <= ROUTE_TOKS && read_only_begin(sql, t, n))
		return SQLR_READ_TXN;
	if (writes)
		return SQLR_PRIMARY;
	if (word_is(sql, &t[0], "select") || word_is(sql, &t[0], "values") ||
	    word_is(sql, &t[0], "show") || word_is(sql, &t[0], "table"))
		return SQLR_READ;
	return SQLR_PRIMARY;
}
