/* conn.c: socket pump: buffered reads, batched writes, forwarding by header, backpressure. */
#include "conn.h"
#include "sysio.h"
#include "tls.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/* Reads into an empty input buffer land here first and only what arrived is kept: an idle
 * connection then holds a small buffer instead of a whole read chunk. */
static __thread uint8_t conn_scratch[CONN_READ_WIDE];

static ssize_t conn_recv(struct conn *c)
{
	size_t chunk = c->wide_reads ? CONN_READ_WIDE : CONN_READ_CHUNK;
	if (buf_avail(&c->in) > 0) {
		buf_reserve(&c->in, chunk);
		return sys_recv(c->lfd.fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
	}
	if (c->in.cap > CONN_SMALL_BUF)
		buf_free(&c->in); /* a large message passed: return its memory */
	ssize_t n = sys_recv(c->lfd.fd, conn_scratch, chunk, 0);
	if (n > 0) {
		buf_append(&c->in, conn_scratch, (size_t)n);
		c->in.len -= (size_t)n; /* counted below, as for a direct read */
	}
	return n;
}

shoal_rc conn_read(struct conn *c)
{
	if (c->tls)
		return tls_read(c);
	ssize_t n = conn_recv(c);
	if (n > 0) {
		c->in.len += (size_t)n;
		c->bytes_in += (uint64_t)n;
		return SHOAL_OK;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return SHOAL_AGAIN;
	if (n == 0)
		errno = 0;
	return SHOAL_ERROR;
}

shoal_rc conn_flush(struct conn *c)
{
	if (c->tls)
		return tls_flush(c);
	while (buf_avail(&c->out) > 0) {
		ssize_t n = sys_send(c->lfd.fd, buf_head(&c->out), buf_avail(&c->out), MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			c->bytes_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_update_events(c);
			return SHOAL_AGAIN;
		}
		return SHOAL_ERROR;
	}
	if (c->out.cap > CONN_SMALL_BUF)
		buf_free(&c->out); /* kept when small: no malloc/free per message */
	conn_update_events(c);
	return SHOAL_OK;
}

void conn_close(struct conn *c)
{
	tls_free(c);
	if (c->lfd.fd >= 0) /* Shoal's sockets are close-on-exec; a handed-over client's is shared */
		loop_close_fd(c->loop, &c->lfd);
	buf_free(&c->in);
	buf_free(&c->out);
	c->dead = true;
}
