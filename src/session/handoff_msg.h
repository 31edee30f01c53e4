/* handoff_msg.h: the message that carries one idle client from an old Shoal process to a new
 * one during a handoff (handoff.c sends it over a Unix socket with the client's descriptor).
 * Pure code over (ptr, len), no I/O: the fuzz target (tests/fuzz/fuzz_handoff.c).
 *
 * Layout, integers big-endian: "SHHO", u16 version (HANDOFF_VERSION), u16 flags (0), u32 total
 * length (the whole message); u8 protocol minor (0..2), u8 cancel key length (4 or 32), u32
 * cancel pid, the key; user and database (NUL-terminated, not empty); u8 credentials (the
 * HANDOFF_CRED_* bits, no other), and when it is not 0 the pool's password (NUL-terminated, not
 * empty), and with HANDOFF_CRED_KEYS the two 32-byte SCRAM keys; u16 count and that many
 * session parameters (name, value, u8 raw 0/1), the same for the login parameters; u16 count and
 * that many prepared statements (name, "" for the unnamed one; u32 length and the Parse body
 * after the name: query, NUL, u16 n, n type OIDs). Nothing may follow. */
#ifndef SHOAL_HANDOFF_MSG_H
#define SHOAL_HANDOFF_MSG_H

#include "buf.h"
#include "common.h"

#define HANDOFF_MAGIC	"SHHO"
#define HANDOFF_VERSION 2 /* 2: the pool's credentials */
/* One message, sent as one SOCK_SEQPACKET record: a client whose state is larger is not moved. */
#define HANDOFF_MAX_MSG	   (256 * 1024)
#define HANDOFF_MAX_PARAMS 512
#define HANDOFF_MAX_STMTS  4096
#define HANDOFF_MAX_STR	   4096 /* a user, database, parameter name or value */

/* The pool's server credentials that the old process learnt from a login, which the new
 * process cannot know from its configuration. Secrets: never logged. */
#define HANDOFF_CRED_PASSWORD 0x01 /* the password came from auth_query: take it if none */
#define HANDOFF_CRED_KEYS     0x02 /* SCRAM pass-through keys of that password (a SCRAM secret) */
#define HANDOFF_CRED_ALL      (HANDOFF_CRED_PASSWORD | HANDOFF_CRED_KEYS)

struct handoff_kv {
	const char *name, *value;
	bool raw; /* a tracked SET's SQL text (params_set_raw), not a literal */
};

struct handoff_stmt {
	const char *name;
	const uint8_t *body;
	uint32_t len;
};

/* A decoded message: the strings and bodies point into the message (the password too: the
 * caller wipes the message), the arrays are owned. */
struct handoff_rec {
	uint8_t proto_minor;
	uint32_t cancel_pid;
	uint8_t cancel_key[32];
	uint8_t cancel_key_len;
	const char *user, *dbname;
	uint8_t creds;	      /* HANDOFF_CRED_* */
	const char *password; /* when creds != 0 (with only KEYS: the secret the keys belong to) */
	uint8_t scram_client_key[32], scram_server_key[32]; /* with HANDOFF_CRED_KEYS */
	int nparams, nlogin, nstmts;
	struct handoff_kv *params, *login;
	struct handoff_stmt *stmts;
};

/* Append r as one message to out. SHOAL_ERROR (out unchanged) if it exceeds a bound. */
shoal_rc handoff_encode(const struct handoff_rec *r, struct buf *out) MUST_USE;
/* Decode and validate msg[0..len). SHOAL_OK: r filled (free with handoff_rec_free); SHOAL_ERROR:
 * r holds nothing to free, *why says what was wrong. */
shoal_rc handoff_decode(const uint8_t *msg, size_t len, struct handoff_rec *r,
			const char **why) MUST_USE;
void handoff_rec_free(struct handoff_rec *r);
/* buf_free for a buffer that held a message: wiped first, as it may hold a password. */
void handoff_buf_free(struct buf *b);

#endif
