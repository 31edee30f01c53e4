"""Reference data for the PgBouncer 1.25 admin console, for tests that check
Shoal against it.

This module holds data only. Everything below was read from public source code
and docs. The text is written fresh and the values are transcribed; nothing
here was produced by running a PgBouncer binary.

Which version the data describes
================================
Target: PgBouncer 1.25.x. The baseline is **1.25.1**.

The source index mixes many commits of ``pgbouncer/pgbouncer``, including an
experimental multithread branch and post-1.25 ``main``. No stored upstream C
file could be tied to the 1.25.1 tag. The exact 1.25.1 layouts therefore come
from a mechanical c2rust translation of PgBouncer 1.25.1. Its generated config
sets ``PACKAGE_STRING = "PgBouncer 1.25.1"``, and its admin welcome message
sends ``server_version = "1.25.1/bouncer"``. That source was then
cross-checked against the newest upstream C source in the index.

Sources, by part
----------------
* SHOW_COLUMNS / TYPE_CODES / LISTS_ROWS / STATE_ROWS / ADMIN_COMMANDS (1.25.1):
    - repo conradludgate/pgbouncer (c2rust translation of PgBouncer 1.25.1)
        src/admin.rs  (find_files lists commit 890f1926bec29eabba5435af6119509432bce639;
                       the copy read may be another stored version of the same
                       translation. Its welcome message sends "1.25.1/bouncer".)
        src/main.rs   (PACKAGE_STRING "PgBouncer 1.25.1")
        src/stats.rs  (commit 0c3a49405f02abd90afb2933c03616153d226afe)
        src/pktbuf.rs (pktbuf_write_RowDescription / pktbuf_write_DataRow)
        src/proto.rs  (send_pooler_error)
        src/main.rs   (bouncer_params -> SHOW CONFIG)
* Cross-check against upstream C (post-1.25.1 ``main``; differences noted inline):
    - pgbouncer/pgbouncer src/admin.c commit 00882b8ed8ebc8024524591d935f239bb08b8f55
    - pgbouncer/pgbouncer src/stats.c commit d28d3c06c173b88a1ad5eca1697f73ced5bc1405
      (has an extra ``client_connect_count`` stat that is NOT in 1.25.1)
    - pgbouncer/pgbouncer src/proto.c (send_pooler_error with sqlstate arg,
      default "08P01")
    - pgbouncer/pgbouncer doc/usage.md commit 0feef5a513c73e21ca0bbe521740948b04e373ec
      (a post-1.25 doc: it documents ``SHOW STATS [db]``-style filters that
      1.25.1 does not parse)
    - pgbouncer/pgbouncer meson.build commit 024c47368c02b89b6eb951d1419e50f5b40d01c6
      (version '1.25.2')
* 1.25 changelog: pgbouncer/pgbouncer.github.io
  _posts/2025-11-09-pgbouncer-1.25-0.md, _posts/2025-12-03-pgbouncer-1.25-1.md,
  _posts/2026-05-08-pgbouncer-1-25-2.md. There is also a mirrored copy of the
  full changelog.html 1.25.x section (a pigsty docs translation, read through
  the search index), which lists the 1.25.0 items #1191, #1231, #1305, #1317
  and #1403 used below.
* EXPORTER_EXPECTATIONS:
    - prometheus-community/pgbouncer_exporter collector.go
      commit 03527dcdbc84f898b52cde809318a7b18364b94a (slog, per-scrape connection,
      prepared-statement counters)
    - prometheus-community/pgbouncer_exporter collector_test.go
      commit 9d2717d49c2715fb30679a0a7d0f7db113767c81 (newer: adds
      ``server_assignment_count`` to stats_totals and an ``auth_type`` config metric)

* The login counter (issue 22): pgbouncer/pgbouncer commit 565e2092 ("Add client
  login counter stat", #1457, upstream ``main`` after 1.25.2, so PgBouncer 1.26):
  src/stats.c adds ``total_client_login_count`` after ``total_bind_count`` and
  ``avg_client_login_count`` last in SHOW STATS; ``client_login_count`` /
  ``avg_client_login_count`` last in STATS_TOTALS / STATS_AVERAGES; and the
  TOTALS rows ``total_client_login_count`` / ``avg_client_login_count``. It
  counts logins that complete (finish_client_login). The tables below include
  them: Shoal follows 1.26 here.

Search for "UNVERIFIED" to find every point that could not be confirmed.
"""

