/* proto.h: pure encode/decode of PostgreSQL v3 protocol messages over (ptr, len); no I/O, no
 * globals. This is the fuzz target's surface: every parser here must survive arbitrary bytes. */
#ifndef SHOAL_PROTO_H
#define SHOAL_PROTO_H

#include "buf.h"
#include "common.h"

/* Frontend (client -> server) message types. */
#define PQMSG_QUERY           'Q'
#define PQMSG_PARSE           'P'
#define PQMSG_BIND            'B'
#define PQMSG_DESCRIBE        'D'
#define PQMSG_EXECUTE         'E'
#define PQMSG_CLOSE           'C'
#define PQMSG_SYNC            'S'
#define PQMSG_FLUSH           'H'
#define PQMSG_FUNCTION_CALL   'F'
#define PQMSG_COPY_DATA       'd'
#define PQMSG_COPY_DONE       'c'
#define PQMSG_COPY_FAIL       'f'
#define PQMSG_TERMINATE       'X'
#define PQMSG_PASSWORD        'p' /* also SASLInitialResponse / SASLResponse */

/* Backend (server -> client) message types. */
#define PQMSG_AUTH            'R'
#define PQMSG_PARAMETER_STATUS 'S'
#define PQMSG_BACKEND_KEY     'K'
#define PQMSG_READY           'Z'
#define PQMSG_ERROR           'E'
#define PQMSG_NOTICE          'N'
#define PQMSG_NOTIFY          'A'
#define PQMSG_COMMAND_COMPLETE 'C'
#define PQMSG_ROW_DESCRIPTION 'T'
#define PQMSG_DATA_ROW        'D'
#define PQMSG_EMPTY_QUERY     'I'
#define PQMSG_COPY_IN         'G'
#define PQMSG_COPY_OUT        'H'
#define PQMSG_COPY_BOTH       'W'
#define PQMSG_NEGOTIATE       'v'

/* Authentication request codes (the Int32 after 'R'). */
#define PQAUTH_OK             0
#define PQAUTH_CLEARTEXT      3
#define PQAUTH_MD5            5
#define PQAUTH_SASL           10
#define PQAUTH_SASL_CONTINUE  11
#define PQAUTH_SASL_FINAL     12

/* Special startup-packet codes. */
#define PQ_PROTOCOL_3_0       196608u /* 3 << 16 */
#define PQ_PROTOCOL_3_2       (PQ_PROTOCOL_3_0 | 2u) /* PostgreSQL 18: variable-length cancel keys */
#define PQ_LATEST_MINOR       2u /* the newest 3.x minor Shoal speaks to clients */
#define PQ_CANCEL_CODE        80877102u
#define PQ_SSL_CODE           80877103u
#define PQ_GSSENC_CODE        80877104u

/* Limits, as PostgreSQL's own: startup packets are small; "small" message types are capped at
 * 10000 bytes and everything else at 1 GB - 1 (PQ_LARGE_MESSAGE_LIMIT). */
#define PQ_MAX_STARTUP        10000u
#define PQ_SMALL_MSG_LIMIT    10000u
#define PQ_LARGE_MSG_LIMIT    (0x40000000u - 1)
#define PQ_HEADER_LEN         5u

#define PQ_MAX_STARTUP_PARAMS 64

/* Cancel keys (the bytes after the pid in BackendKeyData and CancelRequest): exactly 4 bytes in
 * protocol 3.0 and 3.1; 4 to 256 bytes from 3.2 on, the length given by the message length. */
#define PQ_CANCEL_KEY_MIN     4u
#define PQ_CANCEL_KEY_MAX     256u
#define PQ_CANCEL_KEY_V30     4u

/* A protocol message header: type byte and the declared length (which counts itself). */
struct pq_header {
	uint8_t type;
	uint32_t len; /* declared length, >= 4 */
};

/* Decode the 5-byte header at p. SHOAL_AGAIN if fewer than 5 bytes, SHOAL_ERROR if the length
 * field is below 4. Inline, as the caps below: every message of both sides passes here. */
static inline MUST_USE shoal_rc proto_header(const uint8_t *p, size_t avail, struct pq_header *h)
{
	if (avail < PQ_HEADER_LEN)
		return SHOAL_AGAIN;
	h->type = p[0];
	h->len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	return h->len < 4 ? SHOAL_ERROR : SHOAL_OK;
}

/* Largest body+length a frontend message of this type may declare, or 0 if the type is not a
 * valid frontend message after login. */
static inline uint32_t proto_client_msg_cap(uint8_t type)
{
	switch (type) {
	case PQMSG_QUERY:
	case PQMSG_PARSE:
	case PQMSG_BIND:
	case PQMSG_FUNCTION_CALL:
	case PQMSG_COPY_DATA:
	case PQMSG_COPY_FAIL:
	case PQMSG_PASSWORD:
		return PQ_LARGE_MSG_LIMIT;
	case PQMSG_DESCRIBE:
	case PQMSG_EXECUTE:
	case PQMSG_CLOSE:
	case PQMSG_SYNC:
	case PQMSG_FLUSH:
	case PQMSG_COPY_DONE:
	case PQMSG_TERMINATE:
		return PQ_SMALL_MSG_LIMIT;
	default:
		return 0;
	}
}

/* Same for backend messages; every type is allowed, data-carrying ones up to 1 GB. */
static inline uint32_t proto_server_msg_cap(uint8_t type)
{
	switch (type) {
	case PQMSG_READY:
	case PQMSG_BACKEND_KEY:
	case PQMSG_EMPTY_QUERY:
		return PQ_SMALL_MSG_LIMIT;
	default:
		return PQ_LARGE_MSG_LIMIT;
	}
}

