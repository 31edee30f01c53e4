/* handoff.h: rolling restart with client handoff. The new process listens on handoff_socket;
 * the old one, told to hand off (console HANDOFF, SIGWINCH), closes its listeners and sends each
 * idle transaction-mode client, plain TCP or Unix socket, to the new one: its descriptor
 * (SCM_RIGHTS) and its state (handoff_msg.h). The client is not told: its next query is read by
 * the new process. TLS clients get 57P01 when idle (their TLS session is in this process's
 * OpenSSL); session-mode and pinned clients stay until they leave. docs/internals.md,
 * "Handing clients over". */
#ifndef SHOAL_HANDOFF_H
#define SHOAL_HANDOFF_H

#include "buf.h"
#include "common.h"
#include "config.h"

struct worker;
struct client;

/* Main thread, before the workers start: listen on cfg->handoff_socket (if set), taking the
 * path over from an older process. SHOAL_ERROR with err when it cannot. */
shoal_rc handoff_listen(const struct config *cfg, char *err, size_t errlen) MUST_USE;
/* A worker takes handed-over clients from the handoff socket (worker_init). */
shoal_rc handoff_attach(struct worker *w) MUST_USE;
/* After every worker has stopped: close w's handoff connections; worker 0 removes the
 * socket's path if it is still this process's. */
void handoff_detach(struct worker *w);
/* Any thread: begin handing clients to the process listening on handoff_socket. SHOAL_ERROR
 * with err (nothing changes) when handoff_socket is not set, no other process listens there,
 * or a handoff is already under way. The caller then begins a WAIT_FOR_CLIENTS shutdown. */
shoal_rc handoff_begin(char *err, size_t errlen) MUST_USE;
/* A draining worker's tick: send its clients that can go now, 57P01 to idle TLS ones. */
void handoff_tick(struct worker *w);
/* Whether c, idle between transactions with nothing buffered, is to go at its worker's next
 * tick (a handoff is under way and c can be moved or closed): its reading stays paused, so that
 * its next request waits in the kernel for the new process instead of making it busy here
 * again (a client that sends at once would otherwise never be found idle at a tick). */
bool handoff_wants(const struct client *c);

/* handoff.c, for handoff_io.c: */
enum handoff_way {
	HO_LATER, /* busy, or bytes in its buffers: look again at the next tick */
	HO_MOVE,  /* idle, plain: send it */
	HO_CLOSE, /* idle, TLS: 57P01 */
	HO_STAY,  /* session mode, pinned, console, replication: stays until it leaves */
};
enum handoff_way handoff_way(const struct client *c);
/* c's state as one message (handoff_msg.h); SHOAL_ERROR if it exceeds the bounds. */
shoal_rc handoff_pack(const struct client *c, struct buf *out) MUST_USE;
/* A client handed to w: its socket fd and its message. Logs in a client object without a word
 * to the client; on a bad message or no room the socket is closed (false). */
bool handoff_adopt(struct worker *w, int fd, const uint8_t *msg, size_t len);

#endif
