/* scram.h: the client side of SCRAM-SHA-256 (RFC 5802/7677), used to log into servers. */
#ifndef SHOAL_SCRAM_H
#define SHOAL_SCRAM_H

#include "common.h"

struct scram_client {
	char nonce[32];         /* client nonce, base64 */
	char *client_first_bare; /* "n=,r=<nonce>" */
	char *auth_message;
	uint8_t salted[32];
	bool verified; /* the server proved it knows the password (server-final verified) */
};

/* Iteration counts above this are refused: PBKDF2 runs on a worker thread. */
#define SCRAM_MAX_ITERATIONS 10000000

/* The client-first-message ("n,,n=,r=<nonce>") into out (NUL-terminated). */
shoal_rc scram_client_first(struct scram_client *sc, char *out, size_t outlen) MUST_USE;
/* Given server-first-message, compute client-final-message into out. SHOAL_ERROR on a malformed
 * message or a nonce that does not extend ours. */
shoal_rc scram_client_final(struct scram_client *sc, const char *password, const char *server_first,
			    size_t sflen, char *out, size_t outlen) MUST_USE;
/* Verify server-final-message ("v=<signature>"). */
shoal_rc scram_verify_server(struct scram_client *sc, const char *server_final,
			     size_t len) MUST_USE;
void scram_client_free(struct scram_client *sc);

#endif
