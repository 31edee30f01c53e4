/* params.c: tracked session parameters and the SET/RESET diff applied on link. */
#include "params.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Lower-cased as strcasecmp compares in the C locale (Shoal never calls setlocale): names
 * equal to strcasecmp hash alike. */
static uint32_t name_hash(const char *name)
{
	uint32_t h = HASH_SEED;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = hash_byte(h, (unsigned)(*c - 'A') < 26u ? (unsigned char)(*c | 0x20) : *c);
	return h;
}

static void note_value(struct param_list *pl, struct param *p)
{
	bool was = p->at_initial;
	p->at_initial = p->initial && strcmp(p->initial, p->value) == 0;
	pl->n_off += (int)was - (int)p->at_initial;
}

/* Bytes of s with its NUL, 0 for NULL. */
static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

/* Copy s (NULL: none) with its NUL to *at and move *at past it (the block was sized with
 * str_size). */
static char *put_str(char **at, const char *s)
{
	if (!s)
		return NULL;
	char *d = *at;
	*at = stpcpy(d, s) + 1;
	return d;
}

/* One allocation for the items and every string (a client's login values are copied at each
 * login): what is set later is allocated on its own, and params_free tells the two apart. */
void params_copy(struct param_list *dst, const struct param_list *src)
{
	params_free(dst);
	if (src->n == 0)
		return;
	size_t len = (size_t)src->n * sizeof(*dst->items);
	for (int i = 0; i < src->n; i++)
		len += str_size(src->items[i].name) + str_size(src->items[i].value) +
		       str_size(src->items[i].initial);
	dst->block = dst->fixed && len <= dst->fixed_len ? dst->fixed : xmalloc(len);
	dst->block_len = len;
	dst->items = (struct param *)(void *)dst->block;
	char *at = dst->block + (size_t)src->n * sizeof(*dst->items);
	for (int i = 0; i < src->n; i++) {
		const struct param *s = &src->items[i];
		struct param *d = &dst->items[i];
		*d = *s;
		d->name = put_str(&at, s->name);
		d->value = put_str(&at, s->value);
		d->initial = put_str(&at, s->initial);
		d->joined = false;
	}
	dst->cap = dst->n = src->n;
	dst->n_off = src->n_off;
}

/* Could a and b be equal to strcasecmp? Their first bytes with bit 5 set (the case bit of a
 * letter) are compared first: a cheap test that most unequal names fail. */
static bool same_name(const char *a, const char *b)
{
	return (a[0] | 0x20) == (b[0] | 0x20) && strcasecmp(a, b) == 0;
}

/* Runs several times on every link (params_diff_sql): the hash is compared first. */
static struct param *find_hashed(const struct param_list *pl, const char *name, uint32_t h)
{
	for (int i = 0; i < pl->n; i++)
		if (pl->items[i].hash == h && same_name(pl->items[i].name, name))
			return &pl->items[i];
	return NULL;
}

struct param *params_find(const struct param_list *pl, const char *name)
{
	if (pl->n <= 2) { /* a client's usual list: comparing costs less than hashing the name */
		for (int i = 0; i < pl->n; i++)
			if (same_name(pl->items[i].name, name))
				return &pl->items[i];
		return NULL;
	}
	return find_hashed(pl, name, name_hash(name));
}

struct param *params_find_like(const struct param_list *pl, const struct param *like)
{
	return find_hashed(pl, like->name, like->hash);
}

const char *params_get(const struct param_list *pl, const char *name)
{
	struct param *p = params_find(pl, name);
	return p ? p->value : NULL;
}

/* Room for one more item: the items array moves out of a params_copy block or the fixed
 * storage when it grows. */
static void grow(struct param_list *pl)
{
	size_t lent = pl->fixed_len / sizeof(*pl->items);
	if (!pl->items && !pl->block && pl->fixed && lent > 0) { /* as many as it lends */
		pl->items = (struct param *)(void *)pl->fixed;
		pl->cap = (int)lent;
		return;
	}
	int cap = pl->cap ? pl->cap * 2 : 4; /* a client sends a few */
	size_t size = (size_t)cap * sizeof(*pl->items);
	if (pl->items &&
		 ((void *)pl->items == (void *)pl->block || (void *)pl->items == (void *)pl->fixed))
		pl->items = memcpy(xmalloc(size), pl->items, (size_t)pl->n * sizeof(*pl->items));
	else
		pl->items = xrealloc(pl->items, size);
	pl->cap = cap;
}

