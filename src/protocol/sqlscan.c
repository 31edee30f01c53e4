/* sqlscan.c: SQL lexer and the session-state facts transaction pooling needs from a query. */
#include "sqlscan.h"
#include "sqlscan_int.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif


/* The words the rules look at. A TK_IDENT token carries its word's number, found while it is
 * lexed (one hash and one comparison), so a rule is an integer compare, not a strncasecmp. */
#define KEYWORDS(X)                                                                                \
	X(ALL, "all")                                                                              \
	X(AUTHORIZATION, "authorization")                                                          \
	X(BEGIN, "begin")                                                                          \
	X(CHARACTERISTICS, "characteristics")                                                      \
	X(CONSTRAINTS, "constraints")                                                              \
	X(CREATE, "create")                                                                        \
	X(DEALLOCATE, "deallocate")                                                                \
	X(DEFAULT, "default") X(DISCARD, "discard") X(DO, "do") X(ELSE, "else")                    \
	    X(GLOBAL, "global") X(HOLD, "hold") X(INTO, "into") X(LISTEN, "listen")                \
		X(LOAD, "load") X(LOCAL, "local") X(LOOP, "loop") X(NAMES, "names")                \
		    X(ADV_LOCK, "pg_advisory_lock") X(ADV_LOCK_SHARED, "pg_advisory_lock_shared")  \
			X(PG_TEMP, "pg_temp") X(TRY_ADV_LOCK, "pg_try_advisory_lock")              \
			    X(TRY_ADV_LOCK_SHARED, "pg_try_advisory_lock_shared")                  \
				X(PREPARE, "prepare") X(REPLACE, "replace") X(RESET, "reset")      \
				    X(ROLE, "role") X(SCHEMA, "schema") X(SESSION, "session")      \
					X(SET, "set") X(SET_CONFIG, "set_config") X(TEMP, "temp")  \
					    X(TEMPORARY, "temporary") X(THEN, "then")              \
						X(TIME, "time") X(TO, "to")                        \
						    X(TRANSACTION, "transaction") X(TRUE, "true")  \
							X(WITH, "with") X(ZONE, "zone")

#define KW_ENUM(id, text) KW_##id,
#define KW_TEXT(id, text) text,
enum keyword { KW_NONE, KEYWORDS(KW_ENUM) KW_COUNT };
static const char *const kw_text[] = {"", KEYWORDS(KW_TEXT)};
#define KW_MAXLEN 27  /* pg_try_advisory_lock_shared */
#define KW_SLOTS  256 /* open addressing, more than 4x the words */


/* C_ALNUM: ASCII letters, digits and '.', the bytes of a numeric literal's token */
/* C_HINT: the first letters of the words hint_word() knows (t, h, s, p in either case);
 * C_SEMI: ';' (plain_rest() stops only at these two) */
