/* scram.c: SCRAM-SHA-256 client exchange on OpenSSL primitives. */
#include "scram.h"
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
	unsigned int n = 32;
	HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n);
}

shoal_rc scram_client_first(struct scram_client *sc, char *out, size_t outlen)
{
	uint8_t raw[18];
	memset(sc, 0, sizeof(*sc));
	if (auth_random(raw, sizeof(raw)) != SHOAL_OK)
		return SHOAL_ERROR;
	EVP_EncodeBlock((unsigned char *)sc->nonce, raw, sizeof(raw));
	size_t n = strlen(sc->nonce) + 8;
	sc->client_first_bare = xmalloc(n);
	snprintf(sc->client_first_bare, n, "n=,r=%s", sc->nonce);
	int w = snprintf(out, outlen, "n,,%s", sc->client_first_bare);
	return (w > 0 && (size_t)w < outlen) ? SHOAL_OK : SHOAL_ERROR;
}

/* Find "k=" attribute in a comma-separated SCRAM message; returns a malloc'd copy or NULL. */
static char *scram_attr(const char *msg, size_t len, char k)
{
	const char *p = msg, *end = msg + len;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		if (stop - p >= 2 && p[0] == k && p[1] == '=')
			return strndup(p + 2, (size_t)(stop - p - 2));
		p = stop + 1;
	}
	return NULL;
}

static int b64_decode(const char *in, uint8_t *out, size_t outcap)
{
	size_t n = strlen(in);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > outcap)
		return -1;
	int m = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (m < 0)
		return -1;
	while (n > 0 && in[--n] == '=')
		m--;
	return m;
}

static shoal_rc scram_compute_proof(struct scram_client *sc, const char *password,
				    const char *salt64, int iters, uint8_t proof[32])
{
	uint8_t salt[128], ckey[32], skey[32], sig[32];
	int slen = b64_decode(salt64, salt, sizeof(salt));
	if (slen <= 0)
		return SHOAL_ERROR;
	if (sc->use_keys) {
		memcpy(ckey, sc->client_key, 32);
	} else {
		if (!password || !PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, slen,
						    iters, EVP_sha256(), 32, sc->salted))
			return SHOAL_ERROR;
		hmac(sc->salted, 32, "Client Key", 10, ckey);
	}
	SHA256(ckey, 32, skey);
	hmac(skey, 32, sc->auth_message, strlen(sc->auth_message), sig);
	for (int i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ sig[i];
	OPENSSL_cleanse(ckey, sizeof(ckey));
	return SHOAL_OK;
}

shoal_rc scram_client_final(struct scram_client *sc, const char *password, const char *server_first,
			    size_t sflen, char *out, size_t outlen)
{
	shoal_rc rc = SHOAL_ERROR;
	if (!sc->client_first_bare || sc->auth_message)
		return SHOAL_ERROR; /* out of order: no client-first sent, or a second server-first */
	char *r = scram_attr(server_first, sflen, 'r');
	char *s = scram_attr(server_first, sflen, 's');
	char *i = scram_attr(server_first, sflen, 'i');
	if (!r || !s || !i || strncmp(r, sc->nonce, strlen(sc->nonce)) != 0 ||
	    strlen(r) == strlen(sc->nonce))
		goto out;
	char without_proof[256];
	if ((size_t)snprintf(without_proof, sizeof(without_proof), "c=biws,r=%s", r) >=
	    sizeof(without_proof))
		goto out;
	size_t alen = strlen(sc->client_first_bare) + sflen + strlen(without_proof) + 3;
	sc->auth_message = xmalloc(alen);
	snprintf(sc->auth_message, alen, "%s,%.*s,%s", sc->client_first_bare, (int)sflen,
		 server_first, without_proof);
	uint8_t proof[32];
	char proof64[64];
	char *end;
	long iters = strtol(i, &end, 10);
	if (*end || iters <= 0 || iters > SCRAM_MAX_ITERATIONS)
		goto out;
	if (scram_compute_proof(sc, password, s, (int)iters, proof) != SHOAL_OK)
		goto out;
	EVP_EncodeBlock((unsigned char *)proof64, proof, 32);
	int w = snprintf(out, outlen, "%s,p=%s", without_proof, proof64);
	rc = (w > 0 && (size_t)w < outlen) ? SHOAL_OK : SHOAL_ERROR;
out:
	free(r);
	free(s);
	free(i);
	return rc;
}

shoal_rc scram_verify_server(struct scram_client *sc, const char *server_final, size_t len)
{
	char *v = scram_attr(server_final, len, 'v');
	uint8_t got[64], skey[32], sig[32];
	int n = v ? b64_decode(v, got, sizeof(got)) : -1;
	free(v);
	if (n != 32 || !sc->auth_message)
		return SHOAL_ERROR;
	if (sc->use_keys)
		memcpy(skey, sc->server_key, 32);
	else
		hmac(sc->salted, 32, "Server Key", 10, skey);
	hmac(skey, 32, sc->auth_message, strlen(sc->auth_message), sig);
	sc->verified = CRYPTO_memcmp(sig, got, 32) == 0;
	return sc->verified ? SHOAL_OK : SHOAL_ERROR;
}

void scram_client_use_keys(struct scram_client *sc, const uint8_t client_key[32],
			   const uint8_t server_key[32])
{
	sc->use_keys = true;
	memcpy(sc->client_key, client_key, 32);
	memcpy(sc->server_key, server_key, 32);
}

void scram_client_free(struct scram_client *sc)
{
	free(sc->client_first_bare);
	free(sc->auth_message);
	sc->client_first_bare = sc->auth_message = NULL;
	OPENSSL_cleanse(sc->salted, sizeof(sc->salted));
	OPENSSL_cleanse(sc->client_key, sizeof(sc->client_key));
	OPENSSL_cleanse(sc->server_key, sizeof(sc->server_key));
	sc->use_keys = false;
}
