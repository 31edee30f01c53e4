/* http_history.c: a ring of samples per pool for the dashboard (see http_history.h). Only the
 * HTTP thread touches it: sampled on its tick, read by its /api/history route. */
#include "http_history.h"
#include "error_stats.h"
#include "histogram.h"
#include "http_json.h"
#include "pool_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	F_TPS,
	F_QPS,
	F_Q50,
	F_Q99,
	F_X99,
	F_ACTIVE,
	F_IDLE,
	F_WAITING,
	F_MAX,
	F_MAXWAIT,
	F_LOGINFAIL,
	F_ERRORS,
	F_N
};
static const char *const field_names[F_N] = {
    "tps",  "qps",     "query_p50_ms", "query_p99_ms", "xact_p99_ms",	       "active",
    "idle", "waiting", "max",	       "maxwait_ms",   "login_failures_per_s", "errors_per_s"};

struct sample {
	double t; /* unix time, seconds */
	float v[F_N];
};

/* What the next sample's rates are the difference from. */
struct last {
	uint64_t xact, query, loginfail, errors;
	struct latency_hist query_h, xact_h;
};

struct series {
	char *database, *user; /* NULL: the total */
	struct sample ring[HISTORY_POINTS];
	int head, n;
	struct last last;
	bool primed;
};

static struct {
	struct series total;
	struct series *pools[HISTORY_POOLS];
	int npools;
	usec_t next;
} hy;

/* The q-quantile (0..1) of the observations in delta, in ms, interpolated within its bucket. */
static double hist_quantile(const struct latency_hist *d, double q)
{
	uint64_t all = 0;
	for (int i = 0; i < HIST_BUCKETS; i++)
		all += d->bucket[i];
	if (!all)
		return 0;
	double want = q * (double)all, seen = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		double lo = i ? (double)hist_bounds_usec[i - 1] : 0;
		double hi = i < HIST_BOUNDS ? (double)hist_bounds_usec[i] : lo * 2;
		if (seen + (double)d->bucket[i] >= want && d->bucket[i]) {
			double frac = (want - seen) / (double)d->bucket[i];
			return (lo + (hi - lo) * frac) / 1000.0;
		}
		seen += (double)d->bucket[i];
	}
	return (double)hist_bounds_usec[HIST_BOUNDS - 1] / 1000.0;
}

static void hist_delta(const struct latency_hist *now, const struct latency_hist *then,
		       struct latency_hist *out)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		out->bucket[i] = now->bucket[i] - then->bucket[i];
}

static void hist_add(struct latency_hist *into, const struct latency_hist *h)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		into->bucket[i] += h->bucket[i];
}

/* Counters of one pool (or the sum of all) at this instant. */
struct reading {
	uint64_t xact, query, loginfail, errors;
	struct latency_hist query_h, xact_h;
	int active, idle, waiting, max;
	double maxwait_ms;
};

static void reading_add(struct reading *r, const struct pool_view *v)
{
	r->xact += v->totals[STAT_XACT];
	r->query += v->totals[STAT_QUERY];
	r->loginfail += v->server_login_failures;
	hist_add(&r->query_h, &v->hist.query);
	hist_add(&r->xact_h, &v->hist.xact);
	r->active += v->sv_active;
	r->idle += v->sv_idle;
	r->waiting += v->cl_waiting;
	r->max += v->pool_size;
	if ((double)v->maxwait_us / 1000.0 > r->maxwait_ms)
		r->maxwait_ms = (double)v->maxwait_us / 1000.0;
}

static void series_push(struct series *s, const struct reading *r, double t, double dt)
{
	struct sample *x = &s->ring[(s->head + s->n) % HISTORY_POINTS];
	if (s->n == HISTORY_POINTS)
		s->head = (s->head + 1) % HISTORY_POINTS;
	else
		s->n++;
	memset(x, 0, sizeof(*x));
	x->t = t;
	struct latency_hist dq, dx;
	hist_delta(&r->query_h, &s->last.query_h, &dq);
	hist_delta(&r->xact_h, &s->last.xact_h, &dx);
	bool rates = s->primed && dt > 0;
	x->v[F_TPS] = rates ? (float)((double)(r->xact - s->last.xact) / dt) : 0;
	x->v[F_QPS] = rates ? (float)((double)(r->query - s->last.query) / dt) : 0;
	x->v[F_LOGINFAIL] = rates ? (float)((double)(r->loginfail - s->last.loginfail) / dt) : 0;
	x->v[F_ERRORS] = rates ? (float)((double)(r->errors - s->last.errors) / dt) : 0;
	x->v[F_Q50] = rates ? (float)hist_quantile(&dq, 0.5) : 0;
	x->v[F_Q99] = rates ? (float)hist_quantile(&dq, 0.99) : 0;
	x->v[F_X99] = rates ? (float)hist_quantile(&dx, 0.99) : 0;
	x->v[F_ACTIVE] = (float)r->active;
	x->v[F_IDLE] = (float)r->idle;
	x->v[F_WAITING] = (float)r->waiting;
	x->v[F_MAX] = (float)r->max;
	x->v[F_MAXWAIT] = (float)r->maxwait_ms;
	s->last = (struct last){.xact = r->xact,
				.query = r->query,
				.loginfail = r->loginfail,
				.errors = r->errors,
				.query_h = r->query_h,
				.xact_h = r->xact_h};
	s->primed = true;
}

