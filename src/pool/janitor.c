/* janitor.c: each worker's periodic pass over the pools: timeouts of its own clients and servers,
 * the reserve pool, min_pool_size fill and reconnects. Actions are planned under the ledger lock
 * and carried out after it (closing takes the lock itself). */
#include "acts_call.h"
#include "hosts.h"
#include "log.h"
#include "pause.h"
#include "pool.h"
#include "proto.h"
#include "worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum jan_kind {
	J_WAIT_TIMEOUT,
	J_SHUTDOWN_WAITER,
	J_QUERY_CANCEL,
	J_QUERY_KILL,
	J_IDLE_XACT,
	J_XACT_TIMEOUT,
	J_FAST_CLOSE,
	J_WAIT_NOTICE,
	J_WAIT_QUERY_TIMEOUT,
	J_CLIENT_IDLE,
	J_SERVER_IDLE,
	J_SERVER_LIFETIME,
	J_CONNECT_TIMEOUT,
	J_SERVER_RECYCLE,
	J_SERVER_EVICT,
	J_RETIRE_TIMEOUT,
	J_PRIMARY_WAIT,
	J_MAKE_ROOM,
};

struct jan_action {
	enum jan_kind kind;
	void *obj;
};

#define JAN_MAX 512

struct jan {
	struct jan_action a[JAN_MAX];
	int n;
	usec_t now;
	const struct config *cfg;
	struct worker *w; /* acts only on connections this worker owns */
};

static bool jan_add(struct jan *j, enum jan_kind kind, void *obj)
{
	if (j->n >= JAN_MAX)
		return false; /* the rest waits for the next tick */
	j->a[j->n++] = (struct jan_action){kind, obj};
	return true;
}

static bool expired(usec_t since, usec_t timeout, usec_t now)
{
	return timeout > 0 && now - since >= timeout;
}

static void jan_scan_waiting(struct jan *j, struct pool *p, bool *reserve)
{
	struct list *i, *tmp;
	bool shutdown = pause_shutdown();
	/* primary_wait_timeout: while a write alias has no primary, its waiters' limit */
	bool no_primary = j->cfg->primary_wait_timeout > 0 && hosts_primary_missing(p->hosts);
	unsigned failed;
	if (!no_primary && p->hosts &&
	    (failed = atomic_exchange_explicit(&p->primary_wait_failed, 0, memory_order_relaxed)))
		log_info("pool %s@%s: a host may be primary again (%u writes failed by "
			 "primary_wait_timeout while none was)",
			 p->user, p->name, failed);
	usec_t wait_limit = no_primary ? j->cfg->primary_wait_timeout : j->cfg->query_wait_timeout;
	list_for_each_safe(i, tmp, &p->waiting)
	{
		struct client *c = container_of(i, struct client, node);
		if (c->c.w == j->w && shutdown) /* no server will come: SHUTDOWN WAIT_FOR_SERVERS */
			jan_add(j, J_SHUTDOWN_WAITER, c);
		else if (c->c.w == j->w && expired(c->state_since, wait_limit, j->now))
			jan_add(j, no_primary ? J_PRIMARY_WAIT : J_WAIT_TIMEOUT, c);
		else if (c->c.w == j->w && /* PgBouncer: waited too long (or its login did) */
			 expired(c->state_since,
				 pool_timeout(p->query_timeout, j->cfg->query_timeout), j->now))
			jan_add(j, J_WAIT_QUERY_TIMEOUT, c);
		else if (c->c.w == j->w && c->state == CL_WAITING &&
			 c->wait_noticed != c->state_since &&
			 expired(c->state_since, j->cfg->query_wait_notify, j->now))
			jan_add(j, J_WAIT_NOTICE, c); /* once per wait */
		if (p->reserve_pool_size > 0 &&
		    j->now - c->state_since >= j->cfg->reserve_pool_timeout)
			*reserve = true;
	}
}

/* The timeouts that apply to a pool's clients: its user's entry, else the global settings. */
struct jan_timeouts {
	usec_t query, idle_xact, client_idle, xact;
};

