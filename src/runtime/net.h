/* net.h: socket helpers. Errors are reported into a caller-owned buffer, never logged here. */
#ifndef SHOAL_NET_H
#define SHOAL_NET_H

#include <sys/socket.h>

#include "common.h"

/* Listen on host:port (host "*" = all IPv4 and IPv6) with SO_REUSEPORT and a backlog of 1024.
 * Returns fd or -1. */
int net_listen_tcp(const char *host, int port, char *err, size_t errlen);
/* The same, choosing SO_REUSEPORT (without it a second process cannot bind the port too) and
 * the listen(2) backlog. */
int net_listen_tcp_opts(const char *host, int port, bool reuseport, int backlog, char *err,
			size_t errlen);
/* TCP_DEFER_ACCEPT of secs on a TCP listening socket (0: off): the kernel hands a connection
 * over only once its first bytes came. */
void net_defer_accept(int fd, int secs);
/* SO_SNDBUF and SO_RCVBUF of bytes (0: the OS default, which grows them) on a listening socket,
 * whose accepted sockets inherit them: set after the handshake instead, a smaller receive buffer
 * than the window already offered makes the kernel drop what arrives (retransmitted later). */
void net_set_buffers(int fd, int bytes);
/* Listen on dir/.s.PGSQL.port with the given mode, group (-1: the process's) and backlog;
 * removes a stale socket file first. */
int net_listen_unix(const char *dir, int port, int mode, int gid, int backlog, char *err,
		    size_t errlen);
/* Accept one connection, nonblocking and close-on-exec; -1 with errno when none. */
int net_accept(int lfd, struct sockaddr_storage *addr, socklen_t *alen);
/* Start a nonblocking connect to host:port (a host starting with '/' is a Unix socket dir), a TCP
 * socket's buffers set first (net_set_buffers). Returns fd (connect in progress or done) or -1
 * with err. */
int net_connect(const char *host, int port, int sockbuf, char *err, size_t errlen);
/* SO_ERROR of a connecting socket: 0 when connected. */
int net_connect_result(int fd);
/* Options of a connected TCP socket (the tcp_* settings); 0 leaves the OS default. */
struct net_tcp_opts {
	bool keepalive;
	int keepcnt, keepidle, keepintvl; /* probes; seconds; seconds (with keepalive only) */
	int user_timeout;		  /* TCP_USER_TIMEOUT, milliseconds */
};
/* TCP_NODELAY and o on fd; a setsockopt that fails is not an error (best effort, as for the
 * OS defaults it stands for). */
void net_set_tcp_opts(int fd, const struct net_tcp_opts *o);
/* The same on a listening socket, whose connections inherit them (Linux copies a listener's
 * TCP_NODELAY, SO_KEEPALIVE, keepalive timings and TCP_USER_TIMEOUT into each socket it
 * accepts), so that an accept needs no setsockopt: only what differs from old (NULL: from a
 * new socket's) is set, and a value back to 0 goes back to the OS default. */
void net_set_listen_tcp_opts(int fd, const struct net_tcp_opts *o, const struct net_tcp_opts *old);
bool net_tcp_opts_equal(const struct net_tcp_opts *a, const struct net_tcp_opts *b);
/* Human-readable peer address ("10.0.0.5:4123" or "unix"). */
void net_peer_name(const struct sockaddr_storage *addr, char *out, size_t outlen);
/* net_peer_name's text from the numeric address and port net_addr_info gave for a peer of that
 * family, at out (room for INET6_ADDRSTRLEN + 9 bytes); returns the NUL's address. */
char *net_peer_text(int family, const char *addr, int port, char *out);
/* Numeric local address and port of a connected socket ("unix", 0 for a Unix socket). */
void net_local_info(int fd, char *addr, size_t alen, int *port);
/* Numeric peer address and port of an accepted socket, and its local ones ("unix", 0 for a Unix
 * socket), for SHOW CLIENTS. */
void net_addr_info(int fd, const struct sockaddr_storage *peer, char *addr, size_t alen,
		   int *port, char *laddr, size_t llen, int *lport);

#endif
