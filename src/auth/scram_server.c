/* scram_server.c: SCRAM-SHA-256 server exchange and stored secrets, on OpenSSL primitives. */
#include "scram_server.h"
#include "auth.h"
#include "proto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static void hmac256(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
		    uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int n = SCRAM_KEY_LEN;
	HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n);
}

static bool b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

int scram_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > outcap + 2)
		return -1;
	size_t pad = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=' && i >= n - 2) {
			pad++;
			continue;
		}
		if (pad || !b64_char(in[i]))
			return -1; /* '=' only at the end; no whitespace or other bytes */
	}
	uint8_t tmp[1024];
	if (n / 4 * 3 - pad > outcap || n / 4 * 3 > sizeof(tmp))
		return -1;
	int m = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
	if (m < 0)
		return -1;
	m -= (int)pad;
	memcpy(out, tmp, (size_t)m);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return m;
}

void scram_b64_encode(const uint8_t *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Copy [p, p + n) into a fresh NUL-terminated string. */
static char *dup_n(const char *p, size_t n)
{
	char *s = xmalloc(n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* ---- secrets ---------------------------------------------------------------------------- */

static bool decode_key(const char *p, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	return scram_b64_decode(p, n, out, SCRAM_KEY_LEN) == SCRAM_KEY_LEN;
}

shoal_rc scram_parse_secret(const char *secret, struct scram_secret *out)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(secret, "SCRAM-SHA-256$", 14) != 0)
		return SHOAL_ERROR;
	const char *p = secret + 14;
	char *end;
	long iter = strtol(p, &end, 10);
	if (end == p || *end != ':' || iter <= 0 || iter > 10000000)
		return SHOAL_ERROR;
	const char *salt = end + 1, *dollar = strchr(salt, '$');
	if (!dollar)
		return SHOAL_ERROR;
	const char *stored = dollar + 1, *colon = strchr(stored, ':');
	if (!colon)
		return SHOAL_ERROR;
	const char *server = colon + 1;
	int slen = scram_b64_decode(salt, (size_t)(dollar - salt), out->salt, SCRAM_MAX_SALT);
	if (slen <= 0 || !decode_key(stored, (size_t)(colon - stored), out->stored_key) ||
	    !decode_key(server, strlen(server), out->server_key)) {
		OPENSSL_cleanse(out, sizeof(*out));
		return SHOAL_ERROR;
	}
	out->saltlen = slen;
	out->iterations = (int)iter;
	return SHOAL_OK;
}

shoal_rc scram_secret_from_password(const char *password, const uint8_t *salt, int saltlen,
				    int iterations, struct scram_secret *out)
{
	uint8_t salted[SCRAM_KEY_LEN], ckey[SCRAM_KEY_LEN];
	if (saltlen <= 0 || saltlen > SCRAM_MAX_SALT)
		return SHOAL_ERROR;
	if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, saltlen, iterations,
			       EVP_sha256(), SCRAM_KEY_LEN, salted))
		return SHOAL_ERROR;
	memcpy(out->salt, salt, (size_t)saltlen);
	out->saltlen = saltlen;
	out->iterations = iterations;
	hmac256(salted, SCRAM_KEY_LEN, "Client Key", 10, ckey);
	SHA256(ckey, SCRAM_KEY_LEN, out->stored_key);
	hmac256(salted, SCRAM_KEY_LEN, "Server Key", 10, out->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	return SHOAL_OK;
}

static uint8_t mock_key[32];
static bool mock_seeded;
static pthread_once_t mock_once = PTHREAD_ONCE_INIT;

static void mock_key_init(void)
{
	if (!mock_seeded && auth_random(mock_key, sizeof(mock_key)) != SHOAL_OK)
		abort(); /* no CSPRNG: nothing about authentication can be trusted */
}

void scram_mock_seed(const void *seed, size_t len)
{
	if (len == 0)
		return;
	hmac256((const uint8_t *)"shoal scram mock salt", 21, seed, len, mock_key);
	mock_seeded = true;
}

/* The salt of user: the same on every attempt, whether or not the user exists. */
static void mock_salt(const char *user, uint8_t h[SCRAM_KEY_LEN])
{
	pthread_once(&mock_once, mock_key_init);
	hmac256(mock_key, sizeof(mock_key), user, strlen(user), h);
}

shoal_rc scram_plain_secret(const char *user, const char *password, struct scram_secret *out)
{
	uint8_t h[SCRAM_KEY_LEN];
	mock_salt(user, h);
	return scram_secret_from_password(password, h, 16, SCRAM_DEFAULT_ITERATIONS, out);
}

