/* objects.h: the three objects of the pooler (client, server, pool) and their states. Each
 * state is one list (DESIGN §1.2); client_set_state / server_set_state are the only movers. */
#ifndef SHOAL_OBJECTS_H
#define SHOAL_OBJECTS_H

#include <pthread.h>

#include "config.h"
#include "conn.h"
#include "list.h"
#include "histogram.h"
#include "param_list.h"
#include "scram.h"
#include "spin.h"

enum client_state {
	CL_LOGIN,      /* reading the startup packet / password: pool's login list (or none) */
	CL_WAIT_LOGIN, /* authenticated, needs a server to finish login: pool->waiting */
	CL_IDLE,       /* logged in, no server: pool->active_clients */
	CL_WAITING,    /* has a message to run and no server: pool->waiting */
	CL_HANDOFF,    /* a server is on its way from another worker: pool->handoff */
	CL_LINKED,     /* linked to a server: pool->active_clients */
	CL_CLOSED,     /* on the worker's free list */
};

enum server_state {
	SV_CONNECTING, /* TCP connect, startup and authentication: pool->connecting */
	SV_IDLE,       /* ready, no client: pool->idle */
	SV_SETUP,      /* linked; running the SET/RESET that matches the client: pool->used */
	SV_ACTIVE,     /* linked; forwarding: pool->used */
	SV_RESET,      /* unlinked; running server_reset_query: pool->resetting */
	SV_TRANSIT,    /* in a mailbox, between two workers' epolls: pool->transit */
	SV_BEING_CANCELED, /* unlinked; waits for its forwarded cancels to be answered: pool->used */
	SV_CLOSED,     /* on the worker's free list */
};

/* Where a client's auth_query lookup is; moved only by auth_query.c's aq_move. */
enum client_aq {
	AQ_NONE,    /* not looked up (auth_file has the user, or the lookup is still to start) */
	AQ_RUNNING, /* the query runs as a pooled server's setup; the client waits for it */
	AQ_DONE,    /* answered, by the cache or the query: aq_secret (NULL: no such user) */
};

/* Where a server is in its TLS negotiation; moved only by server.c's server_tls_move. */
enum server_tls_phase {
	SV_TLS_NONE,	  /* none under way: plaintext, or TLS established */
	SV_TLS_REQUESTED, /* SSLRequest sent, its one-byte answer awaited */
	SV_TLS_HANDSHAKE, /* the TLS handshake under way */
};

struct pool;
struct server;
struct scram_server;
struct ps_client;
struct ps_server;
struct txn_set;
struct txn_restore;
struct txn_swallow;

/* A read kept for read_write_split's retry (client_split.c), in one allocation with it. */
struct client_retry {
	struct buf head; /* its RowDescription, held until the next message of the answer */
	size_t len;
	uint8_t msg[];
};

#define MAX_WORKERS 64
#define CLIENT_NAME_INLINE 32 /* the usual names fit inline; longer ones are allocated */

/* Ownership: a client belongs to the worker that accepted it (c.w, fixed); a server to the worker
 * whose epoll holds it (c.w, changed only under the ledger lock while in SV_TRANSIT). Only the
 * owner touches a connection's buffers and fd. state and list membership change under the ledger
 * lock; state is atomic because the owner reads it without the lock. */