static struct jan_timeouts jan_timeouts_of(const struct pool *p, const struct config *cfg)
{
	return (struct jan_timeouts){
	    .query = pool_timeout(p->query_timeout, cfg->query_timeout),
	    .idle_xact = pool_timeout(p->idle_transaction_timeout, cfg->idle_transaction_timeout),
	    .client_idle = pool_timeout(p->client_idle_timeout, cfg->client_idle_timeout),
	    .xact = pool_timeout(p->transaction_timeout, cfg->transaction_timeout),
	};
}

static void jan_scan_linked(struct jan *j, struct client *c, const struct jan_timeouts *t)
{
	struct server *s = c->server;
	if (!s || s->state != SV_ACTIVE)
		return;
	/* server_fast_close: a RECONNECT (new generation) ends a session between transactions */
	if (j->cfg->server_fast_close && s->gen != s->pool->gen && server_is_clean(s)) {
		jan_add(j, J_FAST_CLOSE, c);
		return;
	}
	if (s->xact_start && expired(s->xact_start, t->xact, j->now)) {
		jan_add(j, J_XACT_TIMEOUT, c);
		return;
	}
	if (s->pending > 0 && c->query_start) {
		usec_t grace = t->query > USEC_PER_SEC ? t->query : USEC_PER_SEC;
		if (!s->timeout_cancel && expired(c->query_start, t->query, j->now))
			jan_add(j, J_QUERY_CANCEL, c);
		else if (s->timeout_cancel && j->now - s->cancel_sent_at > grace)
			jan_add(j, J_QUERY_KILL, c);
	} else if (s->pending == 0 && (s->ready_status != 'I' || s->ext_open) &&
		   expired(c->last_activity, t->idle_xact, j->now)) {
		jan_add(j, J_IDLE_XACT, c);
	} else if (server_is_clean(s) && expired(c->last_activity, t->client_idle, j->now)) {
		jan_add(j, J_CLIENT_IDLE, c);
	}
}

static void jan_scan_clients(struct jan *j, struct pool *p)
{
	struct list *i, *tmp;
	struct jan_timeouts t = jan_timeouts_of(p, j->cfg);
	/* Without these timeouts the scan finds nothing, and with thousands of clients it was a
	 * fifth of the pooler's CPU (one pass per tick, under the pool lock). */
	if (!t.query && !t.idle_xact && !t.client_idle && !t.xact && !j->cfg->server_fast_close)
		return;
	list_for_each_safe(i, tmp, &p->active_clients)
	{
		struct client *c = container_of(i, struct client, node);
		if (c->c.w != j->w)
			continue;
		if (c->state == CL_LINKED)
			jan_scan_linked(j, c, &t);
		else if (expired(c->last_activity, t.client_idle, j->now))
			jan_add(j, J_CLIENT_IDLE, c);
	}
}

/* How long an evicted server may take to close its side after our Terminate. */
#define RETIRE_WAIT (2 * 1000 * 1000)

/* Under the lock: another pool asked for idle servers (ledger.c, evict_wanted) that are no longer
 * here, all taken by clients or closing: the ask lapses, and its pool asks again if it must. */
static void jan_evict_lapse(struct pool *p)
{
	for (struct list *i = p->idle.next; i != &p->idle; i = i->next)
		if (!container_of(i, struct server, node)->dying)
			return;
	p->evict_wanted = 0;
}

static void jan_scan_servers(struct jan *j, struct pool *p)
{
	struct list *i, *tmp;
	bool paused = pause_is_paused(p->name);
	/* Oldest idle first: an eviction takes the server idle the longest, as PgBouncer's. */
	list_for_each_safe(i, tmp, &p->idle)
	{
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == j->w && s->retiring && expired(s->retire_at, RETIRE_WAIT, j->now))
			jan_add(j, J_RETIRE_TIMEOUT, s);
		if (s->c.w != j->w || s->dying)
			continue;
		bool spare = p->n_servers - p->n_dying > p->min_pool_size;
		bool planned = false;
		if (paused || s->gen != p->gen || hosts_held(s->hset, s->hrec))
			planned = jan_add(j, J_SERVER_RECYCLE, s);
		else if (s->lifetime_end && j->now >= s->lifetime_end)
			planned = jan_add(j, J_SERVER_LIFETIME, s);
		else if (spare && expired(s->state_since, j->cfg->server_idle_timeout, j->now))
			planned = jan_add(j, J_SERVER_IDLE, s);
		else if (p->evict_wanted > 0)
			planned = jan_add(j, J_SERVER_EVICT, s);
		if (!planned)
			continue;
		/* Counted now, so that other workers' janitors keep min_pool_size too. Any close
		 * frees a slot of max_db/user_connections: it answers an eviction ask as well. */
		s->dying = true;
		p->n_dying++;
		if (p->evict_wanted > 0)
			p->evict_wanted--;
	}
	if (p->evict_wanted > 0)
		jan_evict_lapse(p);
	list_for_each_safe(i, tmp, &p->connecting)
	{
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == j->w && expired(s->connect_time, j->cfg->server_connect_timeout, j->now))
			jan_add(j, J_CONNECT_TIMEOUT, s);
	}
	list_for_each_safe(i, tmp, &p->checking)
	{
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == j->w && expired(s->connect_time, j->cfg->host_check_timeout, j->now))
			jan_add(j, J_CONNECT_TIMEOUT, s);
	}
}

