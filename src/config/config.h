/* config.h: Shoal's settings. PgBouncer's pgbouncer.ini format ([databases], [users],
 * [pgbouncer] or [shoal], %include), SHOAL_<NAME> environment overrides, the embedded default
 * used when no file is given, and the auth_file (userlist.txt). One declarative table drives
 * parsing, defaults, reload rules and printing. */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include <stdio.h>

#include "common.h"
#include "hmap.h"

enum pool_mode {
	POOL_INHERIT = -1, /* per-database/per-user: use the next level's mode */
	POOL_SESSION = 0,
	POOL_TRANSACTION = 1,
	POOL_STATEMENT = 2,
};

enum auth_type {
	AUTH_TRUST = 0,
	AUTH_PLAIN,
	AUTH_MD5,
	AUTH_SCRAM,
	AUTH_ANY, /* PgBouncer's "any": accept without a password */
	AUTH_HBA, /* parsed, not implemented yet: login fails with a clear error */
	AUTH_CERT, /* parsed, not implemented yet: login fails with a clear error */
};

/* client_tls_sslmode / server_tls_sslmode, in libpq's order of strictness. */
struct hba;

enum tls_mode {
	TLS_DISABLE = 0,
	TLS_ALLOW,
	TLS_PREFER,
	TLS_REQUIRE,
	TLS_VERIFY_CA,
	TLS_VERIFY_FULL,
};

/* client_tls_dheparams: PgBouncer's values (legacy, 1024-bit DH, is refused by tls.c). */
enum tls_dhe { TLS_DHE_NONE = 0, TLS_DHE_AUTO, TLS_DHE_LEGACY };

/* load_balance_hosts (PgBouncer 1.24, per database): which host of a host list a new server
 * connection tries first. least-connections and random are Shoal's; weight= weighs all three. */
enum lb_hosts {
	LB_ROUND_ROBIN = 0,
	LB_DISABLE,     /* the first usable host in list order */
	LB_LEAST_CONN,  /* the usable host with the fewest server connections */
	LB_RANDOM,      /* a usable host drawn at random */
};

/* target_session_attrs, libpq's values: the role a server must have to be used. */
enum tsa {
	TSA_ANY = 0,
	TSA_READ_WRITE,
	TSA_READ_ONLY,
	TSA_PRIMARY,
	TSA_STANDBY,
	TSA_PREFER_STANDBY,
};

#define SHOAL_MAX_HOSTS 16 /* hosts in one database entry's host= list */

/* One [databases] entry. Unset integers are -1 ("inherit the global setting"). */
struct db_entry {
	char *name;     /* the key clients connect to; "*" is the fallback entry */
	char *host;     /* host name, IP address, or a directory (starts with '/') for a Unix socket;
			 * or a comma-separated list of those (config_host_list); NULL: the default
			 * (see config_default_host) */
	int port;       /* default 5432; with a port list, its first port */
	char *port_list; /* port=5432,5433: the whole list; NULL when one port was given */
	char *weight;	 /* weight=3,1,1: one per host (or one for all); NULL: all 1 */
	char *zone;	 /* zone=a,b,b: one per host (or one for all); NULL: none */
	int load_balance_hosts;   /* enum lb_hosts */
	int target_session_attrs; /* enum tsa */
	int read_write_split;     /* non-zero: one alias, reads to standbys (docs/replicas.md) */
	char *dbname;   /* server database; NULL: same as the client's database name */
	char *user;     /* forced server user; NULL: the client's user */
	char *password; /* password for the server login; NULL: from auth_file */
	int pool_size;
	int min_pool_size;
	int reserve_pool_size;
	int max_db_connections;
	int max_db_client_connections; /* -1 or 0: the global setting */
	usec_t server_lifetime;         /* 0: the global setting */
	int pool_mode; /* enum pool_mode, POOL_INHERIT when unset */
	char *application_name; /* NULL when unset */
	/* PgBouncer's per-database session defaults, given to a client that did not send its own
	 * (as a startup parameter or in options=-c); NULL when unset */
	char *client_encoding, *datestyle, *timezone;
	char *auth_user, *auth_query, *auth_dbname; /* per-database overrides; NULL when unset */
	char *connect_query; /* run on each new server after login; NULL when unset */
};