struct client {
	struct conn c;
	struct list node; /* in the list of its state */
	_Atomic enum client_state state;
	/* read_write_split (client_split.c): whether the transaction is one autocommit read (its
	 * next message waits for the server's release), and whether that read was retried */
	bool route_single, retried;
	bool owns_server; /* told its server's real pid (session mode): keeps that server for life */
	bool buf_big;	  /* its buffers are over the big-client threshold (big_node) */
	struct server *incoming; /* CL_HANDOFF: the server in flight (ledger lock) */
	struct pool *pool;
	struct server *server;
	uint64_t id;
	/* read_your_writes: it wrote (through a write alias of its pool's hosts) at this time, so
	 * it takes only servers of hosts that have replayed that (set at acquire); 0: any */
	usec_t ryw_since;
	/* read_write_split: the role its transaction needs (enum host_route, set before each
	 * acquire; 0: any) and the one SET shoal.route forces (0: auto) */
	int route, route_force;
	/* The safe retry of that read: the Query kept until a byte of its answer comes (NULL: none
	 * to retry) and the host that failed it. */
	struct client_retry *retry;
	struct host_rec *retry_avoid;
	char *user;   /* user_buf, or its own allocation when longer (client_name_set) */
	char *dbname; /* dbname_buf, or its own allocation */
	char user_buf[CLIENT_NAME_INLINE], dbname_buf[CLIENT_NAME_INLINE];
	char *repl; /* startup replication= ("true", "database"...): its own server; NULL: none */
	struct param_list params; /* what this client's session should look like on a server */
	struct param_list login;  /* its startup parameters: what RESET goes back to (txn.c) */
	/* The two lists' fixed storage: params' first items array, login's copy (items and
	 * strings) when they fit, as a client's usual one or two values do (libpq's
	 * application_name; a driver's client_encoding) */
	struct param params_fixed[2], login_fixed[4];
	int auth_step;            /* enum client_auth_step in client_login.c */
	uint8_t md5_salt[4];
	uint8_t auth_method;        /* AUTH_MD5 or AUTH_PLAIN: what the password message answers */
	bool needs_login_check;   /* startup parameters to validate on a server before login ends */
	bool is_unix;               /* connected over the Unix socket: never TLS */
	bool tls_checked;           /* post-handshake checks (ALPN for direct TLS) done */
	bool aq_found;              /* the running query returned a row (auth_query.c) */
	bool negotiated;
	bool internal; /* the health probe's socketpair client: no authentication */
	bool climit_counted; /* counted in client_limits.c (client_admit.c) */
	enum client_aq aq;          /* its auth_query lookup (auth_query.c) */
	struct scram_server *scram; /* the SCRAM exchange while logging in, else NULL */
	char *aq_secret;            /* its secret (NULL: none); used when auth_file has none */
	const struct db_entry *db; /* its [databases] entry during the login only (NULL after) */
	uint32_t cancel_pid;
	uint8_t cancel_key_len;	 /* its key's: 4, or 32 for a protocol 3.2 client (cancel.h) */
	bool in_door;  /* counted in the login budget (door.c) */
	bool member;   /* counted against max_client_conn (door.c) */
	bool quiet_close; /* its close is one of many counted elsewhere: logged at debug level */
	bool unix_peer;          /* connected over the Unix socket */
	struct cancel_entry *cancel_entry; /* this client's entry in the cancel registry */
	size_t buf_bytes;     /* its buffers' share of max_client_buffer_bytes (client_budget.c) */
	struct list big_node; /* in its worker's big_clients while buf_big */
	usec_t connect_time, state_since, last_activity;
	usec_t query_start; /* when the oldest request awaiting ReadyForQuery was sent; 0 if none */
	usec_t wait_noticed; /* the state_since of the wait told about (query_wait_notify) */
	uint32_t proto_minor; /* the 3.x minor agreed at startup: 0 or 2 (1 if asked) */
	int admin;               /* admin console: 0 no, ADMIN_STATS (SHOW only), ADMIN_FULL */
	const struct client_ops *ops; /* a console client's hooks (client.h), set with admin */
	int port, local_port;
	char addr[48], local_addr[48]; /* for SHOW CLIENTS; set at accept, then read-only */
	const char *app_name; /* application_name at login (in login, or ""), for SHOW CLIENTS */
	struct admin_wait *admin_wait;  /* console: a command waiting to complete (owner only) */
	const char *pin_reason; /* why this client keeps its server until it leaves (txn.c), or NULL */
	struct ps_client *ps;   /* its protocol-level prepared statements (prepared.c) */
};

