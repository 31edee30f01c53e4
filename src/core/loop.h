/* loop.h: a small epoll wrapper. Each worker owns one loop; fds are level-triggered. */
#ifndef SHOAL_LOOP_H
#define SHOAL_LOOP_H

#include "common.h"

struct loop_fd;
typedef void (*loop_cb)(struct loop_fd *lfd, uint32_t events);

/* Embedded in the object that owns the fd; cb receives it and finds the owner. */
struct loop_fd {
	int fd;
	uint32_t events; /* EPOLLIN / EPOLLOUT currently requested */
	bool registered;
	/* The socket is open in another process too (a handed-over client): closing fd then does
	 * not take it out of the epoll set (loop_close_fd deregisters it first). */
	bool shared;
	loop_cb cb;
};

struct loop;

/* Create a loop whose tick callback runs every tick_usec, and after_batch after each batch of
 * events and the tick that may follow it (where objects closed during the batch are freed: an
 * event later in the same batch may still point at them). */
struct loop *loop_create(usec_t tick_usec, void (*tick)(void *arg), void (*after_batch)(void *arg),
			 void *arg);
void loop_destroy(struct loop *l);
/* Register lfd with the given events (0 allowed). SHOAL_ERROR: epoll_ctl failed (errno set). */
shoal_rc loop_add(struct loop *l, struct loop_fd *lfd, uint32_t events) MUST_USE;
/* Change the requested events; a no-op when unchanged. */
void loop_set_events(struct loop *l, struct loop_fd *lfd, uint32_t events);
static inline void loop_set(struct loop *l, struct loop_fd *lfd, uint32_t events)
{
	if (lfd->registered && lfd->events != events) /* most calls change nothing */
		loop_set_events(l, lfd, events);
}
/* Deregister (before close). */
void loop_del(struct loop *l, struct loop_fd *lfd);
/* Close lfd->fd (then -1) and forget its registration. The close takes the socket out of the
 * epoll set when it was the socket's last descriptor: no EPOLL_CTL_DEL then, one system call
 * less per connection. A shared one (lfd->shared) is deregistered first. */
void loop_close_fd(struct loop *l, struct loop_fd *lfd);
/* Run until loop_stop. */
void loop_run(struct loop *l);
/* Run one batch: wait up to timeout_ms (0: do not wait) for events, dispatch them, run the tick
 * if due and after_batch. Returns the number of events, -1 if epoll_wait failed. For harnesses
 * that drive a worker's loop step by step (tests/fuzz/fuzz_session.c). */
int loop_run_once(struct loop *l, int timeout_ms);
void loop_stop(struct loop *l);

#endif
