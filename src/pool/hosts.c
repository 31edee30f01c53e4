/* hosts.c: host lists per database entry: host choice, roles, and a circuit breaker per host. */
#include "hosts.h"
#include "hosts_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A role read longer ago than this is not trusted to skip a host: the next pick may try it. */
/* ... and this long while the entry's primary is being looked for (seek_primary). */
#define SEEK_TTL (1 * USEC_PER_SEC)
/* The breaker stays open this long after the first failure, doubling per failed probe. */
#define BREAKER_BASE (1 * USEC_PER_SEC)
#define BREAKER_MAX  (30 * USEC_PER_SEC)

static void role_note(struct host_rec *h, bool in_recovery, bool read_only, usec_t now);
static void breaker_trip(struct host_rec *h, const char *reason, usec_t now);

pthread_mutex_t hosts_lock = PTHREAD_MUTEX_INITIALIZER;
struct host_rec *hosts_registry;
struct host_set **hosts_sets;
int hosts_nsets;

const char *hosts_role_name(int role)
{
	return role == HOST_ROLE_PRIMARY   ? "primary"
	       : role == HOST_ROLE_STANDBY ? "standby"
					   : "unknown";
}

const char *hosts_breaker_name(int state)
{
	return state == BRK_OPEN ? "open" : state == BRK_HALF_OPEN ? "half-open" : "closed";
}

const char *hosts_state_name(const struct host_view *v)
{
	return v->disabled		  ? "disabled"
	       : v->picked		  ? "picked"
	       : v->split		  ? "split"
	       : v->lagging		  ? "lagging"
	       : v->breaker != BRK_CLOSED ? "broken"
					  : "up";
}

/* Under the lock. */
static struct host_rec *rec_get(const char *db, const char *host, int port)
{
	for (struct host_rec *h = hosts_registry; h; h = h->next)
		if (h->port == port && strcmp(h->db, db) == 0 && strcmp(h->host, host) == 0)
			return h;
	struct host_rec *h = xcalloc(1, sizeof(*h));
	h->db = xstrdup(db);
	h->host = xstrdup(host);
	h->port = port;
	h->lag_bytes = -1;
	struct host_rec **tail = &hosts_registry; /* in configuration order, for SHOW HOSTS */
	while (*tail)
		tail = &(*tail)->next;
	*tail = h;
	return h;
}

static char *set_sig(const struct db_entry *db)
{
	char sig[1200];
	snprintf(sig, sizeof(sig), "%s|%d|%s|%d|%d|%s|%s|%s|%d", db->host ? db->host : "", db->port,
		 db->port_list ? db->port_list : "", db->load_balance_hosts,
		 db->target_session_attrs, db->weight ? db->weight : "", db->zone ? db->zone : "",
		 hosts_own_zone(), db->read_write_split != 0);
	return xstrdup(sig);
}

static bool wants_set(const struct db_entry *db)
{
	return (db->host && strchr(db->host, ',')) || db->target_session_attrs != TSA_ANY ||
	       db->read_write_split;
}

