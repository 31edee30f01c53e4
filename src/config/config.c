/* config.c: one settings table driving INI (+%include) and env parsing, defaults and printing. */
#include "config.h"
#include "config_env.h"
#include "hba.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ini.h>

#include "log.h"

#define MSG_LEN		  256
#define MAX_INCLUDE_DEPTH 10
/* Stands in for a value too long for inih's fixed line buffer; see src_reader(). */
#define LONG_VALUE_MARK "\x1f"

/* ---- names of enumerated values ---- */

struct enum_name {
	const char *name;
	int value;
};

/* clang-format off */
static const struct enum_name pool_mode_names[] = {
	{"session", POOL_SESSION},
	{"transaction", POOL_TRANSACTION},
	{"statement", POOL_STATEMENT},
	{NULL, 0},
};

static const struct enum_name auth_type_names[] = {
	{"trust", AUTH_TRUST}, {"plain", AUTH_PLAIN}, {"md5", AUTH_MD5},
	{"scram-sha-256", AUTH_SCRAM}, {"any", AUTH_ANY}, {"hba", AUTH_HBA},
	{"cert", AUTH_CERT}, {NULL, 0},
};

static const struct enum_name tls_mode_names[] = {
	{"disable", TLS_DISABLE}, {"allow", TLS_ALLOW}, {"prefer", TLS_PREFER},
	{"require", TLS_REQUIRE}, {"verify-ca", TLS_VERIFY_CA}, {"verify-full", TLS_VERIFY_FULL},
	{NULL, 0},
};

static const struct enum_name lb_names[] = {
	{"round-robin", LB_ROUND_ROBIN}, {"disable", LB_DISABLE},
	{"least-connections", LB_LEAST_CONN}, {NULL, 0},
};

static const struct enum_name tsa_names[] = {
	{"any", TSA_ANY}, {"read-write", TSA_READ_WRITE}, {"read-only", TSA_READ_ONLY},
	{"primary", TSA_PRIMARY}, {"standby", TSA_STANDBY}, {"prefer-standby", TSA_PREFER_STANDBY},
	{NULL, 0},
};

/* ---- the settings table ---- */

enum setting_type {
	T_INT,
	T_OCTAL,
	T_BOOL,
	T_STR,  /* "" stays "" (listen_addr = "" means no TCP listener) */
	T_PATH, /* "" becomes NULL (unset) */
	T_ENUM,
	T_DURATION,
	T_INT64,
};

struct setting {
	const char *name;
	size_t off;
	enum setting_type type;
	const char *def; /* parsed like a file value, so defaults take the same path */
	bool reload;     /* false: a change needs a restart */
	int64_t min, max;
	const struct enum_name *names;
};

#define S_(f, t, d, r, lo, hi, nm) {#f, offsetof(struct config, f), t, d, r, lo, hi, nm}
#define S_INT(f, d, r, lo, hi)     S_(f, T_INT, d, r, lo, hi, NULL)
#define S_OCTAL(f, d, r)           S_(f, T_OCTAL, d, r, 0, 07777, NULL)
#define S_BOOL(f, d, r)            S_(f, T_BOOL, d, r, 0, 1, NULL)
#define S_STR(f, d, r)             S_(f, T_STR, d, r, 0, 0, NULL)
#define S_PATH(f, r)               S_(f, T_PATH, "", r, 0, 0, NULL)
#define S_ENUM(f, nm, d, r)        S_(f, T_ENUM, d, r, 0, 0, nm)
#define S_DUR(f, d, r)             S_(f, T_DURATION, d, r, 0, 0, NULL)
#define S_INT64(f, d, r, lo, hi)   S_(f, T_INT64, d, r, lo, hi, NULL)

