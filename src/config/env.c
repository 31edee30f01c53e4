/* env.c: databases from the environment (DATABASE_URL, SHOAL_DATABASES), *_FILE secrets,
 * warnings said once, and the --check strictness switch. */
#include "config_env.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* ---- notes: configuration warnings, each said once per process ---- */

static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;
static char **notes;
static size_t nnotes;
static bool strict_forced;

void config_note(const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&notes_lock);
	bool seen = false;
	for (size_t i = 0; i < nnotes && !seen; i++)
		seen = strcmp(notes[i], text) == 0;
	if (!seen) {
		notes = xrealloc(notes, sizeof(*notes) * (nnotes + 1));
		notes[nnotes++] = xstrdup(text);
	}
	pthread_mutex_unlock(&notes_lock);
	if (!seen)
		log_warn("%s", text);
}

void config_notes_replay(void)
{
	pthread_mutex_lock(&notes_lock);
	for (size_t i = 0; i < nnotes; i++)
		log_warn("%s", notes[i]);
	pthread_mutex_unlock(&notes_lock);
}

void config_notes_reset(void)
{
	pthread_mutex_lock(&notes_lock);
	for (size_t i = 0; i < nnotes; i++)
		free(notes[i]);
	free(notes);
	notes = NULL;
	nnotes = 0;
	pthread_mutex_unlock(&notes_lock);
}

void config_force_strict(bool on)
{
	strict_forced = on;
}

bool config_strict_forced(void)
{
	return strict_forced;
}

/* ---- SHOAL_* names ---- */

extern char **environ;

#define ENV_FILE_MAX (64 * 1024)

shoal_rc config_env_get(const char *var, const char **value, char **owned, char *msg, size_t n)
{
	*owned = NULL;
	*value = getenv(var);
	if (*value)
		return SHOAL_OK;
	char fvar[128];
	snprintf(fvar, sizeof(fvar), "%s_FILE", var);
	const char *path = getenv(fvar);
	if (!path || !*path)
		return SHOAL_OK;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(msg, n, "%s: cannot read %s: %s", fvar, path, strerror(errno));
		return SHOAL_ERROR;
	}
	char *buf = xmalloc(ENV_FILE_MAX + 1);
	size_t len = fread(buf, 1, ENV_FILE_MAX + 1, f);
	bool bad = ferror(f) || len > ENV_FILE_MAX;
	fclose(f);
	if (bad) {
		snprintf(msg, n, "%s: %s is %s", fvar, path,
			 len > ENV_FILE_MAX ? "larger than 64 kB" : "unreadable");
		free(buf);
		return SHOAL_ERROR;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	*value = *owned = buf;
	return SHOAL_OK;
}

/* SHOAL_* variables that are not settings: Shoal's own, and its test harness's. */
static bool env_name_known(const char *lower)
{
	static const char *const other[] = {"databases",    "databases_file", "bin",
					    "test_workers", "test_timeout",   "skip_sanitizers"};
	const char *def;
	bool reload;
	size_t len = strlen(lower);
	for (size_t i = 0; i < ARRAY_LEN(other); i++)
		if (!strcmp(lower, other[i]))
			return true;
	for (int i = 0; i < config_setting_count(); i++) {
		const char *name = config_setting_info(i, &def, &reload);
		size_t k = strlen(name);
		if (!strcmp(lower, name) ||
		    (len == k + 5 && !strncmp(lower, name, k) && !strcmp(lower + k, "_file")))
			return true; /* SHOAL_<NAME>, or SHOAL_<NAME>_FILE */
	}
	return false;
}

