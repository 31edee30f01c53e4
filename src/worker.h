/* worker.h: one thread with its own event loop, listeners, clients and the servers it holds. */
#ifndef SHOAL_WORKER_H
#define SHOAL_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "list.h"
#include "loop.h"

#define WORKER_MAX_LISTENERS 8
#define WORKER_TICK_USEC (50 * 1000)

enum worker_cmd {
	WCMD_NONE = 0,
	WCMD_RELOAD = 1,
	WCMD_SHUTDOWN_GRACEFUL = 2,
	WCMD_SHUTDOWN_NOW = 4,
};

struct worker {
	int id;
	pthread_t thread;
	struct loop *loop;
	struct loop_fd listeners[WORKER_MAX_LISTENERS];
	int nlisteners;
	struct loop_fd mailbox; /* eventfd: the main thread's commands */
	atomic_int cmds;        /* bitmask of enum worker_cmd */
	struct list login_clients; /* clients before authentication completes */
	struct list dead_clients, dead_servers; /* freed after the event batch */
	struct list cancel_conns;               /* outgoing CancelRequest connections */
	int n_clients;
	bool draining;
	usec_t drain_deadline;
	atomic_bool stopped;
};

/* The configuration in force (replaced atomically on reload; old ones stay valid). */
const struct config *config_current(void);
void config_set_current(const struct config *cfg);

/* Create worker id with listeners per cfg. SHOAL_ERROR with err on a listen failure. */
shoal_rc worker_init(struct worker *w, int id, const struct config *cfg, char *err,
		     size_t errlen) MUST_USE;
shoal_rc worker_start(struct worker *w) MUST_USE;
/* Post commands (enum worker_cmd bits) from another thread. */
void worker_post(struct worker *w, int cmds);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);
/* The single worker that owns the pools while workers = 1 (multi-worker ledger: issue 3). */
struct worker *worker_main(void);
/* Close the listeners (shutdown: new connections are refused). */
void worker_close_listeners(struct worker *w);

#endif