static const struct setting settings[] = {
	S_STR(listen_addr, "127.0.0.1", false),
	S_INT(listen_port, "6432", false, 1, 65535),
	S_STR(unix_socket_dir, "/tmp", false),
	S_OCTAL(unix_socket_mode, "0777", false),
	S_ENUM(auth_type, auth_type_names, "md5", true),
	S_PATH(auth_file, true),
	S_ENUM(pool_mode, pool_mode_names, "session", true),
	S_INT(max_client_conn, "100", true, 1, INT_MAX),
	S_INT(default_pool_size, "20", true, 0, INT_MAX),
	S_INT(min_pool_size, "0", true, 0, INT_MAX),
	S_INT(reserve_pool_size, "0", true, 0, INT_MAX),
	S_DUR(reserve_pool_timeout, "5", true),
	S_INT(max_db_connections, "0", true, 0, INT_MAX),
	S_INT(max_user_connections, "0", true, 0, INT_MAX),
	S_STR(server_reset_query, "DISCARD ALL", true),
	S_BOOL(server_reset_query_always, "0", true),
	S_DUR(server_connect_timeout, "15", true),
	S_DUR(server_login_retry, "15", true),
	S_DUR(host_check_interval, "0", true),
	S_DUR(host_check_timeout, "3", true),
	S_DUR(max_replica_lag, "0", true),
	S_INT64(max_replica_lag_bytes, "0", true, 0, INT64_MAX),
	S_BOOL(read_your_writes, "0", true),
	S_DUR(read_your_writes_window, "10", true),
	S_DUR(server_idle_timeout, "600", true),
	S_DUR(server_lifetime, "3600", true),
	S_DUR(query_timeout, "0", true),
	S_DUR(query_wait_timeout, "120", true),
	S_DUR(client_idle_timeout, "0", true),
	S_DUR(client_login_timeout, "60", true),
	S_DUR(idle_transaction_timeout, "0", true),
	S_DUR(transaction_timeout, "0", true),
	S_INT64(max_packet_size, "2147483647", true, 1, INT64_MAX),
	S_INT64(message_inspect_limit, "1048576", true, 1024, INT64_MAX),
	S_DUR(stats_period, "60", true),
	S_PATH(logfile, true),
	S_PATH(pidfile, false),
	S_INT(verbose, "0", true, 0, 10),
	S_INT(workers, "0", false, 0, 64),
	S_BOOL(so_reuseport, "0", false),
	S_INT(peer_id, "0", false, 0, 16383),
	S_STR(peer_discovery_dns, "", true),
	S_STR(track_extra_parameters, "search_path, default_transaction_read_only, IntervalStyle",
	      true),
	S_BOOL(tcp_keepalive, "1", true),
	S_DUR(shutdown_timeout, "30", true),
	S_STR(admin_users, "", true),
	S_STR(stats_users, "", true),
	S_STR(http_addr, "127.0.0.1", false),
	S_INT(http_port, "0", false, 0, 65535),
	S_STR(http_token, "", true),
	S_DUR(health_probe_timeout, "3", true),
	S_DUR(health_probe_interval, "1", true),
	S_STR(health_probe_user, "", true),
	S_DUR(alert_waiting_after, "5", true),
	S_DUR(alert_at_max_after, "30", true),
	S_DUR(dns_max_ttl, "15", true),
	S_DUR(dns_nxdomain_ttl, "15", true),
	S_ENUM(client_tls_sslmode, tls_mode_names, "disable", true),
	S_PATH(client_tls_key_file, true),
	S_PATH(client_tls_cert_file, true),
	S_PATH(client_tls_ca_file, true),
	S_STR(client_tls_protocols, "secure", true),
	S_STR(client_tls_ciphers, "default", true),
	S_ENUM(server_tls_sslmode, tls_mode_names, "prefer", true),
	S_PATH(server_tls_ca_file, true),
	S_PATH(server_tls_key_file, true),
	S_PATH(server_tls_cert_file, true),
	S_STR(server_tls_protocols, "secure", true),
	S_STR(server_tls_ciphers, "default", true),
	S_PATH(auth_hba_file, true),
	S_PATH(auth_user, true),
	S_STR(auth_query,
	      "SELECT rolname, CASE WHEN rolvaliduntil < pg_catalog.now() THEN NULL ELSE rolpassword "
	      "END FROM pg_catalog.pg_authid WHERE rolname = $1 AND rolcanlogin",
	      true),
	S_PATH(auth_dbname, true),
	S_DUR(auth_query_cache_ttl, "60", true),
	S_BOOL(log_connections, "1", true),
	S_BOOL(log_disconnections, "1", true),
	S_INT(max_prepared_statements, "200", true, 0, INT_MAX),
	S_INT64(max_prepared_statement_bytes, "1048576", true, 1, INT64_MAX),
	S_BOOL(strict_config, "1", true),
};

/* PgBouncer settings Shoal accepts and does not act on: said once, not a failure, so that an
 * existing pgbouncer.ini loads unchanged. Those with a reason in unneeded[] are jobs Shoal does
 * without a setting. */
