/* handoff_io.c: the handoff socket (handoff.h). The new process listens (SOCK_SEQPACKET, one
 * record per client: its message plus its descriptor); each worker of the old process opens its
 * own connection and sends its clients as they become idle, each record whole or not at all. */
#include "handoff.h"
#include "client.h"
#include "handoff_msg.h"
#include "log.h"
#include "net.h"
#include "objects.h"
#include "pool.h"
#include "worker.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* One connection from an old process, served by the worker that accepted it. */
struct ho_conn {
	struct loop_fd lfd;
	struct worker *w;
	struct list node;
	unsigned taken, refused;
	int peer_pid;
	uint8_t *msg; /* HANDOFF_MAX_MSG bytes: one record */
};

/* A worker's share: its listener registration, connections in, and (old process) its own
 * connection out. Touched only by its worker, but for listen_fd and the path (main thread,
 * before the workers start and after they stop). */
static struct ho_worker {
	struct loop_fd lfd;
	struct worker *w;
	struct list conns;
	int out_fd;	 /* -1: not connected yet */
	bool out_failed; /* the new process went away: the rest stay here */
	unsigned moved, closed_tls;
} hw[MAX_WORKERS];

static int listen_fd = -1;
static char listen_path[108];
static ino_t listen_ino;
static atomic_bool active;
static char target[108]; /* the path handoff_begin checked: set before active */

static shoal_rc unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return SHOAL_ERROR;
	str_copy(sa->sun_path, sizeof(sa->sun_path), path);
	return SHOAL_OK;
}

shoal_rc handoff_listen(const struct config *cfg, char *err, size_t errlen)
{
	const char *path = cfg->handoff_socket;
	struct sockaddr_un sa;
	struct stat st;
	if (!path || !*path)
		return SHOAL_OK;
	if (unix_addr(path, &sa) != SHOAL_OK) {
		snprintf(err, errlen, "handoff_socket %s: path too long", path);
		return SHOAL_ERROR;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* The newest process owns the path: an older one still listening there is no longer
	 * reachable through it, and that is how it finds its successor. Only a socket is
	 * removed: a mistyped path must not cost a file. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "handoff_socket %s exists and is not a socket", path);
		if (fd >= 0)
			close(fd);
		return SHOAL_ERROR;
	}
	unlink(path);
	mode_t old = umask(0077); /* only this user may hand clients over (checked again) */
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0 || listen(fd, 64) != 0 || stat(path, &st) != 0) {
		snprintf(err, errlen, "handoff_socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SHOAL_ERROR;
	}
	listen_fd = fd;
	listen_ino = st.st_ino;
	str_copy(listen_path, sizeof(listen_path), path);
	log_info("handoff socket %s: ready to take clients over", path);
	return SHOAL_OK;
}

/* ---- the new process: taking clients ------------------------------------------------------ */

static void conn_done(struct ho_conn *hc)
{
	/* handoff_begin's probe and the connections of workers without clients carry none */
	log_msg(hc->taken + hc->refused ? LOG_INFO : LOG_DEBUG,
		"handoff from pid %d done: %u client%s taken over, %u refused", hc->peer_pid,
		hc->taken, hc->taken == 1 ? "" : "s", hc->refused);
	loop_del(hc->w->loop, &hc->lfd);
	close(hc->lfd.fd);
	list_del(&hc->node);
	free(hc->msg);
	free(hc);
}

