/* test_config.c: unit tests for config.c: defaults, sections, [databases] strings and URLs,
 * [users], %include, SHOAL_* overrides, warnings, error messages, auth_file and --check output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_env.h"
#include "current.h"
#include "log.h"

extern char **environ;

static char tmpdir[64];
static char logpath[PATH_MAX];

/* ---- helpers ---- */

static const char *tmp_path(const char *name)
{
	static char buf[4][PATH_MAX];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

/* Write content to tmpdir/name (creating one level of subdirectory) and return the path. */
static const char *write_file(const char *name, const char *content)
{
	const char *path = tmp_path(name);
	const char *slash = strchr(name, '/');
	if (slash) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%.*s", tmpdir, (int)(slash - name), name);
		assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	return path;
}

static shoal_rc load_text(struct config *cfg, const char *text, char *err, size_t errlen)
{
	return config_load(cfg, write_file("shoal.ini", text), err, errlen);
}

static void load_ok(struct config *cfg, const char *text)
{
	char err[512] = "";
	shoal_rc rc = load_text(cfg, text, err, sizeof(err));
	if (rc != SHOAL_OK)
		fail_msg("config_load failed: %s", err);
}

/* Loading must fail with an error message containing want; cfg must be left freed. */
static void load_fails(const char *text, const char *want)
{
	struct config cfg;
	char err[512] = "";
	assert_int_equal(load_text(&cfg, text, err, sizeof(err)), SHOAL_ERROR);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	assert_null(cfg.listen_addr);
	assert_null(cfg.dbs);
	assert_int_equal(cfg.ndbs, 0);
}

/* config_print's text of c (malloc'd). */
static char *print_config(const struct config *c)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	config_print(c, f);
	fclose(f);
	return out;
}

static char *read_log(void)
{
	static char buf[16384];
	FILE *f = fopen(logpath, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count_substr(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void clear_shoal_env(void)
{
	char names[64][128];
	int n = 0;
	for (char **e = environ; *e && n < 64; e++)
		if (strncmp(*e, "SHOAL_", 6) == 0)
			snprintf(names[n++], sizeof(names[0]), "%.*s", (int)strcspn(*e, "="), *e);
	for (int i = 0; i < n; i++)
		unsetenv(names[i]);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/shoal-test-config-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/log.txt", tmpdir);
	clear_shoal_env();
	return log_open(logpath, 0) == SHOAL_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Each test starts with an empty log. */
static int test_setup(void **state)
{
	(void)state;
	config_notes_reset();
	unsetenv("DATABASE_URL");
	unsetenv("SHOAL_DATABASES");
	return truncate(logpath, 0);
}

/* ---- defaults and settings ---- */

static void test_defaults_are_pgbouncers(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[pgbouncer]\n");
	assert_string_equal(c.listen_addr, "127.0.0.1");
	assert_int_equal(c.listen_port, 6432);
	assert_string_equal(c.unix_socket_dir, "/tmp");
	assert_int_equal(c.unix_socket_mode, 0777);
	assert_int_equal(c.auth_type, AUTH_MD5);
	assert_null(c.auth_file);
	assert_int_equal(c.pool_mode, POOL_SESSION);
	assert_int_equal(c.max_client_conn, 100);
	assert_int_equal(c.default_pool_size, 20);
	assert_int_equal(c.min_pool_size, 0);
	assert_int_equal(c.reserve_pool_size, 0);
	assert_int_equal(c.reserve_pool_timeout, 5 * USEC_PER_SEC);
	assert_int_equal(c.max_db_connections, 0);
	assert_int_equal(c.max_user_connections, 0);
	assert_string_equal(c.server_reset_query, "DISCARD ALL");
	assert_int_equal(c.server_reset_query_always, 0);
	assert_int_equal(c.server_connect_timeout, 15 * USEC_PER_SEC);
	assert_int_equal(c.server_login_retry, 15 * USEC_PER_SEC);
	assert_int_equal(c.server_idle_timeout, 600 * USEC_PER_SEC);
	assert_int_equal(c.server_lifetime, 3600 * USEC_PER_SEC);
	assert_int_equal(c.query_timeout, 0);
	assert_int_equal(c.query_wait_timeout, 120 * USEC_PER_SEC);
	assert_int_equal(c.client_idle_timeout, 0);
	assert_int_equal(c.client_login_timeout, 60 * USEC_PER_SEC);
	assert_int_equal(c.idle_transaction_timeout, 0);
	assert_int_equal(c.max_packet_size, 2147483647);
	assert_int_equal(c.stats_period, 60 * USEC_PER_SEC);
	assert_null(c.logfile);
	assert_null(c.pidfile);
	assert_int_equal(c.verbose, 0);
	assert_int_equal(c.workers, 0); /* one per CPU */
	assert_string_equal(c.track_extra_parameters,
			    "search_path, default_transaction_read_only, IntervalStyle");
	assert_int_equal(c.max_prepared_statements, 200);
	assert_int_equal(c.max_prepared_statement_bytes, 1048576);
	assert_int_equal(c.max_client_prepared_bytes, 16777216);
	assert_int_equal(c.max_client_buffer_bytes, 0);
	assert_int_equal(c.tcp_keepalive, 1);
	assert_int_equal(c.shutdown_timeout, 30 * USEC_PER_SEC);
	assert_int_equal(c.ndbs, 0);
	assert_int_equal(c.nusers, 0);
	assert_string_equal(c.path, tmp_path("shoal.ini"));
	config_free(&c);
}

static void test_embedded_default_forwards_everything_in_transaction_mode(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_OK);
	assert_null(c.path);
	assert_string_equal(c.listen_addr, "127.0.0.1");
	assert_int_equal(c.listen_port, 6432);
	assert_string_equal(c.unix_socket_dir, "/tmp");
	assert_int_equal(c.pool_mode, POOL_TRANSACTION);
	assert_int_equal(c.auth_type, AUTH_TRUST);
	assert_int_equal(c.ndbs, 1);
	const struct db_entry *d = config_find_db(&c, "anything");
	assert_non_null(d);
	assert_string_equal(d->name, "*");
	assert_null(d->host);
	assert_int_equal(d->port, 5432);
	assert_null(d->dbname);
	assert_null(d->user);
	assert_null(d->password);
	assert_int_equal(d->pool_size, -1);
	assert_int_equal(d->pool_mode, POOL_INHERIT);
	assert_string_equal(read_log(), "");
	config_free(&c);
}

static void test_shoal_section_and_case_insensitive_keys(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[shoal]\nLISTEN_PORT = 7000\nPool_Mode = Transaction\n");
	assert_int_equal(c.listen_port, 7000);
	assert_int_equal(c.pool_mode, POOL_TRANSACTION);
	config_free(&c);
	load_ok(&c, "[PgBouncer]\nlisten_port=7001\n");
	assert_int_equal(c.listen_port, 7001);
	config_free(&c);
}

static void test_value_types(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[pgbouncer]\n"
		    "unix_socket_mode = 0700\n"
		    "listen_addr =\n"
		    "unix_socket_dir =\n"
		    "logfile =\n"
		    "pidfile = /run/shoal.pid\n"
		    "server_reset_query_always = yes\n"
		    "tcp_keepalive = off\n"
		    "server_lifetime = 1.5\n"
		    "server_idle_timeout = 500ms\n"
		    "query_timeout = 2min\n"
		    "client_idle_timeout = 1h\n"
		    "max_packet_size = 4294967296\n"
		    "auth_type = scram-sha-256\n"
		    "server_reset_query = RESET ALL; SET x = 1\n");
	assert_int_equal(c.unix_socket_mode, 0700);
	assert_string_equal(c.listen_addr, "");
	assert_string_equal(c.unix_socket_dir, "");
	assert_null(c.logfile);
	assert_string_equal(c.pidfile, "/run/shoal.pid");
	assert_int_equal(c.server_reset_query_always, 1);
	assert_int_equal(c.tcp_keepalive, 0);
	assert_int_equal(c.server_lifetime, 1500000);
	assert_int_equal(c.server_idle_timeout, 500000);
	assert_int_equal(c.query_timeout, 120 * USEC_PER_SEC);
	assert_int_equal(c.client_idle_timeout, 3600 * USEC_PER_SEC);
	assert_int_equal(c.max_packet_size, 4294967296LL);
	assert_int_equal(c.auth_type, AUTH_SCRAM);
	assert_string_equal(c.server_reset_query, "RESET ALL; SET x = 1");
	config_free(&c);
}

static void test_bool_spellings(void **state)
{
	(void)state;
	static const char *const yes[] = {"1", "true", "yes", "on", "TRUE", "On"};
	static const char *const no[] = {"0", "false", "no", "off", "FALSE", "Off"};
	char text[128];
	struct config c;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "[shoal]\ntcp_keepalive = %s\n", no[i]);
		load_ok(&c, text);
		assert_int_equal(c.tcp_keepalive, 0);
		config_free(&c);
		snprintf(text, sizeof(text), "[shoal]\nserver_reset_query_always = %s\n", yes[i]);
		load_ok(&c, text);
		assert_int_equal(c.server_reset_query_always, 1);
		config_free(&c);
	}
}

