/* http_server.c: the HTTP listener thread. Each connection reads one request head (at most
 * HTTP_MAX_HEAD bytes), gets one response and is closed ("Connection: close"): scrapers and
 * probes open a connection per request anyway, and there is no pipelining to get wrong. A
 * client has HTTP_HEAD_TIMEOUT to send its request head and HTTP_CONN_TIMEOUT to take the
 * response (slow-loris); at most HTTP_MAX_CONNS are open at once, and when that many are, the
 * oldest one still sending its request makes room for a new one. */
#include "http_server.h"
#include "http_conn.h"
#include "http_history.h"
#include "http_probe.h"
#include "log.h"
#include "net.h"
#include "shoal_version.h"
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_CONNS	   128
#define HTTP_MAX_LISTENERS 8
#define HTTP_TICK	   (100 * 1000)
#define HTTP_LINGER	   USEC_PER_SEC
#define HTTP_HEAD_TIMEOUT  (2 * USEC_PER_SEC) /* to send the whole request head */

struct http_listener {
	struct loop_fd lfd;
};

static struct {
	bool started;
	pthread_t thread;
	struct loop *loop;
	struct http_listener listeners[HTTP_MAX_LISTENERS];
	int nlisteners;
	struct loop_fd stop; /* eventfd: http_stop */
	struct list conns, dead;
	int nconns;
	usec_t started_at;
	atomic_bool draining;
	atomic_bool workers_ready;
} hs;

static void conn_close(struct http_conn *h)
{
	if (h->closed)
		return;
	h->closed = true;
	loop_del(hs.loop, &h->lfd);
	close(h->lfd.fd);
	list_del(&h->node);
	list_append(&hs.dead, &h->node);
	hs.nconns--;
}

/* The response is out: half-close and read until the client closes too, so that request bytes
 * we did not read (a refused oversized head) do not turn our close into a reset that destroys
 * the response before the client has read it. Bounded by HTTP_LINGER. */
static void linger(struct http_conn *h)
{
	h->lingering = true;
	h->deadline = shoal_now() + HTTP_LINGER;
	shutdown(h->lfd.fd, SHUT_WR);
	loop_set(hs.loop, &h->lfd, EPOLLIN);
}

static void linger_read(struct http_conn *h)
{
	char sink[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(h->lfd.fd, sink, sizeof(sink));
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0)
			break;
	}
	conn_close(h); /* EOF, an error, or a client that keeps sending */
}

static void conn_write(struct http_conn *h)
{
	while (buf_avail(&h->out)) {
		ssize_t n = write(h->lfd.fd, buf_head(&h->out), buf_avail(&h->out));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			loop_set(hs.loop, &h->lfd, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			conn_close(h);
			return;
		}
		buf_consume(&h->out, (size_t)n);
	}
	linger(h);
}

static void respond(struct http_conn *h, struct http_response *r)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nServer: shoal/" SHOAL_VERSION "\r\n"
			 "Content-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
			 r->status, http_reason(r->status), r->content_type, buf_avail(&r->body),
			 r->extra_headers ? r->extra_headers : "");
	buf_append(&h->out, head, (size_t)n);
	buf_append(&h->out, buf_head(&r->body), buf_avail(&r->body));
	buf_free(&r->body);
	h->responding = true;
	h->deadline = shoal_now() + HTTP_CONN_TIMEOUT; /* time to take the response */
	loop_set(hs.loop, &h->lfd, 0);
	conn_write(h);
}

/* A malformed request gets its status code and a one-line text body, and a log line. */
static void respond_error(struct http_conn *h, int status)
{
	struct http_response r = {.status = status, .content_type = "text/plain; charset=utf-8"};
	char line[128];
	int n = snprintf(line, sizeof(line), "%d %s\n", status, http_reason(status));
	buf_append(&r.body, line, (size_t)n);
	log_info("http %s: request refused: %d %s", h->peer, status, http_reason(status));
	respond(h, &r);
}

/* Route the request read; a /health that needs a probe round waits for it (parked). */
static void serve(struct http_conn *h)
{
	struct http_response r = {.status = 200};
	http_route(&h->req, &r);
	if (r.status == 0) {
		h->parked = true;
		h->deadline = shoal_now() + config_current()->health_probe_timeout + USEC_PER_SEC;
		loop_set(hs.loop, &h->lfd, 0);
		return;
	}
	h->parked = false;
	log_debug("http %s: %s %s -> %d", h->peer, h->req.method, h->req.path, r.status);
	respond(h, &r);
}

