/* client_sasl.c: SCRAM exchange with a client, message by message, and key hand-off to pools. */
#include "client_sasl.h"
#include "auth.h"
#include "pool.h"
#include "proto.h"
#include "scram_server.h"
#include "tls.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Plaintext secrets' SCRAM keys, so that a login with one costs what an unknown user's mock
 * exchange costs (a few HMACs), not a PBKDF2 each time: the difference told them apart.
 * Direct-mapped by user name; an entry is used only for the same user and the same password
 * (by hash); a collision or a changed password derives again. */
#define PLAIN_CACHE_SLOTS 1024

static struct plain_slot {
	char user[64];
	uint8_t pw_hash[32];
	struct scram_secret secret;
} plain_cache[PLAIN_CACHE_SLOTS];
static pthread_mutex_t plain_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned plain_slot_of(const char *user)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (const char *p = user; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % PLAIN_CACHE_SLOTS;
}

static shoal_rc plain_secret(const char *user, const char *password, struct scram_secret *out)
{
	uint8_t hash[32];
	SHA256((const unsigned char *)password, strlen(password), hash);
	struct plain_slot *sl = &plain_cache[plain_slot_of(user)];
	bool fits = strlen(user) < sizeof(sl->user);
	pthread_mutex_lock(&plain_lock);
	bool hit = fits && strcmp(sl->user, user) == 0 &&
		   CRYPTO_memcmp(sl->pw_hash, hash, sizeof(hash)) == 0;
	if (hit)
		*out = sl->secret;
	pthread_mutex_unlock(&plain_lock);
	if (hit)
		return SHOAL_OK;
	if (scram_plain_secret(user, password, out) != SHOAL_OK)
		return SHOAL_ERROR;
	if (fits) {
		pthread_mutex_lock(&plain_lock);
		strcpy(sl->user, user);
		memcpy(sl->pw_hash, hash, sizeof(hash));
		sl->secret = *out;
		pthread_mutex_unlock(&plain_lock);
	}
	return SHOAL_OK;
}

shoal_rc client_sasl_begin(struct client *c, const char *secret)
{
	char mechs[64];
	uint8_t cb[64];
	size_t cblen = 0;
	/* Over TLS, SCRAM-SHA-256-PLUS binds the exchange to our certificate
	 * (tls-server-end-point), so a man in the middle with another certificate cannot relay it.
	 */
	if (c->c.tls)
		tls_endpoint_hash(&c->c, cb, &cblen);
	c->scram = xcalloc(1, sizeof(*c->scram));
	struct scram_secret derived;
	if (secret && !auth_secret_is_scram(secret) && !auth_secret_is_md5(secret) &&
	    plain_secret(c->user, secret, &derived) == SHOAL_OK)
		scram_server_init_secret(c->scram, &derived, cblen ? cb : NULL, cblen);
	else
		scram_server_init(c->scram, c->user, secret, cblen ? cb : NULL, cblen);
	OPENSSL_cleanse(&derived, sizeof(derived));
	size_t n = scram_server_mechanisms(c->scram, mechs);
	proto_write_auth(&c->c.out, PQAUTH_SASL, mechs, n);
	return SHOAL_OK;
}

static enum sasl_result sasl_first(struct client *c, const uint8_t *body, size_t len,
				   const char **err)
{
	const char *mech;
	const uint8_t *data;
	size_t dlen;
	char out[512];
	if (scram_parse_initial_response(body, len, &mech, &data, &dlen) != SHOAL_OK) {
		*err = "malformed SASLInitialResponse message";
		return SASL_MALFORMED;
	}
	if (scram_server_first(c->scram, mech, data, dlen, out, sizeof(out), err) != SHOAL_OK)
		return SASL_MALFORMED;
	proto_write_auth(&c->c.out, PQAUTH_SASL_CONTINUE, out, strlen(out));
	return SASL_CONTINUE;
}

enum sasl_result client_sasl_step(struct client *c, const uint8_t *body, size_t len,
				  const char **err)
{
	char out[128];
	if (!c->scram) {
		*err = "unexpected SASL message";
		return SASL_MALFORMED;
	}
	if (!c->scram->server_first)
		return sasl_first(c, body, len, err);
	if (scram_server_final(c->scram, body, len, out, sizeof(out), err) != SHOAL_OK)
		return SASL_MALFORMED;
	if (!c->scram->authenticated)
		return SASL_FAILED;
	proto_write_auth(&c->c.out, PQAUTH_SASL_FINAL, out, strlen(out));
	return SASL_SUCCESS;
}

void client_sasl_share_keys(struct client *c, struct pool *p, const char *secret)
{
	struct scram_server *ss = c->scram;
	if (!ss || !ss->authenticated || ss->doomed || !secret || !auth_secret_is_scram(secret))
		return;
	pool_lock(p);
	/* Only when the server login would use this very secret for this very user. */
	if (p->password && strcmp(p->password, secret) == 0 &&
	    strcmp(p->server_user, c->user) == 0) {
		memcpy(p->scram_client_key, ss->client_key, SCRAM_KEY_LEN);
		memcpy(p->scram_server_key, ss->secret.server_key, SCRAM_KEY_LEN);
		p->has_scram_keys = true;
	}
	pool_unlock(p);
}

void client_sasl_end(struct client *c)
{
	if (!c->scram)
		return;
	scram_server_free(c->scram);
	free(c->scram);
	c->scram = NULL;
}
