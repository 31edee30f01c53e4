/* sqlscan.c: SQL lexer and the session-state facts transaction pooling needs from a query. */
#include "sqlscan.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum tok_kind { TK_END, TK_IDENT, TK_QIDENT, TK_STRING, TK_DOLLAR, TK_NUMBER, TK_PARAM, TK_PUNCT };

struct tok {
	enum tok_kind k;
	size_t s, n;   /* the token's span in the text */
	size_t bs, bn; /* TK_DOLLAR / TK_STRING: the body between the quotes */
};

struct lexer {
	const char *p;
	size_t len, pos;
};

#define STMT_TOKS 64
#define MAX_DEPTH 4

/* What one scan (the text, or a function body inside it) has seen so far. */
struct scan {
	const char *p;
	struct sql_facts *f;
	int depth; /* 0: the client's text; >0: a dollar-quoted body or a string inside one */
	struct tok t[STMT_TOKS];
	int n;	       /* tokens of the current statement kept in t */
	bool overflow; /* the statement has more than STMT_TOKS tokens */
	int nsets;     /* session-level SET/RESET statements seen */
	int sc_state;  /* set_config( ... ): 0 none, 1 name seen, 2 inside the parentheses */
	int sc_depth;
	bool sc_last_true; /* the last token at depth 1 inside set_config() is "true" */
	struct tok prev;   /* previous token (TK_END at a statement start) */
};

static bool ident_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

static void skip_space_and_comments(struct lexer *lx)
{
	const char *p = lx->p;
	while (lx->pos < lx->len) {
		unsigned char c = (unsigned char)p[lx->pos];
		if (isspace(c)) {
			lx->pos++;
		} else if (c == '-' && lx->pos + 1 < lx->len && p[lx->pos + 1] == '-') {
			while (lx->pos < lx->len && p[lx->pos] != '\n')
				lx->pos++;
		} else if (c == '/' && lx->pos + 1 < lx->len && p[lx->pos + 1] == '*') {
			int depth = 0; /* PostgreSQL's block comments nest */
			do {
				if (lx->pos + 1 < lx->len && p[lx->pos] == '/' &&
				    p[lx->pos + 1] == '*') {
					depth++;
					lx->pos += 2;
				} else if (lx->pos + 1 < lx->len && p[lx->pos] == '*' &&
					   p[lx->pos + 1] == '/') {
					depth--;
					lx->pos += 2;
				} else {
					lx->pos++;
				}
			} while (depth > 0 && lx->pos < lx->len);
		} else {
			return;
		}
	}
}

/* A quoted run from lx->pos (at the opening quote q) to after its closing quote; a doubled quote
 * is part of the text, and with backslashes a backslash escapes the next byte (E'...'). */
static void lex_quoted(struct lexer *lx, char q, bool backslashes, struct tok *t)
{
	size_t i = lx->pos + 1;
	t->bs = i;
	while (i < lx->len) {
		if (backslashes && lx->p[i] == '\\' && i + 1 < lx->len) {
			i += 2;
		} else if (lx->p[i] == q) {
			if (i + 1 < lx->len && lx->p[i + 1] == q) {
				i += 2;
				continue;
			}
			break;
		} else {
			i++;
		}
	}
	t->bn = (i < lx->len ? i : lx->len) - t->bs;
	lx->pos = i < lx->len ? i + 1 : lx->len;
}

/* $tag$ ... $tag$ starting at lx->pos. False if this '$' does not open a dollar quote. */
static bool lex_dollar(struct lexer *lx, struct tok *t)
{
	size_t i = lx->pos + 1;
	if (i < lx->len && ident_start((unsigned char)lx->p[i]))
		while (i < lx->len && ident_char((unsigned char)lx->p[i]) && lx->p[i] != '$')
			i++;
	if (i >= lx->len || lx->p[i] != '$')
		return false;
	size_t taglen = i + 1 - lx->pos;
	const char *tag = lx->p + lx->pos;
	t->bs = i + 1;
	for (size_t j = t->bs; j + taglen <= lx->len; j++) {
		if (lx->p[j] == '$' && memcmp(lx->p + j, tag, taglen) == 0) {
			t->bn = j - t->bs;
			lx->pos = j + taglen;
			return true;
		}
	}
	t->bn = lx->len - t->bs; /* unterminated: the rest of the text */
	lx->pos = lx->len;
	return true;
}

