/* admin_parse.c: the admin console's query grammar (see admin_parse.h). No I/O, no globals. */
#include "admin_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- DISABLE HOST / ENABLE HOST / PRIMARY HOST ---------------------------------------------- */

/* The next space-separated word of *pp into out (a ';' ends the command); false when there is
 * none or it is too long. */
static bool host_word(const char **pp, char *out, size_t outlen)
{
	const char *s = *pp;
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strcspn(s, " \t\r\n;");
	*pp = s + len;
	if (len == 0 || len >= outlen)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

/* Only spaces and one ';' may follow the last word. */
static bool host_at_end(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	if (*s == ';')
		s++;
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0';
}

/* host:port into its parts, the port after the last ':' (an IPv6 address keeps its colons). */
static bool host_split(const char *hp, struct admin_host_cmd *out)
{
	const char *colon = strrchr(hp, ':');
	char *end;
	if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof(out->host))
		return false;
	long p = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end || p < 1 || p > 65535)
		return false;
	memcpy(out->host, hp, (size_t)(colon - hp));
	out->host[colon - hp] = '\0';
	out->port = (int)p;
	return true;
}

void admin_parse_host(const char *q, struct admin_host_cmd *out)
{
	char verb[16], kw[16], hp[300];
	const char *p = q;
	memset(out, 0, sizeof(*out));
	if (!host_word(&p, verb, sizeof(verb)) || !host_word(&p, kw, sizeof(kw)) ||
	    strcasecmp(kw, "host") != 0 || host_at_end(p) ||
	    (strcasecmp(verb, "disable") != 0 && strcasecmp(verb, "enable") != 0 &&
	     strcasecmp(verb, "primary") != 0))
		return; /* AH_OTHER */
	out->disable = strcasecmp(verb, "disable") == 0;
	out->primary = strcasecmp(verb, "primary") == 0;
	out->kind = AH_USAGE;
	if (!host_word(&p, out->db, sizeof(out->db)) || !host_word(&p, hp, sizeof(hp)) ||
	    !host_at_end(p) || !host_split(hp, out)) {
		out->db[0] = out->host[0] = '\0';
		out->port = 0;
		return;
	}
	out->kind = AH_OK;
}