static const char *const not_implemented[] = {
	"auth_ident_file", "auth_ldap_options", "ignore_startup_parameters",
	"pkt_buf", "sbuf_loopcnt", "server_check_query", "server_check_delay", "server_fast_close",
	"application_name_add_host", "log_pooler_errors",
	"log_stats", "disable_pqexec", "dns_zone_check_period",
	"resolv_conf", "tcp_defer_accept", "tcp_socket_buffer", "tcp_keepcnt", "tcp_keepidle",
	"tcp_keepintvl", "tcp_user_timeout", "listen_backlog", "server_round_robin",
	"user", "syslog", "syslog_ident", "syslog_facility",
	"service_name", "job_name", "conffile", "suspend_timeout", "autodb_idle_timeout",
	"unix_socket_group", "max_db_client_connections", "max_user_client_connections",
	"query_wait_notify", "scram_iterations", "cancel_wait_timeout", "client_tls13_ciphers",
	"client_tls_dheparams", "client_tls_ecdhcurve", "server_tls13_ciphers",
};

static const struct {
	const char *name, *why;
} unneeded[] = {
	{"ignore_startup_parameters", "Shoal passes every startup parameter on to the server, so "
				      "none needs to be ignored"},
	{"pkt_buf", "Shoal sizes its buffers by the data in flight"},
	{"sbuf_loopcnt", "each worker's event loop is fair by itself"},
	{"disable_pqexec", "Shoal's console reads only simple queries anyway"},
	{"conffile", "the file is the one given on the command line"},
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

/* ---- value parsers ---- */

static shoal_rc parse_int(const char *v, int base, int64_t lo, int64_t hi, int64_t *out, char *msg,
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

static shoal_rc parse_enum(const struct enum_name *names, const char *v, int *out, char *msg,
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

static void set_str(char **p, const char *v, bool empty_is_null)
{
	free(*p);
	*p = (empty_is_null && !*v) ? NULL : xstrdup(v);
}

/* Set one setting from its text form; msg says why not. */
static shoal_rc setting_set(struct config *cfg, const struct setting *s, const char *v, char *msg,
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
		set_str(p, v, s->type == T_PATH);
		return SHOAL_OK;
	}
	return SHOAL_ERROR;
}

static const struct setting *find_setting(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
		if (strcasecmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

static void apply_defaults(struct config *cfg)
{
	char msg[MSG_LEN];
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		shoal_rc rc = setting_set(cfg, &settings[i], settings[i].def, msg, sizeof(msg));
		assert(rc == SHOAL_OK);
		UNUSED(rc);
	}
}

/* SHOAL_<NAME> overrides, applied after the file. */
static shoal_rc apply_env(struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		char var[64] = "SHOAL_", msg[MSG_LEN];
		size_t k = strlen(var);
		for (const char *c = settings[i].name; *c && k < sizeof(var) - 1; c++)
			var[k++] = (char)toupper((unsigned char)*c);
		var[k] = '\0';
		const char *v = getenv(var);
		if (!v)
			continue;
		if (setting_set(cfg, &settings[i], v, msg, sizeof(msg)) != SHOAL_OK) {
			snprintf(err, errlen, "environment %s: %s", var, msg);
			return SHOAL_ERROR;
		}
	}
	return SHOAL_OK;
}

/* ---- key=value lists: [databases] and [users] values ---- */

/* K_PORTS: one port, or a comma list of them (kept whole in db_entry.port_list). */
enum kv_kind { K_STR, K_INT, K_PORT, K_PORTS, K_MODE, K_LB, K_TSA };

struct kv_key {
	const char *name;
	size_t off;
	enum kv_kind kind;
	bool alias; /* another name PgBouncer accepts for the same field: never printed */
};

struct kv_table {
	const char *what; /* for messages */
	const struct kv_key *keys;
	const char *const *ignored; /* PgBouncer keys accepted with a warning */
};

#define DBK(f, k)                                                                                  \
	{                                                                                          \
#f, offsetof(struct db_entry, f), k, false                                         \
	}
static const struct kv_key db_keys[] = {
    DBK(host, K_STR),
    DBK(port, K_PORTS),
    DBK(load_balance_hosts, K_LB),
    DBK(target_session_attrs, K_TSA),
    DBK(dbname, K_STR),
    DBK(user, K_STR),
    DBK(password, K_STR),
    DBK(pool_size, K_INT),
    DBK(min_pool_size, K_INT),
    DBK(reserve_pool_size, K_INT),
    DBK(max_db_connections, K_INT),
    DBK(pool_mode, K_MODE),
    DBK(application_name, K_STR),
    DBK(auth_user, K_STR),
    DBK(auth_query, K_STR),
    DBK(auth_dbname, K_STR),
    /* PgBouncer's older name, still documented as an alias (1.24+). */
    {"reserve_pool", offsetof(struct db_entry, reserve_pool_size), K_INT, true},
    {NULL, 0, K_STR, false},
};
static const char *const db_ignored[] = {
    "client_encoding", "datestyle",	     "timezone",   "connect_query",
    "max_db_client_connections",
    "server_lifetime", NULL,
};
static const struct kv_table db_table = {"database", db_keys, db_ignored};

#define USK(f, k)                                                                                  \
	{                                                                                          \
#f, offsetof(struct user_entry, f), k, false                                       \
	}
static const struct kv_key user_keys[] = {
    USK(pool_mode, K_MODE),
    USK(pool_size, K_INT),
    USK(max_user_connections, K_INT),
    {NULL, 0, K_STR, false},
};
static const char *const user_ignored[] = {
    "reserve_pool_size",	"max_user_client_connections", "query_timeout",
    "idle_transaction_timeout", "client_idle_timeout", "transaction_timeout", NULL,
};
static const struct kv_table user_table = {"user", user_keys, user_ignored};

/* port=5432 or port=5432,5433,...: each checked; the first is db->port, a list is kept whole
 * (p points at db_entry.port, a K_PORTS key exists only in the [databases] table). */
static shoal_rc kv_set_ports(void *p, const char *val, char *err, size_t errlen)
{
	struct db_entry *db = (struct db_entry *)((char *)p - offsetof(struct db_entry, port));
	char msg[MSG_LEN], one[16];
	int first = 0;
	for (const char *s = val;;) {
		size_t len = strcspn(s, ",");
		int64_t x = 0;
		snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) ? len : sizeof(one) - 1), s);
		if (parse_int(one, 10, 1, 65535, &x, msg, sizeof(msg)) != SHOAL_OK || len >= sizeof(one)) {
			snprintf(err, errlen, "port: %s", len >= sizeof(one) ? "invalid port" : msg);
			return SHOAL_ERROR;
		}
		if (!first)
			first = (int)x;
		if (!s[len])
			break;
		s += len + 1;
	}
	db->port = first;
	free(db->port_list);
	db->port_list = strchr(val, ',') ? xstrdup(val) : NULL;
	return SHOAL_OK;
}