static void lex_next(struct lexer *lx, struct tok *t)
{
	skip_space_and_comments(lx);
	memset(t, 0, sizeof(*t));
	t->s = lx->pos;
	if (lx->pos >= lx->len) {
		t->k = TK_END;
		return;
	}
	unsigned char c = (unsigned char)lx->p[lx->pos];
	if (c == '\'') {
		t->k = TK_STRING;
		lex_quoted(lx, '\'', false, t);
	} else if ((c == 'e' || c == 'E') && lx->pos + 1 < lx->len && lx->p[lx->pos + 1] == '\'') {
		t->k = TK_STRING;
		lx->pos++;
		lex_quoted(lx, '\'', true, t);
	} else if (c == '"') {
		t->k = TK_QIDENT;
		lex_quoted(lx, '"', false, t);
	} else if (c == '$' && lx->pos + 1 < lx->len &&
		   isdigit((unsigned char)lx->p[lx->pos + 1])) {
		t->k = TK_PARAM;
		lx->pos++;
		while (lx->pos < lx->len && isdigit((unsigned char)lx->p[lx->pos]))
			lx->pos++;
	} else if (c == '$' && lex_dollar(lx, t)) {
		t->k = TK_DOLLAR;
	} else if (ident_start(c)) {
		t->k = TK_IDENT;
		while (lx->pos < lx->len && ident_char((unsigned char)lx->p[lx->pos]))
			lx->pos++;
	} else if (isdigit(c)) {
		t->k = TK_NUMBER;
		while (lx->pos < lx->len &&
		       (isalnum((unsigned char)lx->p[lx->pos]) || lx->p[lx->pos] == '.'))
			lx->pos++;
	} else {
		t->k = TK_PUNCT;
		lx->pos++;
	}
	t->n = lx->pos - t->s;
}

static bool is_word(const struct scan *sc, const struct tok *t, const char *w)
{
	size_t n = strlen(w);
	return t->k == TK_IDENT && t->n == n && strncasecmp(sc->p + t->s, w, n) == 0;
}

static bool is_punct(const struct scan *sc, const struct tok *t, char ch)
{
	return t->k == TK_PUNCT && sc->p[t->s] == ch;
}

static void pin(struct scan *sc, const char *why)
{
	if (!sc->f->pin_reason)
		sc->f->pin_reason = why;
}

static void scan_text(const char *p, size_t len, struct sql_facts *f, int depth);

/* set_config(name, value, is_local): session-level unless the last argument is literally true. */
static void track_set_config(struct scan *sc, const struct tok *t)
{
	if (sc->sc_state == 0) {
		if (is_word(sc, t, "set_config"))
			sc->sc_state = 1;
		return;
	}
	if (sc->sc_state == 1) {
		sc->sc_state = is_punct(sc, t, '(') ? 2 : 0;
		sc->sc_depth = 1;
		sc->sc_last_true = false;
		return;
	}
	if (is_punct(sc, t, '(')) {
		sc->sc_depth++;
	} else if (is_punct(sc, t, ')')) {
		if (--sc->sc_depth == 0) {
			if (!sc->sc_last_true)
				pin(sc, "set_config() with is_local false");
			sc->sc_state = 0;
		}
	} else if (sc->sc_depth == 1) {
		sc->sc_last_true = is_word(sc, t, "true");
	}
}

/* Rules that hold wherever a token appears. */
static void check_anywhere(struct scan *sc, const struct tok *t)
{
	static const char *const locks[] = {"pg_advisory_lock", "pg_advisory_lock_shared",
					    "pg_try_advisory_lock", "pg_try_advisory_lock_shared"};
	static const char *const before_temp[] = {"create", "global", "local", "into", "replace"};
	for (size_t i = 0; i < ARRAY_LEN(locks); i++)
		if (is_word(sc, t, locks[i]))
			pin(sc, "session advisory lock");
	if (is_word(sc, t, "temp") || is_word(sc, t, "temporary"))
		for (size_t i = 0; i < ARRAY_LEN(before_temp); i++)
			if (is_word(sc, &sc->prev, before_temp[i]))
				pin(sc, "temporary table");
	if (is_word(sc, t, "pg_temp"))
		pin(sc, "temporary table");
	if (is_word(sc, t, "hold") && is_word(sc, &sc->prev, "with"))
		pin(sc, "WITH HOLD cursor");
	track_set_config(sc, t);
	/* Function bodies and DO blocks run SQL we cannot see as statements: scan them with the
	 * body rules. Inside a body, string literals may be dynamic SQL (EXECUTE '...'). A
	 * dollar-quoted literal elsewhere (SELECT $$...$$) is data. */
	bool body =
	    sc->depth > 0 ||
	    (sc->n > 0 && (is_word(sc, &sc->t[0], "do") || is_word(sc, &sc->t[0], "create")));
	if (sc->depth < MAX_DEPTH && body &&
	    (t->k == TK_DOLLAR || (t->k == TK_STRING && sc->depth > 0)))
		scan_text(sc->p + t->bs, t->bn, sc->f, sc->depth + 1);
}

