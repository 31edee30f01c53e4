/* client_sasl.h: SCRAM-SHA-256 authentication of a client (the server side of the exchange over
 * the client's connection), and handing the keys it recovers to the pool for pass-through. */
#ifndef SHOAL_CLIENT_SASL_H
#define SHOAL_CLIENT_SASL_H

#include "objects.h"

enum sasl_result {
	SASL_CONTINUE,	/* a challenge was queued on the client's output */
	SASL_SUCCESS,	/* proof verified; AuthenticationSASLFinal queued */
	SASL_FAILED,	/* wrong password or unknown user: answer 28P01 */
	SASL_MALFORMED, /* protocol violation: answer 08P01 with *err */
};

/* Begin: queue AuthenticationSASL and keep the exchange in c->scram. secret may be NULL (unknown
 * user: a mock exchange that fails at the end). SHOAL_ERROR: out of randomness. */
shoal_rc client_sasl_begin(struct client *c, const char *secret) MUST_USE;
/* One SASLInitialResponse/SASLResponse body. */
enum sasl_result client_sasl_step(struct client *c, const uint8_t *body, size_t len,
				  const char **err);
/* After a successful exchange against a stored SCRAM secret that is also the pool's server
 * password: give the pool the ClientKey and ServerKey so servers can log in without plaintext. */
void client_sasl_share_keys(struct client *c, struct pool *p, const char *secret);
/* Wipe and free c->scram (idempotent). */
void client_sasl_end(struct client *c);

#endif