enum {
	C_SPACE = 1,
	C_IDSTART = 2,
	C_IDCHAR = 4,
	C_DIGIT = 8,
	C_ALNUM = 16,
	C_HINT = 32,
	C_SEMI = 64
};
static unsigned char char_class[256];
static unsigned char kw_slot[KW_SLOTS]; /* enum keyword by hash, KW_NONE for empty */
static unsigned char kw_len[KW_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static uint32_t kw_hash(const char *w)
{
	uint32_t h = HASH_SEED;
	while (*w)
		h = hash_byte(h, (unsigned char)*w++);
	return h;
}

static void init_tables(void)
{
	for (int c = 0; c < 256; c++) {
		bool alpha =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
		bool digit = c >= '0' && c <= '9';
		bool ascii_alnum = digit || c == '.' || (alpha && c != '_' && c < 0x80);
		char_class[c] =
		    (unsigned char)((alpha ? C_IDSTART | C_IDCHAR : 0) |
				    (digit ? C_DIGIT | C_IDCHAR : 0) | (c == '$' ? C_IDCHAR : 0) |
				    (ascii_alnum ? C_ALNUM : 0));
	}
	for (const char *sp = " \t\n\v\f\r"; *sp; sp++)
		char_class[(unsigned char)*sp] = C_SPACE;
	for (const char *h = "thspTHSP"; *h; h++)
		char_class[(unsigned char)*h] |= C_HINT;
	char_class[';'] = C_SEMI;
	for (int k = 1; k < KW_COUNT; k++) {
		uint32_t i = kw_hash(kw_text[k]) % KW_SLOTS;
		kw_len[k] = (unsigned char)strlen(kw_text[k]);
		while (kw_slot[i])
			i = (i + 1) % KW_SLOTS;
		kw_slot[i] = (unsigned char)k;
	}
}

/* The keyword spelled by the lower-cased word (n bytes, hash h), or KW_NONE. */
static enum keyword kw_find(const char *lower, size_t n, uint32_t h)
{
	for (uint32_t i = h % KW_SLOTS; kw_slot[i]; i = (i + 1) % KW_SLOTS) {
		unsigned char k = kw_slot[i];
		if (kw_len[k] == n && memcmp(kw_text[k], lower, n) == 0)
			return (enum keyword)k;
	}
	return KW_NONE;
}


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
	int sc_state;  /* set_config( ... ): 0 none, 1 name seen, 2 inside the parentheses */
	int sc_depth;
	bool sc_last_true; /* the last token at depth 1 inside set_config() is "true" */
	struct tok prev;   /* previous token (TK_END at a statement start) */
};

static bool ident_start(unsigned char c)
{
	return char_class[c] & C_IDSTART;
}

static bool ident_char(unsigned char c)
{
	return char_class[c] & C_IDCHAR;
}

static bool is_digit(unsigned char c)
{
	return char_class[c] & C_DIGIT;
}

