/* http_metrics.c: GET /metrics in the Prometheus text exposition format (version 0.0.4). Names
 * follow Prometheus conventions: a shoal_ prefix, base units (seconds, bytes), _total on
 * counters; every per-pool series carries database and user labels. */
#include "buf.h"
#include "cancel.h"
#include "config.h"
#include "error_stats.h"
#include "hosts.h"
#include "http_json.h"
#include "http_server.h"
#include "pool_view.h"
#include "shoal_version.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_metrics(struct buf *out);

/* A label value with \\, \" and \n escaped and bytes that are not UTF-8 replaced (Prometheus
 * rejects a scrape with an invalid label), appended whole. */
static void put_label(struct buf *b, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t left = strlen(v);
	while (left > 0) {
		size_t n = utf8_seq_len(p, left);
		if (n == 0) {
			buf_append(b, UTF8_REPLACEMENT, 3);
			n = 1;
		} else if (*p == '\\' || *p == '"') {
			buf_append(b, "\\", 1);
			buf_append(b, p, 1);
		} else if (*p == '\n') {
			buf_append(b, "\\n", 2);
		} else {
			buf_append(b, p, n);
		}
		p += n;
		left -= n;
	}
}

/* name{database="...",user="..." -- the caller closes the brace. */
static void series_start(struct buf *b, const char *name, const struct pool_view *v)
{
	buf_printf(b, "%s{database=\"", name);
	put_label(b, v->database);
	buf_printf(b, "\",user=\"");
	put_label(b, v->user);
	buf_printf(b, "\"");
}

