/* http_routes.c: what each path answers. /health/live and /health/ready are for orchestrators
 * and reveal nothing, so they and the dashboard's static page need no token; everything that
 * shows pools does when http_token is set. */
#include "http_conn.h"
#include "http_history.h"
#include "http_json.h"
#include "http_probe.h"
#include "http_server.h"
#include "config.h"
#include "hosts.h"
#include "pool_view.h"
#include "shoal_version.h"
#include "worker.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_metrics(struct buf *out); /* http_metrics.c */
extern const char dashboard_html[]; /* generated from dashboard.html */
extern const size_t dashboard_html_len;

static void set_json(struct http_response *r, int status)
{
	r->status = status;
	r->content_type = "application/json";
}

_Static_assert(sizeof(((struct http_request *)0)->auth) >=
		   sizeof("Bearer ") + CONFIG_HTTP_TOKEN_MAX,
	       "the parser's Authorization field must hold the longest token");

static bool token_ok(const struct http_request *req)
{
	const char *tok = config_current()->http_token;
	if (!tok || !*tok)
		return true;
	char want[sizeof("Bearer ") + CONFIG_HTTP_TOKEN_MAX];
	int n = snprintf(want, sizeof(want), "Bearer %s", tok);
	size_t have = strlen(req->auth);
	return n > 0 && (size_t)n == have && CRYPTO_memcmp(want, req->auth, have) == 0;
}

static void route_live(struct http_response *r)
{
	set_json(r, 200);
	json_text(&r->body, "{\"status\":\"live\"}\n");
}

static void route_ready(struct http_response *r)
{
	bool draining = http_draining();
	set_json(r, draining ? 503 : 200);
	json_text(&r->body,
		  draining ? "{\"status\":\"shutting down\"}\n" : "{\"status\":\"ready\"}\n");
}

static void pools_json(struct buf *b, usec_t now)
{
	int n;
	struct pool_view *vs = pool_view_all(&n, now);
	json_text(b, "\"pools\":[");
	for (int i = 0; i < n; i++) {
		struct pool_view *v = &vs[i];
		json_text(b, i ? ",{" : "{");
		json_kv_str(b, "database", v->database, true);
		json_kv_str(b, "user", v->user, true);
		json_kv_int(b, "total", v->sv_total, true);
		json_kv_int(b, "active", v->sv_active, true);
		json_kv_int(b, "idle", v->sv_idle, true);
		json_kv_int(b, "waiting", v->cl_waiting, true);
		json_kv_int(b, "clients", v->cl_active + v->cl_waiting, true);
		json_kv_int(b, "max", v->pool_size, true);
		json_kv_num(b, "maxwait_ms", (double)v->maxwait_us / 1000.0, false);
		json_text(b, "}");
	}
	json_text(b, "]");
	free(vs);
}

static void unprobed_json(struct buf *b)
{
	const struct probe_skip *s;
	int n;
	probe_unprobed(&s, &n);
	json_text(b, "\"unprobed\":[");
	for (int i = 0; i < n; i++) {
		json_text(b, i ? ",{" : "{");
		json_kv_str(b, "database", s[i].database, true);
		json_kv_str(b, "reason", s[i].reason, false);
		json_text(b, "}");
	}
	json_text(b, "],");
}

/* With nothing probed there is nothing to call ok: "unprobed", the first reason on top. */
static void unprobed_status(struct buf *b)
{
	const struct probe_skip *s;
	int n;
	probe_unprobed(&s, &n);
	json_kv_str(b, "status", "unprobed", true);
	char why[PROBE_NAME_LEN + 210];
	if (n)
		snprintf(why, sizeof(why), "%s: %s", s[0].database, s[0].reason);
	else
		snprintf(why, sizeof(why), "no database to probe");
	json_kv_str(b, "reason", why, true);
}

/* {status, [reason], latency_ms, checks:[...], unprobed:[...], pools:[...], uptime_s,
 * version} */
static void health_json(struct buf *b, const struct probe_result *res, int n, bool ok)
{
	double worst = 0;
	for (int i = 0; i < n; i++)
		if (res[i].ok && res[i].latency_ms > worst)
			worst = res[i].latency_ms;
	json_text(b, "{");
	if (n == 0)
		unprobed_status(b);
	else
		json_kv_str(b, "status", ok ? "ok" : "unavailable", true);
	for (int i = 0; i < n && !ok; i++) {
		if (res[i].ok)
			continue;
		char why[PROBE_NAME_LEN + 260];
		snprintf(why, sizeof(why), "%s: %s", res[i].database, res[i].reason);
		json_kv_str(b, "reason", why, true); /* the first failing database, for LB logs */
		break;
	}
	json_kv_num(b, "latency_ms", worst, true);
	json_text(b, "\"checks\":[");
	for (int i = 0; i < n; i++) {
		json_text(b, i ? ",{" : "{");
		json_kv_str(b, "database", res[i].database, true);
		json_kv_str(b, "user", res[i].user, true);
		json_kv_bool(b, "ok", res[i].ok, true);
		if (res[i].ok)
			json_kv_num(b, "latency_ms", res[i].latency_ms, false);
		else
			json_kv_str(b, "reason", res[i].reason, false);
		json_text(b, "}");
	}
	json_text(b, "],");
	unprobed_json(b);
	pools_json(b, shoal_now());
	json_text(b, ",");
	json_kv_num(b, "uptime_s", http_uptime(), true);
	json_kv_str(b, "version", SHOAL_VERSION, false);
	json_text(b, "}\n");
}