void config_env_check_names(void)
{
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "SHOAL_", 6) != 0)
			continue;
		char lower[128];
		size_t n = strcspn(*e + 6, "=");
		if (n == 0 || n >= sizeof(lower))
			continue;
		for (size_t i = 0; i < n; i++)
			lower[i] = (char)tolower((unsigned char)(*e)[6 + i]);
		lower[n] = '\0';
		if (env_name_known(lower))
			continue;
		const char *best = config_suggest_setting(lower, NULL, 0);
		char hint[160] = "";
		if (best) {
			int k = snprintf(hint, sizeof(hint), " (did you mean SHOAL_");
			for (const char *c = best; *c && k < (int)sizeof(hint) - 4; c++)
				hint[k++] = (char)toupper((unsigned char)*c);
			snprintf(hint + k, sizeof(hint) - (size_t)k, "?)");
		}
		config_note("environment variable SHOAL_%.*s names no setting, ignored%s", (int)n,
			    *e + 6, hint);
	}
}

/* ---- URL options that are libpq client options, not database options ---- */

static shoal_rc url_sslmode(struct config *cfg, const char *v, const char *what, char *err,
			    size_t errlen)
{
	int before = cfg->server_tls_sslmode;
	char msg[256];
	if (config_set_value(cfg, "server_tls_sslmode", v, msg, sizeof(msg)) != SHOAL_OK) {
		snprintf(err, errlen, "%s: sslmode: %s", what, msg);
		return SHOAL_ERROR;
	}
	if (cfg->server_tls_sslmode < before) { /* one URL must not weaken the others */
		cfg->server_tls_sslmode = before;
		if (before >= TLS_REQUIRE) /* prefer is a superset of disable and allow */
			config_note(
			    "%s: sslmode=%s is weaker than server_tls_sslmode, which is kept", what,
			    v);
	}
	return SHOAL_OK;
}

static shoal_rc url_client_option(struct config *cfg, const char *key, const char *v,
				  const char *what, char *err, size_t errlen)
{
	char msg[256];
	if (!strcasecmp(key, "sslmode"))
		return url_sslmode(cfg, v, what, err, errlen);
	if (!strcasecmp(key, "sslrootcert")) {
		if (!strcasecmp(v, "system")) /* no server_tls_ca_file: OpenSSL's default CAs */
			return SHOAL_OK;
		if (config_set_value(cfg, "server_tls_ca_file", v, msg, sizeof(msg)) == SHOAL_OK)
			return SHOAL_OK;
		snprintf(err, errlen, "%s: sslrootcert: %s", what, msg);
		return SHOAL_ERROR;
	}
	config_note("%s: %s=%s is a client option Shoal does not use for its server connections, "
		    "ignored",
		    what, key, v);
	return SHOAL_OK;
}

static bool is_client_option(const char *key, size_t n)
{
	static const char *const keys[] = {"sslmode",	      "sslrootcert",
					   "channel_binding", "connect_timeout",
					   "pgbouncer",	      "target_session_attrs"};
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (strlen(keys[i]) == n && !strncasecmp(key, keys[i], n))
			return true;
	return false;
}

/* Take the client options out of the URL's query (applied to cfg), and when lenient the
 * parameters that are no database key either (noted); *out is the rest. */
static shoal_rc url_strip(struct config *cfg, const char *url, const char *what, bool lenient,
			  char **out, char *err, size_t errlen)
{
	char *copy = xstrdup(url), *q = strchr(copy, '?');
	if (!q) {
		*out = copy;
		return SHOAL_OK;
	}
	*q++ = '\0';
	size_t cap = strlen(url) + 2, len = strlen(copy);
	char *res = xrealloc(xstrdup(copy), cap);
	char sep = '?';
	for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (eq && is_client_option(kv, (size_t)(eq - kv))) {
			*eq = '\0';
			if (url_client_option(cfg, kv, eq + 1, what, err, errlen) != SHOAL_OK) {
				free(copy);
				free(res);
				return SHOAL_ERROR;
			}
			continue;
		}
		if (lenient && !config_is_db_key(kv, eq ? (size_t)(eq - kv) : strlen(kv))) {
			config_note("%s: parameter \"%s\" is not for Shoal (an application's "
				    "option?), ignored",
				    what, kv);
			continue;
		}
		len += (size_t)snprintf(res + len, cap - len, "%c%s", sep, kv);
		sep = '&';
	}
	free(copy);
	*out = res;
	return SHOAL_OK;
}