struct server {
	struct conn c;
	struct list node;
	_Atomic enum server_state state;
	bool dying;        /* planned for closing by the janitor: counted in pool->n_dying */
	/* Evicted: sent Terminate and waits for the server's EOF (its backend has then left
	 * pg_stat_activity) before its slot is given back; the reason to log then. */
	const char *retiring;
	usec_t retire_at;
	struct pool *pool;
	struct client *client;
	uint64_t id;
	uint32_t be_pid, be_key; /* the server's BackendKeyData */
	struct param_list params;
	char ready_status; /* last ReadyForQuery status: 'I', 'T' or 'E' */
	int pending;       /* requests (Query, Sync, FunctionCall) awaiting ReadyForQuery */
	bool ext_open;     /* extended-protocol messages sent since the last Sync */
	bool copy_in;      /* in COPY FROM STDIN: the server ignores Sync until CopyDone/Fail */
	int syncs_since_exec; /* Syncs sent after the last Execute/Query (ignored if it starts COPY) */
	/* Before its CopyInResponse came, the client ended the COPY that the last Execute/Query may
	 * start (CopyDone, CopyFail or another message, which PostgreSQL refuses with 08P01): the
	 * copy is over when that response comes, and only the Syncs before the end (copy_end_syncs)
	 * go unanswered. */
	uint8_t copy_end; /* the type of that message; 0: none */
	bool copy_may_start; /* an Execute/Query sent is not known to be over */
	int copy_end_syncs;
	struct server *ready_next; /* pool_server_ready's queue of servers to hand on */
	bool fatal_seen;   /* the server sent a FATAL ErrorResponse */
	bool send_broken;  /* a send found the server's side closed: sends are dropped since */
	bool setup_failed; /* the SET/RESET on link failed: its error goes to the client */
	bool timeout_cancel; /* a query_timeout cancel was sent for the running query */
	/* Forwarded CancelRequests for this server not yet answered (pool lock). While any is, the
	 * server goes to no client (SV_BEING_CANCELED) and is not freed (free_deferred): see
	 * cancel.c. */
	int cancels;
	bool free_deferred;
	bool login_ok;
	bool connected;    /* TCP connect finished */
	enum server_tls_phase tls_phase;
	usec_t connect_time, state_since, lifetime_end, cancel_sent_at;
	struct scram_client scram;
	char *password; /* the pool's password when this server connected */
	bool has_scram_keys; /* pool's pass-through keys, copied with password */
	bool auth_query;     /* running a client's auth_query as its setup (auth_query.c) */
	bool connect_query;  /* running its database's connect_query after login (SV_RESET) */
	uint8_t scram_client_key[32], scram_server_key[32];
	struct buf setup_error; /* the ErrorResponse from a failed setup, for the client */
	unsigned gen;           /* the pool's gen when it connected: older ones are recycled */
	/* The pool's target when it connected: its strings, which a reload retires but never frees
	 * before exit (ledger.c), so a server and the cancel registry can point at them. */
	const char *host, *dbname;
	int port;
	/* With a host list or target_session_attrs (hosts.c): the pool's set when it connected and
	 * the host it chose; NULL otherwise. */
	struct host_set *hset;
	struct host_rec *hrec;
	bool check;      /* a health check (server_check.c): never handed out, closed after */
	bool check_done; /* its answer was recorded */
	bool check_row;  /* its query's row came: the fields below hold it */
	uint64_t check_lsn;
	double check_delay;
	bool role_check; /* its role query (after login, before it is ready) is running */
	bool role_standby, role_read_only; /* the role query's answer */
	bool conn_lost;  /* its connection ended without Shoal closing it (a breaker signal) */
	char local_addr[48];    /* SHOW SERVERS; set before login ends, read after (pool lock) */
	int local_port;
	usec_t xact_start;      /* statistics: when the open transaction began; 0: none */
	uint64_t stats_in, stats_out; /* c.bytes_in/out already counted in the statistics */
	struct ps_server *ps;   /* prepared statements on this server and replies awaited */
	struct txn_set *txn_set; /* a client's SET awaiting the server's confirmation (txn.c) */
	struct txn_restore *restore; /* a client's RESET of a login value in flight (txn.c) */
	struct txn_swallow *swallow; /* replies to SETs Shoal added to a client's Query (txn.c) */
	bool resync;	 /* the client's login values must be put back (txn.c found a RESET) */
	char held_ready; /* the ReadyForQuery status held back while they are: 0 when none */
	/* ParameterStatus held back meanwhile: name -> the value the client knew before */
	struct param_list held_status;
};

/* One pool per (database, user): the ledger of DESIGN §2. Every field below the lock is guarded
 * by it; list manipulation happens only on the worker that owns the connection. */
