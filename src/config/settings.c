/* settings.c: the settings table: every [pgbouncer]/[shoal] setting with its type, default,
 * bounds and whether a reload may change it; it drives parsing, defaults, env overrides,
 * SHOW CONFIG and SET. Add a setting here (and its field in config.h). */
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

/* ---- names of enumerated values ---- */


/* clang-format off */
const struct enum_name pool_mode_names[] = {
	{"session", POOL_SESSION},
	{"transaction", POOL_TRANSACTION},
	{"statement", POOL_STATEMENT},
	{NULL, 0},
};

const struct enum_name auth_type_names[] = {
	{"trust", AUTH_TRUST}, {"plain", AUTH_PLAIN}, {"md5", AUTH_MD5},
	{"scram-sha-256", AUTH_SCRAM}, {"any", AUTH_ANY}, {"hba", AUTH_HBA},
	{"cert", AUTH_CERT}, {NULL, 0},
};

static const struct enum_name tls_mode_names[] = {
	{"disable", TLS_DISABLE}, {"allow", TLS_ALLOW}, {"prefer", TLS_PREFER},
	{"require", TLS_REQUIRE}, {"verify-ca", TLS_VERIFY_CA}, {"verify-full", TLS_VERIFY_FULL},
	{NULL, 0},
};

static const struct enum_name tls_dhe_names[] = {
	{"none", TLS_DHE_NONE}, {"auto", TLS_DHE_AUTO}, {"legacy", TLS_DHE_LEGACY}, {NULL, 0},
};

const struct enum_name lb_names[] = {
	{"round-robin", LB_ROUND_ROBIN}, {"disable", LB_DISABLE},
	{"least-connections", LB_LEAST_CONN}, {"random", LB_RANDOM}, {NULL, 0},
};

static const struct enum_name pool_scope_names[] = {
	{"instance", 0}, {"fleet", 1}, {NULL, 0},
};

const struct enum_name tsa_names[] = {
	{"any", TSA_ANY}, {"read-write", TSA_READ_WRITE}, {"read-only", TSA_READ_ONLY},
	{"primary", TSA_PRIMARY}, {"standby", TSA_STANDBY}, {"prefer-standby", TSA_PREFER_STANDBY},
	{NULL, 0},
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

const struct setting settings[] = {
	S_STR(listen_addr, "127.0.0.1", false),
	S_INT(listen_port, "6432", false, 1, 65535),
	S_STR(unix_socket_dir, "/tmp", false),
	S_OCTAL(unix_socket_mode, "0777", false),
	S_STR(unix_socket_group, "", false),
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
	S_INT(max_db_client_connections, "0", true, 0, INT_MAX),
	S_INT(max_user_client_connections, "0", true, 0, INT_MAX),
	S_STR(server_reset_query, "DISCARD ALL", true),
	S_BOOL(server_reset_query_always, "0", true),
	S_DUR(server_connect_timeout, "15", true),
	S_DUR(server_login_retry, "15", true),
	S_DUR(host_check_interval, "0", true),
	S_DUR(host_turn_wait, "0", true),
	S_STR(zone, "", true),
	S_INT(max_host_connections, "0", true, 0, INT_MAX),
	S_DUR(host_check_timeout, "3", true),
	S_DUR(max_replica_lag, "0", true),
	S_INT64(max_replica_lag_bytes, "0", true, 0, INT64_MAX),
	S_BOOL(read_your_writes, "0", true),
	S_DUR(read_your_writes_window, "10", true),
	S_DUR(server_idle_timeout, "600", true),
	S_DUR(server_lifetime, "3600", true),
	S_DUR(query_timeout, "0", true),
	S_DUR(query_wait_timeout, "120", true),
	S_DUR(primary_wait_timeout, "0", true),
	S_DUR(query_wait_notify, "5", true),
	S_STR(ignore_startup_parameters, "", true),
	S_BOOL(server_fast_close, "0", true),
	S_DUR(client_idle_timeout, "0", true),
	S_DUR(client_login_timeout, "60", true),
	S_DUR(client_startup_timeout, "10", true),
	S_INT(max_login_clients, "100", true, 0, INT_MAX),
	S_INT(admin_reserved_conn, "3", true, 0, 1000),
	S_DUR(autodb_idle_timeout, "3600", true),
	S_INT(max_pools, "10000", true, 0, INT_MAX),
	S_INT(auth_failure_limit, "0", true, 0, INT_MAX),
	S_DUR(auth_failure_window, "60", true),
	S_PATH(user, false),
	S_BOOL(allow_root, "0", false),
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
	S_STR(handoff_socket, "", false),
	S_STR(peer_discovery_dns, "", true),
	S_INT(fleet_size, "0", false, 0, 16383),
	S_INT(server_max_connections, "0", false, 0, INT_MAX),
	S_ENUM(pool_size_scope, pool_scope_names, "instance", true),
	S_STR(track_extra_parameters, "search_path, default_transaction_read_only, IntervalStyle",
	      true),
	S_BOOL(tcp_keepalive, "1", true),
	S_INT(tcp_keepcnt, "0", true, 0, 127),
	S_INT(tcp_keepidle, "0", true, 0, 32767),
	S_INT(tcp_keepintvl, "0", true, 0, 32767),
	S_INT(tcp_user_timeout, "0", true, 0, INT_MAX),
	S_INT(listen_backlog, "1024", false, 1, 65535),
	S_INT(tcp_socket_buffer, "0", true, 0, INT_MAX),
	S_INT(tcp_defer_accept, "0", false, 0, INT_MAX),
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
	S_STR(client_tls13_ciphers, "", true),
	S_STR(client_tls_ecdhcurve, "auto", true),
	S_ENUM(client_tls_dheparams, tls_dhe_names, "auto", true),
	S_ENUM(server_tls_sslmode, tls_mode_names, "prefer", true),
	S_PATH(server_tls_ca_file, true),
	S_PATH(server_tls_key_file, true),
	S_PATH(server_tls_cert_file, true),
	S_STR(server_tls_protocols, "secure", true),
	S_STR(server_tls_ciphers, "default", true),
	S_STR(server_tls13_ciphers, "", true),
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
	S_BOOL(log_stats, "1", true),
	S_INT(max_prepared_statements, "200", true, 0, INT_MAX),
	S_INT64(max_prepared_statement_bytes, "1048576", true, 1, INT64_MAX),
	S_INT64(max_client_prepared_bytes, "16777216", true, 0, INT64_MAX),
	S_INT64(max_client_buffer_bytes, "0", true, 0, INT64_MAX),
	S_BOOL(strict_config, "1", true),
};
/* clang-format on */

const size_t n_settings = ARRAY_LEN(settings);

const struct setting *find_setting(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
		if (strcasecmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
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
