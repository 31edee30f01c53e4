/* client_sasl.c: SCRAM exchange with a client, message by message, and key hand-off to pools. */
#include "client_sasl.h"
#include "auth.h"
#include "pool.h"
#include "proto.h"
#include "scram_server.h"
#include "tls.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

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
	scram_server_init(c->scram, c->user, secret, cblen ? cb : NULL, cblen);
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
