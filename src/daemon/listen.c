/* listen.c: the workers' listening sockets, accepting, and running out of file descriptors. */
#include "listen.h"
#include "client.h"
#include "log.h"
#include "net.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listener that found no descriptor for a connection and could not refuse it either stays out
 * of its worker's epoll this long: level-triggered, it would otherwise wake the loop at once,
 * again and again (the accept busy loop of issue 16). */
#define LISTEN_PAUSE_USEC USEC_PER_SEC
/* An fd shortage is over once no accept has failed for this long: then it is logged as ended. */
#define SHORTAGE_QUIET_USEC USEC_PER_SEC
/* Connections one wake-up of a listener accepts at most. */
#define ACCEPT_BATCH 64
/* Shutdown with so_reuseport: how long a listener that drops new connections still accepts
 * those whose handshake was under way (a round trip), before it closes. Below a client's first
 * SYN retransmission (1 s), so that a dropped SYN's retry finds the socket gone. */
#define LISTEN_CLOSE_GRACE_USEC (USEC_PER_SEC / 4)

/* The reserved descriptor: closed to accept one connection that is then refused with an error,
 * reopened at once. Any worker may take it (atomic exchange); -1 while one holds it. */
static atomic_int spare_fd = -1;
/* Held around accepts and the spare's reopening while descriptors are short (accept_one). */
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

/* The current shortage (process-wide, so one episode logs twice however many workers see it). */
static atomic_bool shortage;
static atomic_bool shortage_eased; /* a connection was accepted since the last failure */
static _Atomic usec_t shortage_last, shortage_since;
static atomic_uint_fast64_t shortage_refused, shortage_paused;

static void spare_reopen(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && atomic_exchange(&spare_fd, fd) >= 0)
		close(fd); /* worker 0's tick reopened it meanwhile */
}

static void listener_add(struct worker *w, int fd, bool shared, bool is_unix)
{
	struct worker_listener *l = &w->listeners[w->nlisteners++];
	memset(l, 0, sizeof(*l));
	l->lfd.fd = fd;
	l->lfd.cb = listen_on_event;
	l->w = w;
	l->shared = shared;
	l->is_unix = is_unix;
}

/* The tcp_* options on a TCP listening socket as the configuration has them now: its
 * connections inherit them, no setsockopt per accept. Set when the socket opens and, after a
 * reload changed them, at the worker's next tick (a connection is given them when its
 * handshake completes: one that completed before keeps the previous ones). Dups of one socket
 * share its options; each worker's note of them is its own. */
static void listener_sync_opts(struct worker_listener *l, const struct config *cfg)
{
	struct net_tcp_opts o = client_tcp_opts_of(cfg);
	if (l->is_unix || l->lfd.fd < 0 || (l->opts_set && net_tcp_opts_equal(&o, &l->opts)))
		return;
	net_set_listen_tcp_opts(l->lfd.fd, &o, l->opts_set ? &l->opts : NULL);
	l->opts = o;
	l->opts_set = true;
}

static shoal_rc listen_dup(struct worker *w, const struct worker_listener *from, char *err,
			   size_t errlen)
{
	int fd = fcntl(from->lfd.fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "dup of a listening socket: %s", strerror(errno));
		return SHOAL_ERROR;
	}
	listener_add(w, fd, true, from->is_unix);
	w->listeners[w->nlisteners - 1].opts = from->opts; /* the socket's, set on it already */
	w->listeners[w->nlisteners - 1].opts_set = from->opts_set;
	return SHOAL_OK;
}

/* TCP: with so_reuseport each worker binds its own socket and the kernel spreads connections;
 * without it worker 0 binds one socket per address (a second process cannot bind the port then,
 * PgBouncer's default) and the other workers accept from dups of it. */
