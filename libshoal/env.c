/* env.c: default options (the seeds' node-postgres settings) and the DB_POOL_* environment. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

void shoal_pool_opts_init(shoal_pool_opts *o)
{
	*o = (shoal_pool_opts){
	    .max = 20,
	    .min = 2,
	    .idle_ms = 30000,
	    .conn_timeout_ms = 5000,
	    .max_lifetime_ms = 1800000,
	    .statement_timeout_ms = 0,
	    .max_retries = 3,
	    .retry_delay_ms = 100,
	    .validate_idle_ms = 5000,
	    .leak_ms = 0,
	};
}

/* *dst = the integer in variable name, if set; SHOAL_EINVAL names it when it is not one. */
static int env_int(const char *name, int *dst)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return SHOAL_OK;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < 0 || n > INT_MAX)
		return err_set(SHOAL_EINVAL, "%s=\"%s\" is not a non-negative integer", name, v);
	*dst = (int)n;
	return SHOAL_OK;
}

int shoal_pool_opts_from_env(shoal_pool_opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} vars[] = {
	    {"DB_POOL_MAX", offsetof(shoal_pool_opts, max)},
	    {"DB_POOL_MIN", offsetof(shoal_pool_opts, min)},
	    {"DB_POOL_IDLE_MS", offsetof(shoal_pool_opts, idle_ms)},
	    {"DB_POOL_CONN_TIMEOUT_MS", offsetof(shoal_pool_opts, conn_timeout_ms)},
	    {"DB_POOL_MAX_LIFETIME_MS", offsetof(shoal_pool_opts, max_lifetime_ms)},
	    {"DB_POOL_STATEMENT_TIMEOUT_MS", offsetof(shoal_pool_opts, statement_timeout_ms)},
	};
	int rc;

	if (!o)
		return err_set(SHOAL_EINVAL, "shoal_pool_opts_from_env: NULL argument");
	shoal_pool_opts_init(o);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if ((rc = env_int(vars[i].name, (int *)((char *)o + vars[i].off))) != SHOAL_OK)
			return rc;
	/* DB_POOL_MIN above the default max without DB_POOL_MAX is a min the user meant. */
	if (o->min > o->max && !getenv("DB_POOL_MAX"))
		o->max = o->min;
	return SHOAL_OK;
}

int shoal_pool_open_env(shoal_pool **out)
{
	const char *url = getenv("DATABASE_URL");
	shoal_pool_opts o;
	int rc;

	if ((rc = shoal_pool_opts_from_env(&o)) != SHOAL_OK)
		return rc;
	return shoal_pool_open(url ? url : "", &o, out);
}