/* Append token t to out, with one space before it if the source had a gap. */
static void append_tok(const struct scan *sc, char **out, size_t *len, const struct tok *t,
		       const struct tok *prev)
{
	bool gap = prev && prev->s + prev->n != t->s;
	*out = xrealloc(*out, *len + t->n + 2);
	if (gap)
		(*out)[(*len)++] = ' ';
	memcpy(*out + *len, sc->p + t->s, t->n);
	*len += t->n;
	(*out)[*len] = '\0';
}

/* The value of SET name {= | TO} value: tokens i.. to the statement end, comments dropped. */
static void capture_value(struct scan *sc, int i)
{
	struct sql_facts *f = sc->f;
	if (i >= sc->n || sc->overflow) {
		f->set_name[0] = '\0'; /* cannot capture: untrackable */
		return;
	}
	if (i == sc->n - 1 && is_word(sc, &sc->t[i], "default")) {
		f->set_reset = true;
		return;
	}
	char *v = NULL;
	size_t len = 0;
	for (int j = i; j < sc->n; j++)
		append_tok(sc, &v, &len, &sc->t[j], j > i ? &sc->t[j - 1] : NULL);
	f->set_value = v;
}

/* The parameter name at t[i] (ident or ident.ident), lower-cased into f->set_name. Returns the
 * index after it, or -1. */
static int capture_name(struct scan *sc, int i)
{
	char *name = sc->f->set_name;
	if (i >= sc->n || sc->t[i].k != TK_IDENT)
		return -1;
	size_t n = sc->t[i].n;
	int next = i + 1;
	if (i + 2 < sc->n && is_punct(sc, &sc->t[i + 1], '.') && sc->t[i + 2].k == TK_IDENT)
		n = sc->t[i + 2].s + sc->t[i + 2].n - sc->t[i].s, next = i + 3;
	if (n >= SQL_NAME_MAX)
		return -1;
	for (size_t j = 0; j < n; j++)
		name[j] = (char)tolower((unsigned char)sc->p[sc->t[i].s + j]);
	name[n] = '\0';
	return strchr(name, ' ') ? -1 : next;
}

static void record_set(struct scan *sc, const char *alias, int name_at, int value_at)
{
	struct sql_facts *f = sc->f;
	if (sc->depth > 0) {
		pin(sc, "SET inside a function body");
		return;
	}
	if (f->has_set) {
		f->set_name[0] = '\0'; /* two SETs in one text: not tracked */
		return;
	}
	f->has_set = true;
	if (alias) {
		strcpy(f->set_name, alias);
	} else {
		int i = capture_name(sc, name_at);
		if (i < 0 || i >= sc->n ||
		    !(is_punct(sc, &sc->t[i], '=') || is_word(sc, &sc->t[i], "to"))) {
			f->set_name[0] = '\0';
			return;
		}
		value_at = i + 1;
	}
	capture_value(sc, value_at);
}

static void analyze_set(struct scan *sc)
{
	int i = 1;
	if (i < sc->n && is_word(sc, &sc->t[i], "local"))
		return; /* ends with the transaction */
	if (i < sc->n && is_word(sc, &sc->t[i], "session")) {
		if (i + 1 < sc->n && is_word(sc, &sc->t[i + 1], "authorization")) {
			pin(sc, "SET SESSION AUTHORIZATION");
			return;
		}
		if (i + 1 < sc->n && is_word(sc, &sc->t[i + 1], "characteristics")) {
			pin(sc, "SET SESSION CHARACTERISTICS");
			return;
		}
		i++;
	}
	if (i >= sc->n)
		return;
	const struct tok *t = &sc->t[i];
	if (is_word(sc, t, "role"))
		pin(sc, "SET ROLE");
	else if (is_word(sc, t, "transaction") || is_word(sc, t, "constraints"))
		return; /* this transaction only */
	else if (is_word(sc, t, "time") && i + 1 < sc->n && is_word(sc, &sc->t[i + 1], "zone"))
		record_set(sc, "timezone", 0, i + 2);
	else if (is_word(sc, t, "names"))
		record_set(sc, "client_encoding", 0, i + 1);
	else if (is_word(sc, t, "schema"))
		record_set(sc, "search_path", 0, i + 1);
	else
		record_set(sc, NULL, i, 0);
}

