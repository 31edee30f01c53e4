/* net.c: listening, accepting and nonblocking connects over TCP and Unix sockets. */
#include "net.h"
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void set_int_opt(int fd, int level, int name, int v)
{
	if (v > 0)
		setsockopt(fd, level, name, &v, sizeof(v));
}

static int listen_addrinfo(struct addrinfo *ai, bool reuseport, int backlog, char *err,
			   size_t errlen)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int net_listen_tcp_opts(const char *host, int port, bool reuseport, int backlog, char *err,
			size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	hints.ai_family = strcmp(host, "*") == 0 ? AF_INET : AF_UNSPEC;
	int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	int fd = listen_addrinfo(res, reuseport, backlog, err, errlen);
	freeaddrinfo(res);
	return fd;
}

int net_listen_tcp(const char *host, int port, char *err, size_t errlen)
{
	return net_listen_tcp_opts(host, port, true, 1024, err, errlen);
}

static int unix_path(const char *dir, int port, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	int n = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/.s.PGSQL.%d", dir, port);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "unix socket path too long: %s", dir);
		return -1;
	}
	return 0;
}

/* A socket file at path that a process still accepts on (a second Shoal on the same port)? */
static bool unix_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return live;
}

/* Bound under a temporary name, listening, then renamed into place: the socket file appears
 * only once connections to it are accepted (a client that sees it is never refused). A live
 * socket of another process is left alone; a stale one is replaced. */
int net_listen_unix(const char *dir, int port, int mode, int gid, int backlog, char *err,
		    size_t errlen)
{
	struct sockaddr_un sun, tmp;
	if (unix_path(dir, port, &sun, err, errlen) < 0)
		return -1;
	if (unix_in_use(&sun)) {
		snprintf(err, errlen, "%s: another process is listening on it", sun.sun_path);
		return -1;
	}
	tmp = sun;
	int n =
	    snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d.tmp", sun.sun_path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp.sun_path))
		tmp = sun; /* no room for a temporary name: bind in place */
	unlink(tmp.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0 ||
	    listen(fd, backlog) < 0 || chmod(tmp.sun_path, (mode_t)mode) < 0 ||
	    (gid >= 0 && chown(tmp.sun_path, (uid_t)-1, (gid_t)gid) < 0) ||
	    (strcmp(tmp.sun_path, sun.sun_path) != 0 && rename(tmp.sun_path, sun.sun_path) < 0)) {
		snprintf(err, errlen, "%s: %s", sun.sun_path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp.sun_path);
		}
		return -1;
	}
	return fd;
}

int net_accept(int lfd, struct sockaddr_storage *addr, socklen_t *alen)
{
	*alen = sizeof(*addr);
	return accept4(lfd, (struct sockaddr *)addr, alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static int connect_unix(const char *dir, int port, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	if (unix_path(dir, port, &sun, err, errlen) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
		       errno != EINPROGRESS && errno != EAGAIN)) {
		snprintf(err, errlen, "connect to %s: %s", sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Host names come from the resolver thread's cache (dns.c): a worker never blocks in DNS. */
int net_connect(const char *host, int port, int sockbuf, char *err, size_t errlen)
{
	if (host[0] == '/')
		return connect_unix(host, port, err, errlen);
	struct sockaddr_storage ss;
	socklen_t len;
	if (dns_lookup(host, port, &ss, &len, err, errlen) != SHOAL_OK)
		return -1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		net_set_buffers(fd, sockbuf);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)) {
		snprintf(err, errlen, "connect to %s:%d: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	return fd;
}

int net_connect_result(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		return errno;
	return e;
}

void net_set_buffers(int fd, int bytes)
{
	set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, bytes);
	set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, bytes);
}

void net_defer_accept(int fd, int secs)
{
	set_int_opt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, secs);
}

void net_set_tcp_opts(int fd, const struct net_tcp_opts *o)
{
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	set_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, o->user_timeout);
	if (!o->keepalive)
		return;
	set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, o->keepcnt);
	set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->keepidle);
	set_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->keepintvl);
}

bool net_tcp_opts_equal(const struct net_tcp_opts *a, const struct net_tcp_opts *b)
{
	return a->keepalive == b->keepalive && a->keepcnt == b->keepcnt &&
	       a->keepidle == b->keepidle && a->keepintvl == b->keepintvl &&
	       a->user_timeout == b->user_timeout;
}

