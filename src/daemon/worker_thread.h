/* worker_thread.h: a worker's thread: create it with its listeners, run its loop, stop it. The
 * per-thread context and its mailbox are runtime/worker.h's. */
#ifndef SHOAL_WORKER_THREAD_H
#define SHOAL_WORKER_THREAD_H

#include "worker.h"

/* Create worker id with listeners per cfg (listen.h): worker 0 binds; the others (first: worker
 * 0) share its sockets, or bind their own SO_REUSEPORT TCP sockets with so_reuseport = 1.
 * SHOAL_ERROR with err on a listen failure. */
shoal_rc worker_init(struct worker *w, int id, const struct config *cfg, struct worker *first,
		     char *err, size_t errlen) MUST_USE;
shoal_rc worker_start(struct worker *w) MUST_USE;
void worker_join(struct worker *w);
/* After every worker has stopped: settle mail still in flight, free what is left. */
void worker_destroy(struct worker *w);
/* Close the listeners (shutdown: new connections are refused). */
void worker_close_listeners(struct worker *w);

#endif