static shoal_rc listen_tcp(struct worker *w, const struct config *cfg, struct worker *first,
			   char *err, size_t errlen)
{
	if (first && !cfg->so_reuseport) {
		for (int i = 0; i < first->nlisteners; i++)
			if (!first->listeners[i].is_unix &&
			    listen_dup(w, &first->listeners[i], err, errlen) != SHOAL_OK)
				return SHOAL_ERROR;
		return SHOAL_OK;
	}
	char *addrs = xstrdup(cfg->listen_addr ? cfg->listen_addr : ""), *save = NULL;
	shoal_rc rc = SHOAL_OK;
	for (char *a = strtok_r(addrs, ", ", &save); a; a = strtok_r(NULL, ", ", &save)) {
		if (w->nlisteners >= WORKER_MAX_LISTENERS - 1)
			break;
		char why[256];
		int fd = net_listen_tcp_opts(a, cfg->listen_port, cfg->so_reuseport,
					     cfg->listen_backlog, why, sizeof(why));
		if (fd < 0) {
			snprintf(err, errlen, "cannot listen on %s:%d: %s%s", a, cfg->listen_port,
				 why,
				 strstr(why, "in use") ? " (is another Shoal or PgBouncer running?)"
						       : "");
			rc = SHOAL_ERROR;
			break;
		}
		/* PgBouncer's 45 s; the buffers before any connection (net_set_buffers) */
		net_defer_accept(fd, cfg->tcp_defer_accept ? 45 : 0);
		net_set_buffers(fd, cfg->tcp_socket_buffer);
		listener_add(w, fd, !cfg->so_reuseport && !first, false);
		listener_sync_opts(&w->listeners[w->nlisteners - 1], cfg);
		if (!first)
			log_info("listening on %s:%d%s", a, cfg->listen_port,
				 cfg->so_reuseport ? " (so_reuseport: a socket per worker)" : "");
	}
	free(addrs);
	return rc;
}

/* unix_socket_group's id, -1 when unset; SHOAL_ERROR for a group that does not exist. */
static shoal_rc socket_gid(const struct config *cfg, int *gid, char *err, size_t errlen)
{
	*gid = -1;
	const char *name = cfg->unix_socket_group;
	if (!name || !*name)
		return SHOAL_OK;
	struct group g, *found = NULL;
	char buf[4096];
	if (getgrnam_r(name, &g, buf, sizeof(buf), &found) != 0 || !found) {
		snprintf(err, errlen, "unix_socket_group: no group \"%s\"", name);
		return SHOAL_ERROR;
	}
	*gid = (int)found->gr_gid;
	return SHOAL_OK;
}

/* The Unix socket: worker 0 binds it; the others accept from a dup of its fd. */
static shoal_rc listen_unix(struct worker *w, const struct config *cfg, struct worker *first,
			    char *err, size_t errlen)
{
	if (!cfg->unix_socket_dir || !*cfg->unix_socket_dir)
		return SHOAL_OK;
	if (first) {
		for (int i = 0; i < first->nlisteners; i++)
			if (first->listeners[i].is_unix)
				return listen_dup(w, &first->listeners[i], err, errlen);
		return SHOAL_OK;
	}
	int gid;
	if (socket_gid(cfg, &gid, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	int fd = net_listen_unix(cfg->unix_socket_dir, cfg->listen_port, cfg->unix_socket_mode, gid,
				 cfg->listen_backlog, err, errlen);
	if (fd < 0)
		return SHOAL_ERROR;
	log_info("listening on %s/.s.PGSQL.%d", cfg->unix_socket_dir, cfg->listen_port);
	listener_add(w, fd, true, true);
	return SHOAL_OK;
}

shoal_rc listen_open(struct worker *w, const struct config *cfg, struct worker *first, char *err,
		     size_t errlen)
{
	if (!first && atomic_load(&spare_fd) < 0)
		spare_reopen();
	if (listen_tcp(w, cfg, first, err, errlen) != SHOAL_OK ||
	    listen_unix(w, cfg, first, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	return SHOAL_OK;
}

/* EPOLLEXCLUSIVE: a connection on a shared socket wakes one worker, not all of them. */
static shoal_rc listener_arm(struct worker *w, struct worker_listener *l)
{
	return loop_add(w->loop, &l->lfd, EPOLLIN | EPOLLEXCLUSIVE);
}

shoal_rc listen_arm(struct worker *w, char *err, size_t errlen)
{
	for (int i = 0; i < w->nlisteners; i++)
		if (listener_arm(w, &w->listeners[i]) != SHOAL_OK) {
			snprintf(err, errlen, "epoll: %s", strerror(errno));
			return SHOAL_ERROR;
		}
	return SHOAL_OK;
}

/* Accept everything queued on l (it is served): a close resets what is left in a listener's
 * queue, and with so_reuseport the kernel does not move it to the port's other sockets. Bounded:
 * the queue holds at most the listen backlog. */
static void listener_take_queue(struct worker_listener *l)
{
	for (int i = 0; i < 64 && l->lfd.fd >= 0 && l->lfd.registered; i++) {
		struct pollfd p = {.fd = l->lfd.fd, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			return;
		listen_on_event(&l->lfd, EPOLLIN);
	}
}

static void listener_close_now(struct worker *w, struct worker_listener *l)
{
	if (l->lfd.registered) {
		listener_take_queue(l);
		loop_del(w->loop, &l->lfd);
	}
	close(l->lfd.fd);
	l->lfd.fd = -1;
	l->close_at = 0;
}

/* A socket filter that drops TCP segments with SYN set and ACK clear: new connections, whose
 * client retransmits the SYN (after 1 s) and then reaches another socket of the port. Segments
 * that complete a handshake under way pass, so that connection is queued and taken. */
static bool listener_refuse_syns(int fd)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13), /* TCP flags (the data starts at the header) */
	    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),	     /* SYN | ACK */
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), /* SYN alone: */
	    BPF_STMT(BPF_RET | BPF_K, 0),		     /* dropped */
	    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),	     /* anything else: kept whole */
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0;
}

