/* ledger.c: the pools and what threads share about them (DESIGN §2): the list of pools, each
 * pool's lock, limits, counts and state lists, and the cross-pool connection limits. */
#include "ledger.h"
#include "hosts.h"
#include "log.h"
#include "pause.h"
#include "states.h"
#include "acts_call.h"
#include "worker.h"
#include "hmap.h"

#include <errno.h>
#include <malloc.h>
#include <sys/mman.h>
#if defined(SHOAL_ASAN)
#include <sanitizer/lsan_interface.h>
/* A pool's own pages hold the only pointers to its strings: LeakSanitizer scans them too. */
#define LSAN_ROOT(p, n)	  __lsan_register_root_region(p, n)
#define LSAN_UNROOT(p, n) __lsan_unregister_root_region(p, n)
#else
#define LSAN_ROOT(p, n)	  ((void)(p), (void)(n))
#define LSAN_UNROOT(p, n) ((void)(p), (void)(n))
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Guards the list of pools and the limit counters' registry. Taken before a pool's lock, never
 * after one. */
static pthread_mutex_t pools_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct list all_pools = {&all_pools, &all_pools};
static int npools; /* in all_pools */
/* Pools taken off all_pools by pool_reap: freed once no snapshot taken before is still out. */
static struct list retired_pools = {&retired_pools, &retired_pools};
static int snapshots_out;
static bool at_max_pools; /* max_pools refused a pool: said once until a pool is freed */

/* Server connections per database name and per server user, across pools: max_db_connections
 * and max_user_connections. Atomic, so a pool claims a slot under its own lock only. */
struct limit {
	struct limit *next;
	char *name;
	atomic_int n;
	int refs; /* pools naming it (pools_mutex): freed with the last one */
};
static struct limit *db_limits, *user_limits, *size_limits;

static struct limit *limit_get(struct limit **head, const char *name)
{
	for (struct limit *l = *head; l; l = l->next)
		if (strcmp(l->name, name) == 0) {
			l->refs++;
			return l;
		}
	struct limit *l = xcalloc(1, sizeof(*l));
	l->name = xstrdup(name);
	l->refs = 1;
	l->next = *head;
	*head = l;
	return l;
}

/* A pool naming l is freed (pools_mutex): l goes with the last one (its count is 0 then: no
 * pool of its name has a server). */
static void limit_unref(struct limit **head, struct limit *l)
{
	if (--l->refs > 0)
		return;
	for (struct limit **pl = head; *pl; pl = &(*pl)->next)
		if (*pl == l) {
			*pl = l->next;
			free(l->name);
			free(l);
			return;
		}
}

static void limits_free(struct limit **head)
{
	while (*head) {
		struct limit *l = *head;
		*head = l->next;
		free(l->name);
		free(l);
	}
}

/* One more server under max (0: no limit)? Taken if so. */
static bool limit_take(struct limit *l, int max)
{
	int n = atomic_load(&l->n);
	while (max <= 0 || n < max)
		if (atomic_compare_exchange_weak(&l->n, &n, n + 1))
			return true;
	return false;
}

static void limit_put(struct limit *l)
{
	atomic_fetch_sub(&l->n, 1);
}

static int pick(int entry, int global)
{
	return entry >= 0 ? entry : global;
}

/* PgBouncer's per-user query_timeout, idle_transaction_timeout, client_idle_timeout and
 * transaction_timeout (of the user the pool logs in as) and per-database server_lifetime. */
static void pool_load_timeouts(struct pool *p, const struct db_entry *db,
			       const struct user_entry *u)
{
	p->query_timeout = u ? u->query_timeout : 0;
	p->idle_transaction_timeout = u ? u->idle_transaction_timeout : 0;
	p->client_idle_timeout = u ? u->client_idle_timeout : 0;
	p->transaction_timeout = u ? u->transaction_timeout : 0;
	p->server_lifetime = db->server_lifetime;
}