struct host_set *hosts_set_for(const struct db_entry *db, const char *dbname)
{
	struct host_addr addrs[SHOAL_MAX_HOSTS];
	int n = 0;
	char err[256];
	if (!wants_set(db))
		return NULL;
	if (config_host_list(db, addrs, SHOAL_MAX_HOSTS, &n, err, sizeof(err)) != SHOAL_OK) {
		log_error("database %s: %s", dbname, err); /* checked at load: cannot happen */
		return NULL;
	}
	if (n == 0) { /* target_session_attrs without host=: the default host */
		int port = db->port > 0 ? db->port : 5432;
		snprintf(addrs[0].host, sizeof(addrs[0].host), "%s", config_default_host(port));
		addrs[0].port = port;
		addrs[0].weight = 1;
		n = 1;
	}
	struct host_set *hs = xcalloc(1, sizeof(*hs));
	hs->n = n;
	hs->lb = db->load_balance_hosts;
	hs->tsa = db->target_session_attrs;
	hs->split = db->read_write_split != 0;
	hs->sig = set_sig(db);
	for (int i = 0; i < n; i++) {
		hs->w[i] = addrs[i].weight;
		hs->weighted |= hs->w[i] != hs->w[0];
	}
	const char *sdb = db->dbname ? db->dbname : dbname;
	size_t glen = strlen(sdb) + 2;
	for (int i = 0; i < n; i++)
		glen += strlen(addrs[i].host) + 16;
	hs->group = xcalloc(1, glen);
	for (int i = 0; i < n; i++) {
		size_t k = strlen(hs->group);
		snprintf(hs->group + k, glen - k, "%s:%d,", addrs[i].host, addrs[i].port);
	}
	size_t k = strlen(hs->group);
	snprintf(hs->group + k, glen - k, "/%s", sdb);
	pthread_mutex_lock(&hosts_lock);
	const char *zone = hosts_own_zone();
	bool nearest = strcmp(zone, "nearest") == 0;
	for (int i = 0; i < n; i++) {
		hs->h[i] = rec_get(dbname, addrs[i].host, addrs[i].port);
		hs->h[i]->weight = hs->w[i];
		memcpy(hs->h[i]->zone, addrs[i].zone, sizeof(hs->h[i]->zone));
		if (!nearest)
			hs->h[i]->near = zone[0] && strcmp(addrs[i].zone, zone) == 0;
	}
	hosts_sets = xrealloc(hosts_sets, sizeof(*hosts_sets) * (size_t)(hosts_nsets + 1));
	hosts_sets[hosts_nsets++] = hs;
	hosts_zone_spread(dbname);
	pthread_mutex_unlock(&hosts_lock);
	return hs;
}

bool hosts_set_changed(const struct host_set *hs, const struct db_entry *db)
{
	if (!hs || !wants_set(db))
		return (hs != NULL) != wants_set(db);
	char *sig = set_sig(db);
	bool changed = strcmp(sig, hs->sig) != 0;
	free(sig);
	return changed;
}

bool hosts_tsa_writes(int tsa)
{
	return tsa == TSA_READ_WRITE || tsa == TSA_PRIMARY;
}

bool hosts_wants_role(const struct host_set *hs)
{
	return hs && (hs->tsa != TSA_ANY || hs->split); /* the split routes by role */
}

bool hosts_rotate_idle(const struct host_set *hs)
{
	return hs && hs->n > 1 && hs->lb == LB_RANDOM;
}

/* Under the lock: whether h's known role rules it out for tsa. An unknown or stale role does
 * not: the connection's own check decides. */
static bool role_excludes(const struct host_rec *h, int tsa, usec_t now)
{
	if (h->role == HOST_ROLE_UNKNOWN || now - h->role_at > (h->seeking ? SEEK_TTL : ROLE_TTL))
		return false;
	switch (tsa) {
	case TSA_READ_WRITE:
		return h->read_only;
	case TSA_READ_ONLY:
		return !h->read_only;
	case TSA_PRIMARY:
		return h->role != HOST_ROLE_PRIMARY;
	case TSA_STANDBY:
		return h->role != HOST_ROLE_STANDBY;
	default:
		return false;
	}
}

bool hosts_breaker_allows(const struct host_rec *h, usec_t now)
{
	if (h->breaker == BRK_CLOSED)
		return true;
	if (h->breaker == BRK_HALF_OPEN)
		return !h->probe_out;
	return now >= h->open_until;
}

/* max_host_connections (0: none). */
static int host_limit(void)
{
	const struct config *cfg = config_current();
	return cfg ? cfg->max_host_connections : 0;
}

/* Under the lock: the role hosts_pick_for wants during its pick (read_write_split: the role
 * its waiting client needs); -1 outside a pick, when a set's own target_session_attrs holds. */
static int pick_tsa = -1;

static int tsa_of(const struct host_set *hs)
{
	return pick_tsa >= 0 ? pick_tsa : hs->tsa;
}

