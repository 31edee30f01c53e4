/* admin_show.c: the SHOW commands, with PgBouncer 1.25's column names, order and types. Rows
 * about pools, clients and servers are written under each pool's lock (memory only). */
#include "admin_int.h"
#include "client.h"
#include "client_limits.h"
#include "control.h"
#include "hosts.h"
#include "dns.h"
#include "pause.h"
#include "pool.h"
#include "pool_view.h"
#include "proto.h"
#include "shoal_version.h"
#include "stats.h"
#include "worker.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- rows -------------------------------------------------------------------------------- */

void row_str(struct admin_row *r, const char *s)
{
	r->v[r->n++] = s;
}

void row_fmt(struct admin_row *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->store[r->n], sizeof(r->store[r->n]), fmt, ap);
	va_end(ap);
	r->v[r->n] = r->store[r->n];
	r->n++;
}

void row_int(struct admin_row *r, long long v)
{
	row_fmt(r, "%lld", v);
}

void row_u64(struct admin_row *r, uint64_t v)
{
	row_fmt(r, "%llu", (unsigned long long)v);
}

static uint32_t type_oid(char t)
{
	switch (t) {
	case 'i':
		return PQ_OID_INT4;
	case 'q':
		return PQ_OID_INT8;
	case 'N':
		return PQ_OID_NUMERIC;
	case 'b':
		return 17; /* bytea */
	default:
		return PQ_OID_TEXT; /* 's', and 'T': PgBouncer declares times as text */
	}
}

void admin_header(struct buf *b, const char *types, const char *const *names)
{
	int n = (int)strlen(types);
	uint32_t oids[64];
	for (int i = 0; i < n; i++)
		oids[i] = type_oid(types[i]);
	proto_write_row_description(b, n, names, oids);
}

void admin_write_row(struct buf *b, struct admin_row *r)
{
	proto_write_data_row(b, r->n, r->v);
	r->n = 0;
}

/* A wall-clock time for a monotonic one, as PgBouncer's format_time_s. */
void row_time(struct admin_row *r, usec_t mono)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t t = ts.tv_sec - (time_t)((shoal_now() - mono) / USEC_PER_SEC);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(r->store[r->n], sizeof(r->store[r->n]), "%Y-%m-%d %H:%M:%S %Z", &tm);
	r->v[r->n] = r->store[r->n];
	r->n++;
}

/* ---- SHOW POOLS ---------------------------------------------------------------------------- */

/* From pool_view, the reading /health and /metrics use too, so the three views agree. */
static void pool_row(struct pool *p, void *arg)
{
	struct buf *b = arg;
	struct admin_row r = {0};
	struct pool_view v;
	if (!pool_shown(p)) /* only /health's probe has used it */
		return;
	pool_view_read_locked(p, &v, shoal_now());
	row_str(&r, p->name);
	row_str(&r, p->user);
	row_int(&r, v.cl_active);
	row_int(&r, v.cl_waiting);
	row_int(&r, 0); /* cl_active_cancel_req */
	row_int(&r, 0); /* cl_waiting_cancel_req */
	row_int(&r, v.sv_active);
	row_int(&r, 0); /* sv_active_cancel */
	row_int(&r, v.sv_being_canceled);
	row_int(&r, v.sv_idle);
	row_int(&r, v.sv_used);
	row_int(&r, 0); /* sv_tested */
	row_int(&r, v.sv_login);
	row_int(&r, v.maxwait_us / USEC_PER_SEC);
	row_int(&r, v.maxwait_us % USEC_PER_SEC);
	row_str(&r, config_pool_mode_name(p->pool_mode));
	row_str(&r, NULL);
	admin_write_row(b, &r);
}