/* The kinds of packet a client may send before login. */
enum startup_kind {
	STARTUP_INVALID = 0,
	STARTUP_NORMAL,
	STARTUP_SSL,
	STARTUP_GSSENC,
	STARTUP_CANCEL,
};

struct startup_param {
	const char *name;
	const char *value;
};

/* A decoded startup packet; strings point into the caller's packet buffer. */
struct startup_msg {
	enum startup_kind kind;
	uint32_t code;      /* protocol version or special code */
	uint32_t cancel_pid; /* CancelRequest only */
	const uint8_t *cancel_key; /* points into the packet */
	uint32_t cancel_key_len;   /* PQ_CANCEL_KEY_MIN..PQ_CANCEL_KEY_MAX */
	int nparams;
	struct startup_param params[PQ_MAX_STARTUP_PARAMS];
	const char *error; /* why it is invalid */
};

/* Decode a whole startup packet (the 4-byte length included) of len bytes. The packet must be
 * writable only in the sense that it stays alive while out is used. Always fills out->kind;
 * STARTUP_INVALID comes with out->error. */
void proto_parse_startup(const uint8_t *pkt, size_t len, struct startup_msg *out);

/* Sequential reader over a message body. Any read past the end sets err and returns zero/NULL. */
struct pq_reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool err;
};
/* A NUL-terminated string inside the body, or NULL (and err) if unterminated. */
const char *pqr_cstr(struct pq_reader *r);

/* Inline: a few instructions each, read on every login and many messages. */
static inline void pqr_init(struct pq_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->err = false;
}

/* n raw bytes, or NULL (and err). */
static inline const uint8_t *pqr_bytes(struct pq_reader *r, size_t n)
{
	if (r->err || r->len - r->pos < n) {
		r->err = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

static inline uint8_t pqr_u8(struct pq_reader *r)
{
	const uint8_t *p = pqr_bytes(r, 1);
	return p ? p[0] : 0;
}

static inline uint16_t pqr_u16(struct pq_reader *r)
{
	const uint8_t *p = pqr_bytes(r, 2);
	return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

static inline uint32_t pqr_u32(struct pq_reader *r)
{
	const uint8_t *p = pqr_bytes(r, 4);
	return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]
		 : 0;
}

/* ErrorResponse / NoticeResponse fields (pointers into the body; NULL when absent). */
struct pq_error {
	const char *severity; /* localized 'S' */
	const char *severity_nl; /* 'V' */
	const char *sqlstate;
	const char *message;
	const char *detail;
};
shoal_rc proto_parse_error(const uint8_t *body, size_t len, struct pq_error *e) MUST_USE;
/* ParameterStatus name/value. */
shoal_rc proto_parse_param(const uint8_t *body, size_t len, const char **name,
			   const char **value) MUST_USE;

/* Message builders: append one complete message to b. */
void proto_begin(struct buf *b, uint8_t type); /* type 0: untyped (startup-style) */
void proto_put_u8(struct buf *b, uint8_t v);
void proto_put_u16(struct buf *b, uint16_t v);
void proto_put_u32(struct buf *b, uint32_t v);
void proto_put_str(struct buf *b, const char *s); /* with its NUL */
void proto_put_bytes(struct buf *b, const void *p, size_t n);
void proto_finish(struct buf *b); /* fills in the length of the message begun last */

void proto_write_error(struct buf *b, const char *severity, const char *sqlstate,
		       const char *message);
/* A NoticeResponse, severity NOTICE. */
void proto_write_notice(struct buf *b, const char *sqlstate, const char *message);
void proto_write_auth(struct buf *b, uint32_t code, const void *data, size_t n);
void proto_write_param(struct buf *b, const char *name, const char *value);
/* BackendKeyData with a key of keylen bytes (4 for a 3.0 client, up to 256 from 3.2 on). */
void proto_write_backend_key(struct buf *b, uint32_t pid, const uint8_t *key, size_t keylen);
void proto_write_ready(struct buf *b, char status);
void proto_write_query(struct buf *b, const char *sql);
void proto_write_terminate(struct buf *b);
/* CancelRequest with a key of keylen bytes (4 for any 3.0 server). */
void proto_write_cancel(struct buf *b, uint32_t pid, const uint8_t *key, size_t keylen);
/* A 32-bit key as the 4 bytes a 3.0 message carries (network order). */
void proto_key_bytes(uint32_t key, uint8_t out[4]);
/* A result set made by Shoal itself (admin console, health probe): RowDescription with n text-
 * format columns of the given type OIDs, DataRows (NULL value: SQL NULL), CommandComplete. */
void proto_write_row_description(struct buf *b, int n, const char *const *names,
				 const uint32_t *type_oids);
void proto_write_data_row(struct buf *b, int n, const char *const *values);
void proto_write_command_complete(struct buf *b, const char *tag);

/* Type OIDs of the columns Shoal sends. */
#define PQ_OID_INT4 23
#define PQ_OID_INT8 20
#define PQ_OID_TEXT 25
#define PQ_OID_NUMERIC 1700
#define PQ_OID_TIMESTAMPTZ 1184

/* NegotiateProtocolVersion: newest minor we support and the options we did not recognise. */
void proto_write_negotiate(struct buf *b, uint32_t minor, const char *const *opts, int nopts);

#endif
