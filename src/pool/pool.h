/* pool.h: pools and the ledger: acquire, release, the FIFO of waiting clients, limits, server
 * state transitions, min-size fill and the janitor's pool timeouts. */
#ifndef SHOAL_POOL_H
#define SHOAL_POOL_H

#include "objects.h"

struct worker;

/* A pool's lock: guards its counts, limits, lists, password and welcome set, and the incoming
 * server of its clients in CL_HANDOFF. Held only for bookkeeping, never across a syscall. */
static inline void pool_lock(struct pool *p)
{
	spin_lock(&p->lock);
}

static inline void pool_unlock(struct pool *p)
{
	spin_unlock(&p->lock);
}

/* Find or create the pool for a client of database dbname logging in as user, whose [databases]
 * entry is db. NULL when a new pool would pass max_pools (the client gets 53400 POOL_MAX_MSG). */
/* Mark p as asked for by more than /health's probe (see struct pool's shown); idempotent. */
void pool_show(struct pool *p);
/* Has p been asked for by a client, auth_query or the configuration? */
bool pool_shown(struct pool *p);
struct pool *pool_get(const struct config *cfg, const struct db_entry *db, const char *dbname,
		      const char *user, const char *repl);
/* Create the pools whose user is fixed by the config (user= in the entry), so min_pool_size
 * servers open at start. */
void pool_create_static(const struct config *cfg);
/* Re-read limits and modes from a reloaded config. */
void pool_apply_config(const struct config *cfg);
void pool_free_all(void);
#define POOL_MAX_MSG "too many pools (max_pools): try again later"
/* Free the pools unused (no client, no server) for timeout (autodb_idle_timeout; 0: none),
 * except configured ones and those with min_pool_size; returns how many went. */
int pool_reap(usec_t now, usec_t timeout);

/* The client has a message to run (or must finish login): link an idle server now, or queue the
 * client (FIFO) and stop reading it, opening a server connection if limits allow. While the
 * pool's logins are failing the client is closed at once (08P01 "server login has been failing,
 * try again later (server_login_retry): <last error>"): check c->c.dead after the call. */
void pool_acquire(struct client *c);
/* The linked client is done with its server (clean, ReadyForQuery 'I'): unlink both, then the
 * server goes to the next waiter or to the idle list. */
void pool_release(struct server *s);
/* A clean, unlinked server: hand it to the first waiting client, or make it idle. */
void pool_server_ready(struct server *s);
/* Forget a closed server; start replacements for waiting clients. */
void pool_server_gone(struct server *s, bool failed_login, const char *reason);
/* Unlink client and server without further action (the caller closes one of them). */
void pool_unlink(struct client *c, struct server *s);
/* Drop a client from its pool's counts and lists. */
void pool_client_gone(struct client *c);
/* The server login failed with a definitive error (bad password, no such database): every
 * client waiting in this pool gets it. errmsg is a whole ErrorResponse message. */
void pool_fail_waiters(struct worker *w, struct pool *p, const uint8_t *errmsg, size_t len);
/* The same, for the waiting clients that live on worker w (MAIL_FAIL). */
void pool_fail_local_waiters(struct worker *w, struct pool *p, const uint8_t *errmsg, size_t len);

/* Cross-worker hand-off (DESIGN §2), run on the receiving worker's thread. MAIL_ADOPT: register
 * s, sent by another worker for client c, and link them (c gone: the server is handed on).
 * MAIL_KICK: a client elsewhere waits and this worker holds an idle server of p: hand it to the
 * first waiter (or pass the kick on, at most once around the workers). */
void pool_on_adopt(struct worker *w, struct server *s, struct client *c);
void pool_on_kick(struct worker *w, struct pool *p, int hops);
/* Forwarded cancels (cancel.c). pool_cancel_forwarded: one more CancelRequest for s is on its
 * way; the caller guarantees s is alive (it is the target of a client's key, or its owner).
 * pool_cancel_answered, on any worker w, once that connection has closed (answered, failed or
 * timed out): with none left, a server held in SV_BEING_CANCELED is handed on (here if w owns
 * it, else by a kick to its worker), and one closed meanwhile is freed. */
void pool_cancel_forwarded(struct server *s);
void pool_cancel_answered(struct worker *w, struct server *s);
/* server_free's question: true if forwarded cancels still name s, which is then freed by the
 * last pool_cancel_answered instead. */
bool pool_server_free_deferred(struct server *s);
/* At exit, for an adopt mail nobody read: close s. */
void pool_drop_adopted(struct worker *w, struct server *s, struct client *c);

/* For the janitor. Under the ledger lock: claim up to want new server slots (limits, backoff);
 * returns how many. Then, without the lock, open that many on w. */
int pool_claim_slots(struct pool *p, int want, bool reserve, usec_t now);
/* The same, one slot for a health check (server_check.c): the login backoff does not apply. */
bool pool_claim_check_slot(struct pool *p);
/* Hand this worker's idle servers to waiters that may take them now (the janitor, each tick):
 * waiters held back from them (read_your_writes, host_turn_wait), and waiters that came while
 * the pool was paused when RESUME follows before a tick has closed its idle servers (no
 * release or new server would wake them; pool_open_for_waiters counts these servers as
 * theirs). */
void pool_serve_waiters(struct worker *w, struct pool *p);
/* Under p's lock, read_write_split: the role (enum host_route) the next server opened for p's
 * waiters should have. */
int pool_route_wanted_locked(struct pool *p);
/* A linked client whose server died (unlinked already) asks for a server again: the one retry
 * of a read (client_split.c). */
void pool_requeue(struct client *c);
void pool_open_servers(struct worker *w, struct pool *p, int n);
/* Open servers for waiting clients no server is being opened for and no idle server (of any
 * worker, on its way by a kick) may serve, as the limits allow. */
void pool_open_for_waiters(struct worker *w, struct pool *p, bool reserve);
/* Under the lock: how many idle servers (any worker's) some waiter may take, at most max. */
int pool_idle_for_waiters_locked(struct pool *p, int max);
/* Waiters while another worker holds an idle server of p: that worker hands it on (a kick).
 * The janitor's tick, so a wait never depends on a single kick. */
void pool_kick_idle_elsewhere(struct worker *w, struct pool *p);
/* Under the lock: the pool's server logins are failing (the last one failed, none succeeded
 * since) and it has no server to offer, only logins in flight. New requests are refused then. */
bool pool_login_failing(struct pool *p);
/* A failing pool with no login in flight starts one, if the backoff allows. */
void pool_open_probe(struct worker *w, struct pool *p);
/* Every pool; release the array with pool_snapshot_free (until then none of them is freed). */
struct pool **pool_snapshot(int *n);
void pool_snapshot_free(struct pool **ps);

void server_set_state(struct server *s, enum server_state st);
void client_set_state(struct client *c, enum client_state st);

/* Periodic work: timeouts of waiting clients, idle/lifetime/connect limits of servers, reserve
 * pool, min_pool_size, reconnect backoff. */
void pool_janitor(struct worker *w, usec_t now);

/* A pool's own timeout (a [users] or database entry's) when set, else the global one. */
static inline usec_t pool_timeout(usec_t own, usec_t global)
{
	return own > 0 ? own : global;
}

/* Effective pool mode of a pool. */
static inline int pool_mode_of(const struct pool *p)
{
	return p->pool_mode;
}
/* Call fn for every pool, with that pool's lock held. */
typedef void (*pool_visit_fn)(struct pool *p, void *arg);
void pool_foreach(pool_visit_fn fn, void *arg);

#endif
