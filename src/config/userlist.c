/* userlist.c: auth_file, PgBouncer's userlist.txt ("user" "secret" per line). */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

/* ---- auth_file (PgBouncer's userlist.txt) ---- */

/* One "..." field, unescaped in place (\"\" is a quote). */
static bool auth_field(char **pp, char **out)
{
	char *p = *pp;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '"')
		return false;
	char *o = ++p;
	*out = o;
	for (;; p++) {
		if (!*p)
			return false;
		if (*p == '"' && p[1] != '"')
			break;
		if (*p == '"')
			p++;
		*o++ = *p;
	}
	*o = '\0';
	*pp = p + 1;
	return true;
}

static shoal_rc auth_line(struct config *cfg, char *line)
{
	char *p = line, *user, *secret;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p || *p == ';' || *p == '#')
		return SHOAL_OK;
	if (!auth_field(&p, &user) || !auth_field(&p, &secret))
		return SHOAL_ERROR;
	cfg->auth = xrealloc(cfg->auth, sizeof(*cfg->auth) * (size_t)(cfg->nauth + 1));
	cfg->auth[cfg->nauth++] = (struct auth_entry){xstrdup(user), xstrdup(secret)};
	return SHOAL_OK;
}

shoal_rc load_auth_file(struct config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(cfg->auth_file, "r");
	if (!f) {
		snprintf(err, errlen, "auth_file \"%s\": %s", cfg->auth_file, strerror(errno));
		return SHOAL_ERROR;
	}
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	shoal_rc rc = SHOAL_OK;
	while (rc == SHOAL_OK && getline(&line, &cap, f) >= 0) {
		lineno++;
		if ((rc = auth_line(cfg, line)) != SHOAL_OK)
			snprintf(err, errlen,
				 "%s:%d: malformed line (expected \"user\" \"secret\")",
				 cfg->auth_file, lineno);
	}
	if (rc == SHOAL_OK && ferror(f)) {
		snprintf(err, errlen, "auth_file \"%s\": %s", cfg->auth_file, strerror(errno));
		rc = SHOAL_ERROR;
	}
	free(line);
	fclose(f);
	return rc;
}