/* One [peers] entry (PgBouncer's format: "1 = host=... port=..."): another Shoal or PgBouncer
 * of the same fleet, to which cancel requests carrying its peer id are forwarded. */
struct peer_entry {
	int id;     /* 1..16383 */
	char *host; /* host name, IP address or Unix socket directory */
	int port;   /* default 6432 */
};

/* One [users] entry. */
struct user_entry {
	char *name;
	int pool_mode;            /* POOL_INHERIT when unset */
	int pool_size;            /* -1 when unset */
	int reserve_pool_size;    /* -1 when unset; wins over the database's and the global */
	int max_user_connections; /* -1 when unset */
	int max_user_client_connections; /* -1 or 0: the global setting */
	/* 0: the global setting (PgBouncer 1.24/1.25 per-user timeouts) */
	usec_t query_timeout, idle_transaction_timeout, client_idle_timeout, transaction_timeout;
};

/* One auth_file line: "user" "secret" (plaintext, md5<32 hex>, or SCRAM-SHA-256$...). */
struct auth_entry {
	char *user;
	char *secret;
};

struct config {
	/* [pgbouncer] / [shoal] settings; names, units and defaults as PgBouncer's. Durations are
	 * kept in microseconds and written in the file in seconds (fractions allowed, or with a
	 * unit suffix: ms, s, min, h). 0 disables a timeout. */
	char *listen_addr;     /* "127.0.0.1"; "*" = all; comma-separated list; "" = no TCP */
	int listen_port;       /* 6432 */
	char *unix_socket_dir; /* "/tmp"; "" = no Unix socket */
	int unix_socket_mode;  /* 0777 (octal in the file) */
	char *unix_socket_group; /* group of the socket file; NULL: the process's */
	int auth_type;         /* enum auth_type, default md5 */
	char *auth_file;       /* NULL when unset */
	int pool_mode;         /* default session */
	int max_client_conn;   /* 100 */
	int default_pool_size; /* 20 */
	int min_pool_size;     /* 0 */
	int reserve_pool_size; /* 0 */
	usec_t reserve_pool_timeout; /* 5 s */
	int max_db_connections;      /* 0 = unlimited */
	int max_user_connections;    /* 0 = unlimited */
	int max_db_client_connections, max_user_client_connections; /* clients; 0 = unlimited */
	char *server_reset_query;    /* "DISCARD ALL" */
	int server_reset_query_always; /* 0 */
	usec_t server_connect_timeout; /* 15 s */
	usec_t server_login_retry;     /* 15 s: the cap of the reconnect backoff */
	usec_t host_check_interval;    /* 0: no background health check of host lists */
	usec_t host_turn_wait;         /* 0: a client never waits for a busy host's turn */
	char *zone;		       /* this instance's zone: hosts of it go first; "" none */
	int max_host_connections; /* server connections per host of a host list; 0 = no limit */
	usec_t host_check_timeout;     /* 3 s: connect, login and the check query */
	usec_t max_replica_lag;        /* 0: off; a standby's replay delay over it: out */
	int64_t max_replica_lag_bytes; /* 0: off; a standby this far behind the primary: out */
	int read_your_writes;          /* 0: off */
	usec_t read_your_writes_window; /* 10 s */
	usec_t server_idle_timeout;    /* 600 s */
	usec_t server_lifetime;        /* 3600 s */
	usec_t query_timeout;          /* 0 */
	usec_t query_wait_timeout;     /* 120 s */
	usec_t primary_wait_timeout;   /* 0: off; a write alias with no primary: its waiters' limit */
	usec_t query_wait_notify;      /* 5 s: a NOTICE to a client that waits that long */
	int server_fast_close;         /* 0: RECONNECT closes session servers at session end */
	char *ignore_startup_parameters; /* "": none; startup parameters (or -c options) dropped */
	usec_t client_idle_timeout;    /* 0 */
	usec_t client_login_timeout;   /* 60 s */
	usec_t client_startup_timeout; /* 10 s: to send the startup packet (door.c) */
	int max_login_clients;         /* 100: clients logging in at once; 0 = no limit */
	int admin_reserved_conn;       /* 3: console logins past max_client_conn */
	usec_t autodb_idle_timeout;    /* 3600 s: unused pools are freed (ledger.c pool_reap) */
	int max_pools;                 /* 10000: pools besides the configured ones; 0 = no limit */
	int auth_failure_limit;        /* 0 = off: failed logins per address per window (throttle.c) */
	usec_t auth_failure_window;    /* 60 s */
	char *user;                    /* NULL: stay; else drop to it after binding (-u wins) */
	int allow_root;                /* 0: refuse to run as root without user */
	usec_t idle_transaction_timeout; /* 0 */
	usec_t transaction_timeout;      /* 0: a transaction running longer closes its client */
	int64_t max_packet_size;       /* 2147483647 */
	int64_t message_inspect_limit; /* 1048576: larger Query/Parse are streamed (and pin) */
	usec_t stats_period;           /* 60 s */
	char *logfile;                 /* NULL: stderr */
	char *pidfile;                 /* NULL: none */
	int verbose;                   /* 0 */
	int workers;                   /* worker threads; 0: one per CPU */
	int so_reuseport;              /* 0: one TCP socket per address, shared by the workers;
					* 1: one SO_REUSEPORT socket per worker (a second process
					* of the same user may then bind the port too) */
	char *track_extra_parameters;  /* tracked by recognising SET (comma-separated) */
	int tcp_keepalive;             /* 1 */
	int tcp_keepcnt;               /* probes before the connection is dropped; 0: OS default */
	int tcp_keepidle;              /* seconds idle before the first probe; 0: OS default */
	int tcp_keepintvl;             /* seconds between probes; 0: OS default */
	int tcp_user_timeout;          /* ms unacknowledged before the connection is dropped;
					* 0: OS default */
	int listen_backlog;            /* listen(2) backlog of the listening sockets, 1024 */
	int tcp_socket_buffer;         /* SO_SNDBUF and SO_RCVBUF in bytes; 0: OS default */
	int tcp_defer_accept;          /* on (not 0): TCP_DEFER_ACCEPT of 45 s on TCP listeners */
	usec_t shutdown_timeout;       /* Shoal: how long SIGTERM/SIGINT wait, 30 s */
	char *admin_users;             /* comma-separated: the admin console, every command */
	char *stats_users;             /* comma-separated: the admin console, SHOW only */
	char *http_addr;               /* Shoal: the HTTP listener's addresses, "127.0.0.1" */
	int http_port;                 /* Shoal: 0 = no HTTP listener */
	char *http_token;              /* Shoal: bearer token for /health, /metrics; "" = none */
#define CONFIG_HTTP_TOKEN_MAX 200      /* fits the HTTP parser's Authorization field */
	usec_t health_probe_timeout;   /* Shoal: a /health probe fails after this long, 3 s */
	usec_t health_probe_interval;  /* Shoal: probe results are reused this long, 1 s */
	char *health_probe_user;       /* Shoal: probe user for databases with no pool yet */
	usec_t alert_waiting_after;    /* Shoal: warn when clients wait this long, 5 s; 0 = off */
	usec_t alert_at_max_after;     /* Shoal: warn when a pool stays at its limit, 30 s; 0 = off */
	usec_t dns_max_ttl;            /* 15 s: how long a resolved host name is used */
	usec_t dns_nxdomain_ttl;       /* 15 s: how long a failed resolution is remembered */
	/* TLS (tls.c); paths NULL when unset. Protocols: "secure" or a list; ciphers: OpenSSL's. */
	int client_tls_sslmode;        /* enum tls_mode, default disable */
	char *client_tls_key_file, *client_tls_cert_file, *client_tls_ca_file;
	char *client_tls_protocols;    /* "secure" = TLSv1.2 and TLSv1.3 */
	char *client_tls_ciphers;      /* "default" */
	char *client_tls13_ciphers;    /* TLS 1.3 suites (SSL_CTX_set_ciphersuites); "": OpenSSL's */
	char *client_tls_ecdhcurve;    /* groups for key exchange; "auto": OpenSSL's */
	int client_tls_dheparams;      /* enum tls_dhe, default auto */
	int server_tls_sslmode;        /* enum tls_mode, default prefer */
	char *server_tls_ca_file, *server_tls_key_file, *server_tls_cert_file;
	char *server_tls_protocols;    /* "secure" */
	char *server_tls_ciphers;      /* "default" */
	char *server_tls13_ciphers;    /* as client_tls13_ciphers */
	char *auth_hba_file;           /* NULL when unset; needed by auth_type = hba */
	char *auth_user;               /* runs auth_query for users not in auth_file; NULL: off */
	char *auth_query;              /* PgBouncer's query, schema-qualified; $1 = user name */
	char *auth_dbname;             /* database auth_query runs in; NULL: the client's */
	usec_t auth_query_cache_ttl;   /* Shoal: reuse an auth_query answer this long, 60 s */
	int log_connections;           /* 1: a line per client login (0: debug level only) */
	int log_stats;                 /* 1: a stats line per pool every stats_period */
	int log_disconnections;        /* 1: a line per client that leaves for a reason */
	int max_prepared_statements;   /* per server in transaction/statement mode, 200; 0: off */
	int64_t max_prepared_statement_bytes; /* Shoal: per server, bytes of statement text, 1 MB */
	int64_t max_client_prepared_bytes; /* Shoal: per client, its named statements, 16 MB; 0: off */
	int64_t max_client_buffer_bytes; /* Shoal: all clients' I/O buffers, process-wide; 0: off */
	int strict_config;             /* Shoal: 1: unknown keys and sections fail the load */