/* A socket of its own (so_reuseport) first stops taking new connections and closes at the grace's
 * end, so that nothing is queued on it when it closes; a shared one (the only socket of its port)
 * closes at once, its queue taken. */
void listen_close_tcp(struct worker *w)
{
	for (int i = 0; i < w->nlisteners; i++) {
		struct worker_listener *l = &w->listeners[i];
		if (l->lfd.fd < 0 || l->is_unix || l->close_at)
			continue;
		if (!l->shared && listener_refuse_syns(l->lfd.fd)) {
			listener_take_queue(l);
			l->close_at = shoal_now() + LISTEN_CLOSE_GRACE_USEC;
		} else {
			listener_close_now(w, l);
		}
	}
}

bool listen_closing(const struct worker *w)
{
	for (int i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].lfd.fd >= 0 && w->listeners[i].close_at)
			return true;
	return false;
}

void listen_close(struct worker *w)
{
	for (int i = 0; i < w->nlisteners; i++) {
		struct loop_fd *l = &w->listeners[i].lfd;
		if (l->fd < 0)
			continue;
		loop_del(w->loop, l);
		close(l->fd);
		l->fd = -1;
	}
	/* The Unix socket's path is unlinked by worker_destroy, at exit: while any worker drains,
	 * its dup of the socket still takes console logins. */
	if (w->id == 0) {
		int fd = atomic_exchange(&spare_fd, -1);
		if (fd >= 0)
			close(fd);
	}
}

/* ---- running out of descriptors -------------------------------------------------------- */

/* A shortage begins (or goes on): one line when it begins. */
static void shortage_note(int err)
{
	usec_t now = shoal_now();
	atomic_store(&shortage_last, now);
	atomic_store(&shortage_eased, false);
	if (atomic_exchange(&shortage, true))
		return;
	atomic_store(&shortage_since, now);
	struct rlimit rl = {0};
	getrlimit(RLIMIT_NOFILE, &rl);
	log_warn("accept failed: %s (file descriptor limit %llu): refusing new connections until "
		 "descriptors are free; one line when it ends",
		 strerror(err), (unsigned long long)rl.rlim_cur);
}

/* The ErrorResponse goes out before the close; what the client already sent is read first, so
 * that the close is a FIN and not a reset that could discard the error before it is read. A
 * client that began with an SSLRequest sees "error response during SSL exchange" (libpq hides
 * the text then): answering "N" first would need its startup packet, a round trip this
 * descriptor-less moment cannot wait for. */