static shoal_rc kv_set_field(const struct kv_key *k, void *p, const char *val, char *err,
			     size_t errlen)
{
	char msg[MSG_LEN];
	int64_t x = 0;
	shoal_rc rc;
	if (k->kind == K_STR) {
		set_str(p, val, true);
		return SHOAL_OK;
	}
	if (k->kind == K_PORTS)
		return kv_set_ports(p, val, err, errlen);
	if (k->kind == K_MODE)
		rc = parse_enum(pool_mode_names, val, p, msg, sizeof(msg));
	else if (k->kind == K_LB)
		rc = parse_enum(lb_names, val, p, msg, sizeof(msg));
	else if (k->kind == K_TSA)
		rc = parse_enum(tsa_names, val, p, msg, sizeof(msg));
	else
		rc = parse_int(val, 10, k->kind == K_PORT ? 1 : 0,
			       k->kind == K_PORT ? 65535 : INT_MAX, &x, msg, sizeof(msg));
	if (rc != SHOAL_OK) {
		snprintf(err, errlen, "%s: %s", k->name, msg);
		return SHOAL_ERROR;
	}
	if (k->kind == K_INT || k->kind == K_PORT)
		*(int *)p = (int)x;
	return SHOAL_OK;
}

/* Append " (did you mean ...?)" to err when a key of t is a likely typo of key. */
static void kv_suggest(const struct kv_table *t, const char *key, char *err, size_t errlen)
{
	const char *names[32];
	size_t n = 0;
	for (const struct kv_key *k = t->keys; k->name && n < ARRAY_LEN(names); k++)
		names[n++] = k->name;
	const char *best = config_suggest(key, names, n);
	size_t len = strlen(err);
	if (best && len < errlen)
		snprintf(err + len, errlen - len, " (did you mean \"%s\"?)", best);
}

static shoal_rc kv_apply(const struct kv_table *t, void *obj, const char *key, const char *val,
			 char *err, size_t errlen)
{
	for (const struct kv_key *k = t->keys; k->name; k++)
		if (strcasecmp(k->name, key) == 0)
			return kv_set_field(k, (char *)obj + k->off, val, err, errlen);
	for (const char *const *ig = t->ignored; *ig; ig++) {
		if (strcasecmp(*ig, key) == 0) {
			config_note("%s option \"%s\" is accepted for PgBouncer compatibility and "
				    "has no effect in Shoal", t->what, key);
			return SHOAL_OK;
		}
	}
	snprintf(err, errlen, "unknown %s option \"%s\"", t->what, key);
	kv_suggest(t, key, err, errlen);
	return SHOAL_ERROR;
}