struct limit;
struct pool {
	struct list node; /* in the global pool list */
	char *name;       /* client database name */
	char *user;       /* client user name */
	/* replication= of its clients (NULL: none): each client gets a server of its own, opened
	 * with that parameter, linked for its whole session, closed when it leaves (PgBouncer 1.23) */
	char *repl;
	char *server_user;
	char *server_db;
	char *host;
	int port;
	struct host_set *hosts; /* host list / target_session_attrs (hosts.c); NULL: one host */
	int host_credit[SHOAL_MAX_HOSTS]; /* hosts_pick_idle's running state (the lock) */
	bool host_deferred; /* the last idle_balanced: the client waits for a busy host */
	char *password; /* for the server login; NULL: none known (ledger lock) */
	/* Asked for by a client, auth_query or the configuration (a forced user=, also when the
	 * probe is first to use it, e.g. after a reload added the entry). A pool that
	 * only /health's probe has used (health_probe_user) is not: SHOW POOLS, /metrics and the
	 * dashboard leave it out, so that probes do not pass for traffic. Set once, never reset. */
	_Atomic bool shown;
	/* SCRAM pass-through (ledger lock): keys recovered from a client's proof against the
	 * stored SCRAM secret that is also password. */
	bool has_scram_keys;
	uint8_t scram_client_key[32], scram_server_key[32];
	_Atomic int pool_mode;
	bool ps_on; /* protocol-level prepared statements rewritten (fixed at creation) */
	struct spin lock; /* pool_lock(): short sections only */
	struct limit *db_limit, *user_limit; /* max_db_connections, max_user_connections */
	/* pool_size, shared by a pool and its replication pools (same user and database), as
	 * PgBouncer counts a replication server in its pool's size */
	struct limit *size_limit;
	int pool_size, min_pool_size, reserve_pool_size, max_db_connections, max_user_connections;
	/* the [users] entry's timeouts (of server_user) and the entry's server_lifetime, under
	 * the lock; 0: the global setting (pool_timeout) */
	usec_t query_timeout, idle_transaction_timeout, client_idle_timeout, transaction_timeout;
	usec_t server_lifetime;

	struct list idle, used, connecting, resetting, transit; /* servers by state */
	struct list checking; /* health checks (server_check.c): out of the others' counts */
	struct list waiting;                                    /* clients in FIFO order */
	struct list handoff;                                    /* clients a server is sent to */
	struct list active_clients;
	int n_servers; /* all states */
	int n_dying;   /* of those, planned for closing by a janitor */
	int n_opening; /* of those, claimed for waiters but not yet in the connecting list */
	/* Evictions (ledger.c): max_db_connections / max_user_connections are full and another
	 * pool's clients wait. evict_wanted: idle servers this pool is asked to give back (its
	 * owners' janitors close them); evict_asked: those this pool asked of others for its
	 * waiters and has not yet turned into a slot, since evict_asked_at. */
	int evict_wanted, evict_asked;
	usec_t evict_asked_at;
	int n_clients;
	/* Clients in active_clients (CL_IDLE and CL_LINKED) and of those linked: counted by
	 * client_state_locked so that the reporting views need not walk thousands of clients under
	 * the lock (the alerts read every pool ten times a second). */
	int n_cl_active, n_cl_linked;
	bool keep;                   /* configured (user= in its entry): never reaped */
	usec_t taken_at, unused_since; /* pool_reap: last pool_get, first seen unused */
	struct param_list welcome; /* the server's ParameterStatus set at login */
	bool has_welcome;
	struct welcome_block *welcome_block; /* welcome's messages, encoded once (welcome.c) */
	int connect_failures;
	_Atomic uint64_t server_connects;       /* every server connection started */
	_Atomic uint64_t server_login_failures; /* of those, closed before their login completed */
	/* primary_wait_timeout: waiters of this write alias failed since no host could be primary
	 * (one log line when the first fails, one when a primary is back: janitor.c) */
	_Atomic unsigned primary_wait_failed;
	_Atomic uint64_t ps_hits, ps_misses, ps_evictions; /* prepared.c's server caches */
	char last_connect_error[160]; /* why the last failed server login failed */
	usec_t next_connect_at;
	/* When the backoff last grew: a login started before then belongs to a round of failures
	 * already counted, and its failure does not grow it again (parallel logins = one round). */
	usec_t backoff_raised_at;
	/* Counters: one slot per worker (written only by it, read by the stats thread), summed on
	 * read; a cache line each so workers do not contend. */
	struct pool_stats {
		uint64_t xact_count, query_count;
		uint64_t query_time, wait_time; /* microseconds */
		uint64_t assign_count, bytes_recv, bytes_sent, xact_time;
		uint64_t parse_count, bind_count;
		uint64_t client_login_count; /* logins completed (not the health probe's) */
	} __attribute__((aligned(64))) stats[MAX_WORKERS];
	struct pool_stats stats_last; /* the stats thread's previous sum */
	unsigned gen; /* bumped by RECONNECT or a changed target: older servers are recycled */
	struct pool_hists *hists;     /* latency histograms, one slot per worker (histogram.h) */
	int nhists;
	/* alerts.c's episodes (main thread only) */
	struct pool_alert {
		usec_t since; /* when the condition began; 0: it does not hold */
		bool fired;
	} alert_waiting, alert_at_max;
};

#define ADMIN_STATS 1
#define ADMIN_FULL 2

#endif