static void show_pools(struct client *c)
{
	static const char *const names[] = {"database",
					    "user",
					    "cl_active",
					    "cl_waiting",
					    "cl_active_cancel_req",
					    "cl_waiting_cancel_req",
					    "sv_active",
					    "sv_active_cancel",
					    "sv_being_canceled",
					    "sv_idle",
					    "sv_used",
					    "sv_tested",
					    "sv_login",
					    "maxwait",
					    "maxwait_us",
					    "pool_mode",
					    "load_balance_hosts"};
	struct buf *b = &c->c.out;
	admin_header(b, "ssiiiiiiiiiiiiiss", names);
	struct admin_row r = {0};
	row_str(&r, "pgbouncer"); /* the console's own pool, as PgBouncer shows it */
	row_str(&r, "pgbouncer");
	row_int(&r, admin_client_count());
	for (int i = 0; i < 10; i++)
		row_int(&r, 0);
	row_int(&r, 0);
	row_int(&r, 0);
	row_str(&r, "statement");
	row_str(&r, NULL);
	admin_write_row(b, &r);
	pool_foreach(pool_row, b);
}

/* ---- SHOW STATS family ---------------------------------------------------------------------- */

static const char *const stats_totals_names[] = {"database",	       "server_assignment_count",
						 "xact_count",	       "query_count",
						 "bytes_received",     "bytes_sent",
						 "xact_time",	       "query_time",
						 "wait_time",	       "client_parse_count",
						 "server_parse_count", "bind_count",
						 "client_login_count"};
static const char *const stats_avg_names[] = {"database",
					      "server_assignment_count",
					      "xact_count",
					      "query_count",
					      "bytes_received",
					      "bytes_sent",
					      "xact_time",
					      "query_time",
					      "wait_time",
					      "avg_client_parse_count",
					      "avg_server_parse_count",
					      "avg_bind_count",
					      "avg_client_login_count"};
static const char *const stats_names[] = {"database",
					  "total_server_assignment_count",
					  "total_xact_count",
					  "total_query_count",
					  "total_received",
					  "total_sent",
					  "total_xact_time",
					  "total_query_time",
					  "total_wait_time",
					  "total_client_parse_count",
					  "total_server_parse_count",
					  "total_bind_count",
					  "total_client_login_count",
					  "avg_server_assignment_count",
					  "avg_xact_count",
					  "avg_query_count",
					  "avg_recv",
					  "avg_sent",
					  "avg_xact_time",
					  "avg_query_time",
					  "avg_wait_time",
					  "avg_client_parse_count",
					  "avg_server_parse_count",
					  "avg_bind_count",
					  "avg_client_login_count"};

/* which: 't' totals, 'a' averages, 'b' both (SHOW STATS). */
static void show_stats_kind(struct client *c, char which)
{
	struct buf *b = &c->c.out;
	char types[2 * STAT_N + 2] = "s";
	int ncols = which == 'b' ? 2 * STAT_N : STAT_N;
	memset(types + 1, 'N', (size_t)ncols);
	types[ncols + 1] = '\0';
	admin_header(b, types,
		     which == 'b'   ? stats_names
		     : which == 't' ? stats_totals_names
				    : stats_avg_names);
	int n;
	struct stats_row *rows = stats_by_database(&n);
	for (int i = 0; i < n; i++) {
		struct admin_row r = {0};
		row_str(&r, rows[i].db);
		for (int k = 0; k < STAT_N && which != 'a'; k++)
			row_u64(&r, rows[i].total[k]);
		for (int k = 0; k < STAT_N && which != 't'; k++)
			row_u64(&r, rows[i].avg[k]);
		admin_write_row(b, &r);
	}
	free(rows);
}

static void show_totals(struct client *c)
{
	static const char *const names[] = {"name", "value"};
	static const char *const fields[STAT_N] = {"server_assignment_count",
						   "xact_count",
						   "query_count",
						   "client_bytes",
						   "server_bytes",
						   "xact_time",
						   "query_time",
						   "wait_time",
						   "ps_client_parse_count",
						   "ps_server_parse_count",
						   "ps_bind_count",
						   "client_login_count"};
	struct buf *b = &c->c.out;
	admin_header(b, "sN", names);
	uint64_t tot[STAT_N] = {0}, avg[STAT_N] = {0};
	int n;
	struct stats_row *rows = stats_by_database(&n);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < STAT_N; k++) {
			tot[k] += rows[i].total[k];
			avg[k] += rows[i].avg[k];
		}
	free(rows);
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < STAT_N; k++) {
			struct admin_row r = {0};
			row_fmt(&r, "%s_%s", pass ? "avg" : "total", fields[k]);
			row_u64(&r, pass ? avg[k] : tot[k]);
			admin_write_row(b, &r);
		}
}

