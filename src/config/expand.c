/* expand.c: ${VAR} and ${VAR:-default} in pgbouncer.ini values, from the environment. */
#include "config_env.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* One ${...} starting at s (pointing at '$'); returns the characters consumed, 0 on error. */
static size_t expand_one(const char *s, struct sbuf *b, char *msg, size_t n)
{
	const char *name = s + 2, *e = name;
	if (!isalpha((unsigned char)*e) && *e != '_') {
		snprintf(msg, n, "invalid variable name after \"${\" (letters, digits and _)");
		return 0;
	}
	while (isalnum((unsigned char)*e) || *e == '_')
		e++;
	size_t nlen = (size_t)(e - name);
	const char *def = NULL, *close;
	if (e[0] == ':' && e[1] == '-')
		def = e + 2;
	else if (!*e) {
		snprintf(msg, n, "missing '}' after \"${%.*s\"", (int)nlen, name);
		return 0;
	} else if (*e != '}') {
		snprintf(msg, n,
			 "invalid character '%c' in ${%.*s...} (use ${VAR} or ${VAR:-default})",
			 *e ? *e : ' ', (int)nlen, name);
		return 0;
	}
	close = strchr(def ? def : e, '}');
	if (!close) {
		snprintf(msg, n, "missing '}' after \"${%.*s\"", (int)nlen, name);
		return 0;
	}
	char var[256];
	if (nlen >= sizeof(var)) {
		snprintf(msg, n, "variable name too long");
		return 0;
	}
	memcpy(var, name, nlen);
	var[nlen] = '\0';
	const char *v = getenv(var);
	if (def && (!v || !*v))
		sb_add(b, def, (size_t)(close - def));
	else if (v)
		sb_add(b, v, strlen(v));
	else {
		snprintf(msg, n,
			 "environment variable %s is not set (write ${%s:-default} for a "
			 "default)",
			 var, var);
		return 0;
	}
	return (size_t)(close - s) + 1;
}

shoal_rc config_expand_vars(const char *value, char **out, char *msg, size_t n)
{
	struct sbuf b = {0};
	sb_add(&b, "", 0);
	for (const char *s = value; *s;) {
		if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
			sb_add(&b, "${", 2);
			s += 3;
		} else if (s[0] == '$' && s[1] == '{') {
			size_t used = expand_one(s, &b, msg, n);
			if (!used) {
				free(b.p);
				*out = NULL;
				return SHOAL_ERROR;
			}
			s += used;
		} else {
			size_t k = strcspn(s + 1, "$") + 1;
			sb_add(&b, s, k);
			s += k;
		}
	}
	*out = b.p;
	return SHOAL_OK;
}