/* A probe round ended: answer every parked request. */
static void on_probe_done(void)
{
	struct list *it, *next;
	list_for_each_safe(it, next, &hs.conns)
	{
		struct http_conn *h = container_of(it, struct http_conn, node);
		if (h->parked && !h->closed)
			serve(h);
	}
}

static void conn_read(struct http_conn *h)
{
	ssize_t n = read(h->lfd.fd, h->in + h->inlen, sizeof(h->in) - h->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(h); /* the peer left before finishing its request */
		return;
	}
	h->inlen += (size_t)n;
	enum http_parse_rc rc = http_parse(h->in, h->inlen, &h->req);
	if (rc == HTTP_INCOMPLETE)
		return;
	if (rc != HTTP_DONE) {
		respond_error(h, (int)rc);
		return;
	}
	serve(h);
}

static void conn_event(struct loop_fd *lfd, uint32_t events)
{
	struct http_conn *h = container_of(lfd, struct http_conn, lfd);
	if (h->closed)
		return;
	if (h->lingering)
		linger_read(h);
	else if (h->responding)
		conn_write(h);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(h);
}

/* At the connection limit: make room by dropping the oldest connection that has not sent its
 * whole request yet, so that idle sockets cannot lock probes out. False if every connection is
 * busy answering. The warning is logged at most every 10 s. */
static bool make_room(void)
{
	static usec_t last_warn;
	usec_t now = shoal_now();
	if (now - last_warn > 10 * USEC_PER_SEC) {
		log_warn("http: %d connections open; dropping the oldest unfinished request",
			 hs.nconns);
		last_warn = now;
	}
	struct list *it;
	for (it = hs.conns.next; it != &hs.conns; it = it->next) {
		struct http_conn *h = container_of(it, struct http_conn, node);
		if (!h->responding && !h->parked) {
			conn_close(h);
			return true;
		}
	}
	return false;
}

static void accept_one(int fd, const struct sockaddr_storage *addr)
{
	if (hs.nconns >= HTTP_MAX_CONNS && !make_room()) {
		close(fd);
		return;
	}
	struct http_conn *h = xcalloc(1, sizeof(*h));
	h->lfd.fd = fd;
	h->lfd.cb = conn_event;
	h->deadline = shoal_now() + HTTP_HEAD_TIMEOUT;
	net_peer_name(addr, h->peer, sizeof(h->peer));
	list_append(&hs.conns, &h->node);
	hs.nconns++;
	if (loop_add(hs.loop, &h->lfd, EPOLLIN) != SHOAL_OK) {
		log_warn("http: epoll registration failed: %s", strerror(errno));
		conn_close(h);
	}
}

static void on_accept(struct loop_fd *lfd, uint32_t events)
{
	UNUSED(events);
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage addr;
		socklen_t alen;
		int fd = net_accept(lfd->fd, &addr, &alen);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("http: accept failed: %s", strerror(errno));
			return;
		}
		accept_one(fd, &addr);
	}
}

static void on_tick(void *arg)
{
	UNUSED(arg);
	usec_t now = shoal_now();
	probe_tick(now);
	history_tick(now);
	struct list *it, *next;
	list_for_each_safe(it, next, &hs.conns)
	{
		struct http_conn *h = container_of(it, struct http_conn, node);
		if (now < h->deadline)
			continue;
		if (!h->lingering)
			log_info("http %s: closed: %s", h->peer,
				 h->responding ? "the response was not taken in time"
				 : h->parked   ? "the health probe did not finish"
					       : "no complete request in time");
		conn_close(h);
	}
}

static void free_dead(void)
{
	struct list *it, *next;
	list_for_each_safe(it, next, &hs.dead)
	{
		struct http_conn *h = container_of(it, struct http_conn, node);
		list_del(&h->node);
		buf_free(&h->out);
		free(h);
	}
}

static struct config_reader cfg_reader; /* this thread's quiescent points (current.h) */

static void after_batch(void *arg)
{
	UNUSED(arg);
	free_dead();
	config_quiescent(&cfg_reader, CONFIG_NO_PIN);
}