/* Unquote one libpq value in place: '...' with \' and \\, or a bare word (backslash escapes the
 * next character). Stops after the closing quote or separator. */
static shoal_rc kv_value(char **pp, bool commas, char **val, char *err, size_t errlen)
{
	char *p = *pp, *out = p;
	bool quoted = *p == '\'';
	*val = out;
	if (quoted)
		p++;
	for (;;) {
		if (!*p) {
			if (!quoted)
				break;
			snprintf(err, errlen, "unterminated quoted string");
			return SHOAL_ERROR;
		}
		if (quoted ? *p == '\'' : (isspace((unsigned char)*p) || (commas && *p == ','))) {
			p++;
			break;
		}
		if (*p == '\\' && p[1])
			p++;
		*out++ = *p++;
	}
	*out = '\0';
	*pp = p;
	return SHOAL_OK;
}

/* The next key=value pair of a libpq-style list, split in place. SHOAL_AGAIN at the end. */
static shoal_rc kv_next(char **pp, bool commas, char **key, char **val, char *err, size_t errlen)
{
	char *p = *pp;
	while (isspace((unsigned char)*p) || (commas && *p == ','))
		p++;
	if (!*p)
		return SHOAL_AGAIN;
	*key = p;
	while (*p && *p != '=' && !isspace((unsigned char)*p))
		p++;
	char *kend = p;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '=') {
		snprintf(err, errlen, "missing \"=\" after \"%.*s\"", (int)(kend - *key), *key);
		return SHOAL_ERROR;
	}
	p++;
	*kend = '\0';
	while (isspace((unsigned char)*p))
		p++;
	shoal_rc rc = kv_value(&p, commas, val, err, errlen);
	*pp = p;
	return rc;
}

static shoal_rc kv_parse_list(const struct kv_table *t, void *obj, const char *value, bool commas,
			      char *err, size_t errlen)
{
	char *copy = xstrdup(value), *p = copy, *key, *val;
	shoal_rc rc;
	while ((rc = kv_next(&p, commas, &key, &val, err, errlen)) == SHOAL_OK)
		if ((rc = kv_apply(t, obj, key, val, err, errlen)) != SHOAL_OK)
			break;
	free(copy);
	return rc == SHOAL_AGAIN ? SHOAL_OK : rc;
}

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
static shoal_rc url_parse(struct db_entry *db, char *s, char *err, size_t errlen)
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

static const char *url_body(const char *value)
{
	static const char *const schemes[] = {"postgres://", "postgresql://"};
	for (size_t i = 0; i < ARRAY_LEN(schemes); i++)
		if (strncasecmp(value, schemes[i], strlen(schemes[i])) == 0)
			return value + strlen(schemes[i]);
	return NULL;
}

/* ---- entries ---- */

static void db_entry_clear(struct db_entry *db)
{
	free(db->host);
	free(db->port_list);
	free(db->dbname);
	free(db->user);
	free(db->password);
	free(db->application_name);
	free(db->auth_user);
	free(db->auth_query);
	free(db->auth_dbname);
	db->host = db->port_list = db->dbname = db->user = db->password = NULL;
	db->application_name = NULL;
	db->auth_user = db->auth_query = db->auth_dbname = NULL;
}

/* On failure out's strings are freed again (out->name, the caller's, is left alone). */
shoal_rc config_parse_db(const char *value, struct db_entry *out, char *err, size_t errlen)
{
	out->port = 5432;
	out->pool_size = out->min_pool_size = out->reserve_pool_size = -1;
	out->max_db_connections = -1;
	out->pool_mode = POOL_INHERIT;
	const char *url = url_body(value);
	shoal_rc rc;
	if (url) {
		char *copy = xstrdup(url);
		rc = url_parse(out, copy, err, errlen);
		free(copy);
	} else {
		rc = kv_parse_list(&db_table, out, value, false, err, errlen);
	}
	struct host_addr hosts[SHOAL_MAX_HOSTS];
	int nhosts;
	if (rc == SHOAL_OK) /* a bad host list is refused at load time, not at first connect */
		rc = config_host_list(out, hosts, SHOAL_MAX_HOSTS, &nhosts, err, errlen);
	if (rc != SHOAL_OK)
		db_entry_clear(out);
	return rc;
}

const struct db_entry *config_find_db(const struct config *cfg, const char *name)
{
	const struct db_entry *fallback = NULL;
	for (int i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return &cfg->dbs[i];
		if (strcmp(cfg->dbs[i].name, "*") == 0)
			fallback = &cfg->dbs[i];
	}
	return fallback;
}

const struct user_entry *config_find_user(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nusers; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	return NULL;
}