static void test_parse_duration(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		usec_t us;
	} ok[] = {{"0", 0},
		  {"15", 15000000},
		  {"1.5", 1500000},
		  {"0.25s", 250000},
		  {"500ms", 500000},
		  {"250 ms", 250000},
		  {"10us", 10},
		  {"2min", 120000000},
		  {"1h", 3600000000LL},
		  {"1d", 86400000000LL},
		  {".5", 500000}};
	static const char *const bad[] = {"",	  "-1",	   "abc", "1x",	    "nan", "inf",
					  "1e30", "1.5.3", " 1",  "1 hour", "s"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		usec_t us = -1;
		assert_int_equal(config_parse_duration(ok[i].s, &us), SHOAL_OK);
		assert_int_equal(us, ok[i].us);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		usec_t us = 77;
		if (config_parse_duration(bad[i], &us) != SHOAL_ERROR)
			fail_msg("duration \"%s\" was accepted", bad[i]);
		assert_int_equal(us, 77);
	}
}

static void test_invalid_values_fail_with_file_line_and_key(void **state)
{
	(void)state;
	load_fails("[pgbouncer]\nlisten_port = abc\n", "shoal.ini:2: listen_port: invalid number");
	load_fails("[pgbouncer]\n\n; c\nlisten_port = 70000\n", "shoal.ini:4: listen_port:");
	load_fails("[pgbouncer]\nlisten_port = 0\n", "out of range");
	load_fails("[pgbouncer]\nauth_dbname = pgbouncer\n",
		   "cannot use the reserved \"pgbouncer\" database as an auth_dbname");
	load_fails("[pgbouncer]\npool_mode = bogus\n",
		   "pool_mode: invalid value \"bogus\" (expected session transaction statement)");
	load_fails("[pgbouncer]\nauth_type = pam\n", "auth_type: invalid value \"pam\"");
	load_fails("[pgbouncer]\ndefault_pool_size = -1\n",
		   "default_pool_size: -1 is out of range");
	load_fails("[pgbouncer]\nmax_client_conn = 12abc\n", "max_client_conn: invalid number");
	load_fails("[pgbouncer]\ntcp_keepalive = maybe\n", "tcp_keepalive: invalid boolean");
	load_fails("[pgbouncer]\nquery_timeout = soon\n", "query_timeout: invalid duration");
	load_fails("[pgbouncer]\nunix_socket_mode = 0789\n", "unix_socket_mode: invalid octal");
	load_fails("[pgbouncer]\nlisten_port = 99999999999999999999\n", "out of range");
}

static void test_syntax_error_names_the_line(void **state)
{
	(void)state;
	load_fails("[pgbouncer]\nlisten_port = 1\nthis line has no equals sign\n",
		   "shoal.ini:3: syntax error");
	load_fails("[pgbouncer]\n%frobnicate x\n", "shoal.ini:2: unknown directive");
}

static void test_unknown_key_warns_once_when_not_strict(void **state)
{
	(void)state;
	struct config c;
	const char *ini = "[pgbouncer]\nfrobnicate = 1\nlisten_port = 7777\nstrict_config = 0\n";
	load_ok(&c, ini);
	assert_int_equal(c.listen_port, 7777);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s:2: unknown setting \"frobnicate\", ignored",
		 tmp_path("shoal.ini"));
	assert_non_null(strstr(read_log(), want));
	config_free(&c);
	load_ok(&c, ini); /* a reload does not say it again */
	assert_int_equal(count_substr(read_log(), "frobnicate"), 1);
	config_free(&c);
}

static void test_unknown_keys_fail_with_every_line_and_a_suggestion(void **state)
{
	(void)state;
	load_fails("[pgbouncer]\npool_mod = transaction\n", "shoal.ini:2: unknown setting "
		   "\"pool_mod\" (did you mean \"pool_mode\"?)");
	load_fails("[pgbouncer]\nlisten_prot = 1\nfrobnicate = 2\n", "\"listen_prot\" (did you "
		   "mean \"listen_port\"?)");
	load_fails("[pgbouncer]\nlisten_prot = 1\nfrobnicate = 2\n", "listen_port\"?)\n");
	load_fails("[pgbouncer]\nlisten_prot = 1\nfrobnicate = 2\n", "shoal.ini:3: unknown "
		   "setting \"frobnicate\"");
	load_fails("[pgbouncr]\nlisten_port = 1\n", "shoal.ini:2: unknown section [pgbouncr] "
		   "(did you mean \"pgbouncer\"?)");
	load_fails("listen_port = 1\n[pgbouncer]\n", "shoal.ini:1: setting before any [section]");
	setenv("SHOAL_STRICT_CONFIG", "0", 1); /* the environment decides too */
	struct config c;
	load_ok(&c, "[pgbouncer]\npool_mod = transaction\n");
	config_free(&c);
	unsetenv("SHOAL_STRICT_CONFIG");
	config_force_strict(true); /* --check: an error whatever strict_config says */
	load_fails("[pgbouncer]\nstrict_config = 0\npool_mod = transaction\n", "pool_mod");
	config_force_strict(false);
}

static void test_broken_section_header_blames_its_line(void **state)
{
	(void)state;
	load_fails("; comment\n[pgbouncer\npool_mode = transaction\n",
		   "shoal.ini:2: malformed section header \"[pgbouncer\"");
	load_fails("[]\n", "shoal.ini:1: malformed section header");
	struct config c;
	load_ok(&c, "[pgbouncer] ; the main section\nlisten_port = 7003\n");
	assert_int_equal(c.listen_port, 7003);
	config_free(&c);
}