# ---------------------------------------------------------------------------
# 0. Column type codes used in pktbuf_write_RowDescription / DataRow (1.25.1)
# ---------------------------------------------------------------------------
# Each RowDescription field is written as:
#   name (cstring), table OID = 0 (int32), column attnum = 0 (int16),
#   type OID (int32), typlen (int16), typmod = -1 (int32), format = 0 (int16, text).
# DataRow values are always in text format. A NULL C string pointer (for 's')
# is sent as length -1 (SQL NULL).
TYPE_CODES = {
    # code: (pg typname, type OID, typlen as sent, how DataRow renders the value)
    "s": ("text", 25, -1, "C string; NULL pointer -> SQL NULL"),
    "i": ("int4", 23, 4, 'printf("%d") of a C int'),
    "q": ("int8", 20, 8, 'printf("%" PRIu64) of a uint64 (unsigned)'),
    "N": ("numeric", 1700, -1, 'printf("%" PRIu64) of a uint64 (unsigned)'),
    "b": ("bytea", 17, -1, 'hex "\\x.." text; length < 0 -> SQL NULL'),
    # 'T' is a usec_t timestamp, but its column type is declared as TEXT, not
    # timestamp. The value is format_time_s(): local time "%Y-%m-%d %H:%M:%S %Z".
    "T": ("text", 25, -1, "format_time_s(usec): 'YYYY-MM-DD HH:MM:SS TZ'"),
}
# UNVERIFIED: the exact strftime pattern of format_time_s in the libusual that
# ships with 1.25. Versions in the index show "%Y-%m-%d %H:%M:%S %Z"
# (recent libusual). Older copies had no zone part.
# Note: 1.25.1 has NO 'I' (nullable int4) code. 'I' only appears in the
# experimental multithread branch and in post-1.25 main.

# Map a letter to the type name used in SHOW_COLUMNS below.
_T = {k: v[0] for k, v in TYPE_CODES.items()}


def _cols(fmt, *names):
    """Pair a pktbuf tupdesc string with column names -> [(name, typname)]."""
    assert len(fmt) == len(names), (fmt, names)
    return [(n, _T[c]) for c, n in zip(fmt, names)]


# Raw tupdesc strings, exactly as passed to pktbuf_write_RowDescription in 1.25.1.
TUPDESC = {
    "STATS": "s" + "N" * 24,           # 1.26: + total_/avg_client_login_count
    "STATS_TOTALS": "s" + "N" * 12,    # 1.26: + client_login_count
    "STATS_AVERAGES": "s" + "N" * 12,  # 1.26: + avg_client_login_count
    "TOTALS": "sN",
    "POOLS": "ssiiiiiiiiiiiiiss",
    "CLIENTS": "ssssssisiTTiiississii",          # SKF_STD
    "SERVERS": "ssssssisiTTiiississii",          # SKF_STD
    "SOCKETS": "ssssssisiTTiiississiiiiiiiii",   # SKF_DBG
    "ACTIVE_SOCKETS": "ssssssisiTTiiississiiiiiiiii",
    "DATABASES": "ssissiiiissiiiiii",
    "USERS": "ssssiiii",
    "PEERS": "isii",
    "PEER_POOLS": "iiiii",
    "LISTS": "si",
    "CONFIG": "ssss",
    "MEM": "siiii",
    "STATE": "ss",
    "VERSION": "s",
    "DNS_HOSTS": "sqs",
    "DNS_ZONES": "sqi",
    "FDS": "issssiqisssssbb",
}

_SOCKET_STD_NAMES = (
    "type", "user", "database", "replication", "state",
    "addr", "port", "local_addr", "local_port",
    "connect_time", "request_time",
    "wait", "wait_us", "close_needed",
    "ptr", "link", "remote_pid", "tls",
    "application_name", "prepared_statements", "id",
)
_SOCKET_DBG_NAMES = _SOCKET_STD_NAMES + (
    "recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain",
    "pkt_avail", "send_avail",
)

