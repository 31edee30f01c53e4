/* admin_parse.c: the admin console's query grammar (see admin_parse.h). No I/O, no globals. */
#include "admin_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* One word: [0-9a-zA-Z_]+ or "quoted" ("" inside for a quote). Advances *pp; false if none or
 * too long. */
static bool take_word(const char **pp, char *out, size_t n)
{
	const char *p = *pp, *start = *pp;
	size_t k = 0;
	if (*p == '"') {
		for (p++; *p; p++) {
			if (*p == '"' && p[1] != '"')
				break;
			if (*p == '"')
				p++;
			if (k + 1 >= n)
				return false;
			out[k++] = *p;
		}
		if (*p != '"')
			return false;
		p++;
	} else {
		while (isalnum((unsigned char)*p) || *p == '_') {
			if (k + 1 >= n)
				return false;
			out[k++] = *p++;
		}
	}
	out[k] = '\0';
	*pp = p;
	return p != start;
}

static const char *skip_ws(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/* The end of a command: spaces, one optional ';', spaces. */
static bool at_end(const char *p)
{
	p = skip_ws(p);
	if (*p == ';')
		p = skip_ws(p + 1);
	return *p == '\0';
}

/* SET key (= | TO) value: value is a word or a 'quoted string' ('' inside for a quote). */
static bool parse_set(const char *p, char *key, size_t kn, char *val, size_t vn)
{
	p = skip_ws(p);
	if (strncasecmp(p, "set", 3) != 0 || !isspace((unsigned char)p[3]))
		return false;
	p = skip_ws(p + 3);
	if (!take_word(&p, key, kn))
		return false;
	p = skip_ws(p);
	if (*p == '=')
		p++;
	else if (strncasecmp(p, "to", 2) == 0 && isspace((unsigned char)p[2]))
		p += 2;
	else
		return false;
	p = skip_ws(p);
	size_t k = 0;
	if (*p == '\'') {
		for (p++; *p && !(*p == '\'' && p[1] != '\''); p++) {
			if (*p == '\'')
				p++;
			if (k + 1 >= vn)
				return false;
			val[k++] = *p;
		}
		if (*p != '\'')
			return false;
		p++;
		val[k] = '\0';
	} else if (!take_word(&p, val, vn)) {
		return false;
	}
	return at_end(p);
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

void admin_parse(const char *q, struct admin_query *out)
{
	memset(out, 0, sizeof(*out));
	const char *p = skip_ws(q);
	bool ok = take_word(&p, out->cmd, sizeof(out->cmd));
	if (ok && isspace((unsigned char)*p) && !at_end(p)) {
		p = skip_ws(p);
		ok = take_word(&p, out->arg, sizeof(out->arg));
	}
	if (ok && at_end(p)) {
		lower(out->cmd);
		out->kind = AQ_COMMAND;
		if (strcmp(out->cmd, "set") != 0)
			return;
	}
	memset(out, 0, sizeof(*out));
	if (parse_set(q, out->key, sizeof(out->key), out->value, sizeof(out->value)))
		out->kind = AQ_SET;
	else
		memset(out, 0, sizeof(*out)); /* AQ_INVALID */
}