void scram_mock_secret(const char *user, struct scram_secret *out)
{
	uint8_t h[SCRAM_KEY_LEN];
	memset(out, 0, sizeof(*out));
	mock_salt(user, h);
	memcpy(out->salt, h, 16); /* PostgreSQL's default salt length */
	out->saltlen = 16;
	out->iterations = SCRAM_DEFAULT_ITERATIONS;
	hmac256(h, sizeof(h), "stored", 6, out->stored_key);
	hmac256(h, sizeof(h), "server", 6, out->server_key);
}

bool scram_check_password(const char *secret, const char *password)
{
	struct scram_secret want, got;
	if (scram_parse_secret(secret, &want) != SHOAL_OK)
		return false;
	bool ok = scram_secret_from_password(password, want.salt, want.saltlen, want.iterations,
					     &got) == SHOAL_OK &&
		  CRYPTO_memcmp(want.stored_key, got.stored_key, SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(&want, sizeof(want));
	OPENSSL_cleanse(&got, sizeof(got));
	return ok;
}

/* ---- the exchange ----------------------------------------------------------------------- */

static void server_init_cb(struct scram_server *ss, const uint8_t *cb_data, size_t cb_len)
{
	memset(ss, 0, sizeof(*ss));
	ss->cb_offered = cb_data != NULL && cb_len > 0 && cb_len <= sizeof(ss->cb_data);
	if (ss->cb_offered) {
		memcpy(ss->cb_data, cb_data, cb_len);
		ss->cb_len = cb_len;
	}
}

void scram_server_init_secret(struct scram_server *ss, const struct scram_secret *secret,
			      const uint8_t *cb_data, size_t cb_len)
{
	server_init_cb(ss, cb_data, cb_len);
	ss->secret = *secret;
}

void scram_server_init(struct scram_server *ss, const char *user, const char *secret,
		       const uint8_t *cb_data, size_t cb_len)
{
	server_init_cb(ss, cb_data, cb_len);
	if (secret && auth_secret_is_scram(secret)) {
		if (scram_parse_secret(secret, &ss->secret) == SHOAL_OK)
			return;
	} else if (secret && !auth_secret_is_md5(secret)) {
		/* Plaintext: the user's stable salt, the one an unknown user of that name would
		 * see too (a fresh salt each time would tell them apart). */
		if (scram_plain_secret(user, secret, &ss->secret) == SHOAL_OK)
			return;
	}
	/* Unknown user, an md5 secret (cannot answer SCRAM) or a broken secret: a mock exchange
	 * that looks like a real one and fails at the end with the same message. */
	scram_mock_secret(user, &ss->secret);
	ss->doomed = true;
}

size_t scram_server_mechanisms(const struct scram_server *ss, char *out)
{
	size_t n = 0;
	if (ss->cb_offered) {
		memcpy(out, SCRAM_MECH_PLUS, sizeof(SCRAM_MECH_PLUS));
		n += sizeof(SCRAM_MECH_PLUS);
	}
	memcpy(out + n, SCRAM_MECH, sizeof(SCRAM_MECH));
	n += sizeof(SCRAM_MECH);
	out[n++] = '\0';
	return n;
}

/* Nonce characters: printable ASCII except ',' (RFC 5802 "printable"). */
static bool valid_nonce(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return false;
	return true;
}

/* The attribute "k=value" at *p (within end): value span in *v and *vn; *p moves past the comma. */
static bool take_attr(const char **p, const char *end, char k, const char **v, size_t *vn)
{
	const char *s = *p;
	if (end - s < 2 || s[0] != k || s[1] != '=')
		return false;
	const char *comma = memchr(s, ',', (size_t)(end - s));
	const char *stop = comma ? comma : end;
	*v = s + 2;
	*vn = (size_t)(stop - s - 2);
	*p = comma ? comma + 1 : end;
	return true;
}

/* Optional extensions "x=value" (x a letter other than the ones with a meaning here). */
static bool skip_extensions(const char **p, const char *end, const char *stop_at)
{
	while (*p < end &&
	       (!stop_at || !(end - *p >= 2 && (*p)[0] == *stop_at && (*p)[1] == '='))) {
		const char *v;
		size_t vn;
		char k = **p;
		if (!((k >= 'a' && k <= 'z') || (k >= 'A' && k <= 'Z')) || k == 'm' ||
		    !take_attr(p, end, k, &v, &vn))
			return false;
	}
	return true;
}

/* gs2-header: "n,," / "y,," / "p=<cb-name>,,". Sets *cbflag; *p moves past it. */
static const char *parse_gs2(struct scram_server *ss, const char *mech, const char **p,
			     const char *end)
{
	const char *s = *p;
	bool plus = strcmp(mech, SCRAM_MECH_PLUS) == 0;
	if (s >= end)
		return "malformed SCRAM message (empty message)";
	if (s[0] == 'p') {
		const char *v;
		size_t vn;
		if (!take_attr(p, end, 'p', &v, &vn))
			return "malformed SCRAM message (bad channel binding flag)";
		if (!plus)
			return "malformed SCRAM message (the client requires channel binding but "
			       "chose SCRAM-SHA-256)";
		if (vn != 20 || memcmp(v, "tls-server-end-point", 20) != 0)
			return "unsupported SCRAM channel-binding type";
		ss->cb_used = true;
	} else if (s[0] == 'y' || s[0] == 'n') {
		if (plus)
			return "malformed SCRAM message (channel binding flag does not match "
			       "SCRAM-SHA-256-PLUS)";
		if (s[0] == 'y' && ss->cb_offered)
			return "SCRAM channel binding negotiation error (the client supports it "
			       "but thinks the server does not)";
		if (end - s < 2 || s[1] != ',')
			return "malformed SCRAM message (comma expected after the flag)";
		*p = s + 2;
	} else {
		return "malformed SCRAM message (unexpected channel-binding flag)";
	}
	if (*p >= end || **p == 'a')
		return *p >= end ? "malformed SCRAM message (truncated gs2 header)"
				 : "client uses authorization identity, but it is not supported";
	if (**p != ',')
		return "malformed SCRAM message (comma expected after the gs2 header)";
	(*p)++;
	ss->gs2_header = dup_n(s, (size_t)(*p - s));
	return NULL;
}

static const char *parse_client_first(struct scram_server *ss, const char *mech, const char *msg,
				      size_t len)
{
	const char *p = msg, *end = msg + len, *v, *nonce;
	size_t vn, nn;
	if (memchr(msg, '\0', len))
		return "malformed SCRAM message (NUL byte)";
	if (strcmp(mech, SCRAM_MECH) != 0 &&
	    !(ss->cb_offered && strcmp(mech, SCRAM_MECH_PLUS) == 0))
		return "SASL authentication mechanism not supported";
	const char *err = parse_gs2(ss, mech, &p, end);
	if (err)
		return err;
	const char *bare = p;
	if (p < end && *p == 'm')
		return "malformed SCRAM message (unsupported mandatory extension)";
	/* The user name in n= is ignored, as PostgreSQL does: the startup packet's counts. */
	if (!take_attr(&p, end, 'n', &v, &vn))
		return "malformed SCRAM message (user name expected)";
	if (!take_attr(&p, end, 'r', &nonce, &nn) || !valid_nonce(nonce, nn))
		return "malformed SCRAM message (invalid nonce)";
	if (!skip_extensions(&p, end, NULL))
		return "malformed SCRAM message (garbage at the end)";
	ss->client_first_bare = dup_n(bare, (size_t)(end - bare));
	ss->nonce = dup_n(nonce, nn);
	return NULL;
}

shoal_rc scram_server_first(struct scram_server *ss, const char *mech, const uint8_t *data,
			    size_t len, char *out, size_t outlen, const char **err)
{
	uint8_t raw[18];
	char snonce[32];
	if (auth_random(raw, sizeof(raw)) != SHOAL_OK) {
		*err = "could not generate a random nonce";
		return SHOAL_ERROR;
	}
	scram_b64_encode(raw, sizeof(raw), snonce);
	return scram_server_first_nonce(ss, mech, data, len, snonce, out, outlen, err);
}

shoal_rc scram_server_first_nonce(struct scram_server *ss, const char *mech, const uint8_t *data,
				  size_t len, const char *snonce, char *out, size_t outlen,
				  const char **err)
{
	if (ss->client_first_bare) {
		*err = "malformed SCRAM message (second client-first-message)";
		return SHOAL_ERROR;
	}
	*err = parse_client_first(ss, mech, (const char *)data, len);
	if (*err)
		return SHOAL_ERROR;
	char salt64[4 * ((SCRAM_MAX_SALT + 2) / 3) + 1];
	scram_b64_encode(ss->secret.salt, (size_t)ss->secret.saltlen, salt64);
	int w = snprintf(out, outlen, "r=%s%s,s=%s,i=%d", ss->nonce, snonce, salt64,
			 ss->secret.iterations);
	if (w < 0 || (size_t)w >= outlen) {
		*err = "malformed SCRAM message (nonce too long)";
		return SHOAL_ERROR;
	}
	char *full = dup_n(out + 2, strlen(ss->nonce) + strlen(snonce));
	free(ss->nonce);
	ss->nonce = full;
	ss->server_first = xstrdup(out);
	return SHOAL_OK;
}

/* Does the c= attribute carry our gs2 header (and channel-binding data)? */
static bool check_cbind(const struct scram_server *ss, const char *v, size_t vn)
{
	size_t hl = strlen(ss->gs2_header);
	size_t want = hl + (ss->cb_used ? ss->cb_len : 0);
	uint8_t buf[512];
	if (want > sizeof(buf))
		return false;
	int n = scram_b64_decode(v, vn, buf, sizeof(buf));
	if (n < 0 || (size_t)n != want || memcmp(buf, ss->gs2_header, hl) != 0)
		return false;
	return !ss->cb_used || CRYPTO_memcmp(buf + hl, ss->cb_data, ss->cb_len) == 0;
}

static const char *parse_client_final(struct scram_server *ss, const char *msg, size_t len,
				      uint8_t proof[SCRAM_KEY_LEN], size_t *without_proof)
{
	const char *p = msg, *end = msg + len, *v;
	size_t vn;
	if (memchr(msg, '\0', len))
		return "malformed SCRAM message (NUL byte)";
	if (!take_attr(&p, end, 'c', &v, &vn))
		return "malformed SCRAM message (channel binding expected)";
	if (!check_cbind(ss, v, vn))
		return "SCRAM channel binding check failed";
	if (!take_attr(&p, end, 'r', &v, &vn) || vn != strlen(ss->nonce) ||
	    memcmp(v, ss->nonce, vn) != 0)
		return "malformed SCRAM message (nonce does not match)";
	if (!skip_extensions(&p, end, "p"))
		return "malformed SCRAM message (bad attribute)";
	if (p == msg || p[-1] != ',')
		return "malformed SCRAM message (proof expected)";
	*without_proof = (size_t)(p - 1 - msg);
	if (!take_attr(&p, end, 'p', &v, &vn) || p != end || (vn > 0 && v[vn - 1] == ',') ||
	    scram_b64_decode(v, vn, proof, SCRAM_KEY_LEN) != SCRAM_KEY_LEN)
		return "malformed SCRAM message (invalid proof)";
	return NULL;
}

shoal_rc scram_server_final(struct scram_server *ss, const uint8_t *data, size_t len, char *out,
			    size_t outlen, const char **err)
{
	uint8_t proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], check[SCRAM_KEY_LEN];
	size_t wp = 0;
	ss->authenticated = false;
	if (!ss->server_first) {
		*err = "malformed SCRAM message (client-final before client-first)";
		return SHOAL_ERROR;
	}
	*err = parse_client_final(ss, (const char *)data, len, proof, &wp);
	if (*err)
		return SHOAL_ERROR;
	size_t alen = strlen(ss->client_first_bare) + strlen(ss->server_first) + wp + 3;
	char *am = xmalloc(alen);
	snprintf(am, alen, "%s,%s,%.*s", ss->client_first_bare, ss->server_first, (int)wp,
		 (const char *)data);
	hmac256(ss->secret.stored_key, SCRAM_KEY_LEN, am, strlen(am), sig);
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		ss->client_key[i] = proof[i] ^ sig[i];
	SHA256(ss->client_key, SCRAM_KEY_LEN, check);
	bool ok = CRYPTO_memcmp(check, ss->secret.stored_key, SCRAM_KEY_LEN) == 0 && !ss->doomed;
	if (ok) {
		char sig64[48];
		hmac256(ss->secret.server_key, SCRAM_KEY_LEN, am, strlen(am), sig);
		scram_b64_encode(sig, SCRAM_KEY_LEN, sig64);
		int w = snprintf(out, outlen, "v=%s", sig64);
		ok = w > 0 && (size_t)w < outlen;
	}
	free(am);
	ss->authenticated = ok;
	if (!ok)
		OPENSSL_cleanse(ss->client_key, sizeof(ss->client_key));
	return SHOAL_OK;
}

shoal_rc scram_parse_initial_response(const uint8_t *body, size_t len, const char **mech,
				      const uint8_t **data, size_t *dlen)
{
	struct pq_reader r;
	pqr_init(&r, body, len);
	*mech = pqr_cstr(&r);
	uint32_t n = pqr_u32(&r);
	if (r.err || n == 0xffffffffu || n > len - r.pos)
		return SHOAL_ERROR;
	*data = pqr_bytes(&r, n);
	*dlen = n;
	return (!r.err && r.pos == len) ? SHOAL_OK : SHOAL_ERROR;
}

void scram_server_free(struct scram_server *ss)
{
	free(ss->gs2_header);
	free(ss->client_first_bare);
	free(ss->server_first);
	free(ss->nonce);
	OPENSSL_cleanse(ss, sizeof(*ss));
}
