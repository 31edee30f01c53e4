/* loop.c: epoll wrapper with a periodic tick for timers (the janitor). */
#include "loop.h"
#include "log.h"
#include "sysio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 128

struct loop {
	int epfd;
	bool stop;
	usec_t tick_usec;
	usec_t next_tick;
	void (*tick)(void *arg);
	void (*after_batch)(void *arg);
	void *arg;
};

struct loop *loop_create(usec_t tick_usec, void (*tick)(void *arg), void (*after_batch)(void *arg),
			 void *arg)
{
	struct loop *l = xcalloc(1, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->tick_usec = tick_usec;
	l->tick = tick;
	l->after_batch = after_batch;
	l->arg = arg;
	l->next_tick = shoal_now() + tick_usec;
	return l;
}

void loop_destroy(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

shoal_rc loop_add(struct loop *l, struct loop_fd *lfd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = lfd};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, lfd->fd, &ev) < 0)
		return SHOAL_ERROR;
	lfd->events = events;
	lfd->registered = true;
	return SHOAL_OK;
}

void loop_set_events(struct loop *l, struct loop_fd *lfd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = lfd};
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, lfd->fd, &ev) < 0)
		log_error("epoll_ctl(MOD, fd %d) failed: %s", lfd->fd, strerror(errno));
	lfd->events = events;
}

void loop_del(struct loop *l, struct loop_fd *lfd)
{
	if (!lfd->registered)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, lfd->fd, NULL);
	lfd->registered = false;
	lfd->events = 0;
}

void loop_close_fd(struct loop *l, struct loop_fd *lfd)
{
	if (lfd->shared)
		loop_del(l, lfd); /* else the set would keep it, and lfd's pointer, while it lives on */
	lfd->registered = false;
	lfd->events = 0;
	close(lfd->fd);
	lfd->fd = -1;
}

static void loop_maybe_tick(struct loop *l)
{
	usec_t now = loop_clock;
	if (now < l->next_tick)
		return;
	l->next_tick = now + l->tick_usec;
	l->tick(l->arg);
}

/* One batch: wait up to ms for events, dispatch them, tick if due, then after_batch. */
static int loop_batch(struct loop *l, int ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n = sys_epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, ms);
	loop_clock = shoal_now();
	if (n < 0 && errno != EINTR) {
		log_error("epoll_wait failed: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct loop_fd *lfd = evs[i].data.ptr;
		lfd->cb(lfd, evs[i].events);
	}
	loop_maybe_tick(l);
	l->after_batch(l->arg);
	return n < 0 ? 0 : n;
}

void loop_run(struct loop *l)
{
	while (!l->stop) {
		usec_t wait = l->next_tick - shoal_now();
		int ms = wait <= 0 ? 0 : (int)((wait + 999) / 1000);
		if (loop_batch(l, ms) < 0)
			break;
	}
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	return loop_batch(l, timeout_ms);
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
