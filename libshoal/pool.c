/* pool.c: a pool's life: open (check options and conninfo, start the janitor, register the
 * handle), statistics, close (stop lending, drain, join the janitor), and its reference count. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void pool_ref(struct lpool *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

static void pool_free(struct lpool *p)
{
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->mu);
	free(p->conninfo);
	free(p);
}

void pool_unref(struct lpool *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		pool_free(p);
}

static int check_opts(const shoal_pool_opts *o)
{
	if (o->max < 1)
		return err_set(SHOAL_EINVAL, "max must be at least 1 (got %d)", o->max);
	if (o->min < 0 || o->min > o->max)
		return err_set(SHOAL_EINVAL, "min must be between 0 and max %d (got %d)", o->max,
			       o->min);
	if (o->idle_ms < 0 || o->conn_timeout_ms < 0 || o->max_lifetime_ms < 0 ||
	    o->statement_timeout_ms < 0 || o->max_retries < 0 || o->retry_delay_ms < 0 ||
	    o->validate_idle_ms < 0 || o->leak_ms < 0)
		return err_set(SHOAL_EINVAL,
			       "timeouts, delays and retry counts must not be negative");
	return SHOAL_OK;
}

static int check_conninfo(const char *conninfo)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	int rc = SHOAL_OK;

	if (!opts)
		rc = msg ? err_set_pq(SHOAL_EINVAL, "invalid conninfo: ", msg)
			 : err_set(SHOAL_ENOMEM, "out of memory parsing conninfo");
	PQconninfoFree(opts);
	PQfreemem(msg);
	return rc;
}

static struct lpool *pool_new(const char *conninfo, const shoal_pool_opts *o)
{
	struct lpool *p = calloc(1, sizeof(*p));
	pthread_condattr_t attr;

	if (!p || !(p->conninfo = strdup(conninfo))) {
		free(p);
		return NULL;
	}
	p->o = *o;
	atomic_init(&p->refs, 1); /* the registry's */
	p->rng = (uint64_t)now_us() ^ (uint64_t)(uintptr_t)p;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->changed, &attr);
	pthread_condattr_destroy(&attr);
	return p;
}

int shoal_pool_open(const char *conninfo, const shoal_pool_opts *opts, shoal_pool **out)
{
	shoal_pool_opts defaults;
	struct lpool *p;
	int rc;

	if (!out || !conninfo)
		return err_set(SHOAL_EINVAL, "shoal_pool_open: NULL argument");
	*out = NULL;
	if (!opts)
		shoal_pool_opts_init(&defaults);
	if ((rc = check_opts(opts ? opts : &defaults)) != SHOAL_OK ||
	    (rc = check_conninfo(conninfo)) != SHOAL_OK)
		return rc;
	if (!(p = pool_new(conninfo, opts ? opts : &defaults)))
		return err_set(SHOAL_ENOMEM, "out of memory creating the pool");
	if ((rc = janitor_start(p)) != SHOAL_OK) {
		pool_free(p);
		return rc;
	}
	if ((rc = registry_add(p, out)) != SHOAL_OK) {
		pthread_mutex_lock(&p->mu);
		p->closing = true;
		pthread_cond_broadcast(&p->changed);
		pthread_mutex_unlock(&p->mu);
		janitor_stop(p);
		pool_free(p);
		return err_set(rc, "out of memory registering the pool");
	}
	return SHOAL_OK;
}

static void counts_locked(struct lpool *p, shoal_stats *s)
{
	s->total = pool_total_locked(p);
	s->active = p->busy.count;
	s->idle = p->idle.count;
	s->waiting = p->waiting;
	s->max = p->o.max;
	s->min = p->o.min;
}

static uint64_t ctr(atomic_uint_least64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

int shoal_pool_stats(shoal_pool *h, shoal_stats *s)
{
	struct lpool *p;

	if (!s)
		return err_set(SHOAL_EINVAL, "shoal_pool_stats: NULL argument");
	memset(s, 0, sizeof(*s));
	if (!(p = registry_get(h)))
		return err_set(SHOAL_ECLOSED, "pool is closed (or was never opened)");
	pthread_mutex_lock(&p->mu);
	counts_locked(p, s);
	pthread_mutex_unlock(&p->mu);
	s->acquired = ctr(&p->ctr.acquired);
	s->released = ctr(&p->ctr.released);
	s->created = ctr(&p->ctr.created);
	s->destroyed = ctr(&p->ctr.destroyed);
	s->timeouts = ctr(&p->ctr.timeouts);
	s->errors = ctr(&p->ctr.errors);
	s->leaks = ctr(&p->ctr.leaks);
	pool_unref(p);
	return SHOAL_OK;
}
