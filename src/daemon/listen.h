/* listen.h: the workers' listening sockets, accepting, and running out of file descriptors. */
#ifndef SHOAL_LISTEN_H
#define SHOAL_LISTEN_H

#include "worker.h"

/* Open w's listeners per cfg. Worker 0 (first NULL) binds every TCP address and the Unix
 * socket; another worker accepts from dups of first's sockets, except that with so_reuseport
 * it binds its own TCP sockets (SO_REUSEPORT). SHOAL_ERROR with err naming the address when one
 * cannot be bound (a port in use is reported as such). */
shoal_rc listen_open(struct worker *w, const struct config *cfg, struct worker *first, char *err,
		     size_t errlen) MUST_USE;
/* Register w's listeners with its loop (EPOLLEXCLUSIVE). SHOAL_ERROR with err. */
shoal_rc listen_arm(struct worker *w, char *err, size_t errlen) MUST_USE;
/* A listener is readable: accept a batch; from a socket the workers share, clients are handed
 * to the workers in turn (MAIL_ACCEPT, taken by listen_adopt on the receiving worker). Out of
 * descriptors, a waiting connection is refused with 53300 through a reserved descriptor, or the
 * listener leaves the epoll for a second; one log line when a shortage starts, one when it ends. */
void listen_on_event(struct loop_fd *lfd, uint32_t events);
void listen_adopt(struct worker *w, struct mail *m);
/* Each tick: re-arm listeners whose pause is over; log the end of a shortage. */
void listen_tick(struct worker *w, usec_t now);
/* Close w's listeners (worker 0 also removes the Unix socket file and the spare descriptor). */
void listen_close(struct worker *w);
/* Shutdown: close the TCP listeners only (the Unix socket keeps taking console logins), losing
 * no connection the kernel queued on them. A socket of this worker's own (so_reuseport) first
 * drops new connections' SYNs (their clients retry and reach the port's other sockets), takes its
 * queue and those whose handshake was under way, and closes at listen_tick after a grace of
 * 250 ms; a shared socket closes at once, its queue taken. */
void listen_close_tcp(struct worker *w);
/* Is a TCP listener of w still in that grace? (The worker does not stop meanwhile.) */
bool listen_closing(const struct worker *w);
/* At start: raise the soft RLIMIT_NOFILE toward the hard limit as far as max_client_conn and the
 * configured pools need, log the limits, warn when max_client_conn cannot fit. */
void listen_fd_budget(const struct config *cfg, int nworkers);

#endif