	struct db_entry *dbs;
	int ndbs;
	struct hmap db_index; /* name -> index + 1 in dbs (entries.c), so a login's lookup is O(1) */
	struct user_entry *users;
	int nusers;
	int peer_id;              /* this instance's id in its fleet; 0: cancel routing off */
	char *handoff_socket;     /* Unix socket (SOCK_SEQPACKET) a newer process takes clients on
				   * (session/handoff.h); NULL or "": none */
	char *peer_discovery_dns; /* Shoal: a name resolving to every instance (a headless
				   * Service), all listening on listen_port; "" none */
	struct peer_entry *peers; /* [peers] */
	int npeers;
	int fleet_size;           /* Shoal: instances in the fleet; 0: [peers] (with this one) or 1 */
	int server_max_connections; /* Shoal: what PostgreSQL lets the fleet open; 0: unknown */
	int pool_size_scope; /* Shoal: 1 (fleet): pool sizes and limits are the fleet's totals */
	struct auth_entry *auth; /* loaded from auth_file at config_load time */
	int nauth;
	struct hba *hba; /* parsed auth_hba_file, or NULL */
	char *path; /* the file this came from, or NULL for the embedded default */
};

/* Load path (NULL: the embedded default of DESIGN §6: listen 127.0.0.1:6432, every database to
 * the local PostgreSQL, transaction pooling, auth_type trust), then apply SHOAL_<NAME>
 * environment overrides, then the databases of DATABASE_URL / SHOAL_DATABASES (config_env.h),
 * then read auth_file if set. Values may use ${VAR} and ${VAR:-default}. Unknown keys and
 * sections fail the load with every one of them listed ("did you mean"), or are logged and
 * ignored when strict_config = 0. On failure returns SHOAL_ERROR with a message in err naming file, line and key;
 * cfg is then left freed. */