static void test_edit_distance_and_suggestions(void **state)
{
	(void)state;
	assert_int_equal(config_edit_distance("pool_mod", "pool_mode"), 1);
	assert_int_equal(config_edit_distance("", "abc"), 3);
	assert_int_equal(config_edit_distance("Listen_Port", "listen_port"), 0);
	assert_int_equal(config_edit_distance("kitten", "sitting"), 3);
	assert_string_equal(config_suggest_setting("defualt_pool_size", NULL, 0), "default_pool_size");
	assert_string_equal(config_suggest_setting("max_client_con", NULL, 0), "max_client_conn");
	assert_null(config_suggest_setting("frobnicate", NULL, 0));
	const char *const names[] = {"databases", "users"};
	assert_string_equal(config_suggest("database", names, 2), "databases");
	assert_null(config_suggest("zzz", names, 2));
}

static void test_typos_in_database_options_and_env_names_get_suggestions(void **state)
{
	(void)state;
	load_fails("[databases]\nx = host=h pool_mod=session\n",
		   "shoal.ini:2: x: unknown database option \"pool_mod\" (did you mean "
		   "\"pool_mode\"?)");
	setenv("SHOAL_POOL_MOD", "transaction", 1);
	setenv("SHOAL_DATABASES", "x=host=h", 1); /* Shoal's own, not a setting: no warning */
	struct config c;
	load_ok(&c, "[pgbouncer]\n");
	const char *log = read_log();
	assert_non_null(strstr(log, "environment variable SHOAL_POOL_MOD names no setting, "
				    "ignored (did you mean SHOAL_POOL_MODE?)"));
	assert_null(strstr(log, "SHOAL_DATABASES"));
	config_free(&c);
	unsetenv("SHOAL_POOL_MOD");
}

/* ---- ${VAR} expansion ---- */

static void expands_to(const char *in, const char *want)
{
	char *out = NULL, msg[256] = "";
	if (config_expand_vars(in, &out, msg, sizeof(msg)) != SHOAL_OK)
		fail_msg("expanding \"%s\" failed: %s", in, msg);
	assert_string_equal(out, want);
	free(out);
}

static void expand_fails(const char *in, const char *want)
{
	char *out = (char *)1, msg[256] = "";
	assert_int_equal(config_expand_vars(in, &out, msg, sizeof(msg)), SHOAL_ERROR);
	assert_null(out);
	if (!strstr(msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", msg, want);
}

static void test_expand_vars(void **state)
{
	(void)state;
	setenv("SHOAL_T_HOST", "db.example.com", 1);
	setenv("SHOAL_T_EMPTY", "", 1);
	unsetenv("SHOAL_T_UNSET");
	expands_to("plain", "plain");
	expands_to("", "");
	expands_to("host=${SHOAL_T_HOST} port=5432", "host=db.example.com port=5432");
	expands_to("${SHOAL_T_HOST}${SHOAL_T_HOST}", "db.example.comdb.example.com");
	expands_to("${SHOAL_T_UNSET:-fallback}", "fallback");
	expands_to("${SHOAL_T_UNSET:-}", "");
	expands_to("${SHOAL_T_EMPTY:-x}", "x"); /* as in sh: empty takes the default */
	expands_to("[${SHOAL_T_EMPTY}]", "[]");
	expands_to("${SHOAL_T_HOST:-other}", "db.example.com");
	expands_to("${SHOAL_T_UNSET:-a b:c=d}", "a b:c=d");
	expands_to("$1 $$ $x $", "$1 $$ $x $"); /* auth_query's $1 is left alone */
	expands_to("$${SHOAL_T_HOST}", "${SHOAL_T_HOST}");
	expand_fails("${SHOAL_T_UNSET}", "SHOAL_T_UNSET is not set");
	expand_fails("${SHOAL_T_HOST", "missing '}'");
	expand_fails("${SHOAL_T_UNSET:-oops", "missing '}'");
	expand_fails("${}", "invalid variable name");
	expand_fails("${1X}", "invalid variable name");
	expand_fails("${A-B}", "invalid character '-'");
	unsetenv("SHOAL_T_HOST");
	unsetenv("SHOAL_T_EMPTY");
}

static void test_ini_values_expand_with_line_numbers(void **state)
{
	(void)state;
	setenv("SHOAL_T_PORT", "7101", 1);
	setenv("SHOAL_T_PW", "s3cret", 1);
	unsetenv("SHOAL_T_UNSET");
	struct config c;
	load_ok(&c, "[databases]\napp = host=${SHOAL_T_DBHOST:-10.0.0.9} password=${SHOAL_T_PW}\n"
		    "[pgbouncer]\nlisten_port = ${SHOAL_T_PORT}\n"
		    "auth_query = SELECT $1\n");
	assert_int_equal(c.listen_port, 7101);
	assert_string_equal(c.dbs[0].host, "10.0.0.9");
	assert_string_equal(c.dbs[0].password, "s3cret");
	assert_string_equal(c.auth_query, "SELECT $1");
	config_free(&c);
	load_fails("[pgbouncer]\nlisten_port = 1\nlogfile = ${SHOAL_T_UNSET}/x.log\n",
		   "shoal.ini:3: logfile: environment variable SHOAL_T_UNSET is not set");
	unsetenv("SHOAL_T_PORT");
	unsetenv("SHOAL_T_PW");
}

/* ---- DATABASE_URL and SHOAL_DATABASES ---- */

/* [databases] names are found through an index: a later line of a name replaces its entry, "*"
 * catches the rest, a dropped entry is gone and the one moved into its place still found, and
 * a copy (what a console SET changes) finds entries of its own. */
static void test_many_databases_are_found_through_the_index(void **state)
{
	(void)state;
	size_t cap = 64 * 2001, n = 0;
	char *ini = malloc(cap);
	assert_non_null(ini);
	n += (size_t)snprintf(ini + n, cap - n, "[databases]\n");
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(ini + n, cap - n, "d%d = host=h%d\n", i, i);
	snprintf(ini + n, cap - n, "d7 = host=again\n* = host=star\n");
	struct config c;
	load_ok(&c, ini);
	free(ini);
	assert_int_equal(c.ndbs, 2001);
	assert_string_equal(config_find_db(&c, "d1999")->host, "h1999");
	assert_string_equal(config_find_db(&c, "d7")->host, "again");
	assert_string_equal(config_find_db(&c, "d20000")->host, "star");
	config_drop_db(&c, "d0"); /* the last entry ("*") moves into its place */
	assert_string_equal(config_find_db(&c, "d0")->host, "star");
	assert_string_equal(config_find_db(&c, "d1999")->host, "h1999");
	struct config *cp = config_copy(&c);
	const struct db_entry *d = config_find_db(cp, "d1234");
	assert_true(d >= cp->dbs && d < cp->dbs + cp->ndbs);
	assert_string_equal(d->host, "h1234");
	config_free(&c);
	assert_string_equal(config_find_db(cp, "d42")->host, "h42");
	config_free(cp);
	free(cp);
}

static void test_database_url_without_a_file(void **state)
{
	(void)state;
	struct config c;
	char err[512] = "";
	setenv("DATABASE_URL",
	       "postgres://alice:p%40ss@ep-x.neon.tech:6543/neondb?sslmode=require&"
	       "channel_binding=require&application_name=web",
	       1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(c.ndbs, 2);
	const struct db_entry *d = config_find_db(&c, "neondb");
	assert_non_null(d);
	assert_string_equal(d->name, "neondb");
	assert_string_equal(d->host, "ep-x.neon.tech");
	assert_int_equal(d->port, 6543);
	assert_string_equal(d->dbname, "neondb");
	assert_string_equal(d->user, "alice");
	assert_string_equal(d->password, "p@ss");
	assert_string_equal(d->application_name, "web");
	d = config_find_db(&c, "other"); /* "*": the same server, the client's database name */
	assert_string_equal(d->name, "*");
	assert_string_equal(d->host, "ep-x.neon.tech");
	assert_null(d->dbname);
	assert_int_equal(c.server_tls_sslmode, TLS_REQUIRE);
	assert_non_null(strstr(read_log(), "channel_binding=require is a client option"));
	config_free(&c);
	/* DATABASE_URL is the application's too: its options for other software are ignored */
	setenv("DATABASE_URL",
	       "postgres://u@h/db?schema=public&pgbouncer=true&connection_limit=5&pooling=true&"
	       "pool_size=4",
	       1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(config_find_db(&c, "db")->pool_size, 4);
	assert_non_null(strstr(read_log(), "parameter \"schema=public\" is not for Shoal"));
	assert_non_null(strstr(read_log(), "parameter \"connection_limit=5\" is not for Shoal"));
	config_free(&c);
	/* a weaker sslmode does not lower the setting; no dbname: only "*" */
	setenv("DATABASE_URL", "postgresql://h?sslmode=disable", 1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(c.ndbs, 1);
	assert_string_equal(c.dbs[0].name, "*");
	assert_int_equal(c.server_tls_sslmode, TLS_PREFER);
	config_free(&c);
	/* with a file, DATABASE_URL is the application's business, not Shoal's */
	load_ok(&c, "[databases]\nx = host=h\n");
	assert_int_equal(c.ndbs, 1);
	config_free(&c);
	setenv("DATABASE_URL", "mysql://h/db", 1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "DATABASE_URL: expected a postgres://"));
	setenv("DATABASE_URL", "postgres://h:99999/db", 1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "DATABASE_URL"));
	assert_non_null(strstr(err, "port"));
	unsetenv("DATABASE_URL");
}

static void test_shoal_databases(void **state)
{
	(void)state;
	struct config c;
	char err[512] = "";
	setenv("SHOAL_DATABASES",
	       "app=postgres://u@a.example:5433/appdb?sslmode=verify-full ; "
	       "reports = host=r.example dbname=rep pool_size=3\n;",
	       1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(c.ndbs, 2); /* no embedded "*" */
	const struct db_entry *d = config_find_db(&c, "app");
	assert_string_equal(d->host, "a.example");
	assert_int_equal(d->port, 5433);
	assert_string_equal(d->dbname, "appdb");
	d = config_find_db(&c, "reports");
	assert_string_equal(d->host, "r.example");
	assert_int_equal(d->pool_size, 3);
	assert_null(config_find_db(&c, "postgres"));
	assert_int_equal(c.server_tls_sslmode, TLS_VERIFY_FULL);
	config_free(&c);
	/* with a file: added, and replacing the file's entry of the same name */
	setenv("SHOAL_DATABASES", "app=host=env.example", 1);
	load_ok(&c, "[databases]\napp = host=file.example\nkeep = host=k\n");
	assert_int_equal(c.ndbs, 2);
	assert_string_equal(config_find_db(&c, "app")->host, "env.example");
	assert_string_equal(config_find_db(&c, "keep")->host, "k");
	config_free(&c);
	setenv("SHOAL_DATABASES", "justaname", 1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "SHOAL_DATABASES: expected name=postgres://"));
	setenv("SHOAL_DATABASES", "a=postgres://h/db?bogus=1", 1);
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "SHOAL_DATABASES: a: unknown database option \"bogus\""));
	unsetenv("SHOAL_DATABASES");
}

static void test_not_implemented_setting_warns_once(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[pgbouncer]\nlog_stats = 0\nlog_pooler_errors = 1\ncancel_wait_timeout = 10\n"
		    "pkt_buf = 4096\n");
	assert_int_equal(c.log_stats, 0);
	const char *log = read_log();
	assert_int_equal(count_substr(log, "\"pkt_buf\" is not needed: Shoal sizes its buffers"), 1);
	assert_null(strstr(log, "has no effect"));
	assert_null(strstr(log, "not implemented"));
	config_free(&c);
}