/* ---- SHOW DATABASES / USERS -------------------------------------------------------------------
 */

struct db_count {
	const char *name;
	bool by_user; /* name is a user: count its pools */
	int servers, clients;
};

static void count_pool(struct pool *p, void *arg)
{
	struct db_count *d = arg;
	if (d->by_user ? strcmp(p->user, d->name) == 0 : strcmp(p->name, d->name) == 0) {
		d->servers += p->n_servers;
		d->clients += p->n_clients;
	}
}

static int pick(int v, int global)
{
	return v >= 0 ? v : global;
}

static void db_row(struct buf *b, const struct config *cfg, const char *name,
		   const struct db_entry *db)
{
	struct admin_row r = {0};
	struct db_count cnt = {.name = name};
	pool_foreach(count_pool, &cnt);
	int port = db->port > 0 ? db->port : 5432;
	row_str(&r, name);
	row_str(&r, db->host ? db->host : config_default_host(port));
	row_int(&r, port);
	row_str(&r, db->dbname ? db->dbname : name);
	row_str(&r, db->user);
	row_int(&r, config_fleet_share(cfg, pick(db->pool_size, cfg->default_pool_size)));
	row_int(&r, config_fleet_share(cfg, pick(db->min_pool_size, cfg->min_pool_size)));
	row_int(&r, config_fleet_share(cfg, pick(db->reserve_pool_size, cfg->reserve_pool_size)));
	row_int(&r, (db->server_lifetime > 0 ? db->server_lifetime : cfg->server_lifetime) /
			USEC_PER_SEC);
	row_str(&r, db->pool_mode != POOL_INHERIT ? config_pool_mode_name(db->pool_mode) : NULL);
	/* load_balance_hosts: NULL unless host is a list, as PgBouncer shows it */
	row_str(&r,
		db->host && strchr(db->host, ',') ? config_lb_name(db->load_balance_hosts) : NULL);
	row_int(&r, config_fleet_share(cfg, pick(db->max_db_connections, cfg->max_db_connections)));
	row_int(&r, cnt.servers);
	row_int(&r, db->max_db_client_connections > 0 ? db->max_db_client_connections
						      : cfg->max_db_client_connections);
	row_int(&r, climit_db_clients(name));
	row_int(&r, pause_flag(name));
	row_int(&r, pause_is_disabled(name));
	admin_write_row(b, &r);
}

struct name_set {
	const char **v;
	int n, cap;
	bool users;
};

static void name_add(struct name_set *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = xrealloc(s->v, sizeof(*s->v) * (size_t)s->cap);
	}
	s->v[s->n++] = name; /* pool names live until exit */
}

static void name_pool(struct pool *p, void *arg)
{
	struct name_set *s = arg;
	name_add(s, s->users ? p->user : p->name);
}