static void pool_load_limits(struct pool *p, const struct config *cfg, const struct db_entry *db)
{
	/* As PgBouncer: the [users] entry of the user the pool logs in as (a database's forced
	 * user=, else the client's), and its pool_size and reserve_pool_size win over the
	 * database's. */
	const struct user_entry *u = config_find_user(cfg, p->server_user);
	int mode = db->pool_mode;
	if (u && u->pool_mode != POOL_INHERIT)
		mode = u->pool_mode;
	p->pool_mode = mode != POOL_INHERIT ? mode : cfg->pool_mode;
	if (p->repl) /* a server of its own for the client's whole session */
		p->pool_mode = POOL_SESSION;
	p->pool_size = config_fleet_share(
	    cfg, pick(u ? u->pool_size : -1, pick(db->pool_size, cfg->default_pool_size)));
	p->min_pool_size =
	    p->repl ? 0 : config_fleet_share(cfg, pick(db->min_pool_size, cfg->min_pool_size));
	p->reserve_pool_size =
	    config_fleet_share(cfg, pick(u ? u->reserve_pool_size : -1,
					 pick(db->reserve_pool_size, cfg->reserve_pool_size)));
	p->max_db_connections =
	    config_fleet_share(cfg, pick(db->max_db_connections, cfg->max_db_connections));
	p->max_user_connections =
	    config_fleet_share(cfg, u ? pick(u->max_user_connections, cfg->max_user_connections)
				      : cfg->max_user_connections);
	pool_load_timeouts(p, db, u);
}

/* all_pools by database, user and replication mode (pools_mutex), so that a login's lookup
 * does not scan thousands of pools reached through "*". The key holds each name with its
 * length, so no byte a client may send in a name can make two keys alike. */
static struct hmap pool_index;

#define POOL_KEY_STACK 256 /* a key of two NAMEDATALEN names fits: no allocation per login */

/* The index key of (dbname, user, repl) in *out: stack (POOL_KEY_STACK bytes) when it fits,
 * else allocated (the caller frees *out when it is not stack). Returns its length. */
static size_t pool_key(char **out, char *stack, const char *dbname, const char *user,
		       const char *repl)
{
	size_t nd = strlen(dbname), nu = strlen(user), nr = repl ? strlen(repl) + 1 : 0;
	size_t n = 2 * sizeof(size_t) + nd + nu + nr;
	char *k = n <= POOL_KEY_STACK ? stack : xmalloc(n), *at = k + 2 * sizeof(size_t);
	memcpy(k, &nd, sizeof(nd));
	memcpy(k + sizeof(nd), &nu, sizeof(nu));
	memcpy(at, dbname, nd);
	memcpy(at + nd, user, nu);
	if (repl) { /* a NUL first: NULL and "" differ */
		at[nd + nu] = '\0';
		memcpy(at + nd + nu + 1, repl, nr - 1);
	}
	*out = k;
	return n;
}

static struct hent *pool_index_get(const char *dbname, const char *user, const char *repl)
{
	char *k, stack[POOL_KEY_STACK];
	size_t n = pool_key(&k, stack, dbname, user, repl);
	struct hent *e = hmap_get(&pool_index, k, n, hash_bytes(k, n));
	if (k != stack)
		free(k);
	return e;
}

static void pool_index_put(struct pool *p)
{
	char *k, stack[POOL_KEY_STACK];
	size_t n = pool_key(&k, stack, p->name, p->user, p->repl);
	hmap_put(&pool_index, k, n, hash_bytes(k, n), p);
	if (k != stack)
		free(k);
}

static void pool_index_del(struct pool *p)
{
	struct hent *e = pool_index_get(p->name, p->user, p->repl);
	if (e && e->val == p)
		hmap_del(&pool_index, e);
}