/* A new entry with its name and first value in one allocation. */
static struct param *add(struct param_list *pl, const char *name, const char *value, uint32_t h)
{
	if (pl->n == pl->cap)
		grow(pl);
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	char *s = xmalloc(nl + vl);
	memcpy(s, name, nl);
	memcpy(s + nl, value, vl);
	struct param *p = &pl->items[pl->n++];
	*p = (struct param){.name = s, .value = s + nl, .joined = true, .hash = h};
	pl->n_off++; /* not at_initial until note_value says so */
	return p;
}

void params_set(struct param_list *pl, const char *name, const char *value, bool initial)
{
	uint32_t h = name_hash(name);
	struct param *p = find_hashed(pl, name, h);
	if (!p) {
		p = add(pl, name, value, h);
	} else if (!p->value || strcmp(p->value, value) != 0) {
		char *v = xstrdup(value); /* value may be p->initial */
		param_drop_value(pl, p);
		p->value = v;
	}
	p->raw = false;
	if (initial) {
		char *v = xstrdup(value); /* value may be p->initial */
		param_drop_initial(pl, p);
		p->initial = v;
	}
	note_value(pl, p);
}

/* The bytes of a name, [A-Za-z0-9_.], as isalnum in the C locale (Shoal never calls
 * setlocale): one bit per byte value, looked up per byte. */
static const uint64_t name_bytes[4] = {
    0x03ff400000000000ull, /* '.' (46), '0'..'9' (48..57) */
    0x07fffffe87fffffeull, /* 'A'..'Z' (65..90), '_' (95), 'a'..'z' (97..122) */
    0,
    0,
};

static bool name_byte(unsigned char c)
{
	return (name_bytes[c >> 6] >> (c & 63)) & 1;
}

bool params_valid_name(const char *name)
{
	const unsigned char *c = (const unsigned char *)name;
	/* a letter or '_' first */
	if (!name_byte(*c) || *c == '.' || (unsigned)(*c - '0') < 10u)
		return false;
	for (c++; name_byte(*c); c++) /* stops at the NUL too: not a name byte */
		;
	return !*c && c - (const unsigned char *)name < 64;
}

/* Next space-separated word of options, with backslash escapes; NULL at the end. */
static char *next_word(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
	if (!**p)
		return NULL;
	char *w = xmalloc(strlen(*p) + 1), *o = w;
	while (**p && **p != ' ' && **p != '\t') {
		if (**p == '\\' && (*p)[1])
			(*p)++;
		*o++ = *(*p)++;
	}
	*o = '\0';
	return w;
}

static shoal_rc add_pair(const char *pair, struct param_list *out)
{
	const char *eq = strchr(pair, '=');
	if (!eq || eq == pair)
		return SHOAL_ERROR;
	char *name = strndup(pair, (size_t)(eq - pair));
	for (char *c = name; *c; c++)
		if (*c == '-')
			*c = '_'; /* PostgreSQL accepts --search-path=x for search_path */
	bool ok = params_valid_name(name);
	if (ok)
		params_set(out, name, eq + 1, false);
	free(name);
	return ok ? SHOAL_OK : SHOAL_ERROR;
}

shoal_rc params_parse_options(const char *options, struct param_list *out)
{
	const char *p = options;
	char *w;
	shoal_rc rc = SHOAL_OK;
	while (rc == SHOAL_OK && (w = next_word(&p)) != NULL) {
		if (strcmp(w, "-c") == 0) {
			free(w);
			w = next_word(&p);
			rc = w ? add_pair(w, out) : SHOAL_ERROR;
		} else if (strncmp(w, "-c", 2) == 0) {
			rc = add_pair(w + 2, out);
		} else if (strncmp(w, "--", 2) == 0) {
			rc = add_pair(w + 2, out);
		} else {
			rc = SHOAL_ERROR;
		}
		free(w);
	}
	return rc;
}

/* Append name as a quoted identifier: a startup name may be a keyword ("user.id" from
 * -c user.id=42). GUC names compare case-insensitively, so quoting keeps the lookup. */
static void append_ident(struct buf *sql, const char *name)
{
	buf_append(sql, "\"", 1);
	for (const char *c = name; *c; c++) {
		if (*c == '"')
			buf_append(sql, c, 1);
		buf_append(sql, c, 1);
	}
	buf_append(sql, "\"", 1);
}

/* Append v as a string literal the server reads back byte for byte. With
 * standard_conforming_strings on (the default since 9.1) that is '...' with quotes doubled and
 * backslashes left alone: an E'' literal would double a 0x5c that is the trail byte of an SJIS
 * or GBK character. With it off, '' would treat backslashes as escapes, so a dollar quote with
 * a tag the value does not contain is used instead (no escapes in either encoding). */