/* Settings for behaviour Shoal does not have: PgBouncer's default loads in any spelling, any
 * other value is refused with the reason. */
static void test_behaviour_shoal_lacks_refused_unless_default(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[pgbouncer]\nsyslog = off\nscram_iterations = 4096\nauth_ident_file =\n"
		    "server_round_robin = 0\nsyslog_ident = x\nserver_check_delay = 10\n");
	assert_null(strstr(read_log(), "has no effect"));
	config_free(&c);
	load_fails("[pgbouncer]\nsyslog = 1\n",
		   "syslog: \"1\" is not supported: Shoal logs to stderr or logfile");
	load_fails("[pgbouncer]\nscram_iterations = 10000\n", "(only 4096 is accepted)");
	load_fails("[pgbouncer]\nauth_ident_file = /etc/ident\n",
		   "ident maps (hba map=) are not supported");
	load_fails("[pgbouncer]\nresolv_conf = /x\n", "(only an empty value is accepted)");
	load_fails("[pgbouncer]\nlog_pooler_errors = 0\n",
		   "Shoal always logs the errors it sends to clients");
	load_fails("[pgbouncer]\ncancel_wait_timeout = 5\n", "(only 10 is accepted)");
}

static void test_admin_users_and_set_value(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	load_ok(&c, "[pgbouncer]\nadmin_users = alice, bob\nstats_users = carol\n");
	assert_true(config_user_in_list(c.admin_users, "bob"));
	assert_true(config_user_in_list(c.admin_users, "alice"));
	assert_false(config_user_in_list(c.admin_users, "ali"));
	assert_true(config_user_in_list(c.stats_users, "carol"));
	assert_false(config_user_in_list(NULL, "carol"));
	assert_int_equal(config_set_value(&c, "default_pool_size", "7", err, sizeof(err)), SHOAL_OK);
	assert_int_equal(c.default_pool_size, 7);
	assert_int_equal(config_set_value(&c, "default_pool_size", "x", err, sizeof(err)),
			 SHOAL_ERROR);
	assert_int_equal(c.default_pool_size, 7);
	assert_int_equal(config_set_value(&c, "listen_port", "1", err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "restart"));
	assert_int_equal(config_set_value(&c, "nope", "1", err, sizeof(err)), SHOAL_ERROR);
	config_free(&c);
}