# ---------------------------------------------------------------------------
# 1. SHOW_COLUMNS: command -> ordered [(column_name, postgres_type_name)]
# ---------------------------------------------------------------------------
SHOW_COLUMNS = {
    # src/stats.c admin_database_stats (one row per database, grouped by pool->db)
    "STATS": _cols(
        TUPDESC["STATS"],
        "database",
        "total_server_assignment_count",
        "total_xact_count", "total_query_count",
        "total_received", "total_sent",
        "total_xact_time", "total_query_time",
        "total_wait_time", "total_client_parse_count",
        "total_server_parse_count", "total_bind_count",
        "total_client_login_count",
        "avg_server_assignment_count",
        "avg_xact_count", "avg_query_count",
        "avg_recv", "avg_sent",
        "avg_xact_time", "avg_query_time",
        "avg_wait_time", "avg_client_parse_count",
        "avg_server_parse_count", "avg_bind_count",
        "avg_client_login_count",
    ),
    # src/stats.c admin_database_stats_totals
    "STATS_TOTALS": _cols(
        TUPDESC["STATS_TOTALS"],
        "database",
        "server_assignment_count",
        "xact_count", "query_count",
        "bytes_received", "bytes_sent",
        "xact_time", "query_time",
        "wait_time", "client_parse_count",
        "server_parse_count", "bind_count",
        "client_login_count",
    ),
    # src/stats.c admin_database_stats_averages. Most names have no "avg_"
    # prefix, but the last three do: a quirk, kept as-is.
    "STATS_AVERAGES": _cols(
        TUPDESC["STATS_AVERAGES"],
        "database",
        "server_assignment_count",
        "xact_count", "query_count",
        "bytes_received", "bytes_sent",
        "xact_time", "query_time",
        "wait_time", "avg_client_parse_count",
        "avg_server_parse_count", "avg_bind_count",
        "avg_client_login_count",
    ),
    # src/stats.c show_stat_totals: a 2-column key/value result. Row names are
    # in TOTALS_ROWS.
    "TOTALS": _cols(TUPDESC["TOTALS"], "name", "value"),
    # src/admin.c admin_show_pools
    "POOLS": _cols(
        TUPDESC["POOLS"],
        "database", "user",
        "cl_active", "cl_waiting",
        "cl_active_cancel_req", "cl_waiting_cancel_req",
        "sv_active", "sv_active_cancel", "sv_being_canceled",
        "sv_idle", "sv_used", "sv_tested", "sv_login",
        "maxwait", "maxwait_us",
        "pool_mode", "load_balance_hosts",
    ),
    # src/admin.c socket_header(buf, false) -> SKF_STD
    "CLIENTS": _cols(TUPDESC["CLIENTS"], *_SOCKET_STD_NAMES),
    "SERVERS": _cols(TUPDESC["SERVERS"], *_SOCKET_STD_NAMES),
    # socket_header(buf, true) -> SKF_DBG (adds 7 int4 debug columns)
    "SOCKETS": _cols(TUPDESC["SOCKETS"], *_SOCKET_DBG_NAMES),
    "ACTIVE_SOCKETS": _cols(TUPDESC["ACTIVE_SOCKETS"], *_SOCKET_DBG_NAMES),
    # src/admin.c admin_show_databases
    "DATABASES": _cols(
        TUPDESC["DATABASES"],
        "name", "host", "port",
        "database", "force_user", "pool_size", "min_pool_size",
        "reserve_pool_size", "server_lifetime", "pool_mode",
        "load_balance_hosts", "max_connections", "current_connections",
        "max_client_connections", "current_client_connections",
        "paused", "disabled",
    ),
    # src/admin.c admin_show_users. pool_size and reserve_pool_size are TEXT.
    # They are "" when not set per user; otherwise snprintf("%9d"), i.e.
    # right-aligned and space-padded to width 9 (20 -> "       20").
    "USERS": _cols(
        TUPDESC["USERS"],
        "name", "pool_size", "reserve_pool_size", "pool_mode",
        "max_user_connections", "current_connections",
        "max_user_client_connections", "current_client_connections",
    ),
    # src/admin.c admin_show_peers
    "PEERS": _cols(TUPDESC["PEERS"], "peer_id", "host", "port", "pool_size"),
    # src/admin.c admin_show_peer_pools
    "PEER_POOLS": _cols(
        TUPDESC["PEER_POOLS"],
        "peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req",
        "sv_active_cancel", "sv_login",
    ),
    # src/admin.c admin_show_lists (rows in LISTS_ROWS)
    "LISTS": _cols(TUPDESC["LISTS"], "list", "items"),
    # src/admin.c admin_show_config / show_one_param
    "CONFIG": _cols(TUPDESC["CONFIG"], "key", "value", "default", "changeable"),
    # src/admin.c admin_show_mem (one row per slab cache)
    "MEM": _cols(TUPDESC["MEM"], "name", "size", "used", "free", "memtotal"),
    # src/admin.c admin_show_state (rows in STATE_ROWS)
    "STATE": _cols(TUPDESC["STATE"], "key", "value"),
    # src/admin.c admin_show_version: a single row, value = PACKAGE_STRING
    "VERSION": _cols(TUPDESC["VERSION"], "version"),
    # src/admin.c admin_show_dns_hosts
    "DNS_HOSTS": _cols(TUPDESC["DNS_HOSTS"], "hostname", "ttl", "addrs"),
    # src/admin.c admin_show_dns_zones
    "DNS_ZONES": _cols(TUPDESC["DNS_ZONES"], "zonename", "serial", "count"),
    # src/admin.c admin_show_fds (admin only; rows are sent via sendmsg and may
    # carry SCM_RIGHTS fds; the RowDescription is written straight to the
    # socket with SEND_RowDescription)
    "FDS": _cols(
        TUPDESC["FDS"],
        "fd", "task", "user", "database", "addr", "port",
        "cancel", "link",
        "client_encoding", "std_strings", "datestyle", "timezone", "password",
        "scram_client_key", "scram_server_key",
    ),
}

# Every SHOW word the 1.25.1 show_map accepts (case-insensitive, strcasecmp),
# in table order. "help" sends a NOTICE rather than a result set; see
# SHOW_HELP_NOTICE.
SHOW_SUBCOMMANDS = [
    "clients", "config", "databases", "fds", "help", "lists", "peers",
    "peer_pools", "pools", "servers", "sockets", "active_sockets", "stats",
    "stats_totals", "stats_averages", "users", "version", "totals", "mem",
    "dns_hosts", "dns_zones", "state",
]

# Every successful SHOW ends with CommandComplete tag "SHOW" and then
# ReadyForQuery 'I' (the admin console always reports 'I').
SHOW_COMMAND_TAG = "SHOW"
READY_FOR_QUERY_STATUS = "I"