/* Under the lock: whether h may take the next connection. pass 0 of prefer-standby also skips
 * known primaries. */
bool hosts_usable(const struct host_set *hs, const struct host_rec *h, int pass, usec_t now)
{
	int limit = host_limit();
	if (!hosts_breaker_allows(h, now) || role_excludes(h, tsa_of(hs), now) || hosts_held(hs, h) ||
	    (hs->near_only && !h->near) || (limit > 0 && h->servers >= limit))
		return false;
	return !(pass == 0 && tsa_of(hs) == TSA_PREFER_STANDBY && h->role == HOST_ROLE_PRIMARY &&
		 now - h->role_at <= ROLE_TTL);
}

/* Under the lock: weighted round-robin (nginx's smooth kind): each usable host earns its
 * weight, the richest is picked and pays the usable hosts' total, so with weights 3,1 the picks
 * go a,a,b,a,... and a host that drops out does not leave a debt behind. */
static int pick_weighted(struct host_set *hs, int pass, usec_t now)
{
	int best = -1, total = 0;
	for (int i = 0; i < hs->n; i++) {
		if (!hosts_usable(hs, hs->h[i], pass, now))
			continue;
		hs->credit[i] += hs->w[i];
		total += hs->w[i];
		if (best < 0 || hs->credit[i] > hs->credit[best])
			best = i;
	}
	if (best >= 0)
		hs->credit[best] -= total;
	return best;
}

/* Under the lock: whether host i has fewer server connections than host j for its weight. */
static bool fewer_per_weight(const struct host_set *hs, int i, int j)
{
	return (long)hs->h[i]->servers * hs->w[j] < (long)hs->h[j]->servers * hs->w[i];
}

/* Under the lock: a usable host drawn at random, each with a chance in proportion to its
 * weight (PgDog's "random"). */
static int pick_random(const struct host_set *hs, int pass, usec_t now)
{
	int total = 0, last = -1;
	for (int i = 0; i < hs->n; i++)
		if (hosts_usable(hs, hs->h[i], pass, now))
			total += hs->w[i];
	int r = total ? (int)((double)total * (rand() / (RAND_MAX + 1.0))) : 0;
	for (int i = 0; i < hs->n; i++) {
		if (!hosts_usable(hs, hs->h[i], pass, now))
			continue;
		last = i;
		if ((r -= hs->w[i]) < 0)
			return i;
	}
	return last;
}

static int pick_index(struct host_set *hs, int pass, usec_t now)
{
	if (hs->lb == LB_RANDOM)
		return pick_random(hs, pass, now);
	if (hs->weighted && hs->lb == LB_ROUND_ROBIN)
		return pick_weighted(hs, pass, now);
	int best = -1;
	int start = hs->lb == LB_DISABLE ? 0 : hs->next;
	for (int k = 0; k < hs->n; k++) {
		int i = (start + k) % hs->n;
		if (!hosts_usable(hs, hs->h[i], pass, now))
			continue;
		if (hs->lb != LB_LEAST_CONN)
			return i;
		if (best < 0 || fewer_per_weight(hs, i, best))
			best = i;
	}
	return best;
}

/* Under the lock: the host for a new server by tiers: the role wanted (pass 0) before a
 * prefer-standby alias's primary (pass 1), and within each, hosts in this instance's zone
 * before the others (near_only, set by the caller when the set is zoned). */
static int pick_tiers(struct host_set *hs, usec_t now)
{
	bool zoned = hs->near_only;
	for (int pass = 0; pass < (tsa_of(hs) == TSA_PREFER_STANDBY ? 2 : 1); pass++) {
		hs->near_only = zoned;
		int i = pick_index(hs, pass, now);
		hs->near_only = false;
		if (i < 0 && zoned)
			i = pick_index(hs, pass, now);
		if (i >= 0)
			return i;
	}
	return -1;
}

bool hosts_balance_idle(const struct host_set *hs)
{
	return hs && hs->n > 1 && (hs->lb == LB_ROUND_ROBIN || hs->lb == LB_LEAST_CONN);
}

