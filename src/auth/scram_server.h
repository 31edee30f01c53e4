/* scram_server.h: the server side of SCRAM-SHA-256 (RFC 5802/7677), used to authenticate clients,
 * and the stored-secret form "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>". Pure code over
 * (ptr, len) with no I/O, so that it can be fuzzed. */
#ifndef SHOAL_SCRAM_SERVER_H
#define SHOAL_SCRAM_SERVER_H

#include "common.h"

#define SCRAM_KEY_LEN		 32
#define SCRAM_MAX_SALT		 64
#define SCRAM_DEFAULT_ITERATIONS 4096
#define SCRAM_MECH		 "SCRAM-SHA-256"
#define SCRAM_MECH_PLUS		 "SCRAM-SHA-256-PLUS"

struct scram_secret {
	int iterations;
	uint8_t salt[SCRAM_MAX_SALT];
	int saltlen;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* Why a message was refused: the text PostgreSQL would send, for the log and the client. */
struct scram_server {
	struct scram_secret secret;
	bool doomed;	     /* unknown user or unusable secret: run the exchange, then fail */
	bool cb_offered;     /* the connection is TLS: -PLUS is offered, "y" means a downgrade */
	bool cb_used;	     /* the client chose SCRAM-SHA-256-PLUS */
	uint8_t cb_data[64]; /* tls-server-end-point hash when cb_offered */
	size_t cb_len;
	char *gs2_header;		   /* "n,," / "y,," / "p=tls-server-end-point,," */
	char *client_first_bare;	   /* "n=...,r=..." */
	char *server_first;		   /* "r=...,s=...,i=..." */
	char *nonce;			   /* client nonce + server nonce */
	uint8_t client_key[SCRAM_KEY_LEN]; /* recovered from a valid proof (for pass-through) */
	bool authenticated;
};

/* Parse "SCRAM-SHA-256$iter:salt$stored:server" (base64 parts). SHOAL_ERROR if malformed. */
shoal_rc scram_parse_secret(const char *secret, struct scram_secret *out) MUST_USE;
/* Derive a SCRAM secret from a plaintext password (PBKDF2-HMAC-SHA-256). */
shoal_rc scram_secret_from_password(const char *password, const uint8_t *salt, int saltlen,
				    int iterations, struct scram_secret *out) MUST_USE;
/* A secret with a salt derived from the user name and a key, so that an unknown user sees the
 * same salt on every attempt, like a real one (PostgreSQL's mock salt). The key is derived from
 * scram_mock_seed's seed when it was called before the first exchange (per install: the same
 * after a restart), else random per process. */
void scram_mock_secret(const char *user, struct scram_secret *out);
void scram_mock_seed(const void *seed, size_t len);
/* A plaintext password's SCRAM secret with the user's mock salt (PBKDF2, 4096 iterations). */
shoal_rc scram_plain_secret(const char *user, const char *password,
			    struct scram_secret *out) MUST_USE;
/* Start an exchange with an already derived secret (see scram_server_init). */
void scram_server_init_secret(struct scram_server *ss, const struct scram_secret *secret,
			      const uint8_t *cb_data, size_t cb_len);

/* Start an exchange. secret: the stored secret (plaintext, md5 or SCRAM; NULL for an unknown
 * user: then a mock exchange that always fails). cb_data/cb_len: the channel-binding data of a
 * TLS connection (NULL when not TLS; at most 64 bytes, copied). */
void scram_server_init(struct scram_server *ss, const char *user, const char *secret,
		       const uint8_t *cb_data, size_t cb_len);
/* Write the mechanism list of AuthenticationSASL ("SCRAM-SHA-256[-PLUS]\0...\0") into out;
 * returns its length. out must hold 64 bytes. */
size_t scram_server_mechanisms(const struct scram_server *ss, char *out);
/* SASLInitialResponse: mechanism and client-first-message. On success out holds the
 * server-first-message. SHOAL_ERROR: malformed (*err says why). */
shoal_rc scram_server_first(struct scram_server *ss, const char *mech, const uint8_t *data,
			    size_t len, char *out, size_t outlen, const char **err) MUST_USE;
/* The same with a given server nonce (for test vectors). */
shoal_rc scram_server_first_nonce(struct scram_server *ss, const char *mech, const uint8_t *data,
				  size_t len, const char *snonce, char *out, size_t outlen,
				  const char **err) MUST_USE;
/* SASLResponse: client-final-message. SHOAL_ERROR: malformed (*err). SHOAL_OK with
 * ss->authenticated true: the proof verified and out holds the server-final-message; false: a
 * wrong password (or a doomed exchange). */
shoal_rc scram_server_final(struct scram_server *ss, const uint8_t *data, size_t len, char *out,
			    size_t outlen, const char **err) MUST_USE;
/* SASLInitialResponse body: mechanism name, then Int32 length and the data (-1: none, refused).
 * Pointers into body. SHOAL_ERROR if malformed or trailing bytes remain. */
shoal_rc scram_parse_initial_response(const uint8_t *body, size_t len, const char **mech,
				      const uint8_t **data, size_t *dlen) MUST_USE;
/* Wipe keys and free the strings. */
void scram_server_free(struct scram_server *ss);

/* Does a cleartext password match a SCRAM secret? Constant-time comparison. */
bool scram_check_password(const char *secret, const char *password);

/* Strict base64 (RFC 4648, padded): decoded length, or -1 if malformed or over outcap. */
int scram_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap);
/* Base64 of n bytes into out (NUL-terminated); out must hold 4 * ((n + 2) / 3) + 1 bytes. */
void scram_b64_encode(const uint8_t *in, size_t n, char *out);

#endif