shoal_rc config_load(struct config *cfg, const char *path, char *err, size_t errlen) MUST_USE;
/* Free everything cfg owns. Safe on a zeroed struct. */
void config_free(struct config *cfg);
/* The configuration in force (current.c; replaced atomically on reload, old ones freed once
 * no reader thread uses them: current.h). */
const struct config *config_current(void);
/* Make cfg current without keeping any record of it (the caller owns and frees it; harnesses
 * only: the daemon publishes with config_publish, current.h). */
void config_set_current(const struct config *cfg);
/* Call fn with every configuration set from now on (upper layers that cache a setting; at most
 * a few, registered at start before the first one is published). */
void config_on_change(void (*fn)(const struct config *cfg));

/* Parse one [databases] value: libpq-style "key=value ..." (values may be single-quoted, with
 * \' and \\ escapes) or a postgres:// / postgresql:// URL. Fills out (which the caller zeroes
 * and names); SHOAL_ERROR with err set on a malformed value or an unknown key. */
shoal_rc config_parse_db(const char *value, struct db_entry *out, char *err,
			 size_t errlen) MUST_USE;

/* The [databases] entry for a client database name: exact match first, then "*". NULL: none. */
const struct db_entry *config_find_db(const struct config *cfg, const char *name);
/* The [users] entry for a user, or NULL. */
/* The [peers] entry with this id, or NULL. */
const struct peer_entry *config_find_peer(const struct config *cfg, int id);
/* Add (or replace) one [peers] line; SHOAL_ERROR with a message in msg. Frees nothing else. */
shoal_rc config_add_peer(struct config *cfg, const char *name, const char *value, char *msg,
			 size_t n) MUST_USE;