/* The descriptor a record carries; -1 if not exactly one (any others are closed). */
static int record_fd(struct msghdr *mh)
{
	int fd = -1, n = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n++ == 0)
				fd = f;
			else
				close(f);
		}
	}
	if (n != 1 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* One record: SHOAL_AGAIN when none is waiting, SHOAL_ERROR at the end of the connection. */
static shoal_rc take_one(struct ho_conn *hc, uint8_t *msg)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct iovec iov = {.iov_base = msg, .iov_len = HANDOFF_MAX_MSG};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	ssize_t n = recvmsg(hc->lfd.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return SHOAL_AGAIN;
	if (n <= 0)
		return SHOAL_ERROR;
	int fd = record_fd(&mh);
	if (fd < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		log_warn("handoff from pid %d: a record without one descriptor, or cut: dropped",
			 hc->peer_pid);
		if (fd >= 0)
			close(fd);
		hc->refused++;
		return SHOAL_OK;
	}
	if (handoff_adopt(hc->w, fd, msg, (size_t)n))
		hc->taken++;
	else
		hc->refused++;
	explicit_bzero(msg, (size_t)n); /* it may hold the pool's password */
	return SHOAL_OK;
}

static void conn_event(struct loop_fd *lfd, uint32_t events)
{
	struct ho_conn *hc = container_of(lfd, struct ho_conn, lfd);
	UNUSED(events);
	for (int i = 0; i < 256; i++) { /* bounded: other connections get their turn */
		shoal_rc rc = take_one(hc, hc->msg);
		if (rc == SHOAL_AGAIN)
			return;
		if (rc == SHOAL_ERROR) {
			conn_done(hc);
			return;
		}
	}
}

/* Only a process of this user (or root) may hand clients over. */
static bool peer_allowed(int fd, int *pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return false;
	*pid = (int)cr.pid;
	return cr.uid == geteuid() || cr.uid == 0;
}

static void listen_event(struct loop_fd *lfd, uint32_t events)
{
	struct ho_worker *h = container_of(lfd, struct ho_worker, lfd);
	UNUSED(events);
	int fd = accept4(lfd->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return; /* another worker took it, or nothing */
	struct ho_conn *hc = xcalloc(1, sizeof(*hc));
	if (!peer_allowed(fd, &hc->peer_pid)) {
		log_warn("handoff socket: a process of another user (pid %d) refused",
			 hc->peer_pid);
		close(fd);
		free(hc);
		return;
	}
	hc->w = h->w;
	hc->msg = xmalloc(HANDOFF_MAX_MSG);
	hc->lfd.fd = fd;
	hc->lfd.cb = conn_event;
	list_append(&h->conns, &hc->node);
	if (loop_add(h->w->loop, &hc->lfd, EPOLLIN) != SHOAL_OK) {
		log_warn("handoff socket: epoll: %s", strerror(errno));
		list_del(&hc->node);
		close(fd);
		free(hc->msg);
		free(hc);
		return;
	}
	log_debug("handoff from pid %d: connected (worker %d)", hc->peer_pid, h->w->id);
}

shoal_rc handoff_attach(struct worker *w)
{
	struct ho_worker *h = &hw[w->id];
	h->w = w;
	h->out_fd = -1;
	list_init(&h->conns);
	if (listen_fd < 0)
		return SHOAL_OK;
	h->lfd.fd = listen_fd;
	h->lfd.cb = listen_event;
	return loop_add(w->loop, &h->lfd, EPOLLIN);
}

void handoff_detach(struct worker *w)
{
	struct ho_worker *h = &hw[w->id];
	if (!h->w)
		return;
	while (!list_empty(&h->conns))
		conn_done(container_of(h->conns.next, struct ho_conn, node));
	if (h->out_fd >= 0) {
		close(h->out_fd);
		log_info("handoff: worker %d handed %u client%s over, closed %u TLS client%s",
			 w->id, h->moved, h->moved == 1 ? "" : "s", h->closed_tls,
			 h->closed_tls == 1 ? "" : "s");
	}
	h->out_fd = -1;
	if (listen_fd >= 0 && h->lfd.registered)
		loop_del(w->loop, &h->lfd);
	if (w->id != 0 || listen_fd < 0)
		return;
	struct stat st; /* the path may be a newer process's by now */
	if (stat(listen_path, &st) == 0 && st.st_ino == listen_ino)
		unlink(listen_path);
	close(listen_fd);
	listen_fd = -1;
}

/* ---- the old process: handing clients on ------------------------------------------------- */

/* Connect to path; -1 with err. A socket that is this process's own is refused: the new
 * process has not started (or uses another path). */
static int connect_new(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int pid = 0;
	if (fd < 0 || unix_addr(path, &sa) != SHOAL_OK ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "no new Shoal process listens on handoff_socket %s: %s", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!peer_allowed(fd, &pid) || pid == (int)getpid()) {
		snprintf(err, errlen, "handoff_socket %s is %s: start the new process first", path,
			 pid == (int)getpid() ? "this process's own" : "another user's");
		close(fd);
		return -1;
	}
	/* A record waits at most this long for room: the new process reads as fast as it can. */
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

shoal_rc handoff_begin(char *err, size_t errlen)
{
	const char *path = config_current()->handoff_socket;
	if (!path || !*path) {
		snprintf(err, errlen, "handoff_socket is not set");
		return SHOAL_ERROR;
	}
	if (atomic_load(&active)) {
		snprintf(err, errlen, "a handoff is already under way");
		return SHOAL_ERROR;
	}
	int fd = connect_new(path, err, errlen);
	if (fd < 0)
		return SHOAL_ERROR;
	close(fd);
	str_copy(target, sizeof(target), path);
	atomic_store(&active, true);
	log_info("handing clients over to the process on %s", path);
	return SHOAL_OK;
}

static shoal_rc send_record(int sock, int fd, const struct buf *b)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {.iov_base = (void *)buf_head(b), .iov_len = buf_avail(b)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)buf_avail(b) ? SHOAL_OK : SHOAL_ERROR;
}

/* Send c; on success it leaves this process without a word (its socket lives on there). */
static void move_client(struct ho_worker *h, struct client *c)
{
	struct buf b = {0};
	if (handoff_pack(c, &b) != SHOAL_OK) {
		handoff_buf_free(&b);
		return; /* too large to move: it stays until it leaves */
	}
	if (send_record(h->out_fd, c->c.lfd.fd, &b) != SHOAL_OK) {
		log_warn("handoff: sending to the new process failed (%s): the clients left stay "
			 "here until they leave",
			 strerror(errno));
		h->out_failed = true;
		handoff_buf_free(&b);
		return;
	}
	handoff_buf_free(&b);
	h->moved++;
	c->c.lfd.shared = true; /* its socket lives on there: conn_close takes it out of our epoll */
	c->quiet_close = true; /* counted, and logged once at the end */
	client_close(c, NULL, "handed over to the new process");
}

struct ho_scan {
	struct worker *w;
	struct client **items;
	int n, cap;
};

static void scan_pool(struct pool *p, void *arg)
{
	struct ho_scan *sc = arg;
	struct list *i, *tmp;
	list_for_each_safe(i, tmp, &p->active_clients)
	{
		struct client *c = container_of(i, struct client, node);
		if (c->c.w != sc->w || c->state != CL_IDLE)
			continue;
		if (sc->n == sc->cap) {
			sc->cap = sc->cap ? 2 * sc->cap : 64;
			sc->items = xrealloc(sc->items, sizeof(*sc->items) * (size_t)sc->cap);
		}
		sc->items[sc->n++] = c;
	}
}

bool handoff_wants(const struct client *c)
{
	if (!atomic_load_explicit(&active, memory_order_relaxed) || !c->c.w->draining)
		return false;
	enum handoff_way way = handoff_way(c);
	return way == HO_MOVE || way == HO_CLOSE;
}

void handoff_tick(struct worker *w)
{
	struct ho_worker *h = &hw[w->id];
	char err[256];
	if (!atomic_load(&active) || h->out_failed)
		return;
	if (h->out_fd < 0) {
		h->out_fd = connect_new(target, err, sizeof(err));
		if (h->out_fd < 0) {
			log_warn("handoff: %s: the clients of worker %d stay here", err, w->id);
			h->out_failed = true;
			return;
		}
	}
	struct ho_scan sc = {.w = w};
	pool_foreach(scan_pool, &sc);
	unsigned moved = h->moved, closed = h->closed_tls;
	for (int i = 0; i < sc.n && !h->out_failed; i++) {
		struct client *c = sc.items[i];
		switch (handoff_way(c)) {
		case HO_MOVE:
			move_client(h, c);
			break;
		case HO_CLOSE:
			h->closed_tls++;
			client_close(c, "57P01",
				     "pooler is restarting: a TLS connection cannot be "
				     "handed over to the new process");
			break;
		default:
			break;
		}
	}
	free(sc.items);
	if (h->moved != moved || h->closed_tls != closed)
		log_debug("handoff: worker %d has handed %u client%s over, closed %u TLS client%s",
			  w->id, h->moved, h->moved == 1 ? "" : "s", h->closed_tls,
			  h->closed_tls == 1 ? "" : "s");
}
