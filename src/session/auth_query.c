/* auth_query.c: auth_user + auth_query lookups through the pool, and their cache. */
#include "auth_query.h"
#include "client.h"
#include "ledger.h"
#include "log.h"
#include "pause.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "server.h"
#include "worker.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cache: (auth database, user) -> secret or none, shared by the workers ---------------- */

/* Bounded: user names arrive before authentication, so a stream of made-up ones must not grow
 * it. Negative answers (no such user) have their own small budget and live at most
 * AQ_NEG_TTL_USEC; past a budget the oldest entry of its kind goes. */
#define AQ_MAX_FOUND 10000
#define AQ_MAX_NEGATIVE 1000
#define AQ_NEG_TTL_USEC (5 * USEC_PER_SEC)

struct aq_entry {
	struct aq_entry *next;
	char *db, *user, *secret; /* secret NULL: no such user (or a NULL password) */
	usec_t fetched;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct aq_entry *cache; /* newest first */
static int n_found, n_negative;

static struct aq_entry **cache_find(const char *db, const char *user)
{
	struct aq_entry **e = &cache;
	while (*e && (strcmp((*e)->db, db) != 0 || strcmp((*e)->user, user) != 0))
		e = &(*e)->next;
	return e;
}

static void entry_free(struct aq_entry *e)
{
	if (e->secret)
		OPENSSL_cleanse(e->secret, strlen(e->secret));
	free(e->secret);
	free(e->db);
	free(e->user);
	free(e);
}

static usec_t entry_ttl(const struct aq_entry *e)
{
	usec_t ttl = config_current()->auth_query_cache_ttl;
	return !e->secret && ttl > AQ_NEG_TTL_USEC ? AQ_NEG_TTL_USEC : ttl;
}

/* Under cache_lock: unlink *pe and free it. */
static void cache_drop(struct aq_entry **pe)
{
	struct aq_entry *e = *pe;
	*pe = e->next;
	if (e->secret)
		n_found--;
	else
		n_negative--;
	entry_free(e);
}

/* Under cache_lock: drop stale entries, then the oldest of a kind over its budget. */
static void cache_trim(usec_t now)
{
	struct aq_entry **pe = &cache, **oldest_found = NULL, **oldest_neg = NULL;
	while (*pe) {
		if (now - (*pe)->fetched >= entry_ttl(*pe)) {
			cache_drop(pe);
			continue;
		}
		if ((*pe)->secret)
			oldest_found = pe;
		else
			oldest_neg = pe;
		pe = &(*pe)->next;
	}
	/* One over at most, of the kind just inserted: each insert trims. */
	if (n_found > AQ_MAX_FOUND)
		cache_drop(oldest_found);
	else if (n_negative > AQ_MAX_NEGATIVE)
		cache_drop(oldest_neg);
}

/* A fresh cached answer: *secret is a copy (or NULL). False when absent or stale. */
static bool cache_get(const char *db, const char *user, char **secret)
{
	bool hit = false;
	pthread_mutex_lock(&cache_lock);
	struct aq_entry *e = *cache_find(db, user);
	if (e && shoal_now() - e->fetched < entry_ttl(e)) {
		*secret = e->secret ? xstrdup(e->secret) : NULL;
		hit = true;
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_put(const char *db, const char *user, const char *secret)
{
	pthread_mutex_lock(&cache_lock);
	struct aq_entry **pe = cache_find(db, user);
	if (*pe)
		cache_drop(pe);
	struct aq_entry *e = xcalloc(1, sizeof(*e));
	e->db = xstrdup(db);
	e->user = xstrdup(user);
	e->secret = secret ? xstrdup(secret) : NULL;
	e->fetched = shoal_now();
	e->next = cache;
	cache = e;
	if (e->secret)
		n_found++;
	else
		n_negative++;
	cache_trim(e->fetched);
	pthread_mutex_unlock(&cache_lock);
}

int auth_query_cache_count(void)
{
	pthread_mutex_lock(&cache_lock);
	int n = n_found + n_negative;
	pthread_mutex_unlock(&cache_lock);
	return n;
}

void auth_query_share_secret(struct client *c, struct pool *p)
{
	if (!c->aq_secret)
		return;
	pool_lock(p);
	if (!p->password && strcmp(p->server_user, c->user) == 0)
		p->password = xstrdup(c->aq_secret);
	pool_unlock(p);
}

void auth_query_cache_free(void)
{
	pthread_mutex_lock(&cache_lock);
	while (cache)
		cache_drop(&cache);
	pthread_mutex_unlock(&cache_lock);
}

/* ---- settings for a client ---------------------------------------------------------------- */

/* Per-database settings override the global ones; a client without a database entry (the
 * admin console) has only the global ones. */
static const char *aq_user(const struct client *c)
{
	return c->db && c->db->auth_user ? c->db->auth_user : config_current()->auth_user;
}

/* The database entry's auth_dbname, else the global one, else the client's own database (none
 * for the console: PgBouncer's reserved database cannot run a query). */
static const char *aq_dbname(const struct client *c)
{
	const char *d =
	    c->db && c->db->auth_dbname ? c->db->auth_dbname : config_current()->auth_dbname;
	return d ? d : c->admin ? "pgbouncer" : c->dbname;
}

static const char *aq_query(const struct client *c)
{
	return c->db && c->db->auth_query ? c->db->auth_query : config_current()->auth_query;
}

/* The one mover of c->aq: a lookup starts once and ends once (the cache may answer at once).
 * Other moves are defects, asserted in debug builds. */
static void aq_move(struct client *c, enum client_aq to)
{
	static const unsigned legal[] __attribute__((unused)) = {
	    [AQ_NONE] = 1u << AQ_RUNNING | 1u << AQ_DONE,
	    [AQ_RUNNING] = 1u << AQ_DONE,
	    [AQ_DONE] = 0,
	};
	assert(legal[c->aq] & (1u << to));
	c->aq = to;
}

/* The console's users are looked up too (through auth_dbname), as in PgBouncer. */
bool auth_query_wanted(const struct client *c)
{
	return c->aq != AQ_DONE && (c->db || c->admin) && aq_user(c) &&
	       !config_find_secret(config_current(), c->user);
}

/* ---- the lookup --------------------------------------------------------------------------- */

/* The auth database's entry, or NULL with c closed: PgBouncer's checks and wording (a
 * configuration error, so the client is told no more than "bouncer config error"). */
static const struct db_entry *aq_database(struct client *c, const char *dbname)
{
	const struct db_entry *db = config_find_db(config_current(), dbname);
	char msg[200];
	if (client_is_console_db(dbname)) {
		log_error("%s: cannot use the reserved \"%s\" database as an auth_dbname",
			  c->c.name, dbname);
	} else if (!db) {
		log_error("%s: authentication database \"%s\" is not configured.", c->c.name,
			  dbname);
	} else if (pause_is_disabled(dbname)) {
		snprintf(msg, sizeof(msg), "authentication database \"%s\" is disabled", dbname);
		client_close(c, "08P01", msg);
		return NULL;
	} else {
		return db;
	}
	client_close(c, "08P01", "bouncer config error");
	return NULL;
}

shoal_rc auth_query_start(struct client *c)
{
	const struct config *cfg = config_current();
	const char *dbname = aq_dbname(c);
	const struct db_entry *db = aq_database(c, dbname);
	if (!db)
		return SHOAL_ERROR;
	if (cache_get(dbname, c->user, &c->aq_secret)) {
		aq_move(c, AQ_DONE);
		return SHOAL_OK;
	}
	struct pool *p = pool_get(cfg, db, dbname, aq_user(c), NULL);
	if (!p) {
		client_close(c, "53400", POOL_MAX_MSG);
		return SHOAL_AGAIN;
	}
	c->pool = p;
	pool_show(p);
	aq_move(c, AQ_RUNNING);
	c->needs_login_check = true; /* waits as CL_WAIT_LOGIN: not reading the client */
	pool_lock(p);
	p->n_clients++;
	pool_unlock(p);
	log_debug("%s: auth_query as %s in %s", c->c.name, p->server_user, p->server_db);
	pool_acquire(c);
	return SHOAL_AGAIN;
}

void auth_query_send(struct server *s)
{
	struct client *c = s->client;
	struct buf *o = &s->c.out;
	s->auth_query = true;
	c->aq_found = false;
	ps_server_query_sent(
	    s); /* this replaces the server's unnamed statement: nobody owns it now */
	proto_begin(o, PQMSG_PARSE);
	proto_put_str(o, "");
	proto_put_str(o, aq_query(c));
	proto_put_u16(o, 0);
	proto_finish(o);
	proto_begin(o, PQMSG_BIND);
	proto_put_str(o, "");
	proto_put_str(o, "");
	proto_put_u16(o, 0);
	proto_put_u16(o, 1);
	proto_put_u32(o, (uint32_t)strlen(c->user));
	proto_put_bytes(o, c->user, strlen(c->user));
	proto_put_u16(o, 0);
	proto_finish(o);
	proto_begin(o, PQMSG_EXECUTE);
	proto_put_str(o, "");
	proto_put_u32(o, 0);
	proto_finish(o);
	proto_begin(o, PQMSG_SYNC);
	proto_finish(o);
	s->pending = 1;
	if (conn_flush(&s->c) == SHOAL_ERROR)
		server_close(s, "send failed (auth_query)");
}

/* DataRow: (name, secret); a NULL secret means the user may not log in (expired). */
void auth_query_row(struct server *s, const uint8_t *msg, size_t len)
{
	struct client *c = s->client;
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	if (!c || c->aq_found || pqr_u16(&r) < 2)
		return;
	uint32_t n = pqr_u32(&r);
	if (n != 0xffffffffu && !pqr_bytes(&r, n))
		return;
	n = pqr_u32(&r);
	const uint8_t *v = n == 0xffffffffu ? NULL : pqr_bytes(&r, n);
	if (r.err || (v && memchr(v, '\0', n)))
		return;
	c->aq_found = true;
	free(c->aq_secret);
	c->aq_secret = NULL;
	if (v) {
		c->aq_secret = xmalloc(n + 1);
		memcpy(c->aq_secret, v, n);
		c->aq_secret[n] = '\0';
	}
}

void auth_query_done(struct server *s)
{
	struct client *c = s->client;
	struct pool *p = s->pool;
	bool failed = s->setup_failed;
	s->auth_query = false;
	s->setup_failed = false;
	pool_unlink(c, s);
	pool_lock(p);
	client_state_locked(c, CL_LOGIN);
	p->n_clients--;
	pool_unlock(p);
	c->pool = NULL;
	c->needs_login_check = false;
	aq_move(c, AQ_DONE);
	if (s->ready_status == 'I')
		pool_server_ready(s);
	else
		server_close(s, "auth_query left a transaction open");
	if (failed) {
		log_warn("%s: auth_query failed on %s (its error is logged above)", c->c.name,
			 s->c.name);
		client_close(c, "08P01",
			     "bouncer config error: authentication lookup failed (auth_query)");
		return;
	}
	cache_put(aq_dbname(c), c->user, c->aq_secret);
	client_auth_resume(c);
}