const char *config_find_secret(const struct config *cfg, const char *user)
{
	for (int i = cfg->nauth - 1; i >= 0; i--) /* a later line wins */
		if (strcmp(cfg->auth[i].user, user) == 0)
			return cfg->auth[i].secret;
	return NULL;
}

/* A later definition of the same name replaces the earlier one, as in PgBouncer. */
static shoal_rc add_db(struct config *cfg, const char *name, const char *value, char *msg, size_t n)
{
	struct db_entry e = {0};
	if (config_parse_db(value, &e, msg, n) != SHOAL_OK)
		return SHOAL_ERROR;
	for (int i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0) {
			db_entry_clear(&cfg->dbs[i]);
			e.name = cfg->dbs[i].name;
			cfg->dbs[i] = e;
			return SHOAL_OK;
		}
	}
	e.name = xstrdup(name);
	cfg->dbs = xrealloc(cfg->dbs, sizeof(*cfg->dbs) * (size_t)(cfg->ndbs + 1));
	cfg->dbs[cfg->ndbs++] = e;
	return SHOAL_OK;
}

shoal_rc config_add_db(struct config *cfg, const char *name, const char *value, char *msg,
		       size_t n)
{
	return add_db(cfg, name, value, msg, n);
}

bool config_is_db_key(const char *key, size_t n)
{
	for (const struct kv_key *k = db_keys; k->name; k++)
		if (strlen(k->name) == n && strncasecmp(k->name, key, n) == 0)
			return true;
	for (const char *const *ig = db_ignored; *ig; ig++)
		if (strlen(*ig) == n && strncasecmp(*ig, key, n) == 0)
			return true;
	return false;
}

void config_drop_db(struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) != 0)
			continue;
		db_entry_clear(&cfg->dbs[i]);
		free(cfg->dbs[i].name);
		cfg->dbs[i] = cfg->dbs[--cfg->ndbs];
		return;
	}
}

static shoal_rc add_user(struct config *cfg, const char *name, const char *value, char *msg,
			 size_t n)
{
	struct user_entry u = {NULL, POOL_INHERIT, -1, -1};
	if (kv_parse_list(&user_table, &u, value, true, msg, n) != SHOAL_OK)
		return SHOAL_ERROR;
	for (int i = 0; i < cfg->nusers; i++) {
		if (strcmp(cfg->users[i].name, name) == 0) {
			u.name = cfg->users[i].name;
			cfg->users[i] = u;
			return SHOAL_OK;
		}
	}
	u.name = xstrdup(name);
	cfg->users = xrealloc(cfg->users, sizeof(*cfg->users) * (size_t)(cfg->nusers + 1));
	cfg->users[cfg->nusers++] = u;
	return SHOAL_OK;
}

/* ---- the INI source: files with %include expanded, one record per meaningful line ---- */

struct src_line {
	char *text;	  /* leading blanks stripped, so inih never sees a continuation line */
	const char *file; /* one of ini_src.files */
	int lineno;
};

struct ini_src {
	struct src_line *lines;
	int nlines;
	char **files;
	int nfiles;
	int cur;   /* lines handed to inih so far: lines[cur - 1] is the one being handled */
	bool stop; /* a handler failed: end the stream */
};

static shoal_rc src_read(struct ini_src *src, FILE *f, const char *path, int depth, char *err,
			 size_t errlen);

static void src_free(struct ini_src *src)
{
	for (int i = 0; i < src->nlines; i++)
		free(src->lines[i].text);
	for (int i = 0; i < src->nfiles; i++)
		free(src->files[i]);
	free(src->lines);
	free(src->files);
}

