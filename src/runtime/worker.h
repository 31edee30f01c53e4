/* worker.h: the per-thread context every layer above runtime/ may use: a worker's loop, id,
 * lists of login clients and of the dead, and how to post it commands and mail (mailbox.c).
 * The thread itself (start, tick, shutdown) is daemon/worker.c's (worker_thread.h). */
#ifndef SHOAL_WORKER_H
#define SHOAL_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "current.h"
#include "list.h"
#include "loop.h"
#include "net.h"

#define WORKER_MAX_LISTENERS 8
#define WORKER_TICK_USEC (50 * 1000)

enum worker_cmd {
	WCMD_NONE = 0,
	WCMD_RELOAD = 1,
	WCMD_SHUTDOWN_WAIT_CLIENTS = 2, /* close TCP listeners; serve clients until they leave */
	WCMD_SHUTDOWN_NOW = 4,
};

struct worker;
struct server;
struct client;
struct pool;

struct worker_listener {
	struct loop_fd lfd;
	struct worker *w;
	bool shared;     /* a socket every worker accepts from (dups of one fd) */
	bool is_unix;
	usec_t rearm_at; /* out of the epoll (no descriptor for a connection) until then */
	usec_t close_at; /* shutdown: new connections dropped, closed then (listen_close_tcp) */
	/* TCP: the tcp_* options set on the socket, which its connections inherit (listen.c) */
	struct net_tcp_opts opts;
	bool opts_set;
};

/* Cross-worker work, carried by a worker's mailbox (DESIGN §2). */
enum mail_kind {
	MAIL_ADOPT, /* a server sent to this worker for one of its clients (or its pool) */
	MAIL_KICK,  /* a client elsewhere waits: hand one of your idle servers of the pool on */
	MAIL_FAIL,  /* the pool's server login failed for good: fail your waiting clients */
	MAIL_ADMIN, /* an admin console command's work on this worker's connections */
	MAIL_INTERNAL, /* fd: a socketpair end from the health probe, to serve as a trusted client */
	MAIL_ACCEPT,   /* fd: a client accepted from a shared listener by another worker; data: its
			* struct sockaddr_storage */
};

struct mail {
	struct mail *next;
	struct worker *to; /* in an outbox: the addressee */
	enum mail_kind kind;
	struct server *s;
	struct client *c;
	struct pool *p;
	int hops;
	int fd; /* MAIL_INTERNAL, MAIL_ACCEPT */
	size_t len;
	uint8_t data[]; /* MAIL_FAIL: the ErrorResponse */
};

struct worker {
	int id;
	pthread_t thread;
	struct loop *loop;
	struct worker_listener listeners[WORKER_MAX_LISTENERS];
	int nlisteners;
	struct loop_fd mailbox; /* eventfd: commands and mail */
	atomic_int cmds;        /* bitmask of enum worker_cmd */
	pthread_mutex_t mail_lock;
	struct mail *mail_head, *mail_tail;
	struct mail *outbox; /* servers to send once the event batch is over (owner thread only) */
	struct list login_clients; /* clients before authentication completes */
	usec_t reaped_at;          /* worker 0: pool_reap's last run */
	int n_login;               /* of its clients, those in the login budget (door.c) */
	struct list dead_clients, dead_servers; /* freed after the event batch */
	struct list cancel_conns;               /* outgoing CancelRequest connections */
	struct list big_clients; /* clients with large buffers (client_budget.c) */
	bool over_budget;        /* max_client_buffer_bytes passed: enforce after the batch */
	usec_t budget_logged;    /* last log line about it */
	unsigned budget_closed;  /* clients closed for it since */
	int n_clients;
	bool draining;       /* shutting down: no new clients; exits when the last one leaves */
	bool stopping; /* shutting down now: opens no more servers (owner thread only) */
	usec_t drain_deadline;
	atomic_bool stopped;
	struct config_reader cfg_reader; /* its quiescent points, for freeing old configs */
};

/* Post commands (enum worker_cmd bits) from another thread. */
void worker_post(struct worker *w, int cmds);
/* Mail (malloc'd, taken over) to worker w; handled on its thread. */
void worker_mail(struct worker *w, struct mail *m);
/* Send server m->s to m->to after the current event batch of from: events already gathered for
 * it must find it still here (in SV_TRANSIT, ignored); then it leaves from's epoll. */
void worker_send_server(struct worker *from, struct mail *m);
/* Take all of w's mail (a list through ->next, oldest first); the caller frees it. */
struct mail *worker_take_mail(struct worker *w);
/* The workers running (set once at start). */
void worker_set_all(struct worker *ws, int n);
int worker_count(void);
struct worker *worker_get(int id);

#endif