void config_free_peers(struct config *cfg);
/* fleet.c: instances in this one's fleet: fleet_size, else the [peers] entries (this instance
 * counted if not among them), else 1. */
int config_fleet_size(const struct config *cfg);
/* Log, per server address, the fleet's combined server connections (this instance's ceiling
 * times config_fleet_size): a warning when over server_max_connections, else an info line for
 * a fleet of more than one. Called once at start. */
void config_fleet_check(const struct config *cfg);
/* This instance's share of a pool size or server limit v: v itself, or with pool_size_scope =
 * fleet v / config_fleet_size, at least 1 (0 and -1, "none" and "unset", stay as they are). */
int config_fleet_share(const struct config *cfg, int v);
/* One [databases] entry's server connections on this instance (its share): max_db_connections
 * when set, else its pool size plus reserve; *per_user is set when that is per client user
 * (no max_db_connections and no forced user). */
long long config_db_servers(const struct config *cfg, const struct db_entry *db, bool *per_user);
const struct user_entry *config_find_user(const struct config *cfg, const char *name);
/* The auth_file secret for a user, or NULL. */
const char *config_find_secret(const struct config *cfg, const char *user);

/* Parse a duration in seconds ("1.5", "500ms", "2min", "1h") into microseconds. */
shoal_rc config_parse_duration(const char *s, usec_t *out) MUST_USE;
const char *config_pool_mode_name(int mode);
const char *config_auth_type_name(int type);

/* Print the effective configuration (every setting, then databases and users) for --check. */
void config_print(const struct config *cfg, FILE *out);

/* Where a database entry without host= points: the local PostgreSQL's Unix socket directory
 * (/var/run/postgresql) when its socket for the port exists, else 127.0.0.1. */
const char *config_default_host(int port);

/* One host of a database entry's host list. */
struct host_addr {
	char host[256];
	int port;
	int weight; /* weight=: its share of new server connections (1..1000, default 1) */
	char zone[32]; /* zone=: the host's zone, "" when none */
};

/* Split db->host, db->port_list, db->weight and db->zone (libpq style: one port, weight or
 * zone for all hosts, or one per host) into out[0..*n). A NULL host gives *n = 0 (the caller
 * uses config_default_host). SHOAL_ERROR with a message on an empty element, a bad port,
 * weight or zone,
 * a count mismatch or more than max hosts. */
shoal_rc config_host_list(const struct db_entry *db, struct host_addr *out, int max, int *n,
			  char *err, size_t errlen) __attribute__((warn_unused_result));

/* The names of load_balance_hosts and target_session_attrs values, for SHOW and logs. */
const char *config_lb_name(int lb);
const char *config_tsa_name(int tsa);

/* The settings table, for SHOW CONFIG and SET: name of setting i (NULL past the end), with its
 * default text and whether a reload may change it. */
int config_setting_count(void);
const char *config_setting_info(int i, const char **def, bool *reloadable);
/* The value of setting i in cfg, in the file's text form. */
void config_setting_value(const struct config *cfg, int i, char *out, size_t n);
/* Set one reloadable setting of cfg from its text form; SHOAL_ERROR with err when the name is
 * unknown, not reloadable, or the value is invalid (cfg unchanged then). */
shoal_rc config_set_value(struct config *cfg, const char *name, const char *value, char *err,
			  size_t errlen) MUST_USE;
/* Is user named in a comma/space-separated list (admin_users, stats_users)? */
bool config_user_in_list(const char *list, const char *user);

#endif