static void header(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct family {
	const char *name, *type, *help;
	const char *state; /* a "state" label value, or NULL */
};

typedef double (*view_value_fn)(const struct pool_view *v);

/* One family over every pool. */
static void family(struct buf *b, const struct family *f, const struct pool_view *vs, int n,
		   view_value_fn value)
{
	for (int i = 0; i < n; i++) {
		series_start(b, f->name, &vs[i]);
		if (f->state)
			buf_printf(b, ",state=\"%s\"", f->state);
		buf_printf(b, "} %.17g\n", value(&vs[i]));
	}
}

#define VIEW_FN(fname, expr)                                                                       \
	static double fname(const struct pool_view *v)                                             \
	{                                                                                          \
		return (double)(expr);                                                             \
	}
VIEW_FN(cl_linked, v->cl_linked)
VIEW_FN(cl_idle, v->cl_active - v->cl_linked)
VIEW_FN(cl_waiting, v->cl_waiting)
VIEW_FN(sv_active, v->sv_active)
VIEW_FN(sv_idle, v->sv_idle)
VIEW_FN(sv_login, v->sv_login)
VIEW_FN(sv_used, v->sv_used)
VIEW_FN(pool_size, v->pool_size)
VIEW_FN(reserve_size, v->reserve_pool_size)
VIEW_FN(maxwait, (double)v->maxwait_us / 1e6)
VIEW_FN(xacts, v->totals[STAT_XACT])
VIEW_FN(queries, v->totals[STAT_QUERY])
VIEW_FN(bytes_recv, v->totals[STAT_RECV])
VIEW_FN(bytes_sent, v->totals[STAT_SENT])
VIEW_FN(xact_time, (double)v->totals[STAT_XACT_TIME] / 1e6)
VIEW_FN(connects, v->server_connects)
VIEW_FN(connect_failures, v->server_login_failures)
VIEW_FN(ps_hits, v->ps_hits)
VIEW_FN(ps_misses, v->ps_misses)
VIEW_FN(ps_evictions, v->ps_evictions)
VIEW_FN(query_time, (double)v->totals[STAT_QUERY_TIME] / 1e6)
VIEW_FN(wait_time, (double)v->totals[STAT_WAIT_TIME] / 1e6)

/* The state-labelled families: one series per pool and state. */
static void state_family(struct buf *b, const struct family *base, const char *const *states,
			 const view_value_fn *fns, int nstates, const struct pool_view *vs, int n)
{
	header(b, base->name, base->type, base->help);
	for (int i = 0; i < nstates; i++) {
		struct family f = *base;
		f.state = states[i];
		family(b, &f, vs, n, fns[i]);
	}
}

static void pool_metrics(struct buf *b, const struct pool_view *vs, int n)
{
	static const struct family clients = {
	    "shoal_pool_clients", "gauge",
	    "Client connections by state: active (linked to a server), idle, waiting", NULL};
	static const struct family servers = {
	    "shoal_pool_servers", "gauge",
	    "Server connections by state: active, idle, used (being reset), login", NULL};
	static const char *const cl_states[] = {"active", "idle", "waiting"};
	static const view_value_fn cl_fns[] = {cl_linked, cl_idle, cl_waiting};
	static const char *const sv_states[] = {"active", "idle", "used", "login"};
	static const view_value_fn sv_fns[] = {sv_active, sv_idle, sv_used, sv_login};
	state_family(b, &clients, cl_states, cl_fns, 3, vs, n);
	state_family(b, &servers, sv_states, sv_fns, 4, vs, n);
}

static const struct {
	struct family f;
	view_value_fn fn;
} simple[] = {
    {{"shoal_pool_size", "gauge", "Configured pool_size (servers per pool)", NULL}, pool_size},
    {{"shoal_pool_reserve_size", "gauge", "Configured reserve_pool_size", NULL}, reserve_size},
    {{"shoal_pool_max_wait_seconds", "gauge",
      "How long the oldest waiting client of the pool has waited", NULL},
     maxwait},
    {{"shoal_pool_transactions_total", "counter", "Transactions completed", NULL}, xacts},
    {{"shoal_pool_queries_total", "counter", "Queries completed", NULL}, queries},
    {{"shoal_pool_received_bytes_total", "counter", "Bytes clients sent to servers", NULL},
     bytes_recv},
    {{"shoal_pool_sent_bytes_total", "counter", "Bytes servers sent to clients", NULL},
     bytes_sent},
    {{"shoal_pool_server_connects_total", "counter", "Server connections opened", NULL},
     connects},
    {{"shoal_pool_server_login_failures_total", "counter",
      "Server connections that failed before their login completed", NULL},
     connect_failures},
    {{"shoal_pool_prepared_cache_hits_total", "counter",
      "Prepared statements the linked server already had (transaction/statement mode)", NULL},
     ps_hits},
    {{"shoal_pool_prepared_cache_misses_total", "counter",
      "Prepared statements that had to be prepared on the linked server first", NULL},
     ps_misses},
    {{"shoal_pool_prepared_cache_evictions_total", "counter",
      "Prepared statements closed on a server to stay within its cache bounds", NULL},
     ps_evictions},
};

struct hist_family {
	const char *name, *help;
	size_t off;	   /* of the latency_hist in struct pool_hists */
	view_value_fn sum; /* seconds */
};

static const struct hist_family hists[] = {
    {"shoal_pool_query_duration_seconds", "Query time, from the request to ReadyForQuery",
     offsetof(struct pool_hists, query), query_time},
    {"shoal_pool_wait_duration_seconds", "Time a client waited for a server",
     offsetof(struct pool_hists, wait), wait_time},
    {"shoal_pool_transaction_duration_seconds", "Transaction time, from its first query to its end",
     offsetof(struct pool_hists, xact), xact_time},
};

static void hist_series(struct buf *b, const struct hist_family *f, const struct pool_view *v)
{
	const struct latency_hist *h = (const void *)((const char *)&v->hist + f->off);
	char name[96];
	uint64_t cum = 0;
	snprintf(name, sizeof(name), "%s_bucket", f->name);
	for (int i = 0; i < HIST_BUCKETS; i++) {
		cum += h->bucket[i];
		series_start(b, name, v);
		if (i < HIST_BOUNDS)
			buf_printf(b, ",le=\"%g\"} %llu\n", (double)hist_bounds_usec[i] / 1e6,
				   (unsigned long long)cum);
		else
			buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	snprintf(name, sizeof(name), "%s_sum", f->name);
	series_start(b, name, v);
	buf_printf(b, "} %.6f\n", f->sum(v));
	snprintf(name, sizeof(name), "%s_count", f->name);
	series_start(b, name, v);
	buf_printf(b, "} %llu\n", (unsigned long long)cum);
}

static void histograms(struct buf *b, const struct pool_view *vs, int n)
{
	for (size_t i = 0; i < sizeof(hists) / sizeof(hists[0]); i++) {
		header(b, hists[i].name, "histogram", hists[i].help);
		for (int j = 0; j < n; j++)
			hist_series(b, &hists[i], &vs[j]);
	}
}

static void error_metrics(struct buf *b)
{
	struct error_stat es[512];
	static const char *const from[] = {"pooler", "server"};
	int n = error_stats_read(es, 512);
	header(
	    b, "shoal_client_errors_total", "counter",
	    "ErrorResponses sent to clients by SQLSTATE: made by the pooler, or forwarded from a "
	    "server");
	for (int i = 0; i < n; i++)
		for (int j = 0; j < 2; j++)
			if (es[i].count[j])
				buf_printf(b,
					   "shoal_client_errors_total{sqlstate=\"%s\",source=\"%"
					   "s\"} %llu\n",
					   es[i].sqlstate, from[j],
					   (unsigned long long)es[i].count[j]);
}

/* name{database="...",host="...",port="..."} value: one series per host of a host list. */
static void host_series(struct buf *b, const char *name, const struct host_view *h,
			unsigned long long value)
{
	buf_printf(b, "%s{database=\"", name);
	put_label(b, h->db);
	buf_printf(b, "\",host=\"");
	put_label(b, h->host);
	buf_printf(b, "\",port=\"%d\"} %llu\n", h->port, value);
}

/* hosts.c's registry: breaker state and role as 0/1 gauges per value, counts, counters. */
static void host_metrics(struct buf *b)
{
	enum { MAX_ROWS = 1024 };
	struct host_view *hs = xcalloc(MAX_ROWS, sizeof(*hs));
	int n = hosts_snapshot(hs, MAX_ROWS);
	header(b, "shoal_host_breaker_open", "gauge",
	       "1 while the host's circuit breaker is open or half-open (docs/replicas.md)");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_breaker_open", &hs[i], hs[i].breaker != BRK_CLOSED);
	header(b, "shoal_host_standby", "gauge",
	       "1 when the host's last role check found a standby, 0 a primary or not checked");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_standby", &hs[i], hs[i].role == HOST_ROLE_STANDBY);
	header(b, "shoal_host_servers", "gauge", "Server connections to the host now");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_servers", &hs[i], (unsigned long long)hs[i].servers);
	header(b, "shoal_host_connects_total", "counter", "Server connections started to the host");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_connects_total", &hs[i], hs[i].connects);
	header(b, "shoal_host_failures_total", "counter",
	       "Breaker signals: failed logins, server connections the server ended, failed checks");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_failures_total", &hs[i], hs[i].failures);
	header(b, "shoal_host_lagging", "gauge",
	       "1 while the standby is over max_replica_lag or max_replica_lag_bytes");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_lagging", &hs[i], hs[i].lagging);
	header(b, "shoal_host_split_brain", "gauge",
	       "1 while this host and another of its entry both answer as primary");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_split_brain", &hs[i], hs[i].split);
	header(b, "shoal_host_disabled", "gauge",
	       "1 while an operator's DISABLE HOST holds it out");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_disabled", &hs[i], hs[i].disabled);
	header(b, "shoal_host_transactions_total", "counter",
	       "Transactions the host's server connections ended");
	for (int i = 0; i < n; i++)
		host_series(b, "shoal_host_transactions_total", &hs[i], hs[i].xacts);
	free(hs);
}

/* The [peers] entries: one series each, and the cancel requests forwarded to it. */
static void peer_metrics(struct buf *b)
{
	const struct config *cfg = config_current();
	header(b, "shoal_peer", "gauge",
	       "1 for each [peers] entry (an instance of the fleet cancel requests go to)");
	for (int i = 0; i < cfg->npeers; i++) {
		buf_printf(b, "shoal_peer{peer_id=\"%d\",host=\"", cfg->peers[i].id);
		put_label(b, cfg->peers[i].host);
		buf_printf(b, "\",port=\"%d\"} 1\n", cfg->peers[i].port);
	}
	header(b, "shoal_peer_cancels_forwarded_total", "counter",
	       "Cancel requests for a key another peer issued, forwarded to that peer");
	for (int i = 0; i < cfg->npeers; i++)
		buf_printf(b, "shoal_peer_cancels_forwarded_total{peer_id=\"%d\"} %llu\n",
			   cfg->peers[i].id,
			   (unsigned long long)cancel_forwarded_to(cfg->peers[i].id));
}

void http_metrics(struct buf *out)
{
	int n;
	struct pool_view *vs = pool_view_all(&n, shoal_now());
	header(out, "shoal_build_info", "gauge", "Shoal's version");
	buf_printf(out, "shoal_build_info{version=\"%s\"} 1\n", SHOAL_VERSION);
	header(out, "shoal_uptime_seconds", "gauge", "Seconds since Shoal started");
	buf_printf(out, "shoal_uptime_seconds %.3f\n", http_uptime());
	pool_metrics(out, vs, n);
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		header(out, simple[i].f.name, simple[i].f.type, simple[i].f.help);
		family(out, &simple[i].f, vs, n, simple[i].fn);
	}
	histograms(out, vs, n);
	error_metrics(out);
	host_metrics(out);
	peer_metrics(out);
	free(vs);
}
