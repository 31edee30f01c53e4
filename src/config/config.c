/* config.c: loading: the INI source run through the settings table, unknown and unneeded
 * names, SHOAL_<NAME> overrides, then the environment's databases, auth_file and hba. */
#include "config_int.h"
#include "config_env.h"
#include "hba.h"

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

#include <ini.h>

/* clang-format off */
/* PgBouncer settings for jobs Shoal does without a setting: accepted with a note that says why
 * (unneeded[]), so that an existing pgbouncer.ini loads unchanged. Their names also feed the
 * "did you mean" of an unknown setting. */
static const char *const unneeded_names[] = {
	"pkt_buf", "sbuf_loopcnt", "server_check_query", "server_check_delay",
	"disable_pqexec",
	"syslog_ident", "syslog_facility",
	"service_name", "job_name", "conffile", "suspend_timeout",
};

static const struct {
	const char *name, *why;
} unneeded[] = {
	{"pkt_buf", "Shoal sizes its buffers by the data in flight"},
	{"sbuf_loopcnt", "each worker's event loop is fair by itself"},
	{"disable_pqexec", "Shoal's console reads only simple queries anyway"},
	{"conffile", "the file is the one given on the command line"},
	{"server_check_query", "Shoal notices a dead idle server by its socket and checks a "
			       "server by its protocol state, not by a query"},
	{"server_check_delay", "Shoal notices a dead idle server by its socket and checks a "
			       "server by its protocol state, not by a query"},
	{"syslog_ident", "it names Shoal in syslog, and Shoal does not log to syslog"},
	{"syslog_facility", "it files Shoal's lines in syslog, and Shoal does not log to syslog"},
	{"service_name", "a Windows service name; Shoal runs on Linux"},
	{"job_name", "a Windows service name; Shoal runs on Linux"},
	{"suspend_timeout", "SUSPEND is refused (use a rolling restart)"},
};

/* PgBouncer settings for behaviour Shoal does not have: PgBouncer's default (the behaviour
 * Shoal has) loads without a word, any other value is refused with why, so that a
 * pgbouncer.ini never silently loses what it asked for. */
static const struct {
	const char *name, *def, *why;
} refused[] = {
	{"syslog", "0", "Shoal logs to stderr or logfile; let the service manager (journald) "
			"forward them"},
	{"application_name_add_host", "0", "Shoal does not rewrite application_name; SHOW "
					   "CLIENTS shows each client's address"},
	{"server_round_robin", "0", "Shoal always hands out the most recently used idle server"},
	{"auth_ident_file", "", "ident maps (hba map=) are not supported; name the users in "
				"auth_hba_file"},
	{"auth_ldap_options", "", "LDAP authentication is not supported; use auth_query or "
				  "auth_file"},
	{"resolv_conf", "", "Shoal resolves host names with the system resolver "
			    "(/etc/resolv.conf)"},
	{"dns_zone_check_period", "0", "Shoal resolves host names again every dns_max_ttl"},
	{"log_pooler_errors", "1", "Shoal always logs the errors it sends to clients, one line each"},
	{"cancel_wait_timeout", "10", "Shoal sends each cancel at once on a server connection of its "
				      "own, so a cancel never waits for a free one"},
	{"scram_iterations", "4096", "Shoal computes the SCRAM secrets of plaintext passwords "
				     "with PostgreSQL's 4096 iterations"},
};

/* Known sections besides [pgbouncer]/[shoal], [databases] and [users]. */
static const char *const known_sections[] = {"pgbouncer", "shoal", "databases", "users", "peers"};
/* clang-format on */

static const char embedded_ini[] = "[shoal]\n"
				   "listen_addr = 127.0.0.1\n"
				   "listen_port = 6432\n"
				   "unix_socket_dir = /tmp\n"
				   "pool_mode = transaction\n"
				   "auth_type = trust\n"
				   "[databases]\n"
				   "* =\n";
static shoal_rc apply_env(struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < n_settings; i++) {
		char var[64] = "SHOAL_", msg[MSG_LEN];
		size_t k = strlen(var);
		for (const char *c = settings[i].name; *c && k < sizeof(var) - 1; c++)
			var[k++] = (char)toupper((unsigned char)*c);
		var[k] = '\0';
		const char *v;
		char *owned;
		if (config_env_get(var, &v, &owned, msg, sizeof(msg)) != SHOAL_OK) {
			snprintf(err, errlen, "environment %s", msg);
			return SHOAL_ERROR;
		}
		shoal_rc rc = v ? setting_set(cfg, &settings[i], v, msg, sizeof(msg)) : SHOAL_OK;
		free(owned);
		if (rc != SHOAL_OK) {
			snprintf(err, errlen, "environment %s: %s", var, msg);
			return SHOAL_ERROR;
		}
	}
	return SHOAL_OK;
}

/* ---- loading ---- */

struct load_ctx {
	struct config *cfg;
	struct ini_src src;
	char *err;
	size_t errlen;
	char warned_section[64];
	char *unknown; /* "file:line: unknown ..." lines, an error or warnings per strict_config */
	size_t unknown_len;
};