/* [peers] in PgBouncer's format, and peer_id: cancel routing across a fleet. */
static void test_peers_section_and_peer_id(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[peers]\n1 = host=10.0.0.1 port=6433\n2 = host=/tmp pool_size=3\n"
		    "1 = host=a port=7000\n[pgbouncer]\npeer_id = 2\n");
	assert_int_equal(c.peer_id, 2);
	assert_int_equal(c.npeers, 2);
	const struct peer_entry *p = config_find_peer(&c, 1);
	assert_non_null(p);
	assert_string_equal(p->host, "a"); /* a later line replaces an earlier one */
	assert_int_equal(p->port, 7000);
	p = config_find_peer(&c, 2);
	assert_string_equal(p->host, "/tmp");
	assert_int_equal(p->port, 6432);
	assert_null(config_find_peer(&c, 3));
	assert_int_equal(count_substr(read_log(), "section [peers]"), 0);
	config_free(&c);
	load_fails("[peers]\n0 = host=a\n", "peer id must be a number from 1 to 16383");
	load_fails("[peers]\n16384 = host=a\n", "peer id must be");
	load_fails("[peers]\nx = host=a\n", "peer id must be");
	load_fails("[peers]\n1 = port=5\n", "a peer needs host=");
	load_fails("[peers]\n1 = host=a port=0\n", "invalid port");
	load_fails("[peers]\n1 = host=a dbname=b\n", "unknown peer parameter \"dbname\"");
	load_fails("[pgbouncer]\npeer_id = 16384\n", "peer_id");
}

static void test_comments_crlf_indent_and_bom(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "\xEF\xBB\xBF[pgbouncer]\r\n"
		    "; a comment\r\n"
		    "# another\r\n"
		    "   listen_port = 7003   \r\n"
		    "\tpool_mode = statement ; inline comment\r\n"
		    "\r\n"
		    "[databases]\r\n"
		    "  db = host=h\r\n");
	assert_int_equal(c.listen_port, 7003);
	assert_int_equal(c.pool_mode, POOL_STATEMENT);
	assert_int_equal(c.ndbs, 1);
	assert_string_equal(c.dbs[0].host, "h");
	config_free(&c);
}

static void test_missing_file_fails(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	assert_int_equal(config_load(&c, tmp_path("nope.ini"), err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "nope.ini"));
	assert_non_null(strstr(err, "No such file"));
}

/* ---- [databases] ---- */

static void test_databases_connstr(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[databases]\n"
		    "db1 = host=10.0.0.1 port=6000 dbname=real user=u password='p w\\'x\\\\'"
		    " pool_size=5 min_pool_size=1 reserve_pool_size=2 max_db_connections=9"
		    " pool_mode=statement application_name=app\n"
		    "db2 = host = /var/run/postgresql   dbname=x\\ y\n"
		    "db3 =\n");
	assert_int_equal(c.ndbs, 3);
	const struct db_entry *d = config_find_db(&c, "db1");
	assert_string_equal(d->name, "db1");
	assert_string_equal(d->host, "10.0.0.1");
	assert_int_equal(d->port, 6000);
	assert_string_equal(d->dbname, "real");
	assert_string_equal(d->user, "u");
	assert_string_equal(d->password, "p w'x\\");
	assert_int_equal(d->pool_size, 5);
	assert_int_equal(d->min_pool_size, 1);
	assert_int_equal(d->reserve_pool_size, 2);
	assert_int_equal(d->max_db_connections, 9);
	assert_int_equal(d->pool_mode, POOL_STATEMENT);
	assert_string_equal(d->application_name, "app");
	d = config_find_db(&c, "db2");
	assert_string_equal(d->host, "/var/run/postgresql");
	assert_string_equal(d->dbname, "x y");
	assert_int_equal(d->port, 5432);
	assert_int_equal(d->pool_size, -1);
	assert_int_equal(d->min_pool_size, -1);
	assert_int_equal(d->reserve_pool_size, -1);
	assert_int_equal(d->max_db_connections, -1);
	assert_int_equal(d->pool_mode, POOL_INHERIT);
	assert_null(d->application_name);
	d = config_find_db(&c, "db3");
	assert_null(d->host);
	assert_null(d->dbname);
	assert_null(config_find_db(&c, "db4")); /* no "*" entry */
	config_free(&c);
}

/* PgBouncer documents reserve_pool as an alias of reserve_pool_size in [databases]; --check
 * prints only the canonical name. */
static void test_databases_reserve_pool_alias(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[databases]\ndb = host=h reserve_pool=3\n");
	assert_int_equal(c.dbs[0].reserve_pool_size, 3);
	char *out = print_config(&c);
	assert_non_null(strstr(out, "reserve_pool_size=3"));
	assert_null(strstr(out, "reserve_pool="));
	free(out);
	config_free(&c);
}

/* [users] reserve_pool_size is kept (the pool's user entry wins, ledger.c) and printed. */
static void test_users_reserve_pool_size(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[users]\nu = reserve_pool_size=4 pool_size=2\nv = pool_size=1\n");
	assert_null(strstr(read_log(), "is accepted for PgBouncer compatibility"));
	assert_int_equal(config_find_user(&c, "u")->reserve_pool_size, 4);
	assert_int_equal(config_find_user(&c, "v")->reserve_pool_size, -1);
	char *out = print_config(&c);
	assert_non_null(strstr(out, "u = pool_size=2 reserve_pool_size=4"));
	free(out);
	config_free(&c);
	load_fails("[users]\nu = reserve_pool_size=-1\n", "reserve_pool_size: -1 is out of range");
}

/* PgBouncer's per-database session defaults are kept (given to clients at login), printed and
 * copied with the entry; a weight= list is copied too (the copy frees its own). */
static void test_databases_session_defaults_kept_and_copied(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[databases]\ndb = host=h,h2 weight=2,1 client_encoding=UTF8 "
		    "datestyle='SQL, DMY' timezone=UTC connect_query='SELECT 1'\n");
	assert_null(strstr(read_log(), "is accepted for PgBouncer compatibility"));
	assert_string_equal(c.dbs[0].client_encoding, "UTF8");
	assert_string_equal(c.dbs[0].datestyle, "SQL, DMY");
	assert_string_equal(c.dbs[0].timezone, "UTC");
	assert_string_equal(c.dbs[0].connect_query, "SELECT 1");
	assert_true(config_is_db_key("timezone", 8));
	char *out = print_config(&c);
	assert_non_null(strstr(out, "timezone=UTC"));
	assert_non_null(strstr(out, "datestyle='SQL, DMY'"));
	free(out);
	struct config *cp = config_copy(&c);
	config_free(&c);
	assert_string_equal(cp->dbs[0].timezone, "UTC");
	assert_string_equal(cp->dbs[0].client_encoding, "UTF8");
	assert_string_equal(cp->dbs[0].datestyle, "SQL, DMY");
	assert_string_equal(cp->dbs[0].weight, "2,1");
	config_free(cp);
	free(cp);
}

static void test_databases_errors(void **state)
{
	(void)state;
	load_fails("[pgbouncer]\nlisten_port=1\n[databases]\ndb = bogus=1\n",
		   "shoal.ini:4: db: unknown database option \"bogus\"");
	load_fails("[databases]\ndb = port=65536\n",
		   "shoal.ini:2: db: port: 65536 is out of range");
	load_fails("[databases]\ndb = port=0\n", "port: 0 is out of range");
	load_fails("[databases]\ndb = pool_size=-1\n", "pool_size: -1 is out of range");
	load_fails("[databases]\ndb = pool_size=many\n", "pool_size: invalid number");
	load_fails("[databases]\ndb = pool_mode=sometimes\n", "pool_mode: invalid value");
	load_fails("[databases]\ndb = host='unterminated\n", "unterminated quoted string");
	load_fails("[databases]\ndb = host\n", "missing \"=\" after \"host\"");
}

