/* hosts.h: the hosts of a database entry with a host list or target_session_attrs: which host a
 * new server connection goes to (load_balance_hosts), each host's role, and a circuit breaker
 * per host fed by passive signals. One registry, guarded by its own lock (a leaf: nothing else
 * is locked while it is held); host records are never freed before exit, so servers and the
 * cancel registry may keep pointers to their strings. */
#ifndef SHOAL_HOSTS_H
#define SHOAL_HOSTS_H

#include <stdatomic.h>

#include "common.h"
#include "config.h"

struct host_set;

enum host_role { HOST_ROLE_UNKNOWN = 0, HOST_ROLE_PRIMARY, HOST_ROLE_STANDBY };
enum host_breaker { BRK_CLOSED = 0, BRK_OPEN, BRK_HALF_OPEN };

/* One (database entry, host, port). Fields after port: the registry's lock. */
struct host_rec {
	struct host_rec *next;
	char *db, *host;
	int port;
	int role;	/* enum host_role, as its last server's role check found it */
	bool read_only; /* transaction_read_only was on */
	usec_t role_at; /* when the role was read; 0: never */
	int breaker;	/* enum host_breaker */
	usec_t open_until, backoff;
	bool probe_out; /* half-open: the one connection let through is under way */
	int servers;	/* server connections to it now (any state) */
	uint64_t failures, connects;
	/* The background health check (host_check_interval): when the next is due, whether one
	 * is under way, and what the last one read (WAL position in bytes: replay on a standby,
	 * current on the primary; a standby's replay delay in seconds). */
	usec_t check_next, check_at;
	usec_t check_started, lsn_since; /* the check under way began; the one lsn is from did */
	bool check_running, check_failing;
	uint64_t lsn, prev_lsn; /* and the one before, from a check begun at prev_since */
	usec_t prev_since;
	double replay_delay;
	/* A standby over max_replica_lag(_bytes): no new server, its idle ones are closed. Set
	 * under the lock, read without it by the pool. */
	_Atomic bool lagging;
	/* Split brain: this host and another of its entry both answered their last checks as
	 * primary. Writes (read-write, primary) go to neither. Same locking as lagging. */
	_Atomic bool split;
	/* PRIMARY HOST: an operator picked this one of the split primaries; writes go to it. Same
	 * locking as split; cleared (one log line) when the split brain ends. */
	_Atomic bool picked;
	int64_t lag_bytes; /* behind the entry's primary at the last check; -1: not known */
	/* DISABLE HOST by an operator: no new server, its idle ones are closed (as lagging). */
	_Atomic bool disabled;
	_Atomic uint64_t xacts; /* transactions its servers ended (ReadyForQuery 'I') */
	_Atomic int idle;	/* of servers, those in an idle list now (ledger.c keeps it) */
	int weight;		/* weight= of the entry's newest host set */
	/* Back in rotation (breaker closed by a check, caught up, enabled) with no server yet:
	 * the next new server of its entry goes to it, and a full pool makes room (janitor.c). */
	bool returned;
	/* The entry's believed primary was lost (a failed login, a lost connection): its hosts'
	 * roles are re-read at once and trusted for a second only, until a primary is found. */
	bool seeking;
	bool near;     /* in this instance's zone (zone=, the zone setting) */
	char zone[32]; /* zone= of the entry's newest host set; "" none */
	double rtt;    /* health checks' duration (connect, login, query), averaged; 0: none */
};


/* A pool's view of its entry's hosts: immutable but for the round-robin cursor (registry lock).
 * Replaced (and kept until exit) when a reload changes the entry's hosts, ports or modes. */
struct host_set {
	int n, lb, tsa;
	bool split; /* read_write_split: each transaction picks its role (hosts_route_allows) */
	int next;  /* round-robin: the index the next pick starts at */
	bool weighted;		     /* weight= gave some host another weight than the rest */
	/* some hosts are in this instance's zone, some not: those go first. Fixed when the set is
	 * made, but with zone = nearest set by health checks (registry lock; read without). */
	_Atomic bool zoned;
	bool near_only; /* during a pick (registry lock): only hosts in this instance's zone */
	_Atomic bool near[SHOAL_MAX_HOSTS]; /* each host is in this instance's zone */
	int w[SHOAL_MAX_HOSTS];	     /* each host's weight */
	int credit[SHOAL_MAX_HOSTS]; /* weighted round-robin: each host's running credit */
	char *sig; /* host, port list and modes: a reload compares it */
	char *group; /* hosts, ports and server database: a write alias's reads alias shares it */
	struct host_rec *h[SHOAL_MAX_HOSTS];
};

