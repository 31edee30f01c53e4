/* fleet.c: a fleet's combined server connections (fleet_size instances with this one's limits),
 * logged at start and checked against server_max_connections (issue 20). */
#include "config.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Server addresses told apart at most; more share the last line. */
#define FLEET_MAX_ADDRS 16

struct fleet_addr {
	const char *host; /* the entry's host text (a list stays one address) */
	int port;
	long long servers; /* this instance's ceiling: the sum over its databases */
	bool per_user;	   /* a database without max_db_connections: a pool per user */
};

int config_fleet_size(const struct config *cfg)
{
	if (cfg->fleet_size > 0)
		return cfg->fleet_size;
	int n = cfg->npeers;
	if (cfg->peer_id > 0 && !config_find_peer(cfg, cfg->peer_id))
		n++; /* [peers] need not name the instance itself */
	return n > 0 ? n : 1;
}

int config_fleet_share(const struct config *cfg, int v)
{
	if (cfg->pool_size_scope != 1 || v <= 0)
		return v;
	int share = v / config_fleet_size(cfg);
	return share > 0 ? share : 1;
}

long long config_db_servers(const struct config *cfg, const struct db_entry *db, bool *per_user)
{
	long long size =
	    config_fleet_share(cfg, db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size);
	size += config_fleet_share(cfg, db->reserve_pool_size >= 0 ? db->reserve_pool_size
								   : cfg->reserve_pool_size);
	int max = config_fleet_share(cfg, db->max_db_connections >= 0 ? db->max_db_connections
								      : cfg->max_db_connections);
	if (max > 0)
		return size < max ? size : max;
	if (!db->user)
		*per_user = true;
	return size;
}

static int fleet_addrs(const struct config *cfg, struct fleet_addr *a)
{
	int n = 0;
	for (int i = 0; i < cfg->ndbs; i++) {
		const struct db_entry *db = &cfg->dbs[i];
		const char *host = db->host ? db->host : config_default_host(db->port);
		int j = 0;
		while (j < n && !(a[j].port == db->port && strcmp(a[j].host, host) == 0))
			j++;
		if (j == n && n < FLEET_MAX_ADDRS)
			a[n++] = (struct fleet_addr){host, db->port, 0, false};
		else if (j == n)
			j = n - 1;
		a[j].servers += config_db_servers(cfg, db, &a[j].per_user);
	}
	return n;
}

static void fleet_log_addr(const struct config *cfg, int size, const struct fleet_addr *a)
{
	long long total = a->servers * size, limit = cfg->server_max_connections;
	const char *more = a->per_user ? " or more (a pool per user where max_db_connections is "
					 "not set)"
				       : "";
	if (limit > 0 && total > limit)
		log_warn(
		    "fleet of %d instance%s: up to %d x %lld = %lld server connections to %s:%d%s, "
		    "above server_max_connections = %lld: lower the pool sizes or set "
		    "max_db_connections to at most %lld %s",
		    size, size == 1 ? "" : "s", size, a->servers, total, a->host, a->port, more,
		    limit, cfg->pool_size_scope == 1 ? limit : limit / size,
		    cfg->pool_size_scope == 1 ? "(the fleet's total: pool_size_scope = fleet)"
					      : "per instance");
	else if (size > 1)
		log_info(
		    "fleet of %d instances: up to %d x %lld = %lld server connections to %s:%d%s%s",
		    size, size, a->servers, total, a->host, a->port, more,
		    limit > 0 ? ", within server_max_connections" : "");
}

void config_fleet_check(const struct config *cfg)
{
	struct fleet_addr a[FLEET_MAX_ADDRS];
	int n = fleet_addrs(cfg, a), size = config_fleet_size(cfg);
	if (cfg->pool_size_scope == 1)
		log_info(
		    "pool_size_scope = fleet: pool sizes and server limits are divided among %d "
		    "instance%s, e.g. default_pool_size %d -> %d per instance",
		    size, size == 1 ? "" : "s", cfg->default_pool_size,
		    config_fleet_share(cfg, cfg->default_pool_size));
	for (int i = 0; i < n; i++)
		fleet_log_addr(cfg, size, &a[i]);
}
