/* tls.c: OpenSSL contexts, handshakes, and TLS reads/writes behind conn's I/O. */
#include "tls.h"
#include "config.h"
#include "conn.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

struct tls_conn {
	SSL *ssl;
	int fd;
	uint8_t *prefix; /* direct TLS: the ClientHello bytes read before we knew it was TLS */
	size_t plen, ppos;
	bool direct;
	bool done; /* handshake finished */
};

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *accept_ctx;   /* towards clients; NULL: client TLS disabled */
static atomic_bool accept_on; /* accept_ctx != NULL, read without ctx_lock (every SSLRequest) */
static SSL_CTX *connect_ctx;  /* towards servers */
/* The sslmodes the contexts were built for: a setting that could not be applied (a SET that
 * changed a key and not yet its certificate) leaves these in force with the old contexts. */
static _Atomic int client_mode = TLS_DISABLE, server_mode = TLS_PREFER; /* the defaults */

/* ---- the socket BIO: recv/send with MSG_NOSIGNAL, and the direct-TLS prefix first ---------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *out, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (t->ppos < t->plen) {
		size_t n = t->plen - t->ppos < (size_t)len ? t->plen - t->ppos : (size_t)len;
		memcpy(out, t->prefix + t->ppos, n);
		t->ppos += n;
		return (int)n;
	}
	ssize_t n = recv(t->fd, out, (size_t)len, 0);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		BIO_set_retry_read(b);
	return -1;
}

static int bio_write(BIO *b, const char *in, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t n = send(t->fd, in, (size_t)len, MSG_NOSIGNAL);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		BIO_set_retry_write(b);
	return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void bio_method_init(void)
{
	bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shoal socket");
	if (!bio_method || !BIO_meth_set_read(bio_method, bio_read) ||
	    !BIO_meth_set_write(bio_method, bio_write) ||
	    !BIO_meth_set_ctrl(bio_method, bio_ctrl) ||
	    !BIO_meth_set_create(bio_method, bio_create))
		abort();
}

/* ---- contexts ------------------------------------------------------------------------------ */

static void ssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
	ERR_clear_error();
}

static int proto_version(const char *name)
{
	static const struct {
		const char *name;
		int v;
	} v[] = {{"tlsv1", TLS1_VERSION},
		 {"tlsv1.0", TLS1_VERSION},
		 {"tlsv1.1", TLS1_1_VERSION},
		 {"tlsv1.2", TLS1_2_VERSION},
		 {"tlsv1.3", TLS1_3_VERSION}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcasecmp(name, v[i].name) == 0)
			return v[i].v;
	return 0;
}

