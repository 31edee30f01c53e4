/* url.c: postgres:// and postgresql:// URLs as [databases] values and in DATABASE_URL. */
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

/* ---- postgres:// URLs ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Percent-decode in place; false on a malformed escape or %00. */
static bool pct_decode(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
		if (lo < 0 || (hi | lo) == 0)
			return false;
		*o++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*o = '\0';
	return true;
}

static shoal_rc url_set(struct db_entry *db, const char *key, char *raw, char *err, size_t errlen)
{
	if (!pct_decode(raw)) {
		snprintf(err, errlen, "%s: invalid percent-encoding in URL", key);
		return SHOAL_ERROR;
	}
	return kv_apply(&db_table, db, key, raw, err, errlen);
}

/* host[:port] or [ipv6][:port]; an empty host keeps the default. */
static shoal_rc url_hostport(struct db_entry *db, char *s, char *err, size_t errlen)
{
	char *port = NULL;
	if (*s == '[') {
		char *close = strchr(++s, ']');
		if (!close || (close[1] && close[1] != ':')) {
			snprintf(err, errlen, "malformed IPv6 address in URL");
			return SHOAL_ERROR;
		}
		*close = '\0';
		port = close[1] ? close + 2 : NULL;
	} else if ((port = strchr(s, ':')) != NULL) {
		*port++ = '\0';
	}
	if (*s && url_set(db, "host", s, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	return port ? url_set(db, "port", port, err, errlen) : SHOAL_OK;
}

static shoal_rc url_query(struct db_entry *db, char *q, char *err, size_t errlen)
{
	for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			snprintf(err, errlen, "missing \"=\" in URL parameter \"%s\"", kv);
			return SHOAL_ERROR;
		}
		*eq = '\0';
		if (!pct_decode(kv)) {
			snprintf(err, errlen, "invalid percent-encoding in URL");
			return SHOAL_ERROR;
		}
		if (url_set(db, kv, eq + 1, err, errlen) != SHOAL_OK)
			return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

/* postgres://[user[:password]@][host][:port][/dbname][?key=value&...] */
shoal_rc url_parse(struct db_entry *db, char *s, char *err, size_t errlen)
{
	char *query = strchr(s, '?');
	if (query)
		*query++ = '\0';
	char *path = strchr(s, '/');
	if (path)
		*path++ = '\0';
	char *at = strrchr(s, '@');
	if (at) {
		*at = '\0';
		char *pw = strchr(s, ':');
		if (pw)
			*pw++ = '\0';
		if (*s && url_set(db, "user", s, err, errlen) != SHOAL_OK)
			return SHOAL_ERROR;
		if (pw && url_set(db, "password", pw, err, errlen) != SHOAL_OK)
			return SHOAL_ERROR;
		s = at + 1;
	}
	if (url_hostport(db, s, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	if (path && *path && url_set(db, "dbname", path, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	return query ? url_query(db, query, err, errlen) : SHOAL_OK;
}

const char *url_body(const char *value)
{
	static const char *const schemes[] = {"postgres://", "postgresql://"};
	for (size_t i = 0; i < ARRAY_LEN(schemes); i++)
		if (strncasecmp(value, schemes[i], strlen(schemes[i])) == 0)
			return value + strlen(schemes[i]);
	return NULL;
}
