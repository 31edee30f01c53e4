/* scram.h: the client side of SCRAM-SHA-256 (RFC 5802/7677), used to log into servers. */
#ifndef SHOAL_SCRAM_H
#define SHOAL_SCRAM_H

#include "common.h"

struct scram_client {
	char nonce[32];         /* client nonce, base64 */
	char *client_first_bare; /* "n=,r=<nonce>" */
	char *auth_message;
	uint8_t salted[32];
	/* Pass-through: the ClientKey recovered from a client's proof and the stored ServerKey
	 * stand in for the password (no PBKDF2, no plaintext). */
	bool use_keys;
	uint8_t client_key[32], server_key[32];
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
/* Log in with keys instead of a password: call after scram_client_first, then pass a NULL
 * password to scram_client_final. */
void scram_client_use_keys(struct scram_client *sc, const uint8_t client_key[32],
			   const uint8_t server_key[32]);
/* Verify server-final-message ("v=<signature>"). */
shoal_rc scram_verify_server(struct scram_client *sc, const char *server_final,
			     size_t len) MUST_USE;
void scram_client_free(struct scram_client *sc);

#endif