static void refuse(int fd)
{
	static const char msg[] = "no more connections allowed (too many open files)";
	struct buf b = {0};
	proto_write_error(&b, "FATAL", "53300", msg);
	if (send(fd, b.data + b.off, b.len - b.off, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("refusing a connection: %s", strerror(errno));
	buf_free(&b);
	shutdown(fd, SHUT_WR);
	char scratch[512];
	for (int i = 0; i < 16 && recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

/* Out of descriptors with a connection waiting: refuse it through the spare descriptor. False
 * when the spare is not there (another worker holds it, or it could not be reopened). */
static bool refuse_with_spare(struct worker_listener *l)
{
	int spare = atomic_exchange(&spare_fd, -1);
	if (spare < 0)
		return false;
	close(spare);
	struct sockaddr_storage addr;
	socklen_t alen;
	int fd = net_accept(l->lfd.fd, &addr, &alen);
	int err = errno;
	if (fd >= 0) {
		refuse(fd);
		atomic_fetch_add(&shortage_refused, 1);
	}
	spare_reopen();
	return fd >= 0 || err == EAGAIN || err == EWOULDBLOCK;
}

static void listener_pause(struct worker_listener *l)
{
	loop_del(l->w->loop, &l->lfd);
	l->rearm_at = shoal_now() + LISTEN_PAUSE_USEC;
	atomic_fetch_add(&shortage_paused, 1);
}

/* A client accepted from a shared socket goes to the workers in turn, so that clients that
 * connect one after the other do not all land on the worker that happened to be idle (with
 * EPOLLEXCLUSIVE the kernel wakes the first idle waiter, usually the same one). */
static void hand_out(struct worker *w, int fd, const struct sockaddr_storage *addr)
{
	static atomic_uint next;
	unsigned n = (unsigned)worker_count();
	struct worker *to =
	    n > 1 ? worker_get((int)(atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % n))
		  : w;
	if (!to || to == w || atomic_load(&to->stopped)) {
		client_accept(w, fd, addr);
		return;
	}
	struct mail *m = xcalloc(1, sizeof(*m) + sizeof(*addr));
	m->kind = MAIL_ACCEPT;
	m->fd = fd;
	m->len = sizeof(*addr);
	memcpy(m->data, addr, sizeof(*addr));
	worker_mail(to, m);
}

void listen_adopt(struct worker *w, struct mail *m)
{
	struct sockaddr_storage addr;
	memcpy(&addr, m->data, sizeof(addr));
	client_accept(w, m->fd, &addr);
}

/* One accept. During a shortage every worker's accepts are serialised with the spare's
 * close-accept-reopen: another worker's accept4 between our close and our accept would take the
 * freed descriptor, and the spare would be lost until one frees up (clients would then wait in
 * the backlog instead of being refused). Returns the accepted fd; -1 with err set (0: the
 * connection was refused, go on). */
static int accept_one(struct worker_listener *l, struct sockaddr_storage *addr, int *err)
{
	bool serial = atomic_load_explicit(&shortage, memory_order_relaxed);
	if (serial)
		pthread_mutex_lock(&accept_lock);
	socklen_t alen;
	int fd = net_accept(l->lfd.fd, addr, &alen);
	*err = fd < 0 ? errno : 0;
	if (fd < 0 && (*err == EMFILE || *err == ENFILE)) {
		if (!serial)
			pthread_mutex_lock(&accept_lock);
		serial = true;
		shortage_note(*err);
		if (refuse_with_spare(l))
			*err = 0;
	} else if (fd >= 0 && serial) {
		atomic_store(&shortage_eased, true);
	}
	if (serial)
		pthread_mutex_unlock(&accept_lock);
	return fd;
}

void listen_on_event(struct loop_fd *lfd, uint32_t events)
{
	struct worker_listener *l = container_of(lfd, struct worker_listener, lfd);
	UNUSED(events);
	if (!lfd->registered)
		return; /* paused earlier in this batch */
	for (int tries = 0; tries < ACCEPT_BATCH; tries++) {
		struct sockaddr_storage addr;
		int err;
		int fd = accept_one(l, &addr, &err);
		if (fd >= 0) {
			/* WAIT_FOR_SERVERS: its startup gets 57P01 (client_login.c). */
			if (l->shared)
				hand_out(l->w, fd, &addr);
			else
				client_accept(l->w, fd, &addr);
			continue;
		}
		if (err == 0 || err == ECONNABORTED || err == EINTR)
			continue;
		if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
			shortage_note(err); /* EMFILE: noted already; the spare is gone */
			listener_pause(l);
		} else if (err != EAGAIN && err != EWOULDBLOCK) {
			log_warn("accept failed: %s", strerror(err));
			listener_pause(l);
		}
		return;
	}
}

void listen_tick(struct worker *w, usec_t now)
{
	for (int i = 0; i < w->nlisteners; i++) {
		struct worker_listener *l = &w->listeners[i];
		if (l->lfd.fd >= 0 && l->close_at && now >= l->close_at)
			listener_close_now(w, l);
		listener_sync_opts(l, config_current());
		if (l->lfd.fd < 0 || l->lfd.registered || now < l->rearm_at)
			continue;
		if (listener_arm(w, l) != SHOAL_OK)
			l->rearm_at = now + LISTEN_PAUSE_USEC;
	}
	if (atomic_load(&spare_fd) < 0 && !w->stopping && w->id == 0) {
		pthread_mutex_lock(&accept_lock);
		if (atomic_load(&spare_fd) < 0)
			spare_reopen();
		pthread_mutex_unlock(&accept_lock);
	}
	/* Over once a connection was accepted and none failed for a while: a client leaving
	 * while others are refused does not make a new episode per departure. */
	if (!atomic_load(&shortage) || !atomic_load(&shortage_eased) ||
	    now - atomic_load(&shortage_last) < SHORTAGE_QUIET_USEC)
		return;
	if (!atomic_exchange(&shortage, false))
		return;
	usec_t since = atomic_load(&shortage_since);
	log_info("accepting connections again: descriptors were short for %.1f s; %llu connections "
		 "refused with 53300, listeners paused %llu times",
		 (double)(now - since) / USEC_PER_SEC,
		 (unsigned long long)atomic_exchange(&shortage_refused, 0),
		 (unsigned long long)atomic_exchange(&shortage_paused, 0));
}

/* ---- the descriptor budget ------------------------------------------------------------- */

/* Server connections the configured pools may open: each [databases] entry's pool size and
 * reserve (capped by max_db_connections); the "*" entry and auto-created pools count once. */
static unsigned long long server_fds(const struct config *cfg)
{
	unsigned long long n = 0;
	for (int i = 0; i < cfg->ndbs; i++) {
		bool per_user = false;
		long long size = config_db_servers(cfg, &cfg->dbs[i], &per_user);
		n += (unsigned long long)size;
	}
	return n;
}

void listen_fd_budget(const struct config *cfg, int nworkers)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	/* Besides clients and servers: stdio, log, pidfile, the spare, the resolver and HTTP
	 * threads, and per worker its epoll, eventfd and listeners; cancel requests come and go. */
	unsigned long long other = 64 + (unsigned long long)nworkers * (2 + WORKER_MAX_LISTENERS);
	unsigned long long servers = server_fds(cfg);
	/* Clients logging in (max_login_clients) and the console's reserved slots come on top. */
	unsigned long long need = (unsigned long long)cfg->max_client_conn + servers + other +
				  (unsigned long long)cfg->max_login_clients +
				  (unsigned long long)cfg->admin_reserved_conn;
	unsigned long long soft = rl.rlim_cur, hard = rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && soft < need) {
		struct rlimit want = rl;
		want.rlim_cur = rl.rlim_max == RLIM_INFINITY || need < hard ? need : hard;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			soft = want.rlim_cur;
		else
			log_warn("cannot raise the file descriptor limit to %llu: %s",
				 (unsigned long long)want.rlim_cur, strerror(errno));
	}
	log_info("file descriptor limit %llu (hard %s%llu); max_client_conn %d, servers of the "
		 "configured pools %llu: about %llu needed",
		 soft, rl.rlim_max == RLIM_INFINITY ? "unlimited " : "",
		 rl.rlim_max == RLIM_INFINITY ? 0ULL : hard, cfg->max_client_conn, servers, need);
	if (rl.rlim_cur != RLIM_INFINITY && soft < need)
		log_warn("max_client_conn = %d does not fit in the file descriptor limit %llu "
			 "(hard %llu): about %llu clients can connect, the rest are refused; raise "
			 "the limit (ulimit -n, systemd LimitNOFILE=) or lower max_client_conn",
			 cfg->max_client_conn, soft, hard,
			 soft > servers + other ? soft - servers - other : 0ULL);
}
