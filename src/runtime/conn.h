/* conn.h: the per-socket pump shared by clients and servers: an input buffer read from the
 * socket, an output buffer flushed to it, and the state of a message being forwarded by header
 * (DESIGN §1.1: look at the header, then move N bytes without reassembling the body). */
#ifndef SHOAL_CONN_H
#define SHOAL_CONN_H

#include "buf.h"
#include "common.h"
#include "loop.h"

#include <sys/epoll.h>

struct worker;
struct tls_conn;

/* Above this many unsent bytes for a peer we stop reading from the side that feeds it. */
#define CONN_HIGH_WATER (256 * 1024)
#define CONN_READ_CHUNK (16 * 1024)
/* A server's reads (wide_reads): a large result comes in a quarter of the system calls and
 * wake-ups; there are only pool_size servers, where clients can be thousands. */
#define CONN_READ_WIDE (64 * 1024)
/* Buffers up to this size stay allocated when empty; larger ones are freed. */
#define CONN_SMALL_BUF 2048

struct conn {
	struct loop_fd lfd;
	struct worker *w;   /* the worker that owns it (runtime/worker.h) */
	struct loop *loop;  /* that worker's loop: set with w, all conn.c and tls.c need of it */
	struct buf in;
	struct buf out;
	uint32_t fwd_left; /* bytes of the current message still to forward (header included) */
	uint8_t fwd_type;  /* type of that message */
	bool paused;       /* reading suspended: waiting for a server, or backpressure */
	bool dead;         /* closed: waiting to be freed after the event batch */
	bool wide_reads;   /* reads CONN_READ_WIDE bytes at a time (servers), else CONN_READ_CHUNK */
	uint64_t bytes_in, bytes_out;
	char name[128]; /* "C-12 app@db 127.0.0.1:4123" for log lines */
	struct tls_conn *tls; /* TLS state (tls.c); NULL on a plain connection */
};

/* recv() once into c->in. SHOAL_OK: bytes arrived; SHOAL_AGAIN: none now; SHOAL_ERROR: EOF or
 * a socket error (errno preserved, 0 for EOF). */
shoal_rc conn_read(struct conn *c) MUST_USE;
/* send() as much of c->out as the socket takes. SHOAL_OK: all sent; SHOAL_AGAIN: some left
 * (EPOLLOUT armed); SHOAL_ERROR: the socket failed. */
shoal_rc conn_flush(struct conn *c) MUST_USE;
/* Arm EPOLLIN unless paused and EPOLLOUT while output is pending. Inline: after every flush
 * and resume, and it mostly changes nothing (loop_set). */
static inline void conn_update_events(struct conn *c)
{
	if (c->dead || c->lfd.fd < 0)
		return;
	uint32_t ev = c->paused ? 0 : EPOLLIN;
	if (buf_avail(&c->out) > 0)
		ev |= EPOLLOUT;
	loop_set(c->loop, &c->lfd, ev);
}
/* Stop (true) or resume reading; stopping only takes effect when input arrives (conn_hold). */
static inline void conn_pause(struct conn *c, bool paused)
{
	c->paused = paused;
	if (!paused)
		conn_update_events(c);
}
/* Call before reading on an event: true when c is paused, its reading then disarmed, and the
 * input must be left in the socket. Pausing is lazy: the socket stays armed for reading and is
 * disarmed only if it becomes readable while paused. Most pauses, a client waiting for a server
 * with nothing more to send, end before that: no epoll_ctl to pause and none to resume. Inline:
 * asked on every event of both sides. */
static inline bool conn_hold(struct conn *c, uint32_t events)
{
	if (!c->paused || (events & (EPOLLHUP | EPOLLERR)))
		return false;
	conn_update_events(c);
	return true;
}
/* Copy up to c->fwd_left bytes of the message being forwarded from c->in to dst->out (dst NULL:
 * drop them). True when the whole message has been moved. Inline, as the next: most server
 * messages of a transaction pass here. */
static inline bool conn_forward(struct conn *c, struct conn *dst)
{
	size_t n = buf_avail(&c->in);
	if (n > c->fwd_left)
		n = c->fwd_left;
	if (dst)
		buf_append(&dst->out, buf_head(&c->in), n);
	buf_consume(&c->in, n);
	c->fwd_left -= (uint32_t)n;
	return c->fwd_left == 0;
}
/* Begin forwarding a message of declared length len (header: 1 + len bytes). */
static inline void conn_start_forward(struct conn *c, uint8_t type, uint32_t len)
{
	c->fwd_type = type;
	c->fwd_left = len + 1;
}
/* Deregister and close the socket; buffers are freed. */
void conn_close(struct conn *c);

#endif