/* Under the lock: a host back in rotation with no server yet, usable now; -1 if none. */
static int returned_index(const struct host_set *hs, usec_t now)
{
	if (hs->lb == LB_DISABLE)
		return -1; /* the first host in the list is wanted, whichever came back */
	for (int i = 0; i < hs->n; i++)
		if (hs->h[i]->returned && hs->h[i]->servers == 0 && hosts_usable(hs, hs->h[i], 0, now))
			return i;
	return -1;
}

bool hosts_have_room(struct host_set *hs)
{
	int limit = host_limit();
	if (!hs || limit <= 0)
		return true;
	bool room = false;
	pthread_mutex_lock(&hosts_lock);
	for (int i = 0; i < hs->n && !room; i++)
		room = hs->h[i]->servers < limit && !hosts_held(hs, hs->h[i]) &&
		       !role_excludes(hs->h[i], hs->tsa, shoal_now());
	pthread_mutex_unlock(&hosts_lock);
	return room;
}

bool hosts_returned_waiting(struct host_set *hs)
{
	if (!hs || hs->n < 2)
		return false;
	usec_t now = shoal_now();
	bool busy = false;
	pthread_mutex_lock(&hosts_lock);
	for (int i = 0; i < hs->n; i++) {
		struct host_rec *h = hs->h[i];
		if (h->returned && h->servers > 0)
			h->returned = false;
		/* another zone's host standing in for ours: one server of it is enough */
		busy |= h->servers >= 2 || (hs->zoned && !hs->near[i] && h->servers > 0);
	}
	hs->near_only = hs->zoned; /* as hosts_pick: a far host is not wanted while near ones are */
	bool waiting = busy && returned_index(hs, now) >= 0;
	hs->near_only = false;
	pthread_mutex_unlock(&hosts_lock);
	return waiting;
}

struct host_rec *hosts_pick(struct host_set *hs, char *err, size_t errlen)
{
	return hosts_pick_for(hs, ROUTE_ANY, err, errlen);
}

struct host_rec *hosts_pick_for(struct host_set *hs, int want, char *err, size_t errlen)
{
	usec_t now = shoal_now();
	pthread_mutex_lock(&hosts_lock);
	pick_tsa = want == ROUTE_PRIMARY   ? TSA_PRIMARY
		   : want == ROUTE_STANDBY ? TSA_PREFER_STANDBY
					   : hs->tsa;
	hs->near_only = hs->zoned;
	int i = returned_index(hs, now);
	if (i >= 0)
		hs->h[i]->returned = false; /* its first server; later ones go by the rule */
	else
		i = pick_tiers(hs, now);
	hs->near_only = false;
	pick_tsa = -1;
	if (i < 0) {
		pthread_mutex_unlock(&hosts_lock);
		snprintf(err, errlen,
			 "no usable host (target_session_attrs=%s): breakers open or "
			 "roles do not match",
			 config_tsa_name(hs->tsa));
		return NULL;
	}
	struct host_rec *h = hs->h[i];
	hs->next = (i + 1) % hs->n;
	if (h->breaker == BRK_OPEN) {
		h->breaker = BRK_HALF_OPEN;
		log_info("host %s:%d of %s: breaker half-open, one connection let through", h->host,
			 h->port, h->db);
	}
	/* half-open: this is the one probe; others skip the host until it has logged in */
	if (h->breaker == BRK_HALF_OPEN)
		h->probe_out = true;
	h->servers++;
	h->connects++;
	pthread_mutex_unlock(&hosts_lock);
	return h;
}

void hosts_login_ok(struct host_rec *h)
{
	pthread_mutex_lock(&hosts_lock);
	if (h->breaker != BRK_CLOSED)
		log_info("host %s:%d of %s: breaker closed, back in rotation", h->host, h->port,
			 h->db);
	h->breaker = BRK_CLOSED;
	h->probe_out = false;
	h->backoff = 0;
	pthread_mutex_unlock(&hosts_lock);
}