/* Whether a server of h in a pool of set hs must not be handed out: its host lags, or it is one
 * of two primaries and hs sends writes (read-write, primary). Inline: the idle-server scan. */
static inline bool hosts_held(const struct host_set *hs, const struct host_rec *h)
{
	return h && (h->lagging || h->disabled ||
		     (h->split && !h->picked && hs &&
		      (hs->tsa == TSA_READ_WRITE || hs->tsa == TSA_PRIMARY)));
}

/* The set for db (client database name dbname), or NULL when the entry has one host and
 * target_session_attrs=any (the plain single-target path). */
struct host_set *hosts_set_for(const struct db_entry *db, const char *dbname);

/* True when db's hosts or modes differ from hs's (either may be NULL). */
bool hosts_set_changed(const struct host_set *hs, const struct db_entry *db);

/* The host a new server connection goes to, counted in its servers; NULL (why in err) when every
 * host's breaker is open or none can have the wanted role. */
struct host_rec *hosts_pick(struct host_set *hs, char *err, size_t errlen);

/* max_host_connections: whether a host of hs that may take a new server (not held, not of the
 * wrong role) has fewer servers than the limit. A breaker is not looked at: a broken host's
 * failure is reported by its connection attempt. true when there is no limit. */
bool hosts_have_room(struct host_set *hs);

/* Whether a host of hs came back into rotation and has no server yet while another host has
 * two or more (or, with zones, it is in this instance's zone and a host of another zone has
 * one): the pool should open one (making room if full) so that it gets its share at
 * once, not at the next server_lifetime. Clears the mark of a returned host that has servers. */
bool hosts_returned_waiting(struct host_set *hs);
/* Zones: whether h is a host of another zone than this instance's while a host of its own zone
 * could take a new server now (so a far server in use calls for a near one). */
bool hosts_far_with_near_up(struct host_set *hs, const struct host_rec *h);

/* read_write_split: the role a client's transaction needs. */
enum host_route { ROUTE_ANY = 0, ROUTE_PRIMARY, ROUTE_STANDBY };

/* hosts_pick for a transaction that needs role want (enum host_route): a primary, a standby
 * first (the primary when none is usable), or as hs's target_session_attrs says. */
struct host_rec *hosts_pick_for(struct host_set *hs, int want, char *err, size_t errlen);

/* read_write_split: whether a transaction that needs want (not ROUTE_ANY) may take a server of
 * h: the primary for ROUTE_PRIMARY; for ROUTE_STANDBY a standby, or the primary when no standby
 * is usable; with ryw_since (read_your_writes) only the primary or a standby that replayed the
 * write. Never avoid's (a retried read's failed host). */
bool hosts_route_allows(const struct host_set *hs, struct host_rec *h, int want,
			const struct host_rec *avoid, usec_t ryw_since);

/* Whether a new server of hs must read its role after login (target_session_attrs != any). */
bool hosts_wants_role(const struct host_set *hs);

/* A server of h logged in: the breaker closes. */
void hosts_login_ok(struct host_rec *h);

/* Its role check answered: records the role; false when it does not match hs's
 * target_session_attrs (the caller closes it and the next connection tries another host). */
bool hosts_role_seen(struct host_set *hs, struct host_rec *h, bool in_recovery, bool read_only);

/* A server of h closed. login_failed opens h's breaker (again, for longer); conn_lost (the server
 * ended an established connection) makes a closed breaker half-open: the next connection to h is
 * a probe. Returns true when another host of hs can still take a connection (so the pool need
 * not back off). */
bool hosts_server_gone(struct host_set *hs, struct host_rec *h, bool login_failed, bool conn_lost,
		       const char *reason);

/* The health check: true (and the check is marked under way) when h's is due. */
bool hosts_check_claim(struct host_rec *h, usec_t interval);

/* The result of h's check. ok: the host answered (role, read_only, lsn, delay as read); not ok:
 * why in reason, and the breaker opens. Each change (role, reachable) is one log line. */
struct host_check {
	bool ok, in_recovery, read_only;
	uint64_t lsn;
	double delay;
	int64_t max_lag_bytes; /* the limits in force (0: none) */
	usec_t max_lag;
};
void hosts_check_done(struct host_rec *h, const struct host_check *r, const char *reason);

/* Read-your-writes (read_your_writes): a transaction of user from addr ended on a server of
 * write alias hs (read-write or primary; else nothing is noted). */