/* A pool and its histograms (~10 KB, most of it per-worker slots) get pages of their own: freed
 * (autodb_idle_timeout), they go back to the system at once. From malloc, thousands of them
 * made at once interleave with small long-lived allocations in the workers' arenas, which then
 * keep megabytes resident after they are freed, malloc_trim or not (issue 16). */
static size_t pool_bytes(int nhists)
{
	size_t n = sizeof(struct pool) + (size_t)nhists * sizeof(struct pool_hists);
	size_t page = 4096;
	return (n + page - 1) / page * page;
}

static struct pool *pool_alloc(int nhists)
{
	void *m = mmap(NULL, pool_bytes(nhists), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		log_error("out of memory for a pool (mmap): %s", strerror(errno));
		abort(); /* as xcalloc */
	}
	LSAN_ROOT(m, pool_bytes(nhists));
	struct pool *p = m; /* zeroed, as calloc */
	p->nhists = nhists;
	p->hists = (struct pool_hists *)(p + 1);
	return p;
}

static struct pool *pool_new(const struct config *cfg, const struct db_entry *db,
			     const char *dbname, const char *user, const char *repl)
{
	/* workers: not reloadable */
	struct pool *p = pool_alloc(worker_count() > 0 ? worker_count() : MAX_WORKERS);
	p->repl = repl ? xstrdup(repl) : NULL;
	spin_init(&p->lock);
	p->name = xstrdup(dbname);
	p->user = xstrdup(user);
	p->server_user = xstrdup(db->user ? db->user : user);
	p->server_db = xstrdup(db->dbname ? db->dbname : dbname);
	p->port = db->port > 0 ? db->port : 5432;
	p->host = xstrdup(db->host ? db->host : config_default_host(p->port));
	p->hosts = hosts_set_for(db, dbname);
	const char *pw = db->password ? db->password : config_find_secret(cfg, p->server_user);
	p->password = pw ? xstrdup(pw) : NULL;
	list_init(&p->idle);
	list_init(&p->used);
	list_init(&p->connecting);
	list_init(&p->checking);
	list_init(&p->resetting);
	list_init(&p->transit);
	list_init(&p->waiting);
	list_init(&p->handoff);
	list_init(&p->active_clients);
	pool_load_limits(p, cfg, db);
	/* Statement-name rewriting is decided once per pool: flipping it under live clients and
	 * servers would leave their names and reply queues out of step (docs/configuration.md). */
	p->ps_on = cfg->max_prepared_statements > 0 && p->pool_mode != POOL_SESSION;
	p->db_limit = limit_get(&db_limits, p->name);
	p->user_limit = limit_get(&user_limits, p->server_user);
	char key[512]; /* user, then database: both names of the pool */
	snprintf(key, sizeof(key), "%s\x1f%s", p->user, p->name);
	p->size_limit = limit_get(&size_limits, key);
	list_append(&all_pools, &p->node);
	pool_index_put(p);
	npools++;
	log_info("pool %s@%s created: server %s@%s:%d/%s, mode %s, size %d", p->user, p->name,
		 p->server_user, p->host, p->port, p->server_db,
		 config_pool_mode_name(p->pool_mode), p->pool_size);
	return p;
}

static struct pool *pool_find(const char *dbname, const char *user, const char *repl)
{
	struct hent *e = pool_index_get(dbname, user, repl);
	return e ? e->val : NULL;
}

/* Under pools_mutex: is there a pool of database dbname, for any user? */
static bool pool_name_known(const char *dbname)
{
	for (struct list *i = all_pools.next; i != &all_pools; i = i->next)
		if (strcmp(container_of(i, struct pool, node)->name, dbname) == 0)
			return true;
	return false;
}

