/* values.c: a setting's value from its text form and back (integers, booleans, enums,
 * durations, strings), defaults, SET, and the names of enumerated values. */
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

/* ---- value parsers ---- */

shoal_rc parse_int(const char *v, int base, int64_t lo, int64_t hi, int64_t *out, char *msg,
		   size_t n)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, base);
	if (end == v || *end) {
		snprintf(msg, n, "invalid %s \"%s\"", base == 8 ? "octal number" : "number", v);
		return SHOAL_ERROR;
	}
	if (errno == ERANGE || x < lo || x > hi) {
		snprintf(msg, n, "%s is out of range (%" PRId64 "..%" PRId64 ")", v, lo, hi);
		return SHOAL_ERROR;
	}
	*out = x;
	return SHOAL_OK;
}

static shoal_rc parse_bool(const char *v, int *out, char *msg, size_t n)
{
	static const char *const words[] = {"0", "false", "no", "off", "1", "true", "yes", "on"};
	for (size_t i = 0; i < ARRAY_LEN(words); i++) {
		if (strcasecmp(v, words[i]) == 0) {
			*out = i >= ARRAY_LEN(words) / 2;
			return SHOAL_OK;
		}
	}
	snprintf(msg, n, "invalid boolean \"%s\" (use 0/1, true/false, yes/no, on/off)", v);
	return SHOAL_ERROR;
}

shoal_rc parse_enum(const struct enum_name *names, const char *v, int *out, char *msg,
		    size_t n)
{
	for (const struct enum_name *e = names; e->name; e++) {
		if (strcasecmp(v, e->name) == 0) {
			*out = e->value;
			return SHOAL_OK;
		}
	}
	int k = snprintf(msg, n, "invalid value \"%s\" (expected", v);
	for (const struct enum_name *e = names; e->name && k > 0 && (size_t)k < n; e++)
		k += snprintf(msg + k, n - (size_t)k, " %s", e->name);
	if (k > 0 && (size_t)k < n)
		snprintf(msg + k, n - (size_t)k, ")");
	return SHOAL_ERROR;
}

static const char *enum_name_of(const struct enum_name *names, int value)
{
	for (const struct enum_name *e = names; e->name; e++)
		if (e->value == value)
			return e->name;
	return "unknown";
}

shoal_rc config_parse_duration(const char *s, usec_t *out)
{
	static const struct {
		const char *unit;
		double usec;
	} units[] = {{"", 1e6},	    {"s", 1e6},	   {"ms", 1e3},	  {"us", 1},
		     {"min", 60e6}, {"h", 3600e6}, {"d", 86400e6}};
	if (!isdigit((unsigned char)*s) && *s != '.')
		return SHOAL_ERROR;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno == ERANGE)
		return SHOAL_ERROR;
	while (isspace((unsigned char)*end))
		end++;
	for (size_t i = 0; i < ARRAY_LEN(units); i++) {
		double us = v * units[i].usec;
		if (strcasecmp(end, units[i].unit) != 0)
			continue;
		if (!(us >= 0 && us < 9e18))
			return SHOAL_ERROR;
		*out = (usec_t)llround(us);
		return SHOAL_OK;
	}
	return SHOAL_ERROR;
}

void set_str(char **p, const char *v, bool empty_is_null)
{
	free(*p);
	*p = (empty_is_null && !*v) ? NULL : xstrdup(v);
}

/* Set one setting from its text form; msg says why not. */
shoal_rc setting_set(struct config *cfg, const struct setting *s, const char *v, char *msg,
		     size_t n)
{
	void *p = (char *)cfg + s->off;
	int64_t x = 0;
	shoal_rc rc = SHOAL_OK;
	switch (s->type) {
	case T_INT:
	case T_OCTAL:
		rc = parse_int(v, s->type == T_OCTAL ? 8 : 10, s->min, s->max, &x, msg, n);
		if (rc == SHOAL_OK)
			*(int *)p = (int)x;
		return rc;
	case T_INT64:
		rc = parse_int(v, 10, s->min, s->max, &x, msg, n);
		if (rc == SHOAL_OK)
			*(int64_t *)p = x;
		return rc;
	case T_BOOL:
		return parse_bool(v, p, msg, n);
	case T_ENUM:
		return parse_enum(s->names, v, p, msg, n);
	case T_DURATION:
		if (config_parse_duration(v, p) == SHOAL_OK)
			return SHOAL_OK;
		snprintf(msg, n, "invalid duration \"%s\" (seconds, or with a unit: ms, s, min, h)",
			 v);
		return SHOAL_ERROR;
	case T_STR:
	case T_PATH:
		/* PgBouncer's rule: the console cannot run auth_query */
		if (p == (void *)&cfg->auth_dbname && strcmp(v, "pgbouncer") == 0) {
			snprintf(
			    msg, n,
			    "cannot use the reserved \"pgbouncer\" database as an auth_dbname");
			return SHOAL_ERROR;
		}
		set_str(p, v, s->type == T_PATH);
		return SHOAL_OK;
	}
	return SHOAL_ERROR;
}