/* PgBouncer's protocol setting: "secure" (TLSv1.2+), "all"/"legacy", or a list of versions. */
static shoal_rc set_protocols(SSL_CTX *ctx, const char *spec, char *err, size_t errlen)
{
	int lo = 0, hi = 0;
	if (!spec || !*spec || !strcasecmp(spec, "secure") || !strcasecmp(spec, "default")) {
		lo = TLS1_2_VERSION;
		hi = TLS1_3_VERSION;
	} else if (!strcasecmp(spec, "all") || !strcasecmp(spec, "legacy")) {
		lo = TLS1_VERSION;
		hi = TLS1_3_VERSION;
	} else {
		char *copy = xstrdup(spec), *save = NULL;
		for (char *tok = strtok_r(copy, ", ", &save); tok;
		     tok = strtok_r(NULL, ", ", &save)) {
			int v = proto_version(tok);
			if (!v) {
				snprintf(err, errlen, "unknown TLS protocol \"%s\"", tok);
				free(copy);
				return SHOAL_ERROR;
			}
			lo = lo && lo < v ? lo : v;
			hi = hi > v ? hi : v;
		}
		free(copy);
	}
	if (!SSL_CTX_set_min_proto_version(ctx, lo) || !SSL_CTX_set_max_proto_version(ctx, hi)) {
		ssl_error(err, errlen, "TLS protocols");
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

static shoal_rc set_ciphers(SSL_CTX *ctx, const char *spec, char *err, size_t errlen)
{
	if (!spec || !*spec || !strcasecmp(spec, "default") || !strcasecmp(spec, "secure") ||
	    !strcasecmp(spec, "normal") || !strcasecmp(spec, "fast"))
		return SHOAL_OK; /* OpenSSL's defaults */
	const char *list =
	    !strcasecmp(spec, "all") || !strcasecmp(spec, "compat") || !strcasecmp(spec, "legacy")
		? "ALL"
		: spec;
	if (!SSL_CTX_set_cipher_list(ctx, list)) {
		ssl_error(err, errlen, "TLS ciphers");
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

/* TLS 1.3 suites are set apart from the older ciphers in OpenSSL: "" keeps its defaults. */
static shoal_rc set_tls13_ciphers(SSL_CTX *ctx, const char *setting, const char *spec, char *err,
				  size_t errlen)
{
	if (!spec || !*spec)
		return SHOAL_OK;
	if (!SSL_CTX_set_ciphersuites(ctx, spec)) {
		char what[200];
		snprintf(what, sizeof(what), "%s = %s: failed to set the TLSv1.3 cipher suites",
			 setting, spec);
		ssl_error(err, errlen, what);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

/* client_tls_ecdhcurve and client_tls_dheparams, PgBouncer's key-exchange settings. "none" for
 * the curve is refused: TLS 1.3 has no key exchange without a group. Legacy 1024-bit DH is
 * refused: OpenSSL 3 deprecates it and its default security level rejects it. */
static shoal_rc set_key_exchange(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
	const char *curve = cfg->client_tls_ecdhcurve;
	if (curve && !strcasecmp(curve, "none")) {
		snprintf(err, errlen,
			 "client_tls_ecdhcurve = none is not supported: TLS 1.3 needs "
			 "a group; name curves (e.g. prime256v1) or use auto");
		return SHOAL_ERROR;
	}
	if (curve && *curve && strcasecmp(curve, "auto") && !SSL_CTX_set1_groups_list(ctx, curve)) {
		char what[200];
		snprintf(what, sizeof(what), "client_tls_ecdhcurve = %s: not a curve OpenSSL knows",
			 curve);
		ssl_error(err, errlen, what);
		return SHOAL_ERROR;
	}
	if (cfg->client_tls_dheparams == TLS_DHE_LEGACY) {
		snprintf(err, errlen,
			 "client_tls_dheparams = legacy (1024-bit DH) is not supported: "
			 "too weak; use auto (2048-bit and up) or none");
		return SHOAL_ERROR;
	}
	if (cfg->client_tls_dheparams == TLS_DHE_AUTO && !SSL_CTX_set_dh_auto(ctx, 1)) {
		ssl_error(err, errlen, "client_tls_dheparams");
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

/* ALPN: PostgreSQL's protocol name is "postgresql"; any other offer is refused, as PostgreSQL 17
 * does. A client offering none is not asked (tls_alpn_ok decides for direct TLS). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char pg[] = "postgresql";
	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];
		if (i + 1 + n > inlen)
			break;
		if (n == sizeof(pg) - 1 && memcmp(in + i + 1, pg, n) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void ctx_common(SSL_CTX *ctx)
{
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	/* RELEASE_BUFFERS: an idle connection gives back OpenSSL's 34 KB of record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
}

static shoal_rc load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_error(err, errlen, cert);
		return SHOAL_ERROR;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errlen, key);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

static SSL_CTX *build_accept_ctx(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->client_tls_key_file || !cfg->client_tls_cert_file) {
		snprintf(err, errlen,
			 "client_tls_sslmode = %s needs client_tls_key_file and "
			 "client_tls_cert_file",
			 cfg->client_tls_sslmode >= TLS_REQUIRE ? "require or stricter"
								: "allow/prefer");
		return NULL;
	}
	if (cfg->client_tls_sslmode >= TLS_VERIFY_CA && !cfg->client_tls_ca_file) {
		snprintf(err, errlen,
			 "client_tls_sslmode = verify-ca/verify-full needs "
			 "client_tls_ca_file");
		return NULL;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ssl_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	ctx_common(ctx);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (set_protocols(ctx, cfg->client_tls_protocols, err, errlen) != SHOAL_OK ||
	    set_ciphers(ctx, cfg->client_tls_ciphers, err, errlen) != SHOAL_OK ||
	    set_tls13_ciphers(ctx, "client_tls13_ciphers", cfg->client_tls13_ciphers, err,
			      errlen) != SHOAL_OK ||
	    set_key_exchange(ctx, cfg, err, errlen) != SHOAL_OK ||
	    load_pair(ctx, cfg->client_tls_cert_file, cfg->client_tls_key_file, err, errlen) !=
		SHOAL_OK)
		goto fail;
	if (cfg->client_tls_ca_file &&
	    SSL_CTX_load_verify_locations(ctx, cfg->client_tls_ca_file, NULL) != 1) {
		ssl_error(err, errlen, cfg->client_tls_ca_file);
		goto fail;
	}
	/* With a CA, client certificates are asked for (hba "cert" rules, auth_type = cert) and
	 * checked when given; the verify modes also refuse clients without one. */
	if (cfg->client_tls_ca_file) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_tls_ca_file);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		int v = SSL_VERIFY_PEER;
		if (cfg->client_tls_sslmode >= TLS_VERIFY_CA)
			v |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, v, NULL);
		static const unsigned char sid[] = "shoal";
		SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *build_connect_ctx(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		ssl_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	ctx_common(ctx);
	if (set_protocols(ctx, cfg->server_tls_protocols, err, errlen) != SHOAL_OK ||
	    set_ciphers(ctx, cfg->server_tls_ciphers, err, errlen) != SHOAL_OK ||
	    set_tls13_ciphers(ctx, "server_tls13_ciphers", cfg->server_tls13_ciphers, err,
			      errlen) != SHOAL_OK)
		goto fail;
	/* Without a CA file only the verify modes read the system's CA store: loading it costs
	 * about 0.1 s of CPU at every start and reload. */
	if (cfg->server_tls_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->server_tls_ca_file, NULL) != 1) {
			ssl_error(err, errlen, cfg->server_tls_ca_file);
			goto fail;
		}
	} else if (cfg->server_tls_sslmode >= TLS_VERIFY_CA &&
		   SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_error(err, errlen, "default CA paths");
		goto fail;
	}
	if (cfg->server_tls_cert_file && cfg->server_tls_key_file &&
	    load_pair(ctx, cfg->server_tls_cert_file, cfg->server_tls_key_file, err, errlen) !=
		SHOAL_OK)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

shoal_rc tls_configure(const struct config *cfg, char *err, size_t errlen)
{
	pthread_once(&bio_once, bio_method_init);
	SSL_CTX *acc = NULL, *con = build_connect_ctx(cfg, err, errlen);
	if (!con)
		return SHOAL_ERROR;
	if (cfg->client_tls_sslmode != TLS_DISABLE && !(acc = build_accept_ctx(cfg, err, errlen))) {
		SSL_CTX_free(con);
		return SHOAL_ERROR;
	}
	pthread_mutex_lock(&ctx_lock);
	SSL_CTX *old_acc = accept_ctx, *old_con = connect_ctx;
	accept_ctx = acc;
	connect_ctx = con;
	atomic_store(&accept_on, acc != NULL);
	atomic_store(&client_mode, cfg->client_tls_sslmode);
	atomic_store(&server_mode, cfg->server_tls_sslmode);
	pthread_mutex_unlock(&ctx_lock);
	SSL_CTX_free(old_acc); /* connections keep their own reference */
	SSL_CTX_free(old_con);
	return SHOAL_OK;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool tls_server_settings_differ(const struct config *a, const struct config *b)
{
	return a->server_tls_sslmode != b->server_tls_sslmode ||
	       !same_str(a->server_tls_ca_file, b->server_tls_ca_file) ||
	       !same_str(a->server_tls_key_file, b->server_tls_key_file) ||
	       !same_str(a->server_tls_cert_file, b->server_tls_cert_file) ||
	       !same_str(a->server_tls_protocols, b->server_tls_protocols) ||
	       !same_str(a->server_tls_ciphers, b->server_tls_ciphers) ||
	       !same_str(a->server_tls13_ciphers, b->server_tls13_ciphers);
}

int tls_client_mode(void)
{
	return atomic_load(&client_mode);
}

int tls_server_mode(void)
{
	return atomic_load(&server_mode);
}

bool tls_client_enabled(void)
{
	return atomic_load(&accept_on);
}

void tls_shutdown(void)
{
	pthread_mutex_lock(&ctx_lock);
	SSL_CTX_free(accept_ctx);
	SSL_CTX_free(connect_ctx);
	accept_ctx = connect_ctx = NULL;
	atomic_store(&accept_on, false);
	pthread_mutex_unlock(&ctx_lock);
	BIO_meth_free(bio_method);
	bio_method = NULL;
}

/* ---- per connection ------------------------------------------------------------------------ */

static shoal_rc tls_attach(struct conn *c, SSL_CTX **which)
{
	struct tls_conn *t = xcalloc(1, sizeof(*t));
	pthread_mutex_lock(&ctx_lock);
	t->ssl = *which ? SSL_new(*which) : NULL;
	pthread_mutex_unlock(&ctx_lock);
	BIO *bio = t->ssl ? BIO_new(bio_method) : NULL;
	if (!bio) {
		if (t->ssl)
			SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return SHOAL_ERROR;
	}
	t->fd = c->lfd.fd;
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);
	c->tls = t;
	return SHOAL_OK;
}

shoal_rc tls_accept(struct conn *c, const uint8_t *prefix, size_t n, bool direct)
{
	if (tls_attach(c, &accept_ctx) != SHOAL_OK)
		return SHOAL_ERROR;
	SSL_set_accept_state(c->tls->ssl);
	c->tls->direct = direct;
	if (n) {
		c->tls->prefix = xmalloc(n);
		memcpy(c->tls->prefix, prefix, n);
		c->tls->plen = n;
	}
	return SHOAL_OK;
}

shoal_rc tls_connect(struct conn *c, const char *host, int mode, char *err, size_t errlen)
{
	if (tls_attach(c, &connect_ctx) != SHOAL_OK) {
		snprintf(err, errlen, "cannot create a TLS connection");
		return SHOAL_ERROR;
	}
	SSL *ssl = c->tls->ssl;
	SSL_set_connect_state(ssl);
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (mode >= TLS_VERIFY_CA)
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	if (mode == TLS_VERIFY_FULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
			       : X509_VERIFY_PARAM_set1_host(vp, host, 0);
		if (!ok) {
			snprintf(err, errlen, "cannot check the server name \"%s\"", host);
			return SHOAL_ERROR;
		}
	}
	return SHOAL_OK;
}

shoal_rc tls_handshake(struct conn *c, char *err, size_t errlen)
{
	struct tls_conn *t = c->tls;
	if (t->done)
		return SHOAL_OK;
	ERR_clear_error();
	int rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		t->done = true;
		free(t->prefix);
		t->prefix = NULL;
		return SHOAL_OK;
	}
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return SHOAL_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		loop_set(c->loop, &c->lfd, EPOLLIN | EPOLLOUT);
		return SHOAL_AGAIN;
	default:
		break;
	}
	long vr = SSL_get_verify_result(t->ssl);
	if (vr != X509_V_OK) {
		snprintf(err, errlen, "TLS handshake failed: certificate verify failed: %s",
			 X509_verify_cert_error_string(vr));
		ERR_clear_error();
	} else {
		ssl_error(err, errlen, "TLS handshake failed");
	}
	return SHOAL_ERROR;
}

void tls_describe(const struct conn *c, char *out, size_t outlen)
{
	if (!c->tls) {
		str_copy(out, outlen, "");
		return;
	}
	snprintf(out, outlen, "%s/%s", SSL_get_version(c->tls->ssl),
		 SSL_get_cipher_name(c->tls->ssl));
}

bool tls_alpn_ok(const struct conn *c)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;
	if (!c->tls->direct)
		return true;
	SSL_get0_alpn_selected(c->tls->ssl, &p, &n);
	return n == 10 && memcmp(p, "postgresql", 10) == 0;
}

static __thread uint8_t tls_scratch[CONN_READ_CHUNK];

/* One SSL_read into c->in: >0 bytes, 0 nothing now, -1 EOF or error (errno set). */
static int read_once(struct conn *c)
{
	int n;
	if (buf_avail(&c->in) == 0) {
		/* As conn_recv: into the scratch first, so an idle connection keeps only what came. */
		if (c->in.cap > CONN_SMALL_BUF)
			buf_free(&c->in);
		n = SSL_read(c->tls->ssl, tls_scratch, (int)sizeof(tls_scratch));
		if (n > 0)
			buf_append(&c->in, tls_scratch, (size_t)n);
	} else {
		buf_reserve(&c->in, CONN_READ_CHUNK);
		size_t room = c->in.cap - c->in.len;
		n = SSL_read(c->tls->ssl, c->in.data + c->in.len,
			     room > INT32_MAX ? INT32_MAX : (int)room);
		if (n > 0)
			c->in.len += (size_t)n;
	}
	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		return n;
	}
	int e = SSL_get_error(c->tls->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	errno = (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) ? 0 : EPROTO;
	ERR_clear_error();
	return -1;
}

/* Reads and flushes first complete a handshake still under way (SHOAL_AGAIN until it is). */
static shoal_rc finish_handshake(struct conn *c)
{
	if (c->tls->done)
		return SHOAL_OK;
	char err[256];
	shoal_rc rc = tls_handshake(c, err, sizeof(err));
	if (rc == SHOAL_ERROR) {
		log_warn("%s: %s", c->name, err);
		errno = EPROTO;
	}
	return rc;
}

shoal_rc tls_read(struct conn *c)
{
	shoal_rc hs = finish_handshake(c);
	if (hs != SHOAL_OK)
		return hs;
	bool got = false;
	/* Drain what OpenSSL has decrypted: epoll cannot see bytes buffered inside it. */
	do {
		int n = read_once(c);
		if (n < 0)
			return got ? SHOAL_OK : SHOAL_ERROR;
		if (n == 0)
			break;
		got = true;
	} while (SSL_pending(c->tls->ssl) > 0);
	return got ? SHOAL_OK : SHOAL_AGAIN;
}

shoal_rc tls_flush(struct conn *c)
{
	shoal_rc hs = finish_handshake(c);
	if (hs != SHOAL_OK)
		return hs;
	while (buf_avail(&c->out) > 0) {
		size_t avail = buf_avail(&c->out);
		ERR_clear_error();
		int n = SSL_write(c->tls->ssl, buf_head(&c->out),
				  avail > INT32_MAX ? INT32_MAX : (int)avail);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			c->bytes_out += (uint64_t)n;
			continue;
		}
		int e = SSL_get_error(c->tls->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			conn_update_events(c);
			return SHOAL_AGAIN;
		}
		errno = errno ? errno : EPIPE;
		ERR_clear_error();
		return SHOAL_ERROR;
	}
	buf_free(&c->out);
	conn_update_events(c);
	return SHOAL_OK;
}

void tls_endpoint_hash(const struct conn *c, uint8_t out[64], size_t *len)
{
	*len = 0;
	X509 *cert = c->tls ? SSL_get_certificate(c->tls->ssl) : NULL;
	int md_nid = NID_undef;
	if (!cert || !X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL))
		return;
	/* RFC 5929 4.1: MD5 and SHA-1 are replaced by SHA-256. */
	const EVP_MD *md = (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef)
			       ? EVP_sha256()
			       : EVP_get_digestbynid(md_nid);
	unsigned int n = 0;
	if (md && X509_digest(cert, md, out, &n) == 1 && n <= 64)
		*len = n;
}

bool tls_peer_cn(const struct conn *c, char *out, size_t outlen)
{
	if (!c->tls || !c->tls->done || SSL_get_verify_result(c->tls->ssl) != X509_V_OK)
		return false;
	X509 *cert = SSL_get0_peer_certificate(c->tls->ssl);
	if (!cert)
		return false;
	X509_NAME *name = X509_get_subject_name(cert);
	int n = name ? X509_NAME_get_text_by_NID(name, NID_commonName, out, (int)outlen) : -1;
	/* A CN with an embedded NUL would compare equal to a shorter user name: refused. */
	return n > 0 && (size_t)n < outlen && strlen(out) == (size_t)n;
}

void tls_free(struct conn *c)
{
	struct tls_conn *t = c->tls;
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t->prefix);
	free(t);
	c->tls = NULL;
}