bool hosts_role_seen(struct host_set *hs, struct host_rec *h, bool in_recovery, bool read_only)
{
	usec_t now = shoal_now();
	pthread_mutex_lock(&hosts_lock);
	int role = in_recovery ? HOST_ROLE_STANDBY : HOST_ROLE_PRIMARY;
	role_note(h, in_recovery, read_only, now);
	bool ok = !role_excludes(h, hs->tsa, now);
	if (ok && hs->tsa == TSA_PREFER_STANDBY && role == HOST_ROLE_PRIMARY) {
		/* Taken only if no other host may still be a standby. */
		for (int i = 0; i < hs->n && ok; i++)
			if (hs->h[i] != h && hosts_usable(hs, hs->h[i], 0, now))
				ok = false;
	}
	pthread_mutex_unlock(&hosts_lock);
	return ok;
}

/* Under the lock: a failure signal; the breaker opens (again) with a longer, jittered wait. */
static void breaker_trip(struct host_rec *h, const char *reason, usec_t now)
{
	h->failures++;
	h->probe_out = false;
	h->backoff = h->backoff ? h->backoff * 2 : BREAKER_BASE;
	if (h->backoff > BREAKER_MAX)
		h->backoff = BREAKER_MAX;
	/* Jitter 0.8..1.2: hosts that failed together are not all retried at once. */
	double j = 0.8 + 0.4 * (rand() / (RAND_MAX + 1.0));
	h->open_until = now + (usec_t)((double)h->backoff * j);
	if (h->breaker != BRK_OPEN)
		log_warn("host %s:%d of %s: breaker open for %.1f s: %s", h->host, h->port, h->db,
			 (double)(h->open_until - now) / USEC_PER_SEC, reason);
	h->breaker = BRK_OPEN;
}

/* Under the lock: the believed primary h of write alias hs failed. Without this a standby's
 * role, read before the promotion, kept the promoted one skipped for ROLE_TTL: every role of
 * the entry is read again by the next connection to each host (and by a health check at the
 * next tick), and trusted for SEEK_TTL only until a host answers as primary. */
static void seek_primary(struct host_set *hs, struct host_rec *h, const char *reason)
{
	if (!hosts_tsa_writes(hs->tsa) || h->role != HOST_ROLE_PRIMARY || h->seeking)
		return;
	log_warn("host %s:%d of %s: the primary failed (%s): roles are read again, looking for "
		 "the primary",
		 h->host, h->port, h->db, reason);
	for (struct host_rec *o = hosts_registry; o; o = o->next) {
		if (strcmp(o->db, h->db) != 0)
			continue;
		o->seeking = true;
		o->role_at = 0;
		o->check_next = 0;
	}
}

/* Under the lock: h answered as a writable primary; the search is over. */
static void seek_found(const struct host_rec *h)
{
	if (!h->seeking)
		return;
	for (struct host_rec *o = hosts_registry; o; o = o->next)
		if (strcmp(o->db, h->db) == 0)
			o->seeking = false;
	log_info("host %s:%d of %s: found as primary", h->host, h->port, h->db);
}

bool hosts_server_gone(struct host_set *hs, struct host_rec *h, bool login_failed, bool conn_lost,
		       const char *reason)
{
	usec_t now = shoal_now();
	pthread_mutex_lock(&hosts_lock);
	h->servers--;
	if (hs && (login_failed || conn_lost))
		seek_primary(hs, h, reason);
	if (login_failed && h->breaker != BRK_OPEN) {
		breaker_trip(h, reason, now);
	} else if (conn_lost && h->breaker == BRK_CLOSED) {
		/* One lost connection may be a pg_terminate_backend: the host is not shut out, but
		 * the next connection to it is a probe (one at a time) that decides. */
		h->failures++;
		h->breaker = BRK_HALF_OPEN;
		h->probe_out = false;
		log_warn("host %s:%d of %s: breaker half-open, a server connection was lost: %s",
			 h->host, h->port, h->db, reason);
	} else if (h->breaker == BRK_HALF_OPEN && h->probe_out && !login_failed) {
		h->probe_out = false; /* closed before it could prove anything: let another try */
	}
	bool other = false;
	for (int i = 0; hs && i < hs->n && !other; i++)
		other = hs->h[i] != h && hosts_usable(hs, hs->h[i], 1, now);
	pthread_mutex_unlock(&hosts_lock);
	return other;
}