/* The kernel's default for a keepalive timing (what 0 stands for); 0 when unreadable. */
static int sysctl_int(const char *path)
{
	FILE *f = fopen(path, "re");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* A keepalive timing of a listening socket: set when it changes; back to 0 is the kernel's
 * default, which a socket option cannot ask for by 0, so it is read from sysctl. */
static void listen_keep_opt(int fd, int name, int v, int was, const char *sysctl)
{
	if (v == was)
		return;
	set_int_opt(fd, IPPROTO_TCP, name, v > 0 ? v : sysctl_int(sysctl));
}

void net_set_listen_tcp_opts(int fd, const struct net_tcp_opts *o, const struct net_tcp_opts *old)
{
	int one = 1, off = 0, ut = o->user_timeout;
	if (!old)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (old ? old->keepalive != o->keepalive : o->keepalive)
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, o->keepalive ? &one : &off, sizeof(one));
	if (old ? old->user_timeout != ut : ut > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	listen_keep_opt(fd, TCP_KEEPCNT, o->keepcnt, old ? old->keepcnt : 0,
			"/proc/sys/net/ipv4/tcp_keepalive_probes");
	listen_keep_opt(fd, TCP_KEEPIDLE, o->keepidle, old ? old->keepidle : 0,
			"/proc/sys/net/ipv4/tcp_keepalive_time");
	listen_keep_opt(fd, TCP_KEEPINTVL, o->keepintvl, old ? old->keepintvl : 0,
			"/proc/sys/net/ipv4/tcp_keepalive_intvl");
}

/* The decimal digits of an address byte at o; returns their end. */
static char *octet_put(char *o, unsigned v)
{
	if (v >= 100) {
		*o++ = (char)('0' + v / 100);
		v %= 100;
		*o++ = (char)('0' + v / 10);
	} else if (v >= 10) {
		*o++ = (char)('0' + v / 10);
	}
	*o++ = (char)('0' + v % 10);
	return o;
}

/* inet_ntop for IPv4 without stdio (inet_ntop formats with sprintf): an accept formats its
 * addresses twice. out has room for INET_ADDRSTRLEN (16) bytes; returns the NUL's address. */
static char *ipv4_text(const struct in_addr *a, char *out)
{
	const unsigned char *b = (const unsigned char *)&a->s_addr;
	for (int i = 0; i < 4; i++) {
		out = octet_put(out, b[i]);
		*out++ = '.';
	}
	*--out = '\0';
	return out;
}

void net_peer_name(const struct sockaddr_storage *addr, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		char *end = ipv4_text(&in->sin_addr, host); /* "a.b.c.d:port" fits in 22 bytes */
		*end++ = ':';
		u64_put(end, ntohs(in->sin_port));
		str_copy(out, outlen, host);
	} else if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%d", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, outlen, "unix");
	}
}

char *net_peer_text(int family, const char *addr, int port, char *out)
{
	if (family != AF_INET && family != AF_INET6) {
		memcpy(out, "unix", 5);
		return out + 4;
	}
	size_t n = strlen(addr);
	if (family == AF_INET6)
		*out++ = '[';
	memcpy(out, addr, n);
	out += n;
	if (family == AF_INET6)
		*out++ = ']';
	*out++ = ':';
	return u64_put(out, (uint64_t)port);
}

static void addr_port(const struct sockaddr_storage *a, char *out, size_t n, int *port)
{
	*port = 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)a;
		char text[INET_ADDRSTRLEN];
		if (n >= sizeof(text)) {
			ipv4_text(&in->sin_addr, out);
		} else {
			ipv4_text(&in->sin_addr, text);
			str_copy(out, n, text);
		}
		*port = ntohs(in->sin_port);
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)n);
		*port = ntohs(in6->sin6_port);
	} else {
		str_copy(out, n, "unix");
	}
}

/* The local end of accepted sockets is one of the few addresses Shoal listens on: the last
 * IPv4 one this thread formatted is kept with its text. */
static __thread struct {
	in_addr_t addr;
	char text[INET_ADDRSTRLEN];
} last_local;

static void local_addr_port(const struct sockaddr_storage *a, char *out, size_t n, int *port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)a;
	if (a->ss_family != AF_INET || n < sizeof(last_local.text)) {
		addr_port(a, out, n, port);
		return;
	}
	if (!last_local.text[0] || last_local.addr != in->sin_addr.s_addr) {
		ipv4_text(&in->sin_addr, last_local.text);
		last_local.addr = in->sin_addr.s_addr;
	}
	memcpy(out, last_local.text, sizeof(last_local.text));
	*port = ntohs(in->sin_port);
}

void net_addr_info(int fd, const struct sockaddr_storage *peer, char *addr, size_t alen, int *port,
		   char *laddr, size_t llen, int *lport)
{
	struct sockaddr_storage local; /* getsockname fills what addr_port reads */
	socklen_t len = sizeof(local);
	addr_port(peer, addr, alen, port);
	if (peer->ss_family == AF_UNIX || getsockname(fd, (struct sockaddr *)&local, &len) != 0)
		local.ss_family = AF_UNIX;
	local_addr_port(&local, laddr, llen, lport);
}

void net_local_info(int fd, char *addr, size_t alen, int *port)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	memset(&local, 0, sizeof(local));
	if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
		local.ss_family = AF_UNIX;
	addr_port(&local, addr, alen, port);
}