# Row names of SHOW TOTALS, in order (WTOTAL(field)/WAVG(field) macros, so the
# names come from C struct fields. They are NOT the SHOW STATS column names:
# note total_client_bytes vs total_received).
TOTALS_ROWS = [
    "total_server_assignment_count",
    "total_xact_count",
    "total_query_count",
    "total_client_bytes",
    "total_server_bytes",
    "total_xact_time",
    "total_query_time",
    "total_wait_time",
    "total_ps_client_parse_count",
    "total_ps_server_parse_count",
    "total_ps_bind_count",
    "total_client_login_count",
    "avg_server_assignment_count",
    "avg_xact_count",
    "avg_query_count",
    "avg_client_bytes",
    "avg_server_bytes",
    "avg_xact_time",
    "avg_query_time",
    "avg_wait_time",
    "avg_ps_client_parse_count",
    "avg_ps_server_parse_count",
    "avg_ps_bind_count",
    "avg_client_login_count",
]

# Fixed values and NULL rules per column (from the DataRow calls, 1.25.1)
VALUE_NOTES = {
    "CLIENTS.type": "'C' for clients; 'S' for servers (SHOW SERVERS)",
    "CLIENTS.user": "login user name, or '(nouser)'",
    "CLIENTS.database": "db name, or '(nodb)' (also for peer pools)",
    "CLIENTS.replication": "'none' | 'logical' | 'physical'",
    "CLIENTS.state": ("SHOW CLIENTS: active|waiting|active_cancel_req|"
                      "waiting_cancel_req, and 'idle' (new in 1.25.0, #1191) "
                      "for an 'active' client that has no linked server"),
    "SERVERS.state": ("active|idle|used|tested|new|active_cancel|being_canceled "
                      "(an 'active' server with no link is reported as 'idle')"),
    "SOCKETS.state": ("cl_active|cl_waiting|sv_active|sv_idle|sv_used|"
                      "sv_tested|sv_login|cl_login"),
    "CLIENTS.ptr/link": "printf('%p') of the object; link '' when not paired",
    "CLIENTS.tls": "'' when not TLS",
    "CLIENTS.application_name": "'' when unset",
    "SOCKETS.send_remain": "always 0",
    "DATABASES.force_user": "NULL unless forced",
    "DATABASES.pool_mode": "NULL when the database does not override pool_mode",
    "DATABASES.load_balance_hosts": "NULL unless host contains ','",
    "DATABASES.server_lifetime": "seconds (db value, or global if <= 0)",
    "DATABASES.paused/disabled": "0 or 1",
    "POOLS.pool_mode": "effective mode, never NULL",
    "POOLS.load_balance_hosts": "NULL unless db host contains ','",
    "USERS.pool_size/reserve_pool_size": "'' or '%9d' formatted (text!)",
    "USERS.pool_mode": "NULL when not overridden",
    "CONFIG.default": "NULL when the key has no default (def_value NULL)",
    "CONFIG.changeable": "'yes' or 'no'",
    "STATE.value": "'yes' or 'no'",
    "VERSION.version": "'PgBouncer 1.25.1' (PACKAGE_STRING, also the first line of "
                       "--version)",
    "FDS.task": "'pooler' | 'client' | 'server'",
}

# Post-1.25.1 changes seen in upstream main (NOT in 1.25.1; don't assert these
# for 1.25):
POST_1_25_1_DIFFERENCES = [
    "stats.c: adds client_connect_count (STATS total_/avg_client_connect_count, "
    "STATS_TOTALS/AVERAGES client_connect_count, TOTALS rows). A later test file "
    "names it client_login_count instead. Upstream commit 565e2092 (#1457) ships it "
    "as client_login_count; SHOW_COLUMNS and TOTALS_ROWS above include it (1.26).",
    "admin.c: fake SHOW/SET parameter 'extra_float_digits' = '2' added",
    "admin.c: KILL_CLIENT gains an admin_user check ('admin access needed')",
    "admin.c: ENABLE on admin db says 'cannot enable admin db: %s' "
    "(1.25.1 says 'cannot disable admin db: %s')",
    "doc/usage.md: SHOW STATS/CLIENTS/SERVERS/USERS/DATABASES/... [filter] args",
    "takeover: FDS row format gains an intervalstyle column "
    "('issssiqissssssbb' in a later takeover.c)",
    "multithread branch only: thread_id columns and 'I' nullable int4",
]
# UNVERIFIED: which of these (if any) shipped in 1.25.2 (released 2026-05-08,
# described as "fixes several security issues"). The KILL_CLIENT admin check is
# the likeliest one to have been backported.

# What changed in 1.25.0 for the admin console (changelog): 'idle' client state
# in SHOW CLIENTS (#1191); KILL without a db kills all dbs (#1317); RELOAD
# reports errors (#1231, SQLSTATE F0000); admin access over the unix socket
# during shutdown (#1305); SHOW CONFIG sort order fixed (#1403).
# From 1.24.0 (still present in 1.25): KILL_CLIENT, current_client_connections
# and max_*_client_connections in USERS/DATABASES, load_balance_hosts, the
# prepared-statement counters in SHOW STATS, and the 'id' column.