struct pool *pool_get(const struct config *cfg, const struct db_entry *db, const char *dbname,
		      const char *user, const char *repl)
{
	const char *pool_user = db->user ? db->user : user;
	pthread_mutex_lock(&pools_mutex);
	struct pool *found = pool_find(dbname, pool_user, repl);
	if (found) {
		found->taken_at = shoal_now(); /* not reaped before its client is counted */
		pthread_mutex_unlock(&pools_mutex);
		return found;
	}
	if (cfg->max_pools > 0 && npools >= cfg->max_pools) {
		if (!at_max_pools)
			log_warn(
			    "max_pools (%d) reached: logins that need a new pool are refused "
			    "(53400) until idle pools are freed (autodb_idle_timeout); one line "
			    "until then",
			    cfg->max_pools);
		at_max_pools = true;
		pthread_mutex_unlock(&pools_mutex);
		return NULL;
	}
	if (strcmp(db->name, "*") == 0 && !pool_name_known(dbname)) /* PgBouncer's line */
		log_info("registered new auto-database: %s", dbname);
	struct pool *p = pool_new(cfg, db, dbname, pool_user, repl);
	p->taken_at = shoal_now();
	pthread_mutex_unlock(&pools_mutex);
	return p;
}

void pool_create_static(const struct config *cfg)
{
	for (int i = 0; i < cfg->ndbs; i++) {
		const struct db_entry *db = &cfg->dbs[i];
		if (db->user && strcmp(db->name, "*") != 0) {
			pthread_mutex_lock(&pools_mutex);
			struct pool *p = pool_find(db->name, db->user, NULL);
			if (!p) {
				p = pool_new(cfg, db, db->name, db->user, NULL);
				npools--; /* configured: not counted by max_pools */
			} else if (!p->keep) {
				npools--;
			}
			p->keep = true; /* never reaped */
			pthread_mutex_unlock(&pools_mutex);
			pool_show(p);
		}
	}
}

/* Strings a reload replaced: a thread may have read the old pointer just before; freed at exit. */
static char **retired;
static int nretired;

static void pool_retarget(struct pool *p, char **field, const char *v)
{
	if (strcmp(*field, v) == 0)
		return;
	retired = xrealloc(retired, sizeof(*retired) * (size_t)(nretired + 1));
	retired[nretired++] = *field;
	*field = xstrdup(v);
	p->gen++; /* servers connected to the old target are recycled as they are released */
}

/* Under the pool's lock: a changed host, port or server database recycles the servers. */
static void pool_apply_target(struct pool *p, const struct db_entry *db)
{
	int port = db->port > 0 ? db->port : 5432;
	pool_retarget(p, &p->host, db->host ? db->host : config_default_host(port));
	pool_retarget(p, &p->server_db, db->dbname ? db->dbname : p->name);
	if (port != p->port) {
		p->port = port;
		p->gen++;
	}
	if (hosts_set_changed(p->hosts, db)) { /* the old set is kept: servers point at it */
		p->hosts = hosts_set_for(db, p->name);
		memset(p->host_credit, 0, sizeof(p->host_credit));
		p->gen++;
	}
	if (db->user && strcmp(db->user, p->server_user) != 0)
		log_warn("pool %s@%s: a changed user= needs a restart", p->user, p->name);
}

static void pool_apply_one(struct pool *p, void *arg)
{
	const struct config *cfg = arg;
	const struct db_entry *db = config_find_db(cfg, p->name);
	if (!db)
		return;
	unsigned gen = p->gen;
	pool_load_limits(p, cfg, db);
	pool_apply_target(p, db);
	if (p->gen != gen) { /* failures were the old target's: the new one starts afresh */
		p->connect_failures = 0;
		p->next_connect_at = 0;
	}
	const char *pw = db->password ? db->password : config_find_secret(cfg, p->server_user);
	if (!pw || !p->password || strcmp(pw, p->password) != 0) {
		free(p->password); /* read only under the pool's lock (servers copy it) */
		p->password = pw ? xstrdup(pw) : NULL;
		p->has_scram_keys = false; /* they belong to the old secret */
	}
}

void pool_apply_config(const struct config *cfg)
{
	pool_foreach(pool_apply_one, (void *)cfg);
	pool_create_static(cfg); /* a forced-user entry added by RELOAD: min_pool_size applies */
}

