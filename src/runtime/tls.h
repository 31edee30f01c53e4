/* tls.h: TLS on a conn (OpenSSL): the two contexts (towards clients, towards servers), starting a
 * handshake on either side, and the read/flush that conn.c calls instead of recv/send when
 * c->tls is set. The plain path never enters this file. */
#ifndef SHOAL_TLS_H
#define SHOAL_TLS_H

#include "common.h"

struct conn;
struct config;

/* Build both contexts from the settings (certificates, CA, protocols, ciphers). On a reload a
 * failure keeps the previous contexts. SHOAL_ERROR with err filled on a bad setting or file. */
shoal_rc tls_configure(const struct config *cfg, char *err, size_t errlen) MUST_USE;
/* Is TLS towards clients available (client_tls_sslmode not disable and a certificate loaded)? */
bool tls_client_enabled(void);
/* client_tls_sslmode / server_tls_sslmode of the contexts in force (enum tls_mode). */
int tls_client_mode(void);
int tls_server_mode(void);
/* Do a and b differ in a server_tls_* setting (sslmode, CA, key, certificate, protocols,
 * ciphers)? Servers connected under a's must then be replaced. */
bool tls_server_settings_differ(const struct config *a, const struct config *b);
void tls_shutdown(void);

/* Start accepting TLS from a client on c. prefix: bytes already read from the socket that
 * belong to the handshake (PostgreSQL 17 direct TLS: the ClientHello), else NULL. direct: the
 * ALPN protocol "postgresql" must be negotiated. */
shoal_rc tls_accept(struct conn *c, const uint8_t *prefix, size_t n, bool direct) MUST_USE;
/* Start TLS towards a server on c. host: the name verify-full checks (and SNI). */
shoal_rc tls_connect(struct conn *c, const char *host, int mode, char *err, size_t errlen) MUST_USE;
/* Drive the handshake. SHOAL_OK: done; SHOAL_AGAIN: waiting for the socket; SHOAL_ERROR:
 * failed (err says why, e.g. the certificate does not verify). */
shoal_rc tls_handshake(struct conn *c, char *err, size_t errlen) MUST_USE;
/* After the handshake: a direct-TLS client negotiated ALPN "postgresql" (true when not direct). */
bool tls_alpn_ok(const struct conn *c);
/* conn_read / conn_flush over TLS: same contracts as theirs. */
shoal_rc tls_read(struct conn *c) MUST_USE;
shoal_rc tls_flush(struct conn *c) MUST_USE;
/* tls-server-end-point channel-binding data of our certificate on c (RFC 5929: its hash with
 * the signature's digest, SHA-256 for MD5/SHA-1). *len 0 when unavailable. out: 64 bytes. */
void tls_endpoint_hash(const struct conn *c, uint8_t out[64], size_t *len);
/* The common name of the client certificate c presented, if it verified against
 * client_tls_ca_file. False when there is none. */
bool tls_peer_cn(const struct conn *c, char *out, size_t outlen);
/* The protocol version and cipher suite negotiated on c ("TLSv1.3/TLS_AES_256_GCM_SHA384", as
 * PgBouncer logs them), or "" on a plain connection. */
void tls_describe(const struct conn *c, char *out, size_t outlen);
/* Free c's TLS state (no close_notify wait). */
void tls_free(struct conn *c);

#endif