static void append_literal(struct buf *sql, const char *v, bool std_strings)
{
	if (std_strings) {
		buf_append(sql, "'", 1);
		for (const char *c = v; *c; c++) {
			if (*c == '\'')
				buf_append(sql, c, 1);
			buf_append(sql, c, 1);
		}
		buf_append(sql, "'", 1);
		return;
	}
	char tag[32];
	unsigned n = 0;
	do
		snprintf(tag, sizeof(tag), "$shoal%u$", n++);
	while (strstr(v, tag));
	buf_append(sql, tag, strlen(tag));
	buf_append(sql, v, strlen(v));
	buf_append(sql, tag, strlen(tag));
}

static void append_str(struct buf *sql, const char *s)
{
	buf_append(sql, s, strlen(s));
}

/* The server's standard_conforming_strings now (reported at login; unknown means on). */
static bool std_strings_on(const struct param_list *server)
{
	const char *v = params_get(server, "standard_conforming_strings");
	return !v || strcasecmp(v, "off") != 0;
}

/* Is name a list parameter whose elements PostgreSQL quotes as identifiers (GUC_LIST_QUOTE)? */
static bool list_quoted(const char *name)
{
	return strcasecmp(name, "search_path") == 0 || strcasecmp(name, "temp_tablespaces") == 0 ||
	       strcasecmp(name, "local_preload_libraries") == 0 ||
	       strcasecmp(name, "session_preload_libraries") == 0;
}

/* The next element of a list value as PostgreSQL's SplitIdentifierString reads it: a quoted
 * identifier ("" for a quote) or a word, lower-cased, then a comma or the end. Into out;
 * false at a syntax error. *p moves past it. */
static bool next_element(const char **p, struct buf *out)
{
	const char *c = *p;
	while (isspace((unsigned char)*c))
		c++;
	if (*c == '"') {
		for (c++;; c++) {
			if (!*c)
				return false;
			if (*c == '"' && c[1] != '"')
				break;
			c += *c == '"'; /* "" */
			buf_append(out, c, 1);
		}
		c++;
	} else {
		const char *w = c;
		for (; *c && *c != ',' && !isspace((unsigned char)*c); c++) {
			char l = (char)tolower((unsigned char)*c);
			buf_append(out, &l, 1);
		}
		if (c == w)
			return false;
	}
	while (isspace((unsigned char)*c))
		c++;
	if (*c && *c != ',')
		return false;
	*p = *c ? c + 1 : c;
	return true;
}

/* A startup value of a list parameter as PostgreSQL reads it (search_path=a,"B"), written as
 * the list of literals SET takes for it ('a', 'B'): SET reads one literal of such a parameter as
 * one element, so "a, b" would name a single schema. False (nothing appended) if v is not a
 * valid list: the caller sends it as one literal. */
static bool append_list(struct buf *sql, const char *v, bool std_strings)
{
	struct buf items = {0}, e = {0};
	const char *p = v;
	bool ok = *v != '\0';
	while (ok && *p) {
		e.len = 0;
		ok = next_element(&p, &e);
		buf_append(&e, "", 1);
		if (ok) {
			if (items.len)
				append_str(&items, ", ");
			append_literal(&items, (const char *)e.data, std_strings);
		}
	}
	if (ok)
		buf_append(sql, items.data, items.len);
	buf_free(&items);
	buf_free(&e);
	return ok;
}

/* SET "name" = <value as a literal, or a list of literals for a list parameter> (no ';'). */
static void append_set(struct buf *sql, const char *name, const char *value, bool std_strings)
{
	if (!list_quoted(name)) {
		append_str(sql, "SET ");
		append_ident(sql, name);
		append_str(sql, " = ");
		append_literal(sql, value, std_strings);
		return;
	}
	append_str(sql, "SET ");
	append_ident(sql, name);
	append_str(sql, " = ");
	if (!append_list(sql, value, std_strings))
		append_literal(sql, value, std_strings);
}

/* A list parameter's value as its own text, as PostgreSQL keeps a startup value (SHOW gives
 * a,b back as a,b, where SET's list would read a, b); it also refuses a bad list as PostgreSQL
 * refuses the login. A SELECT takes a snapshot, which a transaction block would notice
 * (SET TRANSACTION ISOLATION LEVEL must come first): only on a server outside one. */
static void append_set_config(struct buf *sql, const char *name, const char *value,
			      bool std_strings)
{
	append_str(sql, "SELECT pg_catalog.set_config(");
	append_literal(sql, name, std_strings); /* a valid name: no quote, no backslash */
	append_str(sql, ", ");
	append_literal(sql, value, std_strings);
	append_str(sql, ", false)");
}

void params_append_set(struct buf *sql, const struct param *p, const struct param_list *server)
{
	append_set(sql, p->name, p->value, std_strings_on(server));
}