static void on_stop(struct loop_fd *lfd, uint32_t events)
{
	UNUSED(lfd);
	UNUSED(events);
	loop_stop(hs.loop);
}

static void *http_thread(void *arg)
{
	UNUSED(arg);
	config_reader_join(&cfg_reader);
	loop_run(hs.loop);
	config_reader_leave(&cfg_reader);
	return NULL;
}

/* Bind every address of the comma-separated http_addr list. */
static shoal_rc listen_all(const struct config *cfg, char *err, size_t errlen)
{
	char *addrs = xstrdup(cfg->http_addr), *save = NULL;
	shoal_rc rc = SHOAL_OK;
	for (char *a = strtok_r(addrs, ", ", &save); a && rc == SHOAL_OK;
	     a = strtok_r(NULL, ", ", &save)) {
		if (hs.nlisteners == HTTP_MAX_LISTENERS) {
			snprintf(err, errlen, "http_addr: more than %d addresses",
				 HTTP_MAX_LISTENERS);
			rc = SHOAL_ERROR;
			break;
		}
		char why[256];
		/* No SO_REUSEPORT: a second Shoal on the same http_port must fail, not share it. */
		int fd = net_listen_tcp_opts(a, cfg->http_port, false, 1024, why, sizeof(why));
		if (fd < 0) {
			snprintf(err, errlen, "http: cannot listen on %s:%d: %s", a, cfg->http_port,
				 why);
			rc = SHOAL_ERROR;
			break;
		}
		struct http_listener *l = &hs.listeners[hs.nlisteners++];
		l->lfd.fd = fd;
		l->lfd.cb = on_accept;
		if (loop_add(hs.loop, &l->lfd, EPOLLIN) != SHOAL_OK) {
			snprintf(err, errlen, "http: epoll: %s", strerror(errno));
			rc = SHOAL_ERROR;
		}
		log_info("http: listening on %s:%d", a, cfg->http_port);
	}
	free(addrs);
	return rc;
}

shoal_rc http_start(const struct config *cfg, char *err, size_t errlen)
{
	hs.started_at = shoal_now();
	if (cfg->http_port <= 0)
		return SHOAL_OK;
	list_init(&hs.conns);
	list_init(&hs.dead);
	hs.loop = loop_create(HTTP_TICK, on_tick, after_batch, NULL);
	hs.stop.fd =
	    eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* closed by http_stop, even on failure */
	hs.stop.cb = on_stop;
	if (hs.stop.fd < 0 || loop_add(hs.loop, &hs.stop, EPOLLIN) != SHOAL_OK) {
		snprintf(err, errlen, "http: eventfd: %s", strerror(errno));
		return SHOAL_ERROR;
	}
	probe_init(hs.loop, on_probe_done);
	if (listen_all(cfg, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	if (pthread_create(&hs.thread, NULL, http_thread, NULL) != 0) {
		snprintf(err, errlen, "http: cannot start thread");
		return SHOAL_ERROR;
	}
	hs.started = true;
	return SHOAL_OK;
}

void http_stop(void)
{
	if (!hs.loop)
		return; /* never configured */
	if (hs.started) {
		uint64_t one = 1;
		if (write(hs.stop.fd, &one, sizeof(one)) < 0)
			log_warn("http: stop: %s", strerror(errno));
		pthread_join(hs.thread, NULL);
		hs.started = false;
	}
	probe_shutdown();
	history_free();
	struct list *it, *next;
	list_for_each_safe(it, next, &hs.conns)
	    conn_close(container_of(it, struct http_conn, node));
	free_dead();
	for (int i = 0; i < hs.nlisteners; i++)
		close(hs.listeners[i].lfd.fd);
	if (hs.stop.fd >= 0)
		close(hs.stop.fd);
	loop_destroy(hs.loop);
	hs.loop = NULL;
}

void http_set_draining(void)
{
	atomic_store(&hs.draining, true);
}

bool http_draining(void)
{
	return atomic_load(&hs.draining);
}

void http_set_workers_ready(void)
{
	atomic_store_explicit(&hs.workers_ready, true, memory_order_release);
}

bool http_workers_ready(void)
{
	return atomic_load_explicit(&hs.workers_ready, memory_order_acquire);
}

double http_uptime(void)
{
	return (double)(shoal_now() - hs.started_at) / USEC_PER_SEC;
}