/* Under the lock: a client of this worker holds a server of another zone (the own zone's
 * were all busy) while the own zone could take one more: the pool, with room, opens one a tick
 * (hosts_pick sends it to the own zone), so the own zone grows to the load. */
static bool far_in_use(const struct jan *j, struct pool *p)
{
	for (struct list *i = p->used.next; i != &p->used; i = i->next) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == j->w && hosts_far_with_near_up(p->hosts, s->hrec))
			return true;
	}
	return false;
}

/* Under the lock: a host of the pool's list came back into rotation and has no server while
 * others have several: open one for it now (hosts_pick sends it there), or when the pool is
 * full close one idle server of this worker so the next tick (or a waiter) can. Returns how
 * many servers to open. Without this the host waited for server_lifetime to get a share. */
static int jan_make_room(struct jan *j, struct pool *p)
{
	if (!p->hosts || pause_is_paused(p->name))
		return 0;
	if (far_in_use(j, p))
		return pool_claim_slots(p, 1, false, j->now);
	if (!hosts_returned_waiting(p->hosts))
		return 0;
	if (pool_claim_slots(p, 1, false, j->now) == 1)
		return 1;
	for (struct list *i = p->idle.next; i != &p->idle; i = i->next) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w != j->w || s->dying || !jan_add(j, J_MAKE_ROOM, s))
			continue;
		s->dying = true;
		p->n_dying++;
		break;
	}
	return 0;
}

/* query_wait_timeout. While the pool's server logins fail, say why: the client would otherwise
 * learn only that it waited. The message still starts with "query_wait_timeout". */
static void wait_timeout(struct client *c)
{
	char msg[256] = "query_wait_timeout";
	struct pool *p = c->pool;
	pool_lock(p);
	if (p->connect_failures > 0 && p->last_connect_error[0])
		snprintf(msg, sizeof(msg), "query_wait_timeout (server login failing: %s)",
			 p->last_connect_error);
	pool_unlock(p);
	client_close(c, "08P01", msg);
}

/* primary_wait_timeout: a write alias's waiter, with no host that may be primary all along.
 * 57P03 (cannot_connect_now), what PostgreSQL says while it cannot take the session yet:
 * drivers and poolers above treat it as worth a retry. One log line per pool and episode. */
static void primary_wait_timeout(struct client *c)
{
	struct pool *p = c->pool;
	char msg[400], why[sizeof(p->last_connect_error)] = "";
	pool_lock(p);
	if (p->connect_failures > 0) /* e.g. a refused login: say so, it may not be a failover */
		snprintf(why, sizeof(why), "%s", p->last_connect_error);
	pool_unlock(p);
	snprintf(msg, sizeof(msg),
		 "no primary host for database %s within primary_wait_timeout (%gs): writes fail "
		 "until one is reachable%s%s%s",
		 p->name, (double)config_current()->primary_wait_timeout / USEC_PER_SEC,
		 *why ? " (server login failing: " : "", why, *why ? ")" : "");
	if (atomic_fetch_add_explicit(&p->primary_wait_failed, 1, memory_order_relaxed) == 0)
		log_warn("pool %s@%s: %s", p->user, p->name, msg);
	client_close(c, "57P03", msg);
}