/* A user with clients now (client_limits.c keeps its names until exit). */
static void name_user(const char *user, void *arg)
{
	name_add(arg, user);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void show_databases(struct client *c)
{
	static const char *const names[] = {"name",
					    "host",
					    "port",
					    "database",
					    "force_user",
					    "pool_size",
					    "min_pool_size",
					    "reserve_pool_size",
					    "server_lifetime",
					    "pool_mode",
					    "load_balance_hosts",
					    "max_connections",
					    "current_connections",
					    "max_client_connections",
					    "current_client_connections",
					    "paused",
					    "disabled"};
	const struct config *cfg = config_current();
	struct buf *b = &c->c.out;
	admin_header(b, "ssissiiiissiiiiii", names);
	struct name_set s = {0};
	for (int i = 0; i < cfg->ndbs; i++)
		if (strcmp(cfg->dbs[i].name, "*") != 0)
			name_add(&s, cfg->dbs[i].name);
	pool_foreach(name_pool, &s);
	qsort(s.v, (size_t)s.n, sizeof(*s.v), name_cmp);
	for (int i = 0; i < s.n; i++) {
		const struct db_entry *db = config_find_db(cfg, s.v[i]);
		if (db) /* a database removed by a reload is no longer listed */
			db_row(b, cfg, s.v[i], db);
	}
	struct admin_row r = {0}; /* the console itself */
	const char *row[] = {"pgbouncer", NULL, NULL, "pgbouncer", "pgbouncer", "2",  "0", "0", "0",
			     "statement", NULL, "0",  "0",	   "0",		NULL, "0", "0"};
	char port[16], maxcl[16], ncl[16];
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	snprintf(maxcl, sizeof(maxcl), "%d", cfg->max_db_client_connections);
	snprintf(ncl, sizeof(ncl), "%d", climit_db_clients("pgbouncer"));
	row[2] = port;
	row[13] = maxcl;
	row[14] = ncl;
	for (int i = 0; i < 17; i++)
		row_str(&r, row[i]);
	admin_write_row(b, &r);
	free(s.v);
}

/* A [users] entry's pool_size or reserve_pool_size as PgBouncer shows it: text, "%9d", or ""
 * when the entry does not set it. */
static void row_user_size(struct admin_row *r, int size)
{
	if (size >= 0)
		row_fmt(r, "%9d", size);
	else
		row_str(r, "");
}

static void show_users(struct client *c)
{
	static const char *const names[] = {"name",
					    "pool_size",
					    "reserve_pool_size",
					    "pool_mode",
					    "max_user_connections",
					    "current_connections",
					    "max_user_client_connections",
					    "current_client_connections"};
	const struct config *cfg = config_current();
	struct buf *b = &c->c.out;
	admin_header(b, "ssssiiii", names);
	struct name_set s = {.users = true};
	for (int i = 0; i < cfg->nusers; i++)
		name_add(&s, cfg->users[i].name);
	pool_foreach(name_pool, &s);
	climit_foreach_user(name_user, &s);
	qsort(s.v, (size_t)s.n, sizeof(*s.v), name_cmp);
	for (int i = 0; i < s.n; i++) {
		const struct user_entry *u = config_find_user(cfg, s.v[i]);
		struct db_count cnt = {.name = s.v[i], .by_user = true};
		pool_foreach(count_pool, &cnt);
		struct admin_row r = {0};
		row_str(&r, s.v[i]);
		row_user_size(&r, u ? u->pool_size : -1);
		row_user_size(&r, u ? u->reserve_pool_size : -1);
		row_str(&r, u && u->pool_mode != POOL_INHERIT ? config_pool_mode_name(u->pool_mode)
							      : NULL);
		row_int(&r, u ? pick(u->max_user_connections, cfg->max_user_connections)
			      : cfg->max_user_connections);
		row_int(&r, cnt.servers);
		row_int(&r, u && u->max_user_client_connections > 0
				? u->max_user_client_connections
				: cfg->max_user_client_connections);
		row_int(&r, climit_user_clients(s.v[i]));
		admin_write_row(b, &r);
	}
	free(s.v);
}

/* ---- small tables ---------------------------------------------------------------------------- */

struct totals {
	int pools, servers, clients;
};

static void total_pool(struct pool *p, void *arg)
{
	struct totals *t = arg;
	t->pools++;
	t->servers += p->n_servers;
	t->clients += p->n_clients;
}

static void show_lists(struct client *c)
{
	static const char *const names[] = {"list", "items"};
	const struct config *cfg = config_current();
	struct totals t = {0};
	pool_foreach(total_pool, &t);
	struct name_set users = {.users = true};
	pool_foreach(name_pool, &users);
	int all = client_count(), login = all - t.clients - admin_client_count();
	const struct {
		const char *name;
		int n;
	} rows[] = {
	    {"databases", cfg->ndbs + 1},
	    {"users", users.n},
	    {"peers", cfg->npeers},
	    {"pools", t.pools + 1},
	    {"peer_pools", 0},
	    {"free_clients", 0},
	    {"used_clients", all},
	    {"login_clients", login > 0 ? login : 0},
	    {"free_servers", 0},
	    {"used_servers", t.servers},
	    {"dns_names", 0},
	    {"dns_zones", 0},
	    {"dns_queries", 0},
	    {"dns_pending", 0},
	};
	free(users.v);
	struct buf *b = &c->c.out;
	admin_header(b, "si", names);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct admin_row r = {0};
		row_str(&r, rows[i].name);
		row_int(&r, rows[i].n);
		admin_write_row(b, &r);
	}
}