static void pool_destroy(struct pool *p)
{
	params_free(&p->welcome);
	free(p->welcome_block);
	free(p->name);
	free(p->user);
	free(p->repl);
	free(p->server_user);
	free(p->server_db);
	free(p->host);
	free(p->password);
	LSAN_UNROOT(p, pool_bytes(p->nhists));
	munmap(p, pool_bytes(p->nhists));
}

void pool_free_all(void)
{
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools)
	{
		struct pool *p = container_of(i, struct pool, node);
		list_del(&p->node);
		pool_index_del(p);
		pool_destroy(p);
	}
	free(pool_index.b); /* every entry deleted above */
	pool_index = (struct hmap){0};
	list_for_each_safe(i, tmp, &retired_pools)
	{
		struct pool *p = container_of(i, struct pool, node);
		list_del(&p->node);
		pool_destroy(p);
	}
	npools = 0;
	limits_free(&db_limits);
	limits_free(&user_limits);
	limits_free(&size_limits);
	for (int k = 0; k < nretired; k++)
		free(retired[k]);
	free(retired);
	hosts_free_all();
	retired = NULL;
	nretired = 0;
}

/* Under p's lock: nothing uses p (no client, no server in any state, none on its way, no
 * health check). */
static bool pool_unused(const struct pool *p)
{
	return p->n_clients == 0 && p->n_servers == 0 && p->n_opening == 0 &&
	       list_empty(&p->waiting) && list_empty(&p->handoff) &&
	       list_empty(&p->active_clients) && list_empty(&p->transit) &&
	       list_empty(&p->checking);
}

/* Under pools_mutex: may p go now (unused for timeout)? Configured pools and pools that keep
 * min_pool_size servers stay. */
static bool pool_reapable(struct pool *p, usec_t now, usec_t timeout)
{
	if (p->keep || p->min_pool_size > 0)
		return false;
	pool_lock(p);
	bool unused = pool_unused(p);
	pool_unlock(p);
	if (!unused) {
		p->unused_since = 0;
		return false;
	}
	if (!p->unused_since)
		p->unused_since = now;
	usec_t since = p->unused_since > p->taken_at ? p->unused_since : p->taken_at;
	return now - since >= timeout;
}

int pool_reap(usec_t now, usec_t timeout)
{
	int n = 0;
	if (timeout > 0 && timeout < USEC_PER_SEC)
		timeout =
		    USEC_PER_SEC; /* mail naming a pool (kick, fail) is long delivered by then */
	pthread_mutex_lock(&pools_mutex);
	struct list *i, *tmp;
	if (timeout > 0)
		list_for_each_safe(i, tmp, &all_pools)
		{
			struct pool *p = container_of(i, struct pool, node);
			if (!pool_reapable(p, now, timeout))
				continue;
			list_del(&p->node);
			pool_index_del(p);
			list_append(&retired_pools, &p->node);
			npools--;
			n++;
		}
	int destroyed = 0;
	if (snapshots_out == 0) /* no snapshot still out can name a retired pool */
		list_for_each_safe(i, tmp, &retired_pools)
		{
			struct pool *p = container_of(i, struct pool, node);
			list_del(&p->node);
			limit_unref(&db_limits, p->db_limit);
			limit_unref(&user_limits, p->user_limit);
			limit_unref(&size_limits, p->size_limit);
			pool_destroy(p);
			destroyed++;
		}
	if (n > 0)
		at_max_pools = false;
	int left = npools;
	pthread_mutex_unlock(&pools_mutex);
	if (n > 0)
		log_info("autodb_idle_timeout: freed %d unused pools, %d left", n, left);
	if (destroyed > 0) /* perhaps a later call than the one that retired them */
		malloc_trim(0); /* their names and the arenas' freed chunks back to the system */
	return n;
}