static void test_later_database_definition_replaces_earlier(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[databases]\ndb = host=a password=x\nother = host=o\ndb = host=b\n");
	assert_int_equal(c.ndbs, 2);
	const struct db_entry *d = config_find_db(&c, "db");
	assert_string_equal(d->host, "b");
	assert_null(d->password);
	config_free(&c);
}

static void test_find_db_falls_back_to_star(void **state)
{
	(void)state;
	struct config c;
	load_ok(&c, "[databases]\n* = host=fallback\nexact = host=e\n");
	assert_string_equal(config_find_db(&c, "exact")->host, "e");
	assert_string_equal(config_find_db(&c, "other")->host, "fallback");
	assert_string_equal(config_find_db(&c, "EXACT")->host, "fallback");
	config_free(&c);
	struct config empty = {0};
	assert_null(config_find_db(&empty, "x"));
	assert_null(config_find_user(&empty, "x"));
	assert_null(config_find_secret(&empty, "x"));
}

static struct db_entry parse_db_ok(const char *value)
{
	struct db_entry d = {0};
	char err[256] = "";
	if (config_parse_db(value, &d, err, sizeof(err)) != SHOAL_OK)
		fail_msg("config_parse_db(\"%s\"): %s", value, err);
	return d;
}

static void db_free(struct db_entry *d)
{
	free(d->host);
	free(d->port_list);
	free(d->dbname);
	free(d->user);
	free(d->password);
	free(d->application_name);
}