bool hosts_check_claim(struct host_rec *h, usec_t interval)
{
	usec_t now = shoal_now();
	bool due = false;
	pthread_mutex_lock(&hosts_lock);
	if (!h->check_running && now >= h->check_next) {
		h->check_running = true;
		h->check_next = now + interval;
		h->check_started = now;
		due = true;
	}
	pthread_mutex_unlock(&hosts_lock);
	return due;
}

/* Under the lock: a role read by a login's role check or a health check. */
static void role_note(struct host_rec *h, bool in_recovery, bool read_only, usec_t now)
{
	int role = in_recovery ? HOST_ROLE_STANDBY : HOST_ROLE_PRIMARY;
	if (h->role != HOST_ROLE_UNKNOWN && h->role != role)
		log_info("host %s:%d of %s: role is now %s", h->host, h->port, h->db,
			 hosts_role_name(role));
	h->role = role;
	h->read_only = read_only;
	h->role_at = now;
	if (role == HOST_ROLE_PRIMARY && !read_only)
		seek_found(h);
}

/* Under the lock: the freshest known primary of h's entry, or NULL. */
struct host_rec *hosts_primary_of(const struct host_rec *h)
{
	struct host_rec *best = NULL;
	for (struct host_rec *o = hosts_registry; o; o = o->next)
		if (o->role == HOST_ROLE_PRIMARY && o->check_at && !o->check_failing &&
		    strcmp(o->db, h->db) == 0 && (!best || o->check_at > best->check_at))
			best = o;
	return best;
}

/* Under the lock: each standby of h's entry against max_replica_lag(_bytes), one log line per
 * change. Bytes are measured against the primary's last checked position. */
static void lag_update(const struct host_rec *h, const struct host_check *r)
{
	const struct host_rec *pri = hosts_primary_of(h);
	for (struct host_rec *o = hosts_registry; o; o = o->next) {
		if (strcmp(o->db, h->db) != 0)
			continue;
		bool standby = o->role == HOST_ROLE_STANDBY && o->check_at;
		/* The primary's last position from a check begun before the standby's: a write
		 * between the two checks is not lag, and the standby is not compared with an older
		 * position than the one before it (which would flap it back into rotation). */
		uint64_t plsn = !pri				       ? 0
				: pri->lsn_since <= o->lsn_since || !pri->prev_since ? pri->lsn
										   : pri->prev_lsn;
		int64_t d = standby && pri ? (int64_t)plsn - (int64_t)o->lsn : -1;
		if (standby && pri && d < 0)
			d = 0; /* the primary was read before the standby replayed more */
		o->lag_bytes = d;
		bool over = standby && ((r->max_lag_bytes > 0 && o->lag_bytes > r->max_lag_bytes) ||
					(r->max_lag > 0 && o->replay_delay * USEC_PER_SEC > r->max_lag));
		if (over == o->lagging)
			continue;
		o->lagging = over;
		if (over) {
			log_warn("host %s:%d of %s: replica lag %lld bytes, %.1f s: over "
				 "max_replica_lag, out of rotation", o->host, o->port, o->db,
				 (long long)o->lag_bytes, o->replay_delay);
		} else {
			log_info("host %s:%d of %s: replica caught up (lag %lld bytes, %.1f s), back "
				 "in rotation", o->host, o->port, o->db, (long long)o->lag_bytes,
				 o->replay_delay);
			o->returned = true;
		}
	}
}

/* Under the lock: whether o answered its last check, as primary. */
bool hosts_claims_primary(const struct host_rec *o)
{
	return o->role == HOST_ROLE_PRIMARY && o->check_at && !o->check_failing;
}