void pool_foreach(pool_visit_fn fn, void *arg)
{
	pthread_mutex_lock(&pools_mutex);
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools)
	{
		struct pool *p = container_of(i, struct pool, node);
		pool_lock(p);
		fn(p, arg);
		pool_unlock(p);
	}
	pthread_mutex_unlock(&pools_mutex);
}

void pool_show(struct pool *p)
{
	atomic_store_explicit(&p->shown, true, memory_order_relaxed);
}

bool pool_shown(struct pool *p)
{
	return atomic_load_explicit(&p->shown, memory_order_relaxed);
}

struct pool **pool_snapshot(int *n)
{
	pthread_mutex_lock(&pools_mutex);
	snapshots_out++;
	int k = 0, cap = (int)list_count(&all_pools);
	struct pool **ps = xmalloc(sizeof(*ps) * (size_t)(cap ? cap : 1));
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &all_pools) ps[k++] = container_of(i, struct pool, node);
	pthread_mutex_unlock(&pools_mutex);
	*n = k;
	return ps;
}

void pool_snapshot_free(struct pool **ps)
{
	pthread_mutex_lock(&pools_mutex);
	snapshots_out--;
	pthread_mutex_unlock(&pools_mutex);
	free(ps);
}

static struct list *server_list(struct pool *p, enum server_state st)
{
	switch (st) {
	case SV_CONNECTING:
		return &p->connecting;
	case SV_IDLE:
		return &p->idle;
	case SV_SETUP:
	case SV_ACTIVE:
	case SV_BEING_CANCELED:
		return &p->used; /* still busy on the server's side */
	case SV_RESET:
		return &p->resetting;
	case SV_TRANSIT:
		return &p->transit;
	default:
		return NULL;
	}
}

void server_state_locked(struct server *s, enum server_state st)
{
	server_move_check(s, st);
	list_del(&s->node);
	if (!s->check)
		hosts_count_state(s->hrec, (int)s->state, (int)st, SV_IDLE);
	s->state = st;
	s->state_since = shoal_clock();
	struct list *l = s->check ? &s->pool->checking : server_list(s->pool, st);
	if (l)
		list_append(l, &s->node);
}

void server_set_state(struct server *s, enum server_state st)
{
	pool_lock(s->pool);
	server_state_locked(s, st);
	pool_unlock(s->pool);
}

static struct list *client_list(struct client *c, enum client_state st)
{
	switch (st) {
	case CL_LOGIN:
		return &c->c.w->login_clients;
	case CL_WAIT_LOGIN:
	case CL_WAITING:
		return &c->pool->waiting;
	case CL_HANDOFF:
		return &c->pool->handoff;
	case CL_IDLE:
	case CL_LINKED:
		return &c->pool->active_clients;
	default:
		return NULL;
	}
}

static bool client_is_active(enum client_state st)
{
	return st == CL_IDLE || st == CL_LINKED;
}

void client_state_locked(struct client *c, enum client_state st)
{
	client_move_check(c, st);
	struct pool *p = c->pool; /* the pool of both lists when either is active_clients */
	enum client_state from = c->state;
	if (p) {
		p->n_cl_active += (int)client_is_active(st) - (int)client_is_active(from);
		p->n_cl_linked += (int)(st == CL_LINKED) - (int)(from == CL_LINKED);
	}
	list_del(&c->node);
	c->state = st;
	c->state_since = shoal_clock();
	struct list *l = client_list(c, st);
	if (l)
		list_append(l, &c->node);
}

/* Before login a client has no pool: its list is its worker's, touched only by that worker. */
void client_set_state(struct client *c, enum client_state st)
{
	struct pool *p = c->pool;
	if (p)
		pool_lock(p);
	client_state_locked(c, st);
	if (p)
		pool_unlock(p);
}

/* ---- limits ---------------------------------------------------------------------------- */