static struct series *series_for(const char *database, const char *user)
{
	for (int i = 0; i < hy.npools; i++)
		if (!strcmp(hy.pools[i]->database, database) && !strcmp(hy.pools[i]->user, user))
			return hy.pools[i];
	if (hy.npools == HISTORY_POOLS)
		return NULL;
	struct series *s = xcalloc(1, sizeof(*s));
	s->database = xstrdup(database);
	s->user = xstrdup(user);
	hy.pools[hy.npools++] = s;
	return s;
}

static uint64_t errors_total(void)
{
	static struct error_stat es[512];
	int n = error_stats_read(es, 512);
	uint64_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += es[i].count[0] + es[i].count[1];
	return sum;
}

void history_tick(usec_t now)
{
	if (now < hy.next)
		return;
	double dt = hy.next ? (double)(now - hy.next + HISTORY_STEP) / USEC_PER_SEC : 0;
	hy.next = now + HISTORY_STEP;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	int n;
	struct pool_view *vs = pool_view_all(&n, now);
	struct reading total = {.errors = errors_total()};
	for (int i = 0; i < n; i++) {
		struct reading r = {0};
		reading_add(&r, &vs[i]);
		reading_add(&total, &vs[i]);
		struct series *s = series_for(vs[i].database, vs[i].user);
		if (s)
			series_push(s, &r, t, dt);
	}
	series_push(&hy.total, &total, t, dt);
	free(vs);
}

static void series_json(struct buf *b, const struct series *s)
{
	json_text(b, "[");
	for (int i = 0; i < s->n; i++) {
		const struct sample *x = &s->ring[(s->head + i) % HISTORY_POINTS];
		buf_printf(b, "%s[%.3f", i ? "," : "", x->t);
		for (int f = 0; f < F_N; f++)
			buf_printf(b, ",%.4g", (double)x->v[f]);
		json_text(b, "]");
	}
	json_text(b, "]");
}

static void errors_json(struct buf *b)
{
	static struct error_stat es[512];
	int n = error_stats_read(es, 512);
	json_text(b, "\"errors\":[");
	for (int i = 0; i < n; i++) {
		json_text(b, i ? ",{" : "{");
		json_kv_str(b, "sqlstate", es[i].sqlstate, true);
		json_kv_int(b, "pooler", (long long)es[i].count[0], true);
		json_kv_int(b, "server", (long long)es[i].count[1], false);
		json_text(b, "}");
	}
	json_text(b, "]");
}

void history_json(struct buf *b)
{
	buf_printf(b, "{\"step_s\":%d,\"fields\":[\"t\"", (int)(HISTORY_STEP / USEC_PER_SEC));
	for (int f = 0; f < F_N; f++)
		buf_printf(b, ",\"%s\"", field_names[f]);
	json_text(b, "],\"total\":");
	series_json(b, &hy.total);
	json_text(b, ",\"pools\":[");
	for (int i = 0; i < hy.npools; i++) {
		json_text(b, i ? ",{" : "{");
		json_kv_str(b, "database", hy.pools[i]->database, true);
		json_kv_str(b, "user", hy.pools[i]->user, true);
		json_text(b, "\"points\":");
		series_json(b, hy.pools[i]);
		json_text(b, "}");
	}
	json_text(b, "],");
	errors_json(b);
	json_text(b, "}\n");
}

void history_free(void)
{
	for (int i = 0; i < hy.npools; i++) {
		free(hy.pools[i]->database);
		free(hy.pools[i]->user);
		free(hy.pools[i]);
	}
	hy.npools = 0;
	hy.total = (struct series){0};
	hy.next = 0;
}