/* ---- the variables ---- */

static shoal_rc add_entry(struct config *cfg, const char *name, const char *value, const char *what,
			  bool lenient, char *err, size_t errlen)
{
	char msg[512], *v = NULL;
	shoal_rc rc = SHOAL_OK;
	if (!strncasecmp(value, "postgres://", 11) || !strncasecmp(value, "postgresql://", 13))
		rc = url_strip(cfg, value, what, lenient, &v, err, errlen);
	if (rc != SHOAL_OK)
		return rc;
	rc = config_add_db(cfg, name, v ? v : value, msg, sizeof(msg));
	if (rc != SHOAL_OK)
		snprintf(err, errlen, "%s: %s: %s", what, name, msg);
	free(v);
	return rc;
}

shoal_rc config_database_url(struct config *cfg, const char *url, const char *what, char *err,
			     size_t errlen)
{
	if (strncasecmp(url, "postgres://", 11) && strncasecmp(url, "postgresql://", 13)) {
		snprintf(err, errlen, "%s: expected a postgres:// or postgresql:// URL", what);
		return SHOAL_ERROR;
	}
	if (add_entry(cfg, "*", url, what, true, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	struct db_entry *star = (struct db_entry *)config_find_db(cfg, "*");
	if (!star->dbname)
		return SHOAL_OK;
	/* The URL's database under its own name, and "*" for the others on the same server. */
	char *alias = xstrdup(star->dbname);
	free(star->dbname);
	star->dbname = NULL;
	shoal_rc rc = add_entry(cfg, alias, url, what, true, err, errlen);
	free(alias);
	return rc;
}

shoal_rc config_parse_database_list(struct config *cfg, const char *list, const char *what,
				    char *err, size_t errlen)
{
	char *copy = xstrdup(list);
	shoal_rc rc = SHOAL_OK;
	for (char *save = NULL, *item = strtok_r(copy, ";\n", &save); item && rc == SHOAL_OK;
	     item = strtok_r(NULL, ";\n", &save)) {
		while (isspace((unsigned char)*item))
			item++;
		if (!*item)
			continue;
		char *eq = strchr(item, '=');
		char *end = eq;
		while (end && end > item && isspace((unsigned char)end[-1]))
			end--;
		if (!eq || end == item) {
			snprintf(err, errlen, "%s: expected name=postgres://... in \"%s\"", what,
				 item);
			rc = SHOAL_ERROR;
			break;
		}
		*end = '\0';
		char *value = eq + 1;
		while (isspace((unsigned char)*value))
			value++;
		for (size_t k = strlen(value); k > 0 && isspace((unsigned char)value[k - 1]); k--)
			value[k - 1] = '\0';
		rc = add_entry(cfg, item, value, what, false, err, errlen);
	}
	free(copy);
	return rc;
}

static shoal_rc env_databases(struct config *cfg, bool have_file, const char *list, const char *url,
			      char *err, size_t errlen)
{
	if (list && !*list)
		list = NULL;
	if (have_file || !url || !*url)
		url = NULL;
	if (!list && !url)
		return SHOAL_OK;
	if (!have_file) /* the embedded default's "*" = the local PostgreSQL: not wanted now */
		config_drop_db(cfg, "*");
	if (url && config_database_url(cfg, url, "DATABASE_URL", err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	return list ? config_parse_database_list(cfg, list, "SHOAL_DATABASES", err, errlen)
		    : SHOAL_OK;
}

shoal_rc config_env_databases(struct config *cfg, bool have_file, char *err, size_t errlen)
{
	const char *list, *url;
	char *list_owned = NULL, *url_owned = NULL;
	shoal_rc rc = config_env_get("SHOAL_DATABASES", &list, &list_owned, err, errlen);
	if (rc == SHOAL_OK)
		rc = config_env_get("DATABASE_URL", &url, &url_owned, err, errlen);
	if (rc == SHOAL_OK)
		rc = env_databases(cfg, have_file, list, url, err, errlen);
	free(list_owned);
	free(url_owned);
	return rc;
}