static void skip_space_and_comments(struct lexer *lx)
{
	const char *p = lx->p;
	while (lx->pos < lx->len) {
		unsigned char c = (unsigned char)p[lx->pos];
		if (char_class[c] & C_SPACE) {
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

/* An identifier or keyword from lx->pos; lower-cases and hashes it on the way to name the word. */
static void lex_ident(struct lexer *lx, struct tok *t)
{
	char lower[KW_MAXLEN];
	const unsigned char *p = (const unsigned char *)lx->p;
	size_t i = lx->pos, len = lx->len, start = i;
	uint32_t h = HASH_SEED;
	for (; i < len && ident_char(p[i]); i++) {
		unsigned char c =
		    p[i] >= 'A' && p[i] <= 'Z' ? (unsigned char)(p[i] + ('a' - 'A')) : p[i];
		if (i - start < KW_MAXLEN)
			lower[i - start] = (char)c;
		h = hash_byte(h, c);
	}
	t->k = TK_IDENT;
	t->kw = i - start <= KW_MAXLEN ? kw_find(lower, i - start, h) : KW_NONE;
	lx->pos = i;
}

static void lex_next(struct lexer *lx, struct tok *t)
{
	skip_space_and_comments(lx);
	*t = (struct tok){.s = lx->pos};
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
		   is_digit((unsigned char)lx->p[lx->pos + 1])) {
		t->k = TK_PARAM;
		lx->pos++;
		while (lx->pos < lx->len && is_digit((unsigned char)lx->p[lx->pos]))
			lx->pos++;
	} else if (c == '$' && lex_dollar(lx, t)) {
		t->k = TK_DOLLAR;
	} else if (ident_start(c)) {
		lex_ident(lx, t);
	} else if (is_digit(c)) {
		t->k = TK_NUMBER;
		while (lx->pos < lx->len && (char_class[(unsigned char)lx->p[lx->pos]] & C_ALNUM))
			lx->pos++;
	} else {
		t->k = TK_PUNCT;
		lx->pos++;
	}
	t->n = lx->pos - t->s;
}

static bool is_kw(const struct tok *t, enum keyword kw)
{
	return t->kw == kw;
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
		if (is_kw(t, KW_SET_CONFIG))
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
		sc->sc_last_true = is_kw(t, KW_TRUE);
	}
}

static void check_body(struct scan *sc, const struct tok *t);

/* Keyword rules that hold wherever the word appears. */
static void check_keyword(struct scan *sc, const struct tok *t)
{
	enum keyword prev = sc->prev.kw;
	if (t->kw == KW_ADV_LOCK || t->kw == KW_ADV_LOCK_SHARED || t->kw == KW_TRY_ADV_LOCK ||
	    t->kw == KW_TRY_ADV_LOCK_SHARED)
		pin(sc, "session advisory lock");
	if ((t->kw == KW_TEMP || t->kw == KW_TEMPORARY) &&
	    (prev == KW_CREATE || prev == KW_GLOBAL || prev == KW_LOCAL || prev == KW_INTO ||
	     prev == KW_REPLACE))
		pin(sc, "temporary table");
	if (is_kw(t, KW_PG_TEMP))
		pin(sc, "temporary table");
	if (is_kw(t, KW_HOLD) && is_kw(&sc->prev, KW_WITH))
		pin(sc, "WITH HOLD cursor");
}

/* Rules that hold wherever a token appears. */
static void check_anywhere(struct scan *sc, const struct tok *t)
{
	if (t->kw != KW_NONE)
		check_keyword(sc, t);
	track_set_config(sc, t);
	check_body(sc, t);
}

/* Function bodies and DO blocks run SQL we cannot see as statements: scan them with the body
 * rules. Inside a body, string literals may be dynamic SQL (EXECUTE '...'). A dollar-quoted
 * literal elsewhere (SELECT $$...$$) is data. */
static void check_body(struct scan *sc, const struct tok *t)
{
	if (t->k != TK_DOLLAR && t->k != TK_STRING)
		return;
	bool body = sc->depth > 0 ||
		    (sc->n > 0 && (is_kw(&sc->t[0], KW_DO) || is_kw(&sc->t[0], KW_CREATE)));
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
	/* SET TIME ZONE LOCAL is SET TIME ZONE DEFAULT (PostgreSQL's zone_value grammar) */
	bool local_zone = i >= 1 && is_kw(&sc->t[i - 1], KW_ZONE) && is_kw(&sc->t[i], KW_LOCAL);
	if (i == sc->n - 1 && (is_kw(&sc->t[i], KW_DEFAULT) || local_zone)) {
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
static int capture_name_into(struct scan *sc, int i, char *name)
{
	if (i >= sc->n || sc->t[i].k != TK_IDENT)
		return -1;
	size_t n = sc->t[i].n;
	int next = i + 1;
	if (i + 2 < sc->n && is_punct(sc, &sc->t[i + 1], '.') && sc->t[i + 2].k == TK_IDENT)
		n = sc->t[i + 2].s + sc->t[i + 2].n - sc->t[i].s, next = i + 3;
	if (n >= SQL_NAME_MAX)
		return -1;
	for (size_t j = 0; j < n; j++) {
		char ch = sc->p[sc->t[i].s + j];
		name[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
	}
	name[n] = '\0';
	return strchr(name, ' ') ? -1 : next;
}

static int capture_name(struct scan *sc, int i)
{
	return capture_name_into(sc, i, sc->f->set_name);
}

/* A parameter goes back to its reset value (a startup parameter's is the client's login value,
 * which a pooled server does not have: txn.c restores it). name NULL: read it at t[i]. */
static void note_reset(struct scan *sc, const char *name, int i)
{
	struct sql_facts *f = sc->f;
	if (sc->depth > 0 || f->reset_unsure)
		return;
	if (f->nresets == SQL_MAX_RESETS) {
		f->reset_all = f->reset_unsure = true;
		return;
	}
	char *out = f->reset_names[f->nresets];
	if (name)
		strcpy(out, name);
	else if (capture_name_into(sc, i, out) < 0) {
		f->reset_all = f->reset_unsure = true; /* a quoted or odd name: assume the worst */
		return;
	}
	f->reset_all |= !*out;
	f->reset_ends[f->nresets] = (uint32_t)(sc->prev.s + sc->prev.n);
	f->reset_stmts[f->nresets] = f->nstmts;
	f->nresets++;
}

/* SET [SESSION] ... {TO | =} DEFAULT, the statement's last word (or SET TIME ZONE LOCAL, which
 * PostgreSQL takes as DEFAULT); i: the word after SET [SESSION]. */
static void note_set_default(struct scan *sc, int i)
{
	const struct tok *t = &sc->t[i];
	bool zone = is_kw(t, KW_TIME) && sc->n == i + 3 && is_kw(&sc->t[i + 1], KW_ZONE);
	const struct tok *last = &sc->t[sc->n - 1];
	if (sc->n < i + 2 || !(is_kw(last, KW_DEFAULT) || (zone && is_kw(last, KW_LOCAL))))
		return;
	if (zone)
		note_reset(sc, "timezone", 0);
	else if (is_kw(t, KW_NAMES) && sc->n == i + 2)
		note_reset(sc, "client_encoding", 0);
	else if (sc->n >= i + 3 && (is_kw(&sc->t[sc->n - 2], KW_TO) ||
				    is_punct(sc, &sc->t[sc->n - 2], '=')))
		note_reset(sc, NULL, i);
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
		    !(is_punct(sc, &sc->t[i], '=') || is_kw(&sc->t[i], KW_TO))) {
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
	if (i < sc->n && is_kw(&sc->t[i], KW_LOCAL))
		return; /* ends with the transaction */
	if (i < sc->n && is_kw(&sc->t[i], KW_SESSION)) {
		if (i + 1 < sc->n && is_kw(&sc->t[i + 1], KW_AUTHORIZATION)) {
			pin(sc, "SET SESSION AUTHORIZATION");
			return;
		}
		if (i + 1 < sc->n && is_kw(&sc->t[i + 1], KW_CHARACTERISTICS)) {
			pin(sc, "SET SESSION CHARACTERISTICS");
			return;
		}
		i++;
	}
	if (i >= sc->n)
		return;
	note_set_default(sc, i);
	const struct tok *t = &sc->t[i];
	if (is_kw(t, KW_ROLE))
		pin(sc, "SET ROLE");
	else if (is_kw(t, KW_TRANSACTION) || is_kw(t, KW_CONSTRAINTS))
		return; /* this transaction only */
	else if (is_kw(t, KW_TIME) && i + 1 < sc->n && is_kw(&sc->t[i + 1], KW_ZONE))
		record_set(sc, "timezone", 0, i + 2);
	else if (is_kw(t, KW_NAMES))
		record_set(sc, "client_encoding", 0, i + 1);
	else if (is_kw(t, KW_SCHEMA))
		record_set(sc, "search_path", 0, i + 1);
	else
		record_set(sc, NULL, i, 0);
}

static void analyze_reset(struct scan *sc)
{
	if (sc->n < 2 || is_kw(&sc->t[1], KW_ROLE) || is_kw(&sc->t[1], KW_SESSION))
		return; /* RESET ROLE / RESET SESSION AUTHORIZATION restore the login identity */
	if (is_kw(&sc->t[1], KW_ALL)) {
		pin(sc, "RESET ALL");
		note_reset(sc, "", 0);
		return;
	}
	if (sc->depth > 0)
		return;
	note_reset(sc, NULL, 1);
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
	if (is_kw(t0, KW_SET))
		analyze_set(sc);
	else if (is_kw(t0, KW_RESET))
		analyze_reset(sc);
	else if (is_kw(t0, KW_LISTEN))
		pin(sc, "LISTEN");
	else if (is_kw(t0, KW_LOAD))
		pin(sc, "LOAD");
	else if (is_kw(t0, KW_PREPARE) && !(t1 && is_kw(t1, KW_TRANSACTION)))
		pin(sc, "PREPARE");
	else if (sc->depth == 0 && is_kw(t0, KW_DEALLOCATE) && t1) {
		const struct tok *t = is_kw(t1, KW_PREPARE) && sc->n > 2 ? &sc->t[2] : t1;
		if (is_kw(t, KW_ALL))
			sc->f->deallocate_all = true;
	} else if (sc->depth == 0 && is_kw(t0, KW_DISCARD) && t1 && is_kw(t1, KW_ALL)) {
		sc->f->discard_all = true;
	}
}

/* In a body, a new statement also starts after these words (PL/pgSQL blocks). */
static bool body_statement_start(const struct scan *sc, const struct tok *t)
{
	return sc->depth > 0 &&
	       (is_kw(t, KW_BEGIN) || is_kw(t, KW_THEN) || is_kw(t, KW_ELSE) || is_kw(t, KW_LOOP));
}

/* Runs only under sqlscan(), which has built the tables. */
static void scan_text(const char *p, size_t len, struct sql_facts *f, int depth)
{
	struct scan scan; /* the token array is filled before it is read: not cleared */
	struct scan *sc = &scan;
	struct lexer lx = {.p = p, .len = len};
	struct tok t;
	sc->p = p;
	sc->f = f;
	sc->depth = depth;
	sc->n = 0;
	sc->overflow = false;
	sc->sc_state = 0;
	sc->sc_depth = 0;
	sc->sc_last_true = false;
	sc->prev = (struct tok){0};
	do {
		lex_next(&lx, &t);
		if (t.k == TK_END || is_punct(sc, &t, ';')) {
			analyze_stmt(sc);
			sc->n = 0;
			sc->overflow = false;
			sc->prev = (struct tok){0};
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
}

static uint32_t load4(const char *p)
{
	uint32_t x;
	memcpy(&x, p, 4);
	return x;
}

/* Could the 4 bytes at p begin a word some rule looks for anywhere: temp[orary], hold,
 * set_config, pg_temp, pg_[try_]advisory_lock[_shared]? ORing 0x20 lower-cases a letter and
 * maps no other byte to a lower-case letter, so each comparison is exact, in any case. */
static bool hint_word(const char *p)
{
	uint32_t x = load4(p), lower = x | load4("    ");
	uint32_t set_ = x | load4("   \0"), pg_ = x | load4("  \0 ");
	return lower == load4("temp") || lower == load4("hold") || set_ == load4("set_") ||
	       pg_ == load4("pg_t") || pg_ == load4("pg_a");
}

/* Only white space in p[i..len)? */
static bool only_space(const char *p, size_t i, size_t len)
{
	for (; i < len; i++)
		if (!(char_class[(unsigned char)p[i]] & C_SPACE))
			return false;
	return true;
}

enum plain { PLAIN_NO, PLAIN_YES, PLAIN_GO_ON };

/* One byte of plain_rest() at i (0 < i < len) that is ';' or a hint letter. */
static enum plain plain_byte(const char *p, size_t i, size_t len)
{
	if (p[i] == ';')
		return only_space(p, i + 1, len) ? PLAIN_YES : PLAIN_NO;
	/* a hint letter that starts a word: the byte before it is no word byte */
	if (!ident_start((unsigned char)p[i - 1]) && i + 4 <= len && hint_word(p + i))
		return PLAIN_NO;
	return PLAIN_GO_ON;
}

/* The bytes from i on (i > 0): PLAIN_YES if the first ';' has only white space after it (or
 * there is none) and no hint letter before it starts a hint word. Most bytes are neither ';'
 * nor t, h, s, p: with SSE2 (every x86-64) 16 bytes are tested at once and only the hits are
 * looked at, one by one, as the byte loop below does. */
static enum plain plain_rest(const char *p, size_t i, size_t len)
{
#ifdef __SSE2__
	const __m128i low = _mm_set1_epi8(0x20), semi = _mm_set1_epi8(';');
	const __m128i t = _mm_set1_epi8('t'), h = _mm_set1_epi8('h'), s = _mm_set1_epi8('s'),
		      pp = _mm_set1_epi8('p');
	/* A word byte (ident_start): a letter (its lower case minus 'a' below 26, compared
	 * signed after adding 0x80), '_', or >= 0x80 (negative signed). */
	const __m128i to_a = _mm_set1_epi8((char)(0x80 - 'a')), below = _mm_set1_epi8(-128 + 26),
		      us = _mm_set1_epi8('_'), zero = _mm_setzero_si128();
	for (; i + 16 <= len; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		__m128i l = _mm_or_si128(v, low); /* t|0x20 == 't' only for t and T */
		__m128i hit =
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(l, t), _mm_cmpeq_epi8(l, h)),
				 _mm_or_si128(_mm_cmpeq_epi8(l, s), _mm_cmpeq_epi8(l, pp)));
		/* a hint letter after a word byte starts no word: most hits, dropped here */
		__m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + i - 1));
		__m128i word = _mm_or_si128(
		    _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(w, low), to_a), below),
		    _mm_or_si128(_mm_cmpeq_epi8(w, us), _mm_cmplt_epi8(w, zero)));
		hit = _mm_andnot_si128(word, hit);
		unsigned mask =
		    (unsigned)_mm_movemask_epi8(_mm_or_si128(hit, _mm_cmpeq_epi8(v, semi)));
		for (; mask; mask &= mask - 1) {
			enum plain r = plain_byte(p, i + (size_t)__builtin_ctz(mask), len);
			if (r != PLAIN_GO_ON)
				return r;
		}
	}
#endif
	for (; i < len; i++) {
		if (!(char_class[(unsigned char)p[i]] & (C_HINT | C_SEMI)))
			continue; /* most bytes */
		enum plain r = plain_byte(p, i, len);
		if (r != PLAIN_GO_ON)
			return r;
	}
	return PLAIN_YES;
}

