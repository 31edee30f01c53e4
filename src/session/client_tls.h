/* client_tls.h: TLS negotiation with a client before its startup packet. */
#ifndef SHOAL_CLIENT_TLS_H
#define SHOAL_CLIENT_TLS_H

#include "objects.h"

/* Would an SSLRequest from c be answered 'S' (TLS configured, TCP, not yet TLS)? */
bool client_tls_offered(const struct client *c);
/* Answer an SSLRequest of len bytes (still in c's input) with 'S' and start the handshake.
 * SHOAL_AGAIN: wait for the handshake; SHOAL_ERROR: c was closed (e.g. bytes followed the
 * request in plaintext). */
shoal_rc client_start_tls(struct client *c, uint32_t len) MUST_USE;
/* Before the startup packet (at least one byte in c's input): start direct TLS if it is a
 * ClientHello, check ALPN after a direct handshake. SHOAL_OK: parse the startup packet;
 * SHOAL_AGAIN: wait; SHOAL_ERROR: c was closed. */
shoal_rc client_tls_gate(struct client *c) MUST_USE;
/* Must c's login be refused because it is in plaintext (client_tls_sslmode >= require)? */
bool client_tls_required(const struct client *c);

#endif