# ---------------------------------------------------------------------------
# 2. SHOW LISTS rows, in order
# ---------------------------------------------------------------------------
LISTS_ROWS = [
    "databases",
    "users",
    "peers",
    "pools",
    "peer_pools",
    "free_clients",
    "used_clients",
    "login_clients",
    "free_servers",
    "used_servers",
    "dns_names",
    "dns_zones",
    "dns_queries",
    "dns_pending",
]
# (The usage doc wrongly says SHOW LISTS reports "in columns (not rows)". It is
# rows of (list text, items int4).)

# ---------------------------------------------------------------------------
# 3. SHOW STATE rows and the SHOW CONFIG rules
# ---------------------------------------------------------------------------
STATE_ROWS = ["active", "paused", "suspended"]
STATE_KEYS = STATE_ROWS
# active    = 'yes' iff pause mode is NONE
# paused    = 'yes' iff pause mode is PAUSE
# suspended = 'yes' iff pause mode is SUSPEND
# Exactly one of the three is 'yes'. Values are 'yes' / 'no'.

CONFIG_COLUMNS = ["key", "value", "default", "changeable"]
CONFIG_RULES = {
    "row_order": (
        "config_for_each() walks the static bouncer_params[] array in its "
        "declared order. In 1.25 that array is sorted in ascending byte order "
        "by key (#1403 in 1.25.0 fixed the order), e.g. "
        "'server_round_robin' < 'server_tls13_ciphers' < 'server_tls_ca_file' "
        "< ... < 'so_reuseport' < 'stats_period' < 'stats_users' < "
        "'suspend_timeout' < 'syslog' < 'syslog_facility' < 'syslog_ident' < "
        "'tcp_defer_accept' < 'tcp_keepalive'. Only [pgbouncer] section keys "
        "appear (no [databases]/[users]/[peers])."
    ),
    "value": "current value rendered by the key's getter (cf_get), text",
    "default": "the compiled-in def_value string, or NULL if none",
    "changeable": "'no' if the key has CF_NO_RELOAD or CF_READONLY, else 'yes'",
    "platform_conditional": (
        "keys such as unix_socket_group, unix_socket_mode and user are left out "
        "on Windows builds; service_name is Windows-only"
    ),
}
# UNVERIFIED: the full 1.25.1 key list. The macOS c2rust build sizes
# bouncer_params as [CfKey; 99] (98 keys + NULL terminator), but the count can
# differ by platform/build options, and the list was not transcribed here.
# UNVERIFIED: whether tcp_defer_accept's default is "0" on every platform
# (it comes from DEFAULT_TCP_DEFER_ACCEPT; the macOS build shows "0").