/* Why claim_one said no: a cross-pool limit can be relieved by another pool's idle server. */
enum claim_rc { CLAIM_OK, CLAIM_NO, CLAIM_DB_FULL, CLAIM_USER_FULL, CLAIM_SIZE_FULL };

/* Under the pool's lock: open one more server? The slot is taken if so. */
static enum claim_rc claim_one(struct pool *p, bool reserve, usec_t now)
{
	if (now < p->next_connect_at || pause_is_paused(p->name))
		return CLAIM_NO;
	int size = p->pool_size + (reserve ? p->reserve_pool_size : 0);
	if (p->n_servers >= size || !hosts_have_room(p->hosts)) /* max_host_connections */
		return CLAIM_NO;
	if (!limit_take(p->size_limit, size)) /* size > 0 here */
		return CLAIM_SIZE_FULL; /* its replication pool's servers, or the other way round */
	if (!limit_take(p->db_limit, p->max_db_connections)) {
		limit_put(p->size_limit);
		return CLAIM_DB_FULL;
	}
	if (!limit_take(p->user_limit, p->max_user_connections)) {
		limit_put(p->db_limit);
		limit_put(p->size_limit);
		return CLAIM_USER_FULL;
	}
	p->n_servers++;
	return CLAIM_OK;
}

void pool_release_slot(struct pool *p)
{
	p->n_servers--;
	limit_put(p->size_limit);
	limit_put(p->db_limit);
	limit_put(p->user_limit);
}

static int claim_slots(struct pool *p, int want, bool reserve, usec_t now, enum claim_rc *why)
{
	int n = 0;
	*why = CLAIM_OK;
	while (n < want && (*why = claim_one(p, reserve, now)) == CLAIM_OK)
		n++;
	return n;
}

bool pool_claim_check_slot(struct pool *p)
{
	/* Not held back by the pool's login backoff (the check is what ends it) nor by pool_size
	 * (a pool full of idle servers still needs its hosts checked): the cross-pool limits
	 * only. Not counted in n_servers, so a release meanwhile does not find the pool over. */
	if (pause_is_paused(p->name) || !limit_take(p->db_limit, p->max_db_connections))
		return false;
	if (!limit_take(p->user_limit, p->max_user_connections)) {
		limit_put(p->db_limit);
		return false;
	}
	return true;
}

void pool_release_check_slot(struct pool *p)
{
	limit_put(p->db_limit);
	limit_put(p->user_limit);
}

int pool_claim_slots(struct pool *p, int want, bool reserve, usec_t now)
{
	enum claim_rc why;
	return claim_slots(p, want, reserve, now, &why);
}

void pool_open_servers(struct worker *w, struct pool *p, int n)
{
	while (n-- > 0)
		server_connect(w, p);
}

/* ---- eviction: max_db_connections / max_user_connections full of other pools' idle servers */

/* An ask not turned into a slot by then has lapsed (the idle server was taken meanwhile). */
#define EVICT_ASK_LAPSE (500 * 1000)

/* Under the pool's lock: its idle servers no janitor plans to close or was asked to give back. */
static int idle_to_spare(struct pool *p)
{
	int n = 0;
	for (struct list *i = p->idle.next; i != &p->idle; i = i->next)
		n += !container_of(i, struct server, node)->dying;
	return n - p->evict_wanted;
}

/* No lock held: ask pools other than p that count toward the full limit (same database, or
 * same server user) to give back up to want idle servers. Each pool's lock in turn, never two
 * at once; the servers are closed by their owners' janitors (janitor.c). Returns how many. */
static int ask_evictions(struct pool *p, enum claim_rc why, int want)
{
	int asked = 0;
	pthread_mutex_lock(&pools_mutex);
	for (struct list *i = all_pools.next; i != &all_pools && asked < want; i = i->next) {
		struct pool *v = container_of(i, struct pool, node);
		if (v == p || (why == CLAIM_DB_FULL	? v->db_limit != p->db_limit
			       : why == CLAIM_SIZE_FULL ? v->size_limit != p->size_limit
							: v->user_limit != p->user_limit))
			continue;
		pool_lock(v);
		int k = idle_to_spare(v);
		k = k < want - asked ? k : want - asked;
		if (k > 0) {
			v->evict_wanted += k;
			asked += k;
		}
		pool_unlock(v);
	}
	pthread_mutex_unlock(&pools_mutex);
	return asked;
}