/* Under the lock: the split brain of entry db is over; an operator's pick ends with it. */
static void pick_clear(const char *db)
{
	for (struct host_rec *o = hosts_registry; o; o = o->next) {
		if (!o->picked || strcmp(o->db, db) != 0)
			continue;
		o->picked = false;
		log_info(
		    "host %s:%d of %s: the operator's pick as primary (PRIMARY HOST) is cleared: "
		    "the split brain is over",
		    o->host, o->port, o->db);
	}
}

/* Under the lock: split brain in h's entry (two hosts claim primary), one loud line when it
 * starts and one when it ends. */
static void split_update(const struct host_rec *h)
{
	int n = 0;
	char who[512] = "";
	for (const struct host_rec *o = hosts_registry; o; o = o->next) {
		if (strcmp(o->db, h->db) != 0 || !hosts_claims_primary(o))
			continue;
		size_t k = strlen(who);
		snprintf(who + k, sizeof(who) - k, "%s%s:%d", n ? ", " : "", o->host, o->port);
		n++;
	}
	bool split = n > 1, was = false;
	for (struct host_rec *o = hosts_registry; o; o = o->next) {
		if (strcmp(o->db, h->db) != 0)
			continue;
		was = was || o->split;
		o->split = split && hosts_claims_primary(o);
	}
	if (split && !was)
		log_error("SPLIT BRAIN in %s: %s all claim to be primary; no writes go to any of "
			  "them until only one does (or PRIMARY HOST picks one)",
			  h->db, who);
	else if (!split && was)
		log_info("split brain in %s is over: %s", h->db,
			 n ? who : "no host claims primary now");
	if (!split)
		pick_clear(h->db);
}

void hosts_check_done(struct host_rec *h, const struct host_check *r, const char *reason)
{
	usec_t now = shoal_now();
	pthread_mutex_lock(&hosts_lock);
	h->check_running = false;
	h->check_failing = !r->ok;
	if (r->ok) {
		role_note(h, r->in_recovery, r->read_only, now);
		h->prev_lsn = h->lsn;
		h->prev_since = h->lsn_since;
		h->lsn = r->lsn;
		h->lsn_since = h->check_started;
		h->replay_delay = r->delay;
		h->check_at = now;
		double rtt = (double)(now - h->check_started) / USEC_PER_SEC;
		h->rtt = h->rtt ? 0.7 * h->rtt + 0.3 * rtt : rtt;
		lag_update(h, r);
		if (h->breaker != BRK_CLOSED && !h->probe_out) {
			log_info("host %s:%d of %s: breaker closed, health check passed", h->host,
				 h->port, h->db);
			h->breaker = BRK_CLOSED;
			h->returned = true;
			h->backoff = 0;
		}
	} else if (h->breaker != BRK_OPEN || now >= h->open_until) {
		char why[300];
		snprintf(why, sizeof(why), "health check failed: %s", reason);
		breaker_trip(h, why, now);
	}
	split_update(h); /* a primary that stops answering no longer claims anything */
	if (strcmp(hosts_own_zone(), "nearest") == 0)
		hosts_zone_nearest(h->db);
	pthread_mutex_unlock(&hosts_lock);
}

bool hosts_primary_missing(struct host_set *hs)
{
	if (!hosts_writes(hs))
		return false;
	usec_t now = shoal_now();
	bool missing = true;
	pthread_mutex_lock(&hosts_lock);
	for (int i = 0; i < hs->n && missing; i++) {
		const struct host_rec *h = hs->h[i];
		missing =
		    hosts_held(hs, h) || h->breaker != BRK_CLOSED || role_excludes(h, hs->tsa, now);
	}
	pthread_mutex_unlock(&hosts_lock);
	return missing;
}