/* query_wait_notify: PgBouncer's notice, once per wait. */
static void wait_notice(struct client *c)
{
	c->wait_noticed = c->state_since;
	proto_write_notice(
	    &c->c.out, "00000",
	    "No server connection available in postgres backend, client being queued");
	if (client_flush(c) != SHOAL_OK)
		return; /* it failed: the client is closed */
}

static void jan_do(struct jan_action *a)
{
	struct client *c = a->obj;
	struct server *s = a->obj;
	switch (a->kind) {
	case J_WAIT_TIMEOUT: wait_timeout(c); break;
	case J_PRIMARY_WAIT: primary_wait_timeout(c); break;
	case J_SHUTDOWN_WAITER: client_close(c, "57P01", "pooler is shutting down"); break;
	case J_QUERY_CANCEL:
		log_info("%s query timeout: canceling its query (query_timeout)", c->c.name);
		c->server->timeout_cancel = true;
		c->server->cancel_sent_at = shoal_now();
		server_send_cancel(c->server);
		break;
	case J_QUERY_KILL: client_close(c, "57014", "query timeout"); break;
	case J_IDLE_XACT: client_close(c, "08P01", "idle transaction timeout"); break;
	case J_XACT_TIMEOUT: client_close(c, "08P01", "transaction timeout"); break;
	case J_CLIENT_IDLE: client_close(c, "08P01", "client_idle_timeout"); break;
	case J_FAST_CLOSE: client_close(c, "57P01", "database configuration changed"); break;
	case J_WAIT_NOTICE: wait_notice(c); break;
	case J_WAIT_QUERY_TIMEOUT: client_close(c, "08P01", "query_timeout"); break;
	case J_SERVER_IDLE: server_close(s, "server_idle_timeout"); break;
	case J_SERVER_LIFETIME: server_close(s, "server_lifetime reached"); break;
	case J_CONNECT_TIMEOUT:
		server_close(s, s->check ? "host_check_timeout"
					 : "connect timeout (server_connect_timeout)");
		break;
	case J_SERVER_RECYCLE:
		server_close(s, "paused, or reconnect (RECONNECT or new target), max_replica_lag or "
				"split brain");
		break;
	case J_SERVER_EVICT:
		server_retire(s, "evicted: max_db_connections, max_user_connections or pool_size "
				 "(shared with replication servers) is full and another pool's "
				 "clients wait");
		break;
	case J_RETIRE_TIMEOUT: server_close(s, "no EOF after Terminate"); break;
	case J_MAKE_ROOM:
		server_close(s, "making room for a host back in rotation");
		break;
	}
}

/* Actions are planned under the lock and done after it: closing takes the lock itself. Objects
 * stay allocated until the end of the event batch, so the pointers remain valid. */
static void pool_janitor_one(struct worker *w, struct pool *p, struct jan *j)
{
	bool reserve = false;
	pool_lock(p);
	j->n = 0;
	jan_scan_waiting(j, p, &reserve);
	jan_scan_clients(j, p);
	jan_scan_servers(j, p);
	int fill = p->min_pool_size - p->n_servers;
	int nfill = fill > 0 ? pool_claim_slots(p, fill, false, j->now) : 0;
	nfill += jan_make_room(j, p);
	/* the waiters' part below takes the lock three times: not for the many pools that have
	 * none (a waiter that comes meanwhile is served or kicks on its own) */
	bool waiting = !list_empty(&p->waiting);
	pool_unlock(p);
	for (int k = 0; k < j->n; k++) {
		struct conn *cn = j->a[k].obj;
		if (!cn->dead)
			jan_do(&j->a[k]);
	}
	pool_open_servers(w, p, nfill);
	if (waiting) {
		pool_kick_idle_elsewhere(w, p);
		pool_open_for_waiters(w, p, reserve);
	}
	server_check_pool(w, p);
	if (waiting)
		pool_serve_waiters(w, p);
}

void pool_janitor(struct worker *w, usec_t now)
{
	static __thread struct jan j;
	j.now = now;
	j.cfg = config_current();
	j.w = w;
	int n;
	struct pool **ps = pool_snapshot(&n);
	for (int k = 0; k < n; k++)
		pool_janitor_one(w, ps[k], &j);
	pool_snapshot_free(ps);
}