static int setting_cmp(const void *a, const void *b)
{
	const char *d;
	bool x;
	return strcmp(config_setting_info(*(const int *)a, &d, &x),
		      config_setting_info(*(const int *)b, &d, &x));
}

static void show_config(struct client *c)
{
	static const char *const names[] = {"key", "value", "default", "changeable"};
	const struct config *cfg = config_current();
	int n = config_setting_count(), order[256];
	for (int i = 0; i < n && i < 256; i++)
		order[i] = i;
	qsort(order, (size_t)n, sizeof(int), setting_cmp);
	struct buf *b = &c->c.out;
	admin_header(b, "ssss", names);
	for (int i = 0; i < n; i++) {
		const char *def;
		bool reload;
		const char *key = config_setting_info(order[i], &def, &reload);
		struct admin_row r = {0};
		char value[1024];
		config_setting_value(cfg, order[i], value, sizeof(value));
		row_str(&r, key);
		row_str(&r, value);
		row_str(&r, def);
		row_str(&r, reload ? "yes" : "no");
		admin_write_row(b, &r);
	}
}

static void show_mem(struct client *c)
{
	static const char *const names[] = {"name", "size", "used", "free", "memtotal"};
	struct totals t = {0};
	pool_foreach(total_pool, &t);
	const struct {
		const char *name;
		int size, used;
	} rows[] = {
	    {"client", (int)sizeof(struct client), client_count()},
	    {"server", (int)sizeof(struct server), t.servers},
	    {"pool", (int)sizeof(struct pool), t.pools},
	};
	struct buf *b = &c->c.out;
	admin_header(b, "siiii", names);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct admin_row r = {0};
		row_str(&r, rows[i].name);
		row_int(&r, rows[i].size);
		row_int(&r, rows[i].used);
		row_int(&r, 0);
		row_int(&r, (long long)rows[i].size * rows[i].used);
		admin_write_row(b, &r);
	}
}

static void show_state(struct client *c)
{
	static const char *const names[] = {"key", "value"};
	bool paused = pause_flag(NULL);
	const char *rows[][2] = {{"active", paused ? "no" : "yes"},
				 {"paused", paused ? "yes" : "no"},
				 {"suspended", "no"}};
	struct buf *b = &c->c.out;
	admin_header(b, "ss", names);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct admin_row r = {0};
		row_str(&r, rows[i][0]);
		row_str(&r, rows[i][1]);
		admin_write_row(b, &r);
	}
}

static void show_version(struct client *c)
{
	static const char *const names[] = {"version"};
	struct admin_row r = {0};
	admin_header(&c->c.out, "s", names);
	row_str(&r, SHOAL_VERSION_STRING);
	admin_write_row(&c->c.out, &r);
}

/* Tables Shoal has nothing for (no peers, no DNS cache, no takeover): the header only. */
static void show_empty(struct client *c, const char *types, const char *const *names)
{
	admin_header(&c->c.out, types, names);
}

