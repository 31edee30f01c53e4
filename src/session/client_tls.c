/* client_tls.c: TLS towards clients: SSLRequest, PostgreSQL 17 direct TLS, the checks after the
 * handshake, and refusing plaintext when client_tls_sslmode requires TLS. */
#include "client_tls.h"
#include "client.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

bool client_tls_offered(const struct client *c)
{
	return !c->is_unix && !c->c.tls && tls_client_enabled();
}

/* SSLRequest accepted: 'S', then the handshake. */
shoal_rc client_start_tls(struct client *c, uint32_t len)
{
	/* Bytes after the SSLRequest were sent in plaintext before the handshake: a man in the
	 * middle could have injected them (CVE-2021-23222), so they are refused, as PostgreSQL
	 * does, never read as if they had come through TLS. */
	if (buf_avail(&c->c.in) != len) {
		client_close(c, "08P01", "received unencrypted data after SSL request");
		return SHOAL_ERROR;
	}
	buf_consume(&c->c.in, len);
	buf_append(&c->c.out, "S", 1);
	if (conn_flush(&c->c) != SHOAL_OK) { /* one byte on a fresh socket: all or nothing */
		client_close(c, NULL, "could not send the SSL answer");
		return SHOAL_ERROR;
	}
	if (tls_accept(&c->c, NULL, 0, false) != SHOAL_OK) {
		client_close(c, "08006", "cannot start TLS");
		return SHOAL_ERROR;
	}
	return SHOAL_AGAIN; /* the handshake goes on in conn_read */
}

/* PostgreSQL 17 direct TLS: the first byte is a TLS handshake record, not a packet length. */
static shoal_rc client_direct_tls(struct client *c)
{
	struct buf *in = &c->c.in;
	if (tls_accept(&c->c, buf_head(in), buf_avail(in), true) != SHOAL_OK) {
		client_close(c, "08006", "cannot start TLS");
		return SHOAL_ERROR;
	}
	buf_consume(in, buf_avail(in));
	/* The ClientHello is already read: drive the handshake now, epoll will not say so. */
	shoal_rc rc = conn_read(&c->c);
	if (rc == SHOAL_ERROR)
		client_close(c, NULL, "TLS handshake failed");
	return rc;
}

/* Before the startup packet is read: direct TLS, the ALPN check after it, and TLS required.
 * SHOAL_OK: go on and parse the startup packet. */
shoal_rc client_tls_gate(struct client *c)
{
	const uint8_t *p = buf_head(&c->c.in);
	if (!c->c.tls && p[0] == 0x16 && client_tls_offered(c)) {
		shoal_rc rc = client_direct_tls(c);
		if (rc != SHOAL_OK)
			return rc;
	}
	if (c->c.tls && !c->tls_checked) {
		c->tls_checked = true;
		if (!tls_alpn_ok(&c->c)) {
			client_close(c, "08P01",
				     "direct TLS connection without ALPN \"postgresql\"");
			return SHOAL_ERROR;
		}
		log_debug("%s TLS established", c->c.name);
	}
	return SHOAL_OK;
}

/* Is a connection in plaintext allowed to log in? */
bool client_tls_required(const struct client *c)
{
	return !c->c.tls && !c->is_unix && tls_client_mode() >= TLS_REQUIRE;
}
