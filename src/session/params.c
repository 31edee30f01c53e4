/* params.c: tracked session parameters and the SET/RESET diff applied on link. */
#include "params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static uint32_t name_hash(const char *name)
{
	uint32_t h = HASH_SEED;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = hash_byte(h, (unsigned char)tolower(*c));
	return h;
}

static void note_value(struct param *p)
{
	p->at_initial = p->initial && strcmp(p->initial, p->value) == 0;
}

void params_copy(struct param_list *dst, const struct param_list *src)
{
	params_free(dst);
	if (src->n == 0)
		return;
	dst->cap = src->n;
	dst->items = xmalloc((size_t)dst->cap * sizeof(*dst->items));
	for (int i = 0; i < src->n; i++) {
		const struct param *s = &src->items[i];
		dst->items[i] = *s;
		dst->items[i].name = xstrdup(s->name);
		dst->items[i].value = xstrdup(s->value);
		dst->items[i].initial = s->initial ? xstrdup(s->initial) : NULL;
	}
	dst->n = src->n;
}

/* Runs several times on every link (params_diff_sql): the hash is compared first. */
static struct param *find_hashed(const struct param_list *pl, const char *name, uint32_t h)
{
	for (int i = 0; i < pl->n; i++)
		if (pl->items[i].hash == h && strcasecmp(pl->items[i].name, name) == 0)
			return &pl->items[i];
	return NULL;
}

struct param *params_find(const struct param_list *pl, const char *name)
{
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

void params_set(struct param_list *pl, const char *name, const char *value, bool initial)
{
	uint32_t h = name_hash(name);
	struct param *p = find_hashed(pl, name, h);
	if (!p) {
		if (pl->n == pl->cap) {
			pl->cap = pl->cap ? pl->cap * 2 : 4; /* a client sends a few */
			pl->items = xrealloc(pl->items, (size_t)pl->cap * sizeof(*pl->items));
		}
		p = &pl->items[pl->n++];
		*p = (struct param){.name = xstrdup(name), .hash = h};
	}
	if (!p->value || strcmp(p->value, value) != 0) {
		free(p->value);
		p->value = xstrdup(value);
	}
	p->raw = false;
	if (initial) {
		char *old = p->initial; /* value may be it */
		p->initial = xstrdup(value);
		free(old);
	}
	note_value(p);
}

bool params_valid_name(const char *name)
{
	if (!(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (const char *c = name; *c; c++)
		if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '.'))
			return false;
	return strlen(name) < 64;
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

void params_append_set(struct buf *sql, const struct param *p, const struct param_list *server)
{
	append_str(sql, "SET ");
	append_ident(sql, p->name);
	append_str(sql, " = ");
	append_literal(sql, p->value, std_strings_on(server));
}

int params_diff_sql(const struct param_list *client, const struct param_list *server,
		    struct buf *sql)
{
	int n = 0;
	/* The whole query is lexed before any of its SETs runs: the server's current value counts.
	 * Looked up only when a value is to be quoted: most links have nothing to SET. */
	int std_strings = -1;
	for (int i = 0; i < client->n; i++) {
		const struct param *c = &client->items[i];
		const struct param *sp = find_hashed(server, c->name, c->hash);
		if (sp && sp->raw == c->raw && strcmp(sp->value, c->value) == 0)
			continue;
		append_str(sql, "SET ");
		append_ident(sql, c->name);
		append_str(sql, " = ");
		if (std_strings < 0 && !c->raw)
			std_strings = std_strings_on(server);
		if (c->raw)
			append_str(sql, c->value);
		else
			append_literal(sql, c->value, std_strings == 1);
		append_str(sql, ";");
		n++;
	}
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
	free(p->name);
	free(p->value);
	free(p->initial);
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
			free(s->value);
			s->value = xstrdup(s->initial);
			note_value(s);
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

void params_back_to_initial(struct param_list *server, const char *name)
{
	struct param *p = params_find(server, name);
	if (p && p->initial) {
		free(p->value);
		p->value = xstrdup(p->initial);
		p->raw = false;
		note_value(p);
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