# ---------------------------------------------------------------------------
# 4. pgbouncer_exporter (prometheus-community): queries sent and columns read
# ---------------------------------------------------------------------------
EXPORTER_EXPECTATIONS = {
    "driver": "lib/pq via database/sql, simple query protocol",
    "type_handling": {
        # How lib/pq decodes text-format values, and what the exporter does.
        "int4/int8": "decoded to Go int64 -> float64(v) * factor",
        "numeric": "lib/pq returns []byte -> strconv.ParseFloat(string) * factor",
        "text": "Go string -> ParseFloat for metric columns, used as-is for labels",
        "NULL": "nil -> NaN for metric columns (still emitted); '' for labels",
        "timestamp": "time.Time -> Unix() (not used for pgbouncer columns)",
        "label_columns": ("label values accept int, int64, float64, string, nil; "
                          "any other Go type (e.g. []byte from numeric) -> "
                          "'<invalid>' plus a non-fatal error"),
        "unparseable_metric": "non-fatal error; that metric is skipped",
        "unknown_columns": "ignored (looked up by name, so column order is irrelevant)",
    },
    "connection": ("a new connection per scrape; getDB() runs 'SHOW STATS' as "
                   "a ping (result ignored); any error -> pgbouncer_up 0"),
    "queries": [
        # (exact SQL text, notes). The namespace queries are built as
        # fmt.Sprintf("SHOW %s;", namespace) with lowercase names, in Go map
        # order (random). The admin console must accept lowercase and a
        # trailing ';'.
        ("SHOW STATS", "ping only, no trailing semicolon, rows not read"),
        ("SHOW VERSION;", "must return exactly 1 column named 'version'; each "
                          "row -> pgbouncer_version_info{version=<text>} 1"),
        ("SHOW LISTS;", "must return exactly 2 columns; Scan(&list string, "
                        "&items RawBytes); ParseFloat(items)"),
        ("SHOW CONFIG;", "3 or 4 columns accepted; Scan(key string, value "
                         "RawBytes, [default RawBytes], changeable string)"),
        ("SHOW databases;", "namespace mapping"),
        ("SHOW stats_totals;", "namespace mapping"),
        ("SHOW pools;", "namespace mapping"),
    ],
    "lists_rows_used": {
        # list row -> metric name (gauge, no labels)
        "databases": "pgbouncer_databases",
        "users": "pgbouncer_users",
        "pools": "pgbouncer_pools",
        "free_clients": "pgbouncer_free_clients",
        "used_clients": "pgbouncer_used_clients",
        "login_clients": "pgbouncer_login_clients",
        "free_servers": "pgbouncer_free_servers",
        "used_servers": "pgbouncer_used_servers",
        "dns_names": "pgbouncer_cached_dns_names",
        "dns_zones": "pgbouncer_cached_dns_zones",
        "dns_queries": "pgbouncer_in_flight_dns_queries",
        # peers, peer_pools and dns_pending are logged at debug level and ignored
    },
    "config_keys_used": {
        # key -> metric; the 'value' column is parsed with ParseFloat. A parse
        # failure aborts the whole SHOW CONFIG collection (error -> up = 0).
        "max_client_conn": "pgbouncer_config_max_client_connections",
        "max_user_connections": "pgbouncer_config_max_user_connections",
    },
    # UNVERIFIED: the newer exporter (collector_test.go 9d2717d4) also reads
    # key 'auth_type' and emits a gauge of 1 labelled method=<value>
    # (metric name probably pgbouncer_config_auth_type). That collector.go
    # version was not in the index.
    "namespaces": {
        # namespace -> {column: (usage, metric suffix, factor)}; metric name is
        # "pgbouncer_<namespace>_<suffix>". LABEL columns become labels.
        "databases": {
            "name": ("LABEL", None, 1),
            "host": ("LABEL", None, 1),
            "port": ("LABEL", None, 1),          # int4 -> int64 -> Itoa
            "database": ("LABEL", None, 1),
            "force_user": ("LABEL", None, 1),    # NULL -> ''
            "pool_mode": ("LABEL", None, 1),     # NULL -> ''
            "pool_size": ("GAUGE", "pool_size", 1),
            # The exporter still looks for the old column name 'reserve_pool'.
            # PgBouncer >= 1.24 sends 'reserve_pool_size', so this metric is
            # silently missing against 1.25.
            "reserve_pool": ("GAUGE", "reserve_pool", 1),
            "max_connections": ("GAUGE", "max_connections", 1),
            "current_connections": ("GAUGE", "current_connections", 1),
            "paused": ("GAUGE", "paused", 1),
            "disabled": ("GAUGE", "disabled", 1),
        },
        "stats_totals": {
            "database": ("LABEL", None, 1),
            "query_count": ("COUNTER", "queries_pooled_total", 1),
            "query_time": ("COUNTER", "queries_duration_seconds_total", 1e-6),
            "bytes_received": ("COUNTER", "received_bytes_total", 1),
            "requests": ("COUNTER", "queries_total", 1),  # legacy; absent in 1.25
            "bytes_sent": ("COUNTER", "sent_bytes_total", 1),
            "wait_time": ("COUNTER", "client_wait_seconds_total", 1e-6),
            "xact_count": ("COUNTER", "sql_transactions_pooled_total", 1),
            "xact_time": ("COUNTER", "server_in_transaction_seconds_total", 1e-6),
            "client_parse_count": ("COUNTER", "client_parses_total", 1),
            "server_parse_count": ("COUNTER", "server_parses_total", 1),
            "bind_count": ("COUNTER", "binds_total", 1),
            # Newer exporter (0.11.0, changelog "#208 total_server_assignment_count";
            # collector_test.go reads column 'server_assignment_count' as a
            # COUNTER with factor 1).
            # UNVERIFIED: the metric suffix; third-party dashboards use
            # pgbouncer_stats_totals_server_assignments_total.
            "server_assignment_count": ("COUNTER", "server_assignments_total", 1),
        },
        "pools": {
            "database": ("LABEL", None, 1),
            "user": ("LABEL", None, 1),
            "cl_active": ("GAUGE", "client_active_connections", 1),
            "cl_active_cancel_req": ("GAUGE", "client_active_cancel_connections", 1),
            "cl_waiting": ("GAUGE", "client_waiting_connections", 1),
            "cl_waiting_cancel_req": ("GAUGE", "client_waiting_cancel_connections", 1),
            "sv_active": ("GAUGE", "server_active_connections", 1),
            "sv_active_cancel": ("GAUGE", "server_active_cancel_connections", 1),
            "sv_being_canceled": ("GAUGE", "server_being_canceled_connections", 1),
            "sv_idle": ("GAUGE", "server_idle_connections", 1),
            "sv_used": ("GAUGE", "server_used_connections", 1),
            "sv_tested": ("GAUGE", "server_testing_connections", 1),
            "sv_login": ("GAUGE", "server_login_connections", 1),
            "maxwait": ("GAUGE", "client_maxwait_seconds", 1),  # maxwait_us unused
        },
    },
    "up_metric": ("pgbouncer_up = 1 unless connecting, SHOW VERSION, SHOW LISTS, "
                  "SHOW CONFIG or any namespace query fails"),
}