/* SET c's value; std_strings: the server's standard_conforming_strings, -1 until looked up.
 * Not inlined: the loop every link runs over the client's values stays small. */
__attribute__((noinline)) static void append_diff_set(struct buf *sql, const struct param *c,
						     const struct param_list *server,
						     int *std_strings, bool idle)
{
	if (c->raw) {
		append_str(sql, "SET ");
		append_ident(sql, c->name);
		append_str(sql, " = ");
		append_str(sql, c->value);
	} else {
		if (*std_strings < 0)
			*std_strings = std_strings_on(server);
		if (idle && list_quoted(c->name))
			append_set_config(sql, c->name, c->value, *std_strings == 1);
		else
			append_set(sql, c->name, c->value, *std_strings == 1);
	}
	append_str(sql, ";");
}

#ifndef NDEBUG
/* For the check that n_off is kept right (test builds). */
static int count_off(const struct param_list *pl)
{
	int n = 0;
	for (int i = 0; i < pl->n; i++)
		n += !pl->items[i].at_initial;
	return n;
}
#endif

int params_diff_sql(const struct param_list *client, const struct param_list *server,
		    struct buf *sql, bool idle)
{
	int n = 0;
	/* The whole query is lexed before any of its SETs runs: the server's current value counts.
	 * Looked up only when a value is to be quoted: most links have nothing to SET. */
	int std_strings = -1, matched_off = 0;
	for (int i = 0; i < client->n; i++) {
		const struct param *c = &client->items[i];
		const struct param *sp = find_hashed(server, c->name, c->hash);
		matched_off += sp && !sp->at_initial;
		if (sp && sp->raw == c->raw && strcmp(sp->value, c->value) == 0)
			continue;
		append_diff_set(sql, c, server, &std_strings, idle);
		n++;
	}
	assert(count_off(server) == server->n_off);
	if (matched_off == server->n_off)
		return n; /* every server value off its login value is one the client sets */
	for (int i = 0; i < server->n; i++) {
		const struct param *s = &server->items[i];
		if (s->at_initial)
			continue; /* the common case, and the cheapest test: first */
		if (find_hashed(client, s->name, s->hash) || !params_settable(s->name))
			continue;
		append_str(sql, "RESET ");
		append_ident(sql, s->name);
		append_str(sql, ";");
		n++;
	}
	return n;
}

static void params_del(struct param_list *pl, struct param *p)
{
	pl->n_off -= !p->at_initial;
	param_drop(pl, p);
	*p = pl->items[--pl->n];
}

void params_assume_applied(const struct param_list *client, struct param_list *server)
{
	for (int i = 0; i < server->n;) {
		struct param *s = &server->items[i];
		if (s->at_initial || find_hashed(client, s->name, s->hash) ||
		    !params_settable(s->name)) {
			i++;
			continue;
		}
		if (s->initial) {
			char *v = xstrdup(s->initial);
			param_drop_value(server, s);
			s->value = v;
			note_value(server, s);
			i++;
		} else {
			params_del(server, s);
		}
	}
	for (int i = 0; i < client->n; i++) {
		params_set(server, client->items[i].name, client->items[i].value, false);
		params_find(server, client->items[i].name)->raw = client->items[i].raw;
	}
}

void params_forget_unreported(struct param_list *server)
{
	for (int i = 0; i < server->n;) {
		struct param *s = &server->items[i];
		if (!s->initial && params_settable(s->name))
			params_del(server, s);
		else
			i++;
	}
}

void params_back_to_initial(struct param_list *server, const char *name)
{
	struct param *p = params_find(server, name);
	if (p && p->initial) {
		char *v = xstrdup(p->initial);
		param_drop_value(server, p);
		p->value = v;
		p->raw = false;
		note_value(server, p);
	} else if (p) {
		params_del(server, p);
	}
}

void params_set_raw(struct param_list *pl, const char *name, const char *sql)
{
	params_set(pl, name, sql, false);
	params_find(pl, name)->raw = true;
}

void params_remove_raw(struct param_list *pl)
{
	for (int i = 0; i < pl->n;) {
		if (pl->items[i].raw)
			params_del(pl, &pl->items[i]);
		else
			i++;
	}
}

void params_remove(struct param_list *pl, const char *name)
{
	struct param *p = params_find(pl, name);
	if (p)
		params_del(pl, p);
}

bool params_settable(const char *name)
{
	static const char *const fixed[] = {
	    "server_version", "server_version_num",    "server_encoding", "integer_datetimes",
	    "is_superuser",   "session_authorization", "in_hot_standby",  "role",
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcasecmp(name, fixed[i]) == 0)
			return false;
	return params_valid_name(name);
}