/* Under p's lock, after claiming n slots for its waiters: how many evictions to ask for. */
static int evictions_needed(struct pool *p, int want, int n, enum claim_rc why, usec_t now)
{
	p->evict_asked = n < p->evict_asked ? p->evict_asked - n : 0; /* asks turned into slots */
	if (p->evict_asked > 0 && now - p->evict_asked_at >= EVICT_ASK_LAPSE)
		p->evict_asked = 0;
	if (why == CLAIM_OK || why == CLAIM_NO)
		return 0;
	int need = want - n - p->evict_asked;
	return need > 0 ? need : 0;
}

/* Open servers for clients that wait without one being opened for them. */
void pool_open_for_waiters(struct worker *w, struct pool *p, bool reserve)
{
	enum claim_rc why = CLAIM_OK;
	usec_t now = shoal_now();
	pool_lock(p);
	int want = (int)list_count(&p->waiting) - (int)list_count(&p->connecting) - p->n_opening;
	/* an idle server a waiter may take is a kick away: another worker holds it (a tick's
	 * new server would stay idle beside it) or the waiter holds back for a host's turn */
	want -= want > 0 ? pool_idle_for_waiters_locked(p, want) : 0;
	int before = p->n_servers;
	int n = want > 0 ? claim_slots(p, want, reserve, now, &why) : 0;
	p->n_opening += n; /* other workers' janitors must not open for the same waiters */
	int need = want > 0 ? evictions_needed(p, want, n, why, now) : 0;
	int from_reserve = p->n_servers - (before > p->pool_size ? before : p->pool_size);
	pool_unlock(p);
	/* PgBouncer's wording, one line per server, as operators alert on it; at most
	 * reserve_pool_size lines until the pool shrinks again. */
	for (int i = 0; i < from_reserve; i++)
		log_warn("pool %s@%s: taking connection from reserve_pool", p->user, p->name);
	int asked = need > 0 ? ask_evictions(p, why, need) : 0;
	if (asked > 0) {
		pool_lock(p);
		p->evict_asked += asked;
		p->evict_asked_at = now;
		pool_unlock(p);
		log_debug("pool %s@%s: %s full, asked other pools to close %d idle server%s",
			  p->user, p->name,
			  why == CLAIM_DB_FULL	   ? "max_db_connections"
			  : why == CLAIM_SIZE_FULL ? "pool_size (with its replication servers)"
						   : "max_user_connections",
			  asked, asked == 1 ? "" : "s");
	}
	pool_open_servers(w, p, n);
	if (n > 0) {
		pool_lock(p);
		p->n_opening -= n; /* each is now connecting, or already gone */
		pool_unlock(p);
	}
}

bool pool_login_failing(struct pool *p)
{
	return p->connect_failures > 0 &&
	       p->n_servers - p->n_opening - (int)list_count(&p->connecting) <= 0;
}

/* PgBouncer's launch_new_connection from check_fast_fail: refused clients are the only demand
 * a failing pool sees, so each may start one login (the backoff permitting, none in flight). */
void pool_open_probe(struct worker *w, struct pool *p)
{
	pool_lock(p);
	int n = 0;
	if (pool_login_failing(p) && list_empty(&p->connecting) && p->n_opening == 0)
		n = pool_claim_slots(p, 1, false, shoal_now());
	p->n_opening += n;
	pool_unlock(p);
	if (n == 0)
		return;
	pool_open_servers(w, p, n);
	pool_lock(p);
	p->n_opening -= n;
	pool_unlock(p);
}