# ---------------------------------------------------------------------------
# 5. Non-SHOW admin commands (1.25.1), their responses and errors
# ---------------------------------------------------------------------------
# How queries are parsed (admin_parse_query):
#   * Simple Query ('Q') only. Parse/Bind/Execute get the error
#     "extended query protocol not supported by admin console", then the
#     connection is closed. Other message types get
#     "unsupported packet type for admin console: %d", then close.
#   * Regex 1 (REG_EXTENDED|REG_ICASE):  ^ws* WORD (ws+ WORD)? ws* (; ws*)?$
#     where WORD = "..."-quoted (with "" as an escape) | [0-9a-z_]+.
#     At most ONE argument. Command and argument are matched case-insensitively
#     (strcasecmp); the argument keeps its case (used as a db name).
#     Buffers: cmd < 16 bytes, arg < 64 bytes; too long -> "bad arguments".
#   * If regex 1 fails: SET key (=|TO) 'quoted string', then
#     SET key (=|TO) WORD; value < 256 bytes.
#   * Otherwise: "invalid command '<query>', use SHOW HELP;"
#   * "SELECT <word>" is an alias of "SHOW <word>" ('select' maps to
#     admin_cmd_show).
#   * "SHOW <fake param>" for client_encoding, default_transaction_isolation,
#     standard_conforming_strings, datestyle, timezone returns a one-column
#     text result named after the parameter (lowercase, as in the table), with
#     values 'UTF-8', 'read committed', 'on', 'ISO', 'GMT'.
FAKE_PARAMS_1_25_1 = {
    "client_encoding": "UTF-8",
    "default_transaction_isolation": "read committed",
    "standard_conforming_strings": "on",
    "datestyle": "ISO",
    "timezone": "GMT",
}
# (post-1.25.1 main also has "extra_float_digits": "2")

# Every admin_error(): ErrorResponse with fields, in this order,
#   'S' = "ERROR", 'C' = "08P01", 'M' = <message>
# (no 'V' field), then ReadyForQuery 'I'. The connection stays open.
ERROR_RESPONSE_FORMAT = {
    "severity": "ERROR",
    "sqlstate": "08P01",   # default when no sqlstate is passed (protocol_violation)
    "fields_in_order": ["S", "C", "M"],
    "followed_by": "ReadyForQuery 'I'",
}

UNKNOWN_COMMAND_ERROR = {
    "sqlstate": "08P01",
    "severity": "ERROR",
    # %s is the WHOLE query string as received (including any ';' and spaces),
    # or "<no query>"
    "message_format": "invalid command '%s', use SHOW HELP;",
    # This also covers "SHOW <unknown>", a bad SHUTDOWN argument, an argument
    # given to RELOAD or SUSPEND, "SET x" with no value, and a 3-word query.
}
BAD_ARGUMENTS_ERROR = {"sqlstate": "08P01", "message": "bad arguments"}

NOT_ADMIN_ERROR = {
    # A stats_users user (admin_user false) running a control command
    "sqlstate": "08P01",
    "severity": "ERROR",
    "message": "admin access needed",
}
# stats_users may run every SHOW except SHOW FDS (which needs admin), and may
# SET the fake params (which get the "SET ignored" notice).
# stats_users get "admin access needed" for: RELOAD, SHUTDOWN[ ...], RESUME,
# SUSPEND, PAUSE, RECONNECT, DISABLE, ENABLE, KILL, WAIT_CLOSE, SET <real key>,
# SHOW FDS.
# Order of checks: RELOAD, SUSPEND and SHUTDOWN validate the argument first, so
# a bad argument gives the "invalid command" error even for a stats user.
# KILL_CLIENT: in 1.25.1 there is NO admin check (a stats user can run it).
# Post-1.25.1 main checks and returns "admin access needed".
# UNVERIFIED: whether 1.25.2 includes that check.