/* %include path: relative paths are relative to the including file's directory. */
static shoal_rc src_include(struct ini_src *src, const char *from, int lineno, const char *arg,
			    int depth, char *err, size_t errlen)
{
	if (!*arg || depth >= MAX_INCLUDE_DEPTH) {
		snprintf(err, errlen, "%s:%d: %%include: %s", from, lineno,
			 *arg ? "nested more than 10 deep (an include loop?)"
			      : "missing file name");
		return SHOAL_ERROR;
	}
	const char *slash = strrchr(from, '/');
	int dirlen = (*arg != '/' && slash) ? (int)(slash - from) + 1 : 0;
	size_t n = (size_t)dirlen + strlen(arg) + 1;
	char *path = xmalloc(n);
	snprintf(path, n, "%.*s%s", dirlen, from, arg);
	FILE *f = fopen(path, "r");
	shoal_rc rc = SHOAL_ERROR;
	if (!f)
		snprintf(err, errlen, "%s:%d: %%include: cannot open \"%s\": %s", from, lineno,
			 path, strerror(errno));
	else
		rc = src_read(src, f, path, depth + 1, err, errlen);
	free(path);
	return rc;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* "[name]" with an inline comment allowed after it; anything else blames this line, not the
 * keys that inih would otherwise file under the previous section. */
static shoal_rc check_section_line(const char *s, const char *file, int lineno, char *err,
				   size_t errlen)
{
	const char *close = strchr(s, ']');
	const char *rest = close ? close + 1 : NULL;
	while (rest && isspace((unsigned char)*rest))
		rest++;
	if (close && close > s + 1 && (!*rest || *rest == ';' || *rest == '#'))
		return SHOAL_OK;
	snprintf(err, errlen, "%s:%d: malformed section header \"%s\" (expected [name])", file,
		 lineno, s);
	return SHOAL_ERROR;
}

static shoal_rc src_add_line(struct ini_src *src, const char *file, int lineno, char *raw,
			     int depth, char *err, size_t errlen)
{
	char *s = trim(raw);
	if (lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s = trim(s + 3);
	if (!*s || *s == ';' || *s == '#')
		return SHOAL_OK;
	if (strncmp(s, "%include", 8) == 0 && (!s[8] || isspace((unsigned char)s[8])))
		return src_include(src, file, lineno, trim(s + 8), depth, err, errlen);
	if (*s == '%') {
		snprintf(err, errlen, "%s:%d: unknown directive \"%s\"", file, lineno, s);
		return SHOAL_ERROR;
	}
	if (*s == '[' && check_section_line(s, file, lineno, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	src->lines = xrealloc(src->lines, sizeof(*src->lines) * (size_t)(src->nlines + 1));
	src->lines[src->nlines++] = (struct src_line){xstrdup(s), file, lineno};
	return SHOAL_OK;
}

/* Read f (closed here) into src. */
static shoal_rc src_read(struct ini_src *src, FILE *f, const char *path, int depth, char *err,
			 size_t errlen)
{
	src->files = xrealloc(src->files, sizeof(*src->files) * (size_t)(src->nfiles + 1));
	const char *file = src->files[src->nfiles++] = xstrdup(path);
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	shoal_rc rc = SHOAL_OK;
	while (rc == SHOAL_OK && getline(&line, &cap, f) >= 0)
		rc = src_add_line(src, file, ++lineno, line, depth, err, errlen);
	if (rc == SHOAL_OK && ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", file, strerror(errno));
		rc = SHOAL_ERROR;
	}
	free(line);
	fclose(f);
	return rc;
}

/* inih's reader: one stored line per call, so inih's line count indexes src->lines. inih copies
 * lines into a fixed buffer (200 bytes in distribution builds) and silently truncates longer
 * ones, so a key = value line that does not fit is passed as "key = <mark>" and the handler
 * takes the value from the stored line instead. */
static char *src_reader(char *str, int num, void *stream)
{
	struct ini_src *src = stream;
	if (src->stop || src->cur == src->nlines || num < 8)
		return NULL;
	const char *t = src->lines[src->cur++].text;
	size_t room = (size_t)num - 2;
	const char *eq = strpbrk(t, "=:"); /* inih splits at the first '=' or ':' */
	if (strlen(t) <= room || *t == '[')
		snprintf(str, (size_t)num, "%.*s\n", (int)room, t);
	else if (eq && (size_t)(eq - t) + 4 <= room)
		snprintf(str, (size_t)num, "%.*s= %s\n", (int)(eq - t), t, LONG_VALUE_MARK);
	else /* a key that does not fit: no '=', so inih reports a syntax error on this line */
		snprintf(str, (size_t)num, "%s\n", LONG_VALUE_MARK);
	return str;
}

/* The value of the stored line behind a LONG_VALUE_MARK, by inih's rules: trimmed, and an
 * inline comment (" ;...") cut. Edits and points into the stored line. */
static const char *long_value(struct src_line *l)
{
	char *v = strpbrk(l->text, "=:") + 1;
	for (char *c = v; *c; c++) {
		if (*c == ';' && c > v && isspace((unsigned char)c[-1])) {
			*c = '\0';
			break;
		}
	}
	return trim(v);
}

/* ---- loading ---- */

struct load_ctx {
	struct config *cfg;
	struct ini_src src;
	char *err;
	size_t errlen;
	bool warned[ARRAY_LEN(not_implemented)];
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
	for (size_t i = 0; i < ARRAY_LEN(not_implemented); i++) {
		if (strcasecmp(name, not_implemented[i]) != 0)
			continue;
		if (!ctx->warned[i])
			config_note("setting \"%s\" is accepted for PgBouncer compatibility and "
				    "has no effect in Shoal",
				    not_implemented[i]);
		ctx->warned[i] = true;
		return SHOAL_OK;
	}
	char hint[MSG_LEN];
	suggestion(hint, sizeof(hint), config_suggest_setting(name, not_implemented,
								      ARRAY_LEN(not_implemented)));
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

static shoal_rc load_auth_file(struct config *cfg, char *err, size_t errlen)
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

/* auth_hba_file, required by auth_type = hba. */
static shoal_rc load_hba(struct config *cfg, char *err, size_t errlen)
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
		rc = load_hba(cfg, err, errlen);
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
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
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
	free(cfg->dbs);
	free(cfg->users);
	free(cfg->auth);
	if (cfg->hba)
		hba_free(cfg->hba);
	free(cfg->hba);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
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

static void format_setting(char *out, size_t n, const struct config *cfg, const struct setting *s)
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

static void print_setting(FILE *out, const struct config *cfg, const struct setting *s)
{
	char v[4096];
	format_setting(v, sizeof(v), cfg, s);
	fprintf(out, "%s = %s\n", s->name, v);
}

int config_setting_count(void)
{
	return (int)ARRAY_LEN(settings);
}

const char *config_setting_info(int i, const char **def, bool *reloadable)
{
	if (i < 0 || i >= (int)ARRAY_LEN(settings))
		return NULL;
	*def = settings[i].def;
	*reloadable = settings[i].reload;
	return settings[i].name;
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

/* " key=value", quoted libpq-style when needed. */
static void print_kv(FILE *out, const char *key, const char *v)
{
	bool plain = *v != '\0' && *v != '\'';
	for (const char *c = v; plain && *c; c++)
		plain = !isspace((unsigned char)*c) && *c != '\\';
	fprintf(out, " %s=", key);
	if (plain) {
		fputs(v, out);
		return;
	}
	fputc('\'', out);
	for (const char *c = v; *c; c++) {
		if (*c == '\'' || *c == '\\')
			fputc('\\', out);
		fputc(*c, out);
	}
	fputc('\'', out);
}

static void print_db(FILE *out, const struct db_entry *d)
{
	fprintf(out, "%s =", d->name);
	for (const struct kv_key *k = db_keys; k->name; k++) {
		if (k->alias)
			continue;
		const void *p = (const char *)d + k->off;
		char num[16];
		const char *v = NULL;
		if (k->kind == K_STR) {
			v = *(char *const *)p;
		} else if (k->kind == K_MODE) {
			if (*(const int *)p != POOL_INHERIT)
				v = config_pool_mode_name(*(const int *)p);
		} else if (k->kind == K_PORTS && d->port_list) {
			v = d->port_list;
		} else if (k->kind == K_LB) { /* the defaults are left out, as PgBouncer prints */
			if (*(const int *)p != LB_ROUND_ROBIN)
				v = config_lb_name(*(const int *)p);
		} else if (k->kind == K_TSA) {
			if (*(const int *)p != TSA_ANY)
				v = config_tsa_name(*(const int *)p);
		} else if (*(const int *)p >= 0) {
			snprintf(num, sizeof(num), "%d", *(const int *)p);
			v = num;
		}
		if (v)
			print_kv(out, k->name, p == &d->password ? "****" : v);
	}
	fputc('\n', out);
}

void config_print(const struct config *cfg, FILE *out)
{
	fputs("[shoal]\n", out);
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
		print_setting(out, cfg, &settings[i]);
	fputs("\n[databases]\n", out);
	for (int i = 0; i < cfg->ndbs; i++)
		print_db(out, &cfg->dbs[i]);
	fputs("\n[users]\n", out);
	for (int i = 0; i < cfg->nusers; i++) {
		const struct user_entry *u = &cfg->users[i];
		fprintf(out, "%s =", u->name);
		if (u->pool_mode != POOL_INHERIT)
			fprintf(out, " pool_mode=%s", config_pool_mode_name(u->pool_mode));
		if (u->pool_size >= 0)
			fprintf(out, " pool_size=%d", u->pool_size);
		if (u->max_user_connections >= 0)
			fprintf(out, " max_user_connections=%d", u->max_user_connections);
		fputc('\n', out);
	}
	if (cfg->npeers > 0)
		fputs("\n[peers]\n", out);
	for (int i = 0; i < cfg->npeers; i++)
		fprintf(out, "%d = host=%s port=%d\n", cfg->peers[i].id, cfg->peers[i].host,
			cfg->peers[i].port);
}