void hosts_ryw_note(const struct host_set *hs, const char *user, const char *addr);
/* When user from addr last ended a transaction through a write alias of hs's hosts and
 * database, if within window; 0 otherwise (or when hs is itself a write alias). */
usec_t hosts_ryw_since(const struct host_set *hs, const char *user, const char *addr,
		       usec_t window);
/* Whether a client that wrote at since may read from h: h answers as primary, or h is a standby
 * that has replayed the primary's position read by a check begun after since. A host that does
 * not qualify yet is checked again at the next tick. */
bool hosts_ryw_allows(struct host_rec *h, usec_t since);

/* A server of h ended a transaction (its ReadyForQuery 'I'): counted for SHOW HOSTS. */
static inline void hosts_count_xact(struct host_rec *h)
{
	if (h)
		atomic_fetch_add_explicit(&h->xacts, 1, memory_order_relaxed);
}

/* A server of h (not a health check's) moves between states (ledger.c's one mover, and
 * pool_server_gone with to = -1): keeps h's idle count for SHOW HOSTS. */
static inline void hosts_count_state(struct host_rec *h, int from, int to, int idle_state)
{
	if (h && (from == idle_state) != (to == idle_state))
		atomic_fetch_add_explicit(&h->idle, to == idle_state ? 1 : -1,
					  memory_order_relaxed);
}

/* DISABLE HOST / ENABLE HOST: host:port of entry db (named dbname) is taken out of rotation or
 * put back. SHOAL_ERROR (why in err) when it is not one of the entry's hosts. */
shoal_rc hosts_set_disabled(const struct db_entry *db, const char *dbname, const char *host,
			    int port, bool disabled, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* PRIMARY HOST: during a split brain of entry db (named dbname), writes go to host:port, one
 * of the hosts claiming primary, and to no other. SHOAL_ERROR (why in err) when there is no
 * split brain in it or host:port is not one of those claiming primary. */
shoal_rc hosts_pick_primary(const struct db_entry *db, const char *dbname, const char *host,
			    int port, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Whether hs sends writes: target_session_attrs read-write or primary. */
static inline bool hosts_writes(const struct host_set *hs)
{
	return hs && (hs->tsa == TSA_READ_WRITE || hs->tsa == TSA_PRIMARY);
}

/* Whether hs sends writes (read-write, primary) and no host of it may be a primary now: each
 * is disabled, held, behind an open or half-open breaker, or known (recently) not to be one.
 * A host not yet seen may be: the wait goes on. false for NULL and for read aliases. */
bool hosts_primary_missing(struct host_set *hs);

/* Whether a client's server is chosen by host (hosts_pick_idle) among the idle ones: a host
 * list balanced round-robin or least-connections. */
bool hosts_balance_idle(const struct host_set *hs);

/* The host (index in hs) whose idle server the next client takes, by hs's balancing rule per
 * transaction: smooth weighted round-robin, or (least-connections) the fewest in use per weight
 * with round-robin between ties. idle[i]: host i has an idle server the client may take;
 * in_use[i]: the pool's servers of host i linked to clients. credit (hs->n entries, zero at
 * first) is the caller's running state, under its lock. -1 when no host has an idle server;
 * -2 (only when may_wait, round-robin) when the host next in turn has none idle but some in
 * use: the client should wait for one (credit unchanged). */
int hosts_pick_idle(const struct host_set *hs, int *credit, const bool *idle, const int *in_use,
		    bool may_wait);

/* Whether idle servers should be reused oldest first, spreading transactions over the hosts
 * (load_balance_hosts=random; a balanced list chooses by host instead: hosts_balance_idle). */
bool hosts_rotate_idle(const struct host_set *hs);

/* A snapshot of every host, for SHOW HOSTS and /metrics: fills up to max, returns the count. */
struct host_view {
	char db[64], host[256];
	int port, role, breaker, servers, idle, weight;
	bool read_only, disabled;
	uint64_t failures, connects, lsn, xacts;
	double check_age; /* seconds since the last good check; -1: none */
	int64_t lag_bytes;
	bool lagging, split, picked, near;
	char zone[32];
	double rtt; /* seconds; 0: not measured */
};
int hosts_snapshot(struct host_view *out, int max);
const char *hosts_role_name(int role);
const char *hosts_breaker_name(int state);
/* One word for a host's state: disabled, picked (PRIMARY HOST during a split brain), split,
 * lagging, broken (breaker not closed), up. */
const char *hosts_state_name(const struct host_view *v);

/* At exit. */
void hosts_free_all(void);

#endif