void apply_defaults(struct config *cfg)
{
	char msg[MSG_LEN];
	for (size_t i = 0; i < n_settings; i++) {
		shoal_rc rc = setting_set(cfg, &settings[i], settings[i].def, msg, sizeof(msg));
		assert(rc == SHOAL_OK);
		UNUSED(rc);
	}
}

/* SHOAL_<NAME> overrides, applied after the file. */
/* ---- printing ---- */

static void format_duration(char *out, size_t n, usec_t us)
{
	if (us % USEC_PER_SEC == 0) {
		snprintf(out, n, "%lld", (long long)(us / USEC_PER_SEC));
		return;
	}
	char frac[8];
	snprintf(frac, sizeof(frac), "%06lld", (long long)(us % USEC_PER_SEC));
	for (int i = 5; i > 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	snprintf(out, n, "%lld.%s", (long long)(us / USEC_PER_SEC), frac);
}

void format_setting(char *out, size_t n, const struct config *cfg, const struct setting *s)
{
	const void *p = (const char *)cfg + s->off;
	switch (s->type) {
	case T_INT:
	case T_BOOL: snprintf(out, n, "%d", *(const int *)p); return;
	case T_OCTAL: snprintf(out, n, "%04o", (unsigned)*(const int *)p); return;
	case T_INT64: snprintf(out, n, "%" PRId64, *(const int64_t *)p); return;
	case T_ENUM: snprintf(out, n, "%s", enum_name_of(s->names, *(const int *)p)); return;
	case T_DURATION: format_duration(out, n, *(const usec_t *)p); return;
	case T_STR:
	case T_PATH: snprintf(out, n, "%s", *(char *const *)p ? *(char *const *)p : ""); return;
	}
	snprintf(out, n, "?");
}

void config_setting_value(const struct config *cfg, int i, char *out, size_t n)
{
	format_setting(out, n, cfg, &settings[i]);
}

shoal_rc config_set_value(struct config *cfg, const char *name, const char *value, char *err,
			  size_t errlen)
{
	const struct setting *s = find_setting(name);
	if (!s) {
		snprintf(err, errlen, "unknown setting \"%s\"", name);
		return SHOAL_ERROR;
	}
	if (!s->reload) {
		snprintf(err, errlen, "setting \"%s\" cannot be changed without a restart", name);
		return SHOAL_ERROR;
	}
	char msg[MSG_LEN];
	if (setting_set(cfg, s, value, msg, sizeof(msg)) != SHOAL_OK) {
		snprintf(err, errlen, "%s: %s", name, msg);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

bool config_user_in_list(const char *list, const char *user)
{
	size_t n = strlen(user);
	for (const char *p = list ? list : ""; *p;) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		const char *e = p;
		while (*e && *e != ',' && !isspace((unsigned char)*e))
			e++;
		if ((size_t)(e - p) == n && strncmp(p, user, n) == 0)
			return true;
		p = e;
	}
	return false;
}
const char *config_pool_mode_name(int mode)
{
	return mode == POOL_INHERIT ? "inherit" : enum_name_of(pool_mode_names, mode);
}

const char *config_lb_name(int lb)
{
	return enum_name_of(lb_names, lb);
}

const char *config_tsa_name(int tsa)
{
	return enum_name_of(tsa_names, tsa);
}

const char *config_auth_type_name(int type)
{
	return enum_name_of(auth_type_names, type);
}

const char *config_default_host(int port)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/var/run/postgresql/.s.PGSQL.%d", port);
	return stat(path, &st) == 0 ? "/var/run/postgresql" : "127.0.0.1";
}