/* 0: the probe is running; the listener calls again when it ends. */
static void route_health(struct http_response *r)
{
	const struct probe_result *res;
	int n;
	if (http_draining()) {
		set_json(r, 503);
		json_text(&r->body, "{\"status\":\"shutting down\"}\n");
		return;
	}
	if (!probe_results(shoal_now(), &res, &n)) {
		r->status = 0;
		return;
	}
	bool ok = true;
	for (int i = 0; i < n; i++)
		ok = ok && res[i].ok;
	set_json(r, ok ? 200 : 503);
	health_json(&r->body, res, n, ok);
}

/* "hosts":[...]: every host of a host list (hosts.c), for the dashboard's hosts card. */
static void hosts_json(struct buf *b)
{
	enum { MAX_HOSTS = 256 };
	struct host_view *hs = xcalloc(MAX_HOSTS, sizeof(*hs));
	int n = hosts_snapshot(hs, MAX_HOSTS);
	json_text(b, "\"hosts\":[");
	for (int i = 0; i < n; i++) {
		json_text(b, i ? ",{" : "{");
		json_kv_str(b, "database", hs[i].db, true);
		json_kv_str(b, "host", hs[i].host, true);
		json_kv_int(b, "port", hs[i].port, true);
		json_kv_str(b, "role", hosts_role_name(hs[i].role), true);
		json_kv_str(b, "breaker", hosts_breaker_name(hs[i].breaker), true);
		json_kv_int(b, "servers", hs[i].servers, true);
		json_kv_int(b, "connects", (long long)hs[i].connects, true);
		json_kv_str(b, "state", hosts_state_name(&hs[i]), true);
		json_kv_str(b, "zone", hs[i].zone, true);
		json_kv_int(b, "lag_bytes", (long long)hs[i].lag_bytes, true);
		json_kv_int(b, "transactions", (long long)hs[i].xacts, true);
		json_kv_int(b, "failures", (long long)hs[i].failures, false);
		json_text(b, "}");
	}
	json_text(b, "]");
	free(hs);
}

/* The dashboard's feed: the pools without a probe, and the hosts of host lists. */
static void route_pools(struct http_response *r)
{
	set_json(r, 200);
	json_text(&r->body, "{");
	pools_json(&r->body, shoal_now());
	json_text(&r->body, ",");
	hosts_json(&r->body);
	json_text(&r->body, ",");
	json_kv_num(&r->body, "uptime_s", http_uptime(), true);
	json_kv_str(&r->body, "version", SHOAL_VERSION, false);
	json_text(&r->body, "}\n");
}

static bool needs_token(const char *path)
{
	return strcmp(path, "/health") == 0 || strcmp(path, "/metrics") == 0 ||
	       strcmp(path, "/api/pools") == 0 || strcmp(path, "/api/history") == 0;
}

static void route_text(struct http_response *r, int status, const char *text)
{
	r->status = status;
	r->content_type = "text/plain; charset=utf-8";
	json_text(&r->body, text);
}

void http_route(const struct http_request *req, struct http_response *r)
{
	const char *path = req->path;
	if (strcmp(req->method, "GET") != 0) {
		route_text(r, 405, "405 Method Not Allowed: only GET\n");
		r->extra_headers = "Allow: GET\r\n";
	} else if (strcmp(path, "/health/live") == 0) {
		route_live(r);
	} else if (strcmp(path, "/health/ready") == 0) {
		route_ready(r);
	} else if (strcmp(path, "/") == 0) {
		r->status = 200;
		r->content_type = "text/html; charset=utf-8";
		buf_append(&r->body, dashboard_html, dashboard_html_len);
	} else if (!needs_token(path)) {
		route_text(
		    r, 404,
		    "404 Not Found: try /health, /health/live, /health/ready, /metrics, /\n");
	} else if (!token_ok(req)) {
		route_text(r, 401, "401 Unauthorized: send Authorization: Bearer <http_token>\n");
		r->extra_headers = "WWW-Authenticate: Bearer realm=\"shoal\"\r\n";
	} else if (strcmp(path, "/health") == 0) {
		route_health(r);
	} else if (strcmp(path, "/api/pools") == 0) {
		route_pools(r);
	} else if (strcmp(path, "/api/history") == 0) {
		set_json(r, 200);
		history_json(&r->body);
	} else {
		r->status = 200;
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
		http_metrics(&r->body);
	}
}