static void show_help(struct client *c)
{
	admin_notice(c, "Console usage",
		     "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION"
		     "\n\tSHOW PEERS|PEER_POOLS"
		     "\n\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE"
		     "\n\tSHOW DNS_HOSTS|DNS_ZONES|HOSTS"
		     "\n\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS"
		     "\n\tSET key = arg"
		     "\n\tRELOAD"
		     "\n\tPAUSE [<db>]"
		     "\n\tRESUME [<db>]"
		     "\n\tDISABLE <db>"
		     "\n\tENABLE <db>"
		     "\n\tDISABLE HOST <db> <host>:<port>"
		     "\n\tENABLE HOST <db> <host>:<port>"
		     "\n\tPRIMARY HOST <db> <host>:<port>"
		     "\n\tRECONNECT [<db>]"
		     "\n\tKILL [<db>]"
		     "\n\tKILL_CLIENT <client_id>"
		     "\n\tSUSPEND"
		     "\n\tSHUTDOWN"
		     "\n\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS"
		     "\n\tHANDOFF"
		     "\n\tWAIT_CLOSE [<db>]");
}

static bool show_fake(struct client *c, const char *what)
{
	for (size_t i = 0; i < ADMIN_FAKE_PARAMS; i++) {
		if (strcmp(what, admin_fake_params[i][0]) != 0)
			continue;
		const char *names[] = {admin_fake_params[i][0]};
		struct admin_row r = {0};
		admin_header(&c->c.out, "s", names);
		row_str(&r, admin_fake_params[i][1]);
		admin_write_row(&c->c.out, &r);
		return true;
	}
	return false;
}

static const char *const peers_names[] = {"peer_id", "host", "port", "pool_size"};
/* The [peers] entries. pool_size is 0: Shoal keeps no connections to peers, it opens one per
 * forwarded cancel request. */
static void show_peers(struct client *c)
{
	const struct config *cfg = config_current();
	admin_header(&c->c.out, "isii", peers_names);
	for (int i = 0; i < cfg->npeers; i++) {
		struct admin_row r = {0};
		row_int(&r, cfg->peers[i].id);
		row_str(&r, cfg->peers[i].host);
		row_int(&r, cfg->peers[i].port);
		row_int(&r, 0);
		admin_write_row(&c->c.out, &r);
	}
}

static const char *const peer_pools_names[] = {
    "peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active_cancel", "sv_login"};
static const char *const dns_hosts_names[] = {"hostname", "ttl", "addrs"};
static const char *const dns_zones_names[] = {"zonename", "serial", "count"};
static const char *const fds_names[] = {
    "fd",	 "task",     "user",	 "database",	     "addr",
    "port",	 "cancel",   "link",	 "client_encoding",  "std_strings",
    "datestyle", "timezone", "password", "scram_client_key", "scram_server_key"};

/* The resolver thread's cache (dns.c): every host name Shoal connects to, with the seconds until
 * its next lookup and the addresses it resolved to. */
static void show_dns_hosts(struct client *c)
{
	enum { MAX_ROWS = 1024 };
	struct dns_host_info *hosts = xcalloc(MAX_ROWS, sizeof(*hosts));
	int n = dns_hosts(hosts, MAX_ROWS);
	admin_header(&c->c.out, "sqs", dns_hosts_names);
	for (int i = 0; i < n; i++) {
		struct admin_row r = {0};
		row_str(&r, hosts[i].host);
		row_int(&r, hosts[i].ttl_s);
		row_str(&r, hosts[i].addrs);
		admin_write_row(&c->c.out, &r);
	}
	free(hosts);
}

static const char *const hosts_names[] = {
    "database", "host",	    "port",	    "role",    "read_only", "breaker", "servers",
    "connects", "failures", "lsn",	    "checked", "lag_bytes", "lagging", "split_brain",
    "state",	"weight",   "transactions", "in_use",  "idle",	    "zone",    "rtt_ms"};

/* Shoal's: one row per host of the database entries with a host list or target_session_attrs
 * (hosts.c): its role as last read, its circuit breaker, and its connection counts. */