static void analyze_reset(struct scan *sc)
{
	if (sc->n < 2 || is_word(sc, &sc->t[1], "role") || is_word(sc, &sc->t[1], "session"))
		return; /* RESET ROLE / RESET SESSION AUTHORIZATION restore the login identity */
	if (is_word(sc, &sc->t[1], "all")) {
		pin(sc, "RESET ALL");
		return;
	}
	if (sc->depth > 0)
		return;
	struct sql_facts *f = sc->f;
	if (f->has_set) {
		f->set_name[0] = '\0';
		return;
	}
	f->has_set = true;
	f->set_reset = true;
	if (capture_name(sc, 1) != sc->n)
		f->set_name[0] = '\0';
}

/* Rules for the first words of a statement. */
static void analyze_stmt(struct scan *sc)
{
	if (sc->n == 0)
		return;
	const struct tok *t0 = &sc->t[0], *t1 = sc->n > 1 ? &sc->t[1] : NULL;
	if (sc->depth == 0)
		sc->f->nstmts++;
	if (is_word(sc, t0, "set"))
		analyze_set(sc);
	else if (is_word(sc, t0, "reset"))
		analyze_reset(sc);
	else if (is_word(sc, t0, "listen"))
		pin(sc, "LISTEN");
	else if (is_word(sc, t0, "load"))
		pin(sc, "LOAD");
	else if (is_word(sc, t0, "prepare") && !(t1 && is_word(sc, t1, "transaction")))
		pin(sc, "PREPARE");
	else if (sc->depth == 0 && is_word(sc, t0, "deallocate") && t1) {
		const struct tok *t = is_word(sc, t1, "prepare") && sc->n > 2 ? &sc->t[2] : t1;
		if (is_word(sc, t, "all"))
			sc->f->deallocate_all = true;
	} else if (sc->depth == 0 && is_word(sc, t0, "discard") && t1 && is_word(sc, t1, "all")) {
		sc->f->discard_all = true;
	}
}

/* In a body, a new statement also starts after these words (PL/pgSQL blocks). */
static bool body_statement_start(const struct scan *sc, const struct tok *t)
{
	return sc->depth > 0 && (is_word(sc, t, "begin") || is_word(sc, t, "then") ||
				 is_word(sc, t, "else") || is_word(sc, t, "loop"));
}

static void scan_text(const char *p, size_t len, struct sql_facts *f, int depth)
{
	struct scan *sc = xcalloc(1, sizeof(*sc));
	struct lexer lx = {.p = p, .len = len};
	struct tok t;
	sc->p = p;
	sc->f = f;
	sc->depth = depth;
	do {
		lex_next(&lx, &t);
		if (t.k == TK_END || is_punct(sc, &t, ';')) {
			analyze_stmt(sc);
			sc->n = 0;
			sc->overflow = false;
			memset(&sc->prev, 0, sizeof(sc->prev));
			continue;
		}
		check_anywhere(sc, &t);
		if (sc->n < STMT_TOKS)
			sc->t[sc->n++] = t;
		else
			sc->overflow = true;
		sc->prev = t;
		if (body_statement_start(sc, &t)) {
			analyze_stmt(sc);
			sc->n = 0;
		}
	} while (t.k != TK_END);
	free(sc);
}

void sqlscan(const char *sql, size_t len, struct sql_facts *out)
{
	memset(out, 0, sizeof(*out));
	scan_text(sql, len, out, 0);
	out->set_trackable = out->has_set && out->nstmts == 1 && out->set_name[0] &&
			     (out->set_reset || out->set_value);
}

void sql_facts_free(struct sql_facts *f)
{
	free(f->set_value);
	f->set_value = NULL;
}