shoal_rc hosts_set_disabled(const struct db_entry *db, const char *dbname, const char *host,
			    int port, bool disabled, char *err, size_t errlen)
{
	struct host_addr addrs[SHOAL_MAX_HOSTS];
	int n = 0;
	if (!wants_set(db)) {
		snprintf(err, errlen, "database %s has one host: use DISABLE %s", dbname, dbname);
		return SHOAL_ERROR;
	}
	if (config_host_list(db, addrs, SHOAL_MAX_HOSTS, &n, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	int i = 0;
	while (i < n && (addrs[i].port != port || strcmp(addrs[i].host, host) != 0))
		i++;
	if (i == n) {
		snprintf(err, errlen, "%s:%d is not a host of database %s", host, port, dbname);
		return SHOAL_ERROR;
	}
	pthread_mutex_lock(&hosts_lock);
	struct host_rec *h = rec_get(dbname, host, port); /* made now if no pool has used it */
	if (!h->weight)
		h->weight = addrs[i].weight;
	h->returned = h->disabled && !disabled;
	h->disabled = disabled;
	pthread_mutex_unlock(&hosts_lock);
	return SHOAL_OK;
}

shoal_rc hosts_pick_primary(const struct db_entry *db, const char *dbname, const char *host,
			    int port, char *err, size_t errlen)
{
	if (!wants_set(db)) {
		snprintf(err, errlen, "database %s has one host", dbname);
		return SHOAL_ERROR;
	}
	pthread_mutex_lock(&hosts_lock);
	struct host_rec *h = NULL;
	bool split = false;
	for (struct host_rec *o = hosts_registry; o; o = o->next) {
		if (strcmp(o->db, dbname) != 0)
			continue;
		split |= o->split;
		if (o->port == port && strcmp(o->host, host) == 0)
			h = o;
	}
	if (!split || !h || !h->split) {
		pthread_mutex_unlock(&hosts_lock);
		if (!split)
			snprintf(err, errlen, "no split brain in database %s: nothing to pick",
				 dbname);
		else
			snprintf(err, errlen,
				 "%s:%d is not one of the hosts of database %s claiming primary",
				 host, port, dbname);
		return SHOAL_ERROR;
	}
	for (struct host_rec *o = hosts_registry; o; o = o->next)
		if (strcmp(o->db, dbname) == 0)
			o->picked = o == h;
	pthread_mutex_unlock(&hosts_lock);
	return SHOAL_OK;
}

int hosts_snapshot(struct host_view *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&hosts_lock);
	for (struct host_rec *h = hosts_registry; h && n < max; h = h->next, n++) {
		struct host_view *v = &out[n];
		snprintf(v->db, sizeof(v->db), "%s", h->db);
		snprintf(v->host, sizeof(v->host), "%s", h->host);
		v->port = h->port;
		v->role = h->role;
		v->read_only = h->read_only;
		v->breaker = h->breaker;
		v->servers = h->servers;
		v->idle = atomic_load_explicit(&h->idle, memory_order_relaxed);
		v->failures = h->failures;
		v->connects = h->connects;
		v->lsn = h->lsn;
		v->lag_bytes = h->lag_bytes;
		v->lagging = h->lagging;
		v->split = h->split;
		v->picked = h->picked;
		v->near = h->near;
		v->rtt = h->rtt;
		memcpy(v->zone, h->zone, sizeof(v->zone));
		v->disabled = h->disabled;
		v->weight = h->weight;
		v->xacts = atomic_load_explicit(&h->xacts, memory_order_relaxed);
		v->check_age = h->check_at ? (double)(shoal_now() - h->check_at) / USEC_PER_SEC : -1;
	}
	pthread_mutex_unlock(&hosts_lock);
	return n;
}

void hosts_free_all(void)
{
	pthread_mutex_lock(&hosts_lock);
	while (hosts_registry) {
		struct host_rec *h = hosts_registry;
		hosts_registry = h->next;
		free(h->db);
		free(h->host);
		free(h);
	}
	for (int i = 0; i < hosts_nsets; i++) {
		free(hosts_sets[i]->sig);
		free(hosts_sets[i]->group);
		free(hosts_sets[i]);
	}
	free(hosts_sets);
	hosts_sets = NULL;
	hosts_nsets = 0;
	pthread_mutex_unlock(&hosts_lock);
}