static void show_hosts(struct client *c)
{
	enum { MAX_ROWS = 1024 };
	struct host_view *hosts = xcalloc(MAX_ROWS, sizeof(*hosts));
	int n = hosts_snapshot(hosts, MAX_ROWS);
	admin_header(&c->c.out, "ssisssiqqqsqsssiqiiss", hosts_names);
	for (int i = 0; i < n; i++) {
		struct admin_row r = {0};
		row_str(&r, hosts[i].db);
		row_str(&r, hosts[i].host);
		row_int(&r, hosts[i].port);
		row_str(&r, hosts_role_name(hosts[i].role));
		row_str(&r, hosts[i].role ? (hosts[i].read_only ? "on" : "off") : NULL);
		row_str(&r, hosts_breaker_name(hosts[i].breaker));
		row_int(&r, hosts[i].servers);
		row_int(&r, (long long)hosts[i].connects);
		row_int(&r, (long long)hosts[i].failures);
		row_u64(&r, hosts[i].lsn); /* WAL bytes: replayed (standby) or written (primary) */
		if (hosts[i].check_age >= 0) /* seconds since its last good health check */
			row_fmt(&r, "%.1f", hosts[i].check_age);
		else
			row_str(&r, NULL);
		if (hosts[i].lag_bytes >= 0) /* a standby's, against the primary's last check */
			row_int(&r, (long long)hosts[i].lag_bytes);
		else
			row_str(&r, NULL);
		row_str(&r, hosts[i].lagging ? "yes" : "no");
		row_str(&r, hosts[i].split ? "yes" : "no");
		row_str(&r, hosts_state_name(&hosts[i]));
		row_int(&r, hosts[i].weight);
		row_u64(&r, hosts[i].xacts); /* transactions its servers ended */
		row_int(&r, hosts[i].servers - hosts[i].idle);
		row_int(&r, hosts[i].idle);
		row_str(&r, hosts[i].zone[0] ? hosts[i].zone : NULL); /* zone=; NULL: none */
		if (hosts[i].rtt > 0) /* how long its health checks take, averaged */
			row_fmt(&r, "%.1f", hosts[i].rtt * 1000);
		else
			row_str(&r, NULL);
		admin_write_row(&c->c.out, &r);
	}
	free(hosts);
}

shoal_rc admin_show(struct client *c, const char *what)
{
	if (!strcmp(what, "help"))
		show_help(c);
	else if (!strcmp(what, "clients"))
		show_clients(c);
	else if (!strcmp(what, "servers"))
		show_servers(c);
	else if (!strcmp(what, "sockets") || !strcmp(what, "active_sockets"))
		show_sockets(c);
	else if (!strcmp(what, "pools"))
		show_pools(c);
	else if (!strcmp(what, "stats"))
		show_stats_kind(c, 'b');
	else if (!strcmp(what, "stats_totals"))
		show_stats_kind(c, 't');
	else if (!strcmp(what, "stats_averages"))
		show_stats_kind(c, 'a');
	else if (!strcmp(what, "totals"))
		show_totals(c);
	else if (!strcmp(what, "databases"))
		show_databases(c);
	else if (!strcmp(what, "users"))
		show_users(c);
	else if (!strcmp(what, "lists"))
		show_lists(c);
	else if (!strcmp(what, "config"))
		show_config(c);
	else if (!strcmp(what, "mem"))
		show_mem(c);
	else if (!strcmp(what, "state"))
		show_state(c);
	else if (!strcmp(what, "version"))
		show_version(c);
	else if (!strcmp(what, "peers"))
		show_peers(c);
	else if (!strcmp(what, "peer_pools"))
		show_empty(c, "iiiii", peer_pools_names);
	else if (!strcmp(what, "dns_hosts"))
		show_dns_hosts(c);
	else if (!strcmp(what, "hosts"))
		show_hosts(c);
	else if (!strcmp(what, "dns_zones"))
		show_empty(c, "sqi", dns_zones_names);
	else if (!strcmp(what, "fds")) {
		if (c->admin != ADMIN_FULL) {
			admin_error(c, "08P01", "admin access needed");
			return SHOAL_ERROR;
		}
		show_empty(c, "issssiqisssssbb", fds_names);
	} else if (!show_fake(c, what))
		return SHOAL_AGAIN;
	proto_write_command_complete(&c->c.out, "SHOW");
	return SHOAL_OK;
}