/* Could a first word of n bytes starting with c be one that a statement rule looks at (SET,
 * RESET, LISTEN, LOAD, PREPARE, DEALLOCATE, DISCARD, DO, CREATE)? Decided by its first letter
 * and length alone: a false alarm only costs a scan. */
static bool statement_word(unsigned char c, size_t n)
{
	switch (c | 0x20) {
	case 's': return n == 3;
	case 'r': return n == 5;
	case 'l': return n == 6 || n == 4;
	case 'p': return n == 7;
	case 'd': return n == 10 || n == 7 || n == 2;
	case 'c': return n == 6;
	default: return false;
	}
}

/* The common case, decided without lexing: one statement (an optional ';' and spaces at the
 * end) that starts with a word no statement rule looks at, and no word that begins like one a
 * rule looks for anywhere. Only word starts are looked at: a word here is a run of letters,
 * '_' and bytes >= 0x80, so a digit or '$' ends one (the lexer may start a token after them).
 * False means "scan it". A false alarm (such a word inside a quoted string) only costs a scan. */
static bool plain_statement(const char *p, size_t len)
{
	struct lexer lx = {.p = p, .len = len};
	skip_space_and_comments(&lx);
	size_t i = lx.pos, n = 0;
	if (i >= len || !ident_start((unsigned char)p[i]))
		return false;
	while (i + n < len && ident_char((unsigned char)p[i + n]))
		n++;
	if (statement_word((unsigned char)p[i], n) || (i + 4 <= len && hint_word(p + i)))
		return false;
	/* the first word too: a digit or $ inside it ends a word */
	return plain_rest(p, i + 1, len) == PLAIN_YES;
}

void sqlscan(const char *sql, size_t len, struct sql_facts *out)
{
	memset(out, 0, offsetof(struct sql_facts, set_name));
	out->set_name[0] = '\0';
	pthread_once(&tables_once, init_tables);
	if (plain_statement(sql, len)) {
		out->nstmts = 1;
		return;
	}
	scan_text(sql, len, out, 0);
	out->set_trackable = out->has_set && out->nstmts == 1 && out->set_name[0] &&
			     (out->set_reset || out->set_value);
}

bool sqlscan_plain(const char *sql, size_t len)
{
	pthread_once(&tables_once, init_tables);
	return plain_statement(sql, len);
}

void sqlscan_lexed(const char *sql, size_t len, struct sql_facts *out)
{
	memset(out, 0, offsetof(struct sql_facts, set_name));
	out->set_name[0] = '\0';
	pthread_once(&tables_once, init_tables);
	scan_text(sql, len, out, 0);
}

void sql_facts_free(struct sql_facts *f)
{
	free(f->set_value);
	f->set_value = NULL;
}

void sql_lex_next(struct lexer *lx, struct tok *t)
{
	pthread_once(&tables_once, init_tables);
	lex_next(lx, t);
}