static void test_parse_db_host_list(void **state)
{
	(void)state;
	struct host_addr h[SHOAL_MAX_HOSTS];
	int n = -1;
	char err[256] = "";
	/* One port for every host, as PgBouncer writes it; round-robin and any by default. */
	struct db_entry d = parse_db_ok("host=10.0.0.1,10.0.0.2,db3 port=6000 dbname=app");
	assert_int_equal(d.load_balance_hosts, LB_ROUND_ROBIN);
	assert_int_equal(d.target_session_attrs, TSA_ANY);
	assert_null(d.port_list);
	assert_int_equal(config_host_list(&d, h, SHOAL_MAX_HOSTS, &n, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(n, 3);
	assert_string_equal(h[0].host, "10.0.0.1");
	assert_string_equal(h[2].host, "db3");
	assert_int_equal(h[1].port, 6000);
	assert_int_equal(h[2].port, 6000);
	db_free(&d);
	/* One port per host, and the modes. */
	d = parse_db_ok("host=a,b,c port=5432,5433,5434 load_balance_hosts=least-connections "
			"target_session_attrs=prefer-standby");
	assert_int_equal(d.port, 5432);
	assert_string_equal(d.port_list, "5432,5433,5434");
	assert_int_equal(d.load_balance_hosts, LB_LEAST_CONN);
	assert_int_equal(d.target_session_attrs, TSA_PREFER_STANDBY);
	assert_int_equal(config_host_list(&d, h, SHOAL_MAX_HOSTS, &n, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(n, 3);
	assert_string_equal(h[1].host, "b");
	assert_int_equal(h[1].port, 5433);
	assert_int_equal(h[2].port, 5434);
	db_free(&d);
	/* A single host is a list of one; no host= is none (the default host). */
	d = parse_db_ok("host=/var/run/postgresql load_balance_hosts=disable "
			"target_session_attrs=read-write");
	assert_int_equal(config_host_list(&d, h, SHOAL_MAX_HOSTS, &n, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].port, 5432);
	assert_int_equal(d.load_balance_hosts, LB_DISABLE);
	assert_int_equal(d.target_session_attrs, TSA_READ_WRITE);
	db_free(&d);
	d = parse_db_ok("dbname=x");
	assert_int_equal(config_host_list(&d, h, SHOAL_MAX_HOSTS, &n, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(n, 0);
	db_free(&d);
	const char *names[] = {"any", "read-write", "read-only", "primary", "standby",
			       "prefer-standby"};
	for (int i = 0; i < 6; i++)
		assert_string_equal(config_tsa_name(i), names[i]);
	assert_string_equal(config_lb_name(LB_ROUND_ROBIN), "round-robin");
}

static void test_parse_db_url(void **state)
{
	(void)state;
	struct db_entry d =
	    parse_db_ok("postgres://us%40er:p%3Ass%2f@db.example.com:5433/my%20db"
			"?application_name=a%26b&pool_size=3&pool_mode=transaction");
	assert_string_equal(d.user, "us@er");
	assert_string_equal(d.password, "p:ss/");
	assert_string_equal(d.host, "db.example.com");
	assert_int_equal(d.port, 5433);
	assert_string_equal(d.dbname, "my db");
	assert_string_equal(d.application_name, "a&b");
	assert_int_equal(d.pool_size, 3);
	assert_int_equal(d.pool_mode, POOL_TRANSACTION);
	db_free(&d);

	d = parse_db_ok("postgresql://[::1]:6000/db");
	assert_string_equal(d.host, "::1");
	assert_int_equal(d.port, 6000);
	assert_string_equal(d.dbname, "db");
	assert_null(d.user);
	db_free(&d);

	d = parse_db_ok("postgres://%2Fvar%2Frun%2Fpostgresql/db");
	assert_string_equal(d.host, "/var/run/postgresql");
	db_free(&d);

	d = parse_db_ok("postgres:///only_db");
	assert_null(d.host);
	assert_int_equal(d.port, 5432);
	assert_string_equal(d.dbname, "only_db");
	db_free(&d);

	d = parse_db_ok("postgres://user@host");
	assert_string_equal(d.user, "user");
	assert_string_equal(d.host, "host");
	assert_null(d.password);
	assert_null(d.dbname);
	db_free(&d);
}

static void test_parse_db_errors(void **state)
{
	(void)state;
	static const struct {
		const char *value, *want;
	} bad[] = {
	    {"postgres://h/%zz", "dbname: invalid percent-encoding"},
	    {"postgres://h/a%00b", "invalid percent-encoding"},
	    {"postgres://h/a%4", "invalid percent-encoding"},
	    {"postgres://h:99999/db", "port: 99999 is out of range"},
	    {"postgres://h:/db", "port: invalid number"},
	    {"postgres://h/db?bogus=1", "unknown database option \"bogus\""},
	    {"postgres://h/db?noeq", "missing \"=\" in URL parameter"},
	    {"postgres://[::1/db", "malformed IPv6"},
	    {"host=a port=x", "port: invalid number"},
	    {"host a", "missing \"=\" after \"host\""},
	    {"password='abc", "unterminated quoted string"},
	    {"host=a,b,c port=1,2", "port: 2 ports for 3 hosts"},
	    {"host=a,,c", "host: empty or too long element 2"},
	    {"host=a,b port=5432,0", "port: 0 is out of range"},
	    {"host=a,b port=5432,", "port: invalid number"},
	    {"host=a load_balance_hosts=sticky", "invalid value \"sticky\""},
	    {"host=a target_session_attrs=master", "invalid value \"master\""},
	    {"host=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "more than 16 hosts"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct db_entry d = {0};
		char err[256] = "";
		assert_int_equal(config_parse_db(bad[i].value, &d, err, sizeof(err)), SHOAL_ERROR);
		if (!strstr(err, bad[i].want))
			fail_msg("\"%s\": error \"%s\" lacks \"%s\"", bad[i].value, err,
				 bad[i].want);
		assert_null(d.host); /* partial results are freed */
	}
}

static void test_long_database_line(void **state)
{
	(void)state;
	char app[401], text[1024];
	memset(app, 'a', sizeof(app) - 1);
	app[sizeof(app) - 1] = '\0';
	snprintf(text, sizeof(text),
		 "[databases]\nlong = host=h application_name=%s password=x ; comment\n"
		 "after = host=after\n",
		 app);
	struct config c;
	load_ok(&c, text);
	assert_int_equal(c.ndbs, 2);
	assert_string_equal(c.dbs[0].application_name, app);
	assert_string_equal(c.dbs[0].password, "x");
	assert_string_equal(c.dbs[1].host, "after");
	config_free(&c);
}

/* ---- [users] ---- */

static void test_users_section(void **state)
{
	(void)state;
	struct config c, c2;
	load_ok(&c, "[users]\nalice = pool_mode=session, pool_size=5, max_user_connections=10\n"
		    "bob = pool_size=2\ncarol = max_user_client_connections=3\n");
	assert_int_equal(c.nusers, 3);
	const struct user_entry *u = config_find_user(&c, "alice");
	assert_int_equal(u->pool_mode, POOL_SESSION);
	assert_int_equal(u->pool_size, 5);
	assert_int_equal(u->max_user_connections, 10);
	u = config_find_user(&c, "bob");
	assert_int_equal(u->pool_mode, POOL_INHERIT);
	assert_int_equal(u->pool_size, 2);
	assert_int_equal(u->max_user_connections, -1);
	assert_int_equal(u->max_user_client_connections, -1);
	assert_int_equal(config_find_user(&c, "carol")->max_user_client_connections, 3);
	load_ok(&c2, "[users]\nerin = query_timeout=1.5 client_idle_timeout=2min\n");
	assert_int_equal(config_find_user(&c2, "erin")->query_timeout, 1500000);
	assert_int_equal(config_find_user(&c2, "erin")->client_idle_timeout, 120000000);
	assert_int_equal(config_find_user(&c2, "erin")->transaction_timeout, 0);
	config_free(&c2);
	assert_null(config_find_user(&c, "dave"));
	config_free(&c);
	load_fails("[users]\nalice = pool_size=x\n",
		   "shoal.ini:2: alice: pool_size: invalid number");
	load_fails("[users]\nalice = host=x\n", "unknown user option \"host\"");
}

/* ---- %include ---- */

static void test_include_is_relative_to_the_including_file(void **state)
{
	(void)state;
	write_file("inc/one.ini", "listen_port = 7100\n%include ../two.ini\n");
	write_file("two.ini", "[databases]\nfromtwo = host=two\n");
	struct config c;
	load_ok(&c, "[pgbouncer]\n%include inc/one.ini\n[pgbouncer]\ndefault_pool_size = 3\n");
	assert_int_equal(c.listen_port, 7100);
	assert_int_equal(c.default_pool_size, 3);
	assert_string_equal(config_find_db(&c, "fromtwo")->host, "two");
	config_free(&c);
}

static void test_include_errors_name_the_right_file_and_line(void **state)
{
	(void)state;
	write_file("bad.ini", "\n; comment\nlisten_port = nope\n");
	load_fails("[pgbouncer]\n%include bad.ini\n", "bad.ini:3: listen_port: invalid number");
	load_fails("[pgbouncer]\n\n%include missing.ini\n", "shoal.ini:3: %include: cannot open");
	load_fails("[pgbouncer]\n%include\n", "shoal.ini:2: %include: missing file name");
	write_file("loop.ini", "%include loop.ini\n");
	load_fails("%include loop.ini\n", "nested more than 10 deep");
	write_file("bad2.ini", "[pgbouncer]\nlisten_port = 1\n");
	load_fails("%include bad2.ini\nbroken line\n", "shoal.ini:2: syntax error");
}

static void test_include_nesting_up_to_ten(void **state)
{
	(void)state;
	char name[32], text[64];
	for (int i = 1; i <= 10; i++) {
		snprintf(name, sizeof(name), "n%d.ini", i);
		if (i < 10)
			snprintf(text, sizeof(text), "%%include n%d.ini\n", i + 1);
		else
			snprintf(text, sizeof(text), "listen_port = 7010\n");
		write_file(name, text);
	}
	struct config c;
	load_ok(&c, "[pgbouncer]\n%include n1.ini\n");
	assert_int_equal(c.listen_port, 7010);
	config_free(&c);
}

/* ---- environment ---- */

static void test_env_overrides_file(void **state)
{
	(void)state;
	setenv("SHOAL_DEFAULT_POOL_SIZE", "42", 1);
	setenv("SHOAL_POOL_MODE", "transaction", 1);
	setenv("SHOAL_SERVER_LIFETIME", "10min", 1);
	setenv("SHOAL_LISTEN_ADDR", "*", 1);
	struct config c;
	load_ok(&c, "[pgbouncer]\ndefault_pool_size = 7\npool_mode = session\n");
	assert_int_equal(c.default_pool_size, 42);
	assert_int_equal(c.pool_mode, POOL_TRANSACTION);
	assert_int_equal(c.server_lifetime, 600 * USEC_PER_SEC);
	assert_string_equal(c.listen_addr, "*");
	config_free(&c);
	char err[256];
	assert_int_equal(config_load(&c, NULL, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(c.default_pool_size, 42);
	config_free(&c);
	unsetenv("SHOAL_DEFAULT_POOL_SIZE");
	unsetenv("SHOAL_POOL_MODE");
	unsetenv("SHOAL_SERVER_LIFETIME");
	unsetenv("SHOAL_LISTEN_ADDR");
}

static void test_bad_env_value_names_the_variable(void **state)
{
	(void)state;
	setenv("SHOAL_LISTEN_PORT", "abc", 1);
	load_fails("[pgbouncer]\n", "SHOAL_LISTEN_PORT: invalid number \"abc\"");
	unsetenv("SHOAL_LISTEN_PORT");
}

/* ---- auth_file ---- */

static void test_auth_file(void **state)
{
	(void)state;
	const char *userlist =
	    write_file("userlist.txt", "; comment\n"
				       "# another\n"
				       "\n"
				       "\"alice\" \"secret\"\n"
				       "  \"bo\"\"b\"   \"md5abcdef\" extra fields \"x\"\n"
				       "\"carol\" \"SCRAM-SHA-256$4096:c2FsdA==$a:b\"\n"
				       "\"empty\" \"\"\n"
				       "\"alice\" \"newer\"\n");
	char text[PATH_MAX + 64];
	snprintf(text, sizeof(text), "[pgbouncer]\nauth_file = %s\n", userlist);
	struct config c;
	load_ok(&c, text);
	assert_string_equal(config_find_secret(&c, "alice"), "newer");
	assert_string_equal(config_find_secret(&c, "bo\"b"), "md5abcdef");
	assert_string_equal(config_find_secret(&c, "carol"), "SCRAM-SHA-256$4096:c2FsdA==$a:b");
	assert_string_equal(config_find_secret(&c, "empty"), "");
	assert_null(config_find_secret(&c, "dave"));
	config_free(&c);
}

static void test_auth_file_errors(void **state)
{
	(void)state;
	char text[PATH_MAX + 64];
	snprintf(text, sizeof(text), "[pgbouncer]\nauth_file = %s\n", tmp_path("absent.txt"));
	load_fails(text, "auth_file");
	load_fails(text, "No such file");
	const char *bad = write_file("bad_userlist.txt", "\"ok\" \"x\"\n\"unterminated \"x\n");
	snprintf(text, sizeof(text), "[pgbouncer]\nauth_file = %s\n", bad);
	load_fails(text, "bad_userlist.txt:2: malformed line");
	bad = write_file("bad_userlist2.txt", "alice secret\n");
	snprintf(text, sizeof(text), "[pgbouncer]\nauth_file = %s\n", bad);
	load_fails(text, "bad_userlist2.txt:1: malformed line");
	bad = write_file("bad_userlist3.txt", "\"alice\"\n");
	snprintf(text, sizeof(text), "[pgbouncer]\nauth_file = %s\n", bad);
	load_fails(text, "bad_userlist3.txt:1: malformed line");
}

/* ---- printing and helpers ---- */

static void test_print_reads_back(void **state)
{
	(void)state;
	struct config c, again;
	load_ok(&c, "[pgbouncer]\nserver_lifetime = 1.25\nunix_socket_mode = 0700\n"
		    "auth_type = any\nlogfile = /tmp/x.log\n"
		    "[databases]\n* = port=5433\n"
		    "db = host=h,i port=5,6 load_balance_hosts=disable target_session_attrs=standby "
		    "dbname='a b' user=u password=topsecret pool_size=4 "
		    "pool_mode=transaction application_name='it\\'s'\n"
		    "[users]\nalice = pool_mode=statement max_user_connections=2\n"
		    "[peers]\n3 = host=p port=7003\n");
	char *text = print_config(&c);
	assert_non_null(strstr(text, "\n[peers]\n3 = host=p port=7003\n"));
	assert_non_null(strstr(text, "[shoal]\nlisten_addr = 127.0.0.1\n"));
	assert_non_null(strstr(text, "\nserver_lifetime = 1.25\n"));
	assert_non_null(strstr(text, "\nserver_idle_timeout = 600\n"));
	assert_non_null(strstr(text, "\nunix_socket_mode = 0700\n"));
	assert_non_null(strstr(text, "\nauth_type = any\n"));
	assert_non_null(strstr(text, "\nauth_file = \n"));
	assert_non_null(strstr(text, "\nmax_packet_size = 2147483647\n"));
	assert_non_null(strstr(text, "password=****"));
	assert_null(strstr(text, "topsecret"));
	assert_non_null(strstr(text, "\nalice = pool_mode=statement max_user_connections=2\n"));
	assert_true(strstr(text, "listen_addr =") < strstr(text, "shutdown_timeout ="));
	assert_true(strstr(text, "shutdown_timeout =") < strstr(text, "[databases]"));

	load_ok(&again, text);
	assert_int_equal(again.server_lifetime, 1250000);
	assert_int_equal(again.unix_socket_mode, 0700);
	assert_int_equal(again.ndbs, 2);
	assert_int_equal(again.npeers, 1);
	assert_int_equal(config_find_peer(&again, 3)->port, 7003);
	const struct db_entry *d = config_find_db(&again, "db");
	assert_string_equal(d->host, "h,i");
	assert_string_equal(d->port_list, "5,6");
	assert_int_equal(d->load_balance_hosts, LB_DISABLE);
	assert_int_equal(d->target_session_attrs, TSA_STANDBY);
	assert_string_equal(d->dbname, "a b");
	assert_string_equal(d->password, "****");
	assert_string_equal(d->application_name, "it's");
	assert_int_equal(d->pool_mode, POOL_TRANSACTION);
	assert_int_equal(d->pool_size, 4);
	assert_int_equal(config_find_db(&again, "zzz")->port, 5433);
	assert_int_equal(config_find_user(&again, "alice")->max_user_connections, 2);
	char *text2 = print_config(&again);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	config_free(&c);
	config_free(&again);
}

static void test_names_and_default_host(void **state)
{
	(void)state;
	assert_string_equal(config_pool_mode_name(POOL_SESSION), "session");
	assert_string_equal(config_pool_mode_name(POOL_TRANSACTION), "transaction");
	assert_string_equal(config_pool_mode_name(POOL_STATEMENT), "statement");
	assert_string_equal(config_pool_mode_name(POOL_INHERIT), "inherit");
	assert_string_equal(config_auth_type_name(AUTH_TRUST), "trust");
	assert_string_equal(config_auth_type_name(AUTH_SCRAM), "scram-sha-256");
	assert_string_equal(config_auth_type_name(AUTH_CERT), "cert");
	assert_string_equal(config_auth_type_name(99), "unknown");
	assert_string_equal(config_default_host(1), "127.0.0.1");
	const char *want = access("/var/run/postgresql/.s.PGSQL.5432", F_OK) == 0
			       ? "/var/run/postgresql"
			       : "127.0.0.1";
	assert_string_equal(config_default_host(5432), want);
}

static void test_free_is_safe_twice_and_on_zero(void **state)
{
	(void)state;
	struct config c = {0};
	config_free(&c);
	load_ok(&c, "[databases]\na = host=x\n[users]\nu = pool_size=1\n");
	config_free(&c);
	config_free(&c);
	assert_null(c.dbs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup(f, test_setup)
	    T(test_defaults_are_pgbouncers),
	    T(test_embedded_default_forwards_everything_in_transaction_mode),
	    T(test_shoal_section_and_case_insensitive_keys),
	    T(test_value_types),
	    T(test_bool_spellings),
	    T(test_parse_duration),
	    T(test_invalid_values_fail_with_file_line_and_key),
	    T(test_syntax_error_names_the_line),
	    T(test_unknown_key_warns_once_when_not_strict),
	    T(test_unknown_keys_fail_with_every_line_and_a_suggestion),
	    T(test_broken_section_header_blames_its_line),
	    T(test_edit_distance_and_suggestions),
	    T(test_typos_in_database_options_and_env_names_get_suggestions),
	    T(test_expand_vars),
	    T(test_ini_values_expand_with_line_numbers),
	    T(test_many_databases_are_found_through_the_index),
	    T(test_database_url_without_a_file),
	    T(test_shoal_databases),
	    T(test_not_implemented_setting_warns_once),
	    T(test_behaviour_shoal_lacks_refused_unless_default),
	    T(test_admin_users_and_set_value),
	    T(test_peers_section_and_peer_id),
	    T(test_comments_crlf_indent_and_bom),
	    T(test_missing_file_fails),
	    T(test_databases_connstr),
	    T(test_databases_reserve_pool_alias),
	    T(test_databases_session_defaults_kept_and_copied),
	    T(test_users_reserve_pool_size),
	    T(test_databases_errors),
	    T(test_later_database_definition_replaces_earlier),
	    T(test_find_db_falls_back_to_star),
	    T(test_parse_db_url),
	    T(test_parse_db_host_list),
	    T(test_parse_db_errors),
	    T(test_long_database_line),
	    T(test_users_section),
	    T(test_include_is_relative_to_the_including_file),
	    T(test_include_errors_name_the_right_file_and_line),
	    T(test_include_nesting_up_to_ten),
	    T(test_env_overrides_file),
	    T(test_bad_env_value_names_the_variable),
	    T(test_auth_file),
	    T(test_auth_file_errors),
	    T(test_print_reads_back),
	    T(test_names_and_default_host),
	    T(test_free_is_safe_twice_and_on_zero),
#undef T
	};
	return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