/* Record an unknown name; config_load decides at the end whether it is an error, since
 * strict_config may come later in the file or from the environment. */
static void unknown_add(struct load_ctx *ctx, const char *fmt, ...) PRINTF(2, 3);
static void unknown_add(struct load_ctx *ctx, const char *fmt, ...)
{
	char line[MSG_LEN * 2];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t n = k < 0 ? 0 : (size_t)k >= sizeof(line) ? sizeof(line) - 1 : (size_t)k;
	ctx->unknown = xrealloc(ctx->unknown, ctx->unknown_len + n + 2);
	memcpy(ctx->unknown + ctx->unknown_len, line, n);
	ctx->unknown_len += n;
	ctx->unknown[ctx->unknown_len++] = '\n';
	ctx->unknown[ctx->unknown_len] = '\0';
}

/* strict_config (or --check): the unknown names are the error; else each is a warning. */
static shoal_rc unknown_finish(struct load_ctx *ctx)
{
	if (!ctx->unknown)
		return SHOAL_OK;
	ctx->unknown[--ctx->unknown_len] = '\0'; /* the last newline */
	if (ctx->cfg->strict_config || config_strict_forced()) {
		snprintf(ctx->err, ctx->errlen, "%s", ctx->unknown);
		return SHOAL_ERROR;
	}
	for (char *save = NULL, *l = strtok_r(ctx->unknown, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		config_note("%s, ignored (strict_config = 0)", l);
	return SHOAL_OK;
}

static void suggestion(char *out, size_t n, const char *best)
{
	if (best)
		snprintf(out, n, " (did you mean \"%s\"?)", best);
	else
		out[0] = '\0';
}

/* A number, or a boolean word as 0 or 1. */
static bool value_num(const char *s, long *out)
{
	static const char *const words[] = {"off", "no", "false", "on", "yes", "true"};
	for (size_t i = 0; i < ARRAY_LEN(words); i++) {
		if (strcasecmp(s, words[i]) == 0) {
			*out = i >= 3;
			return true;
		}
	}
	char *end;
	errno = 0;
	*out = strtol(s, &end, 10);
	return end != s && *end == '\0' && errno == 0;
}

/* Does v say what def says ("off" as "0", "04096" as "4096")? */
static bool same_value(const char *v, const char *def)
{
	long a, b;
	return strcasecmp(v, def) == 0 || (value_num(v, &a) && value_num(def, &b) && a == b);
}

static shoal_rc handle_setting(struct load_ctx *ctx, const char *where, const char *name,
			       const char *value, char *msg, size_t n)
{
	const struct setting *s = find_setting(name);
	if (s)
		return setting_set(ctx->cfg, s, value, msg, n);
	for (size_t i = 0; i < ARRAY_LEN(unneeded); i++) {
		if (strcasecmp(name, unneeded[i].name) == 0) {
			config_note("setting \"%s\" is not needed: %s", unneeded[i].name,
				    unneeded[i].why);
			return SHOAL_OK;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(refused); i++) {
		if (strcasecmp(name, refused[i].name) != 0)
			continue;
		if (same_value(value, refused[i].def))
			return SHOAL_OK;
		snprintf(msg, n, "\"%s\" is not supported: %s (only %s is accepted)", value,
			 refused[i].why, *refused[i].def ? refused[i].def : "an empty value");
		return SHOAL_ERROR;
	}
	char hint[MSG_LEN];
	suggestion(hint, sizeof(hint), config_suggest_setting(name, unneeded_names,
								      ARRAY_LEN(unneeded_names)));
	unknown_add(ctx, "%s: unknown setting \"%s\"%s", where, name, hint);
	return SHOAL_OK;
}

static void warn_section(struct load_ctx *ctx, const char *where, const char *section)
{
	if (*section && strcmp(ctx->warned_section, section) == 0)
		return; /* once per section; each key before any section is named */
	snprintf(ctx->warned_section, sizeof(ctx->warned_section), "%s", section);
	char hint[MSG_LEN];
	if (!*section) {
		unknown_add(ctx, "%s: setting before any [section]", where);
	} else {
		suggestion(hint, sizeof(hint),
			   config_suggest(section, known_sections, ARRAY_LEN(known_sections)));
		unknown_add(ctx, "%s: unknown section [%s]%s", where, section, hint);
	}
}

static shoal_rc on_value(struct load_ctx *ctx, const char *where, const char *section,
			 const char *name, const char *value, char *msg, size_t n)
{
	if (!strcasecmp(section, "pgbouncer") || !strcasecmp(section, "shoal"))
		return handle_setting(ctx, where, name, value, msg, n);
	if (!strcasecmp(section, "databases"))
		return add_db(ctx->cfg, name, value, msg, n);
	if (!strcasecmp(section, "users"))
		return add_user(ctx->cfg, name, value, msg, n);
	if (!strcasecmp(section, "peers"))
		return config_add_peer(ctx->cfg, name, value, msg, n);
	warn_section(ctx, where, section);
	return SHOAL_OK;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	struct src_line *l = &ctx->src.lines[ctx->src.cur - 1];
	char where[MSG_LEN], msg[MSG_LEN] = "";
	snprintf(where, sizeof(where), "%s:%d", l->file, l->lineno);
	if (strcmp(value, LONG_VALUE_MARK) == 0)
		value = long_value(l);
	char *expanded = NULL;
	shoal_rc rc = config_expand_vars(value, &expanded, msg, sizeof(msg));
	if (rc == SHOAL_OK)
		rc = on_value(ctx, where, section, name, expanded, msg, sizeof(msg));
	free(expanded);
	if (rc == SHOAL_OK)
		return 1;
	snprintf(ctx->err, ctx->errlen, "%s: %s: %s", where, name, msg);
	ctx->src.stop = true;
	return 0;
}

static shoal_rc ini_run(struct load_ctx *ctx)
{
	int line = ini_parse_stream(src_reader, &ctx->src, on_ini_value, ctx);
	if (ctx->src.stop)
		return SHOAL_ERROR;
	if (line > 0 && line <= ctx->src.nlines) {
		struct src_line *l = &ctx->src.lines[line - 1];
		snprintf(ctx->err, ctx->errlen,
			 "%s:%d: syntax error (expected [section] or key = value)", l->file,
			 l->lineno);
		return SHOAL_ERROR;
	}
	if (line != 0) {
		snprintf(ctx->err, ctx->errlen, "INI parser failed (%d)", line);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

/* Read the top-level file (or the embedded default) into ctx->src. */
static shoal_rc load_source(struct load_ctx *ctx, const char *path)
{
	FILE *f;
	if (path)
		f = fopen(path, "r");
	else
		f = fmemopen((void *)embedded_ini, sizeof(embedded_ini) - 1, "r");
	if (!f) {
		snprintf(ctx->err, ctx->errlen, "cannot open \"%s\": %s",
			 path ? path : "<embedded>", strerror(errno));
		return SHOAL_ERROR;
	}
	return src_read(&ctx->src, f, path ? path : "<embedded default>", 0, ctx->err, ctx->errlen);
}

shoal_rc config_load_hba(struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->auth_hba_file) {
		if (cfg->auth_type != AUTH_HBA)
			return SHOAL_OK;
		snprintf(err, errlen, "auth_type = hba needs auth_hba_file");
		return SHOAL_ERROR;
	}
	cfg->hba = xcalloc(1, sizeof(*cfg->hba));
	return hba_load(cfg->auth_hba_file, cfg->hba, err, errlen);
}

shoal_rc config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	struct load_ctx ctx = {.cfg = cfg, .err = err, .errlen = errlen};
	if (errlen)
		err[0] = '\0';
	apply_defaults(cfg);
	shoal_rc rc = load_source(&ctx, path);
	if (rc == SHOAL_OK)
		rc = ini_run(&ctx);
	if (rc == SHOAL_OK)
		rc = apply_env(cfg, err, errlen);
	if (rc == SHOAL_OK)
		config_env_check_names();
	if (rc == SHOAL_OK)
		rc = unknown_finish(&ctx);
	if (rc == SHOAL_OK)
		rc = config_env_databases(cfg, path != NULL, err, errlen);
	if (rc == SHOAL_OK && cfg->http_token && strlen(cfg->http_token) > CONFIG_HTTP_TOKEN_MAX) {
		snprintf(err, errlen, "http_token: longer than %d characters", CONFIG_HTTP_TOKEN_MAX);
		rc = SHOAL_ERROR;
	}
	if (rc == SHOAL_OK && cfg->auth_file)
		rc = load_auth_file(cfg, err, errlen);
	if (rc == SHOAL_OK)
		rc = config_load_hba(cfg, err, errlen);
	src_free(&ctx.src);
	free(ctx.unknown);
	if (rc != SHOAL_OK) {
		config_free(cfg);
		return SHOAL_ERROR;
	}
	cfg->path = path ? xstrdup(path) : NULL;
	return SHOAL_OK;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < n_settings; i++)
		if (settings[i].type == T_STR || settings[i].type == T_PATH)
			free(*(char **)((char *)cfg + settings[i].off));
	for (int i = 0; i < cfg->ndbs; i++) {
		db_entry_clear(&cfg->dbs[i]);
		free(cfg->dbs[i].name);
	}
	for (int i = 0; i < cfg->nusers; i++)
		free(cfg->users[i].name);
	for (int i = 0; i < cfg->nauth; i++) {
		free(cfg->auth[i].user);
		free(cfg->auth[i].secret);
	}
	config_free_peers(cfg);
	db_index_free(cfg);
	free(cfg->dbs);
	free(cfg->users);
	free(cfg->auth);
	if (cfg->hba)
		hba_free(cfg->hba);
	free(cfg->hba);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}