ADMIN_COMMANDS = {
    # name: dict(args, tag, admin_required, when, errors)
    "PAUSE": {
        "args": ["", "<db>"],
        "tag": "PAUSE",
        "admin_required": True,
        "when": ("no arg: the tag is sent only after every server is released "
                 "(asynchronous). With <db>: the tag is sent at once if the db "
                 "has no server connections, otherwise after they close."),
        "errors": [
            "already suspended/paused",          # checked before the argument
            "no such database: %s",
            "cannot pause admin db: %s",
        ],
        "notes": "the <db> form may auto-register an autodb (find_or_register_database)",
    },
    "RESUME": {
        "args": ["", "<db>"],
        "tag": "RESUME",
        "admin_required": True,
        "errors": [
            "pooler is shutting down",
            "pooler is not paused/suspended",
            "no such database: %s",
            "database %s is not paused",
        ],
    },
    "DISABLE": {
        "args": ["<db>"],
        "tag": "DISABLE",
        "admin_required": True,
        "errors": [
            "a database is required",
            "no such database: %s",
            "cannot disable admin db: %s",
        ],
    },
    "ENABLE": {
        "args": ["<db>"],
        "tag": "ENABLE",
        "admin_required": True,
        "errors": [
            "a database is required",
            "no such database: %s",              # find_database only (no autodb)
            "cannot disable admin db: %s",       # sic in 1.25.1; later 'cannot enable admin db: %s'
        ],
    },
    "RECONNECT": {
        "args": ["", "<db>"],
        "tag": "RECONNECT",
        "admin_required": True,
        "errors": ["no such database: %s", "cannot reconnect admin db: %s"],
    },
    "KILL": {
        "args": ["", "<db>"],   # no arg = every non-admin db (new in 1.25.0, #1317)
        "tag": "KILL",
        "admin_required": True,
        "errors": [
            "already suspended/paused",
            "no such database: %s",
            "cannot kill admin db: %s",
        ],
        "notes": "marks the db(s) paused; RESUME is needed afterwards",
    },
    "KILL_CLIENT": {
        "args": ["<client_id>"],   # the 'id' column of SHOW CLIENTS, parsed with %llu
        "tag": "KILL_CLIENT",
        "admin_required": False,   # 1.25.1: no check (see note above)
        "errors": ["invalid client pointer supplied", "client not found"],
        "notes": "empty or non-numeric arg -> 'invalid client pointer supplied'",
    },
    "SUSPEND": {
        "args": [""],
        "tag": "SUSPEND",
        "admin_required": True,
        "when": "sent after all buffers are flushed (asynchronous)",
        "errors": [
            "already suspended/paused",
            "cannot suspend with paused databases",
        ],
    },
    "SHUTDOWN": {
        "args": [""],
        "tag": None,   # no response: the process exits and the socket closes
        "admin_required": True,
        "errors": [],
    },
    "SHUTDOWN WAIT_FOR_SERVERS": {
        "args": ["WAIT_FOR_SERVERS"],   # matched case-insensitively
        "tag": "SHUTDOWN",
        "admin_required": True,
        "errors": [],
        "notes": "also sets the pause mode to PAUSE",
    },
    "SHUTDOWN WAIT_FOR_CLIENTS": {
        "args": ["WAIT_FOR_CLIENTS"],
        "tag": "SHUTDOWN",
        "admin_required": True,
        "errors": [],
    },
    "WAIT_CLOSE": {
        "args": ["", "<db>"],
        "tag": "WAIT_CLOSE",
        "admin_required": True,
        "when": "at once if no server connections, otherwise asynchronous",
        "errors": ["no such database: %s", "cannot wait in admin db: %s"],
    },
    "RELOAD": {
        "args": [""],
        "tag": "RELOAD",
        "admin_required": True,
        "errors": [],
        # since 1.25.0 (#1231): if the config load or TLS setup fails ->
        "failure_error": {
            "severity": "ERROR",
            "sqlstate": "F0000",
            "message": "RELOAD failed, see logs for additional details",
        },
    },
    "SET": {
        "args": ["key = value", "key TO value", "key = 'quoted value'"],
        # success tag is built with snprintf("SET %s=%s", key, val): no spaces,
        # and val is the unquoted value.
        "tag_format": "SET %s=%s",
        "admin_required": True,   # except for the fake params (see below)
        "errors": ["SET failed", "admin access needed", "bad arguments"],
        "fake_param_response": ("NoticeResponse S=NOTICE C=00000 M='SET ignored', "
                                "then tag 'SET' (for anyone, no admin needed)"),
        "tls_notice": ("for keys containing '_tls_' or '_tls13_', if TLS setup "
                       "fails: NoticeResponse 'TLS settings could not be applied, "
                       "still using old configuration' before the tag"),
    },
}

# SHOW HELP (1.25.1): NoticeResponse with fields S='NOTICE', C='00000',
# M='Console usage', D=<text below>, then CommandComplete 'SHOW' and
# ReadyForQuery. No RowDescription is sent.
SHOW_HELP_NOTICE = {
    "S": "NOTICE",
    "C": "00000",
    "M": "Console usage",
    "D": (
        "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION"
        "\n\tSHOW PEERS|PEER_POOLS"
        "\n\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE"
        "\n\tSHOW DNS_HOSTS|DNS_ZONES"
        "\n\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS"
        "\n\tSET key = arg"
        "\n\tRELOAD"
        "\n\tPAUSE [<db>]"
        "\n\tRESUME [<db>]"
        "\n\tDISABLE <db>"
        "\n\tENABLE <db>"
        "\n\tRECONNECT [<db>]"
        "\n\tKILL [<db>]"
        "\n\tKILL_CLIENT <client_id>"
        "\n\tSUSPEND"
        "\n\tSHUTDOWN"
        "\n\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS"
        "\n\tWAIT_CLOSE [<db>]"
    ),
}

# Admin login welcome (admin_setup), sent after AuthenticationOk:
ADMIN_WELCOME_PARAMETER_STATUS = [
    ("server_version", "1.25.1/bouncer"),   # PACKAGE_VERSION + "/bouncer"
    ("client_encoding", "UTF8"),
    ("server_encoding", "UTF8"),
    ("DateStyle", "ISO"),
    ("TimeZone", "GMT"),
    ("standard_conforming_strings", "on"),
    ("is_superuser", "on"),
]
ADMIN_DB_NAME = "pgbouncer"
# UNVERIFIED: the SHOW MEM slab row names and their order (slab_stats walks
# every slab cache; the names were not transcribed).
