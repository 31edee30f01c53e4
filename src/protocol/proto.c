/* proto.c: pure PostgreSQL v3 message codec; no I/O, no globals. */
#include "proto.h"

#include <arpa/inet.h>
#include <string.h>

/* pqr_cstr for a body whose last byte is a NUL: every string ends inside it, so strlen finds
 * its end (the common case; otherwise pqr_cstr's bounded search and its errors). */
static const char *startup_cstr(struct pq_reader *r, bool nul_ended)
{
	if (!nul_ended)
		return pqr_cstr(r);
	if (r->err || r->pos >= r->len) {
		r->err = true;
		return NULL;
	}
	const char *s = (const char *)r->p + r->pos;
	r->pos += strlen(s) + 1;
	return s;
}

static void parse_params(struct pq_reader *r, struct startup_msg *out)
{
	bool nul_ended = r->len > r->pos && r->p[r->len - 1] == '\0';
	for (;;) {
		const char *name = startup_cstr(r, nul_ended);
		if (!name) {
			out->error = "startup packet is not terminated";
			return;
		}
		if (name[0] == '\0')
			break;
		const char *value = startup_cstr(r, nul_ended);
		if (!value) {
			out->error = "startup parameter has no value";
			return;
		}
		if (out->nparams == PQ_MAX_STARTUP_PARAMS) {
			out->error = "too many startup parameters";
			return;
		}
		out->params[out->nparams].name = name;
		out->params[out->nparams].value = value;
		out->nparams++;
	}
	if (r->pos != r->len)
		out->error = "trailing bytes after startup parameters";
}

void proto_parse_startup(const uint8_t *pkt, size_t len, struct startup_msg *out)
{
	struct pq_reader r;
	/* Field by field: params[] (1 KB) is read only up to nparams. */
	out->kind = STARTUP_INVALID;
	out->code = out->cancel_pid = out->cancel_key_len = 0;
	out->cancel_key = NULL;
	out->nparams = 0;
	out->error = NULL;
	pqr_init(&r, pkt, len);
	uint32_t declared = pqr_u32(&r);
	out->code = pqr_u32(&r);
	if (r.err || declared != len || len > PQ_MAX_STARTUP) {
		out->error = "invalid startup packet length";
		return;
	}
	switch (out->code) {
	case PQ_SSL_CODE:
		out->kind = len == 8 ? STARTUP_SSL : STARTUP_INVALID;
		break;
	case PQ_GSSENC_CODE:
		out->kind = len == 8 ? STARTUP_GSSENC : STARTUP_INVALID;
		break;
	case PQ_CANCEL_CODE:
		/* The key runs to the end of the packet: 4 bytes before protocol 3.2, up to 256
		 * after. The packet does not say which protocol issued the key. */
		out->cancel_pid = pqr_u32(&r);
		out->cancel_key_len = (uint32_t)(len - r.pos);
		if (!r.err && out->cancel_key_len >= PQ_CANCEL_KEY_MIN &&
		    out->cancel_key_len <= PQ_CANCEL_KEY_MAX) {
			out->cancel_key = pqr_bytes(&r, out->cancel_key_len);
			out->kind = STARTUP_CANCEL;
		} else {
			out->cancel_pid = 0;
			out->cancel_key_len = 0;
		}
		break;
	default:
		if ((out->code >> 16) != 3) {
			out->error = "unsupported frontend protocol";
			return;
		}
		parse_params(&r, out);
		if (!out->error)
			out->kind = STARTUP_NORMAL;
		return;
	}
	if (out->kind == STARTUP_INVALID)
		out->error = "invalid length of special startup packet";
}

const char *pqr_cstr(struct pq_reader *r)
{
	if (r->err || r->pos >= r->len) { /* also keeps NULL + 0 and memchr(NULL) out of reach */
		r->err = true;
		return NULL;
	}
	const uint8_t *start = r->p + r->pos;
	const uint8_t *nul = memchr(start, 0, r->len - r->pos);
	if (!nul) {
		r->err = true;
		return NULL;
	}
	r->pos += (size_t)(nul - start) + 1;
	return (const char *)start;
}

shoal_rc proto_parse_error(const uint8_t *body, size_t len, struct pq_error *e)
{
	struct pq_reader r;
	memset(e, 0, sizeof(*e));
	pqr_init(&r, body, len);
	for (;;) {
		uint8_t code = pqr_u8(&r);
		if (r.err)
			return SHOAL_ERROR;
		if (code == 0)
			return r.pos == len ? SHOAL_OK : SHOAL_ERROR;
		const char *v = pqr_cstr(&r);
		if (!v)
			return SHOAL_ERROR;
		switch (code) {
		case 'S': e->severity = v; break;
		case 'V': e->severity_nl = v; break;
		case 'C': e->sqlstate = v; break;
		case 'M': e->message = v; break;
		case 'D': e->detail = v; break;
		default: break;
		}
	}
}

shoal_rc proto_parse_param(const uint8_t *body, size_t len, const char **name, const char **value)
{
	struct pq_reader r;
	pqr_init(&r, body, len);
	*name = pqr_cstr(&r);
	*value = pqr_cstr(&r);
	return (r.err || r.pos != len) ? SHOAL_ERROR : SHOAL_OK;
}

void proto_begin(struct buf *b, uint8_t type)
{
	buf_reserve(b, 5);
	if (type)
		b->data[b->len++] = type;
	b->mark = b->len; /* where the length field goes */
	memset(b->data + b->len, 0, 4);
	b->len += 4;
}

void proto_finish(struct buf *b)
{
	uint32_t n = htonl((uint32_t)(b->len - b->mark));
	memcpy(b->data + b->mark, &n, 4);
}

void proto_put_u8(struct buf *b, uint8_t v)
{
	buf_append(b, &v, 1);
}

void proto_put_u16(struct buf *b, uint16_t v)
{
	uint16_t n = htons(v);
	buf_append(b, &n, 2);
}

void proto_put_u32(struct buf *b, uint32_t v)
{
	uint32_t n = htonl(v);
	buf_append(b, &n, 4);
}

void proto_put_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s) + 1);
}

void proto_put_bytes(struct buf *b, const void *p, size_t n)
{
	buf_append(b, p, n);
}

static void write_fields(struct buf *b, uint8_t type, const char *severity, const char *sqlstate,
			 const char *message)
{
	proto_begin(b, type);
	proto_put_u8(b, 'S');
	proto_put_str(b, severity);
	proto_put_u8(b, 'V');
	proto_put_str(b, severity);
	proto_put_u8(b, 'C');
	proto_put_str(b, sqlstate);
	proto_put_u8(b, 'M');
	proto_put_str(b, message);
	proto_put_u8(b, 0);
	proto_finish(b);
}

void proto_write_error(struct buf *b, const char *severity, const char *sqlstate,
		       const char *message)
{
	write_fields(b, PQMSG_ERROR, severity, sqlstate, message);
}

void proto_write_notice(struct buf *b, const char *sqlstate, const char *message)
{
	write_fields(b, PQMSG_NOTICE, "NOTICE", sqlstate, message);
}

void proto_write_auth(struct buf *b, uint32_t code, const void *data, size_t n)
{
	proto_begin(b, PQMSG_AUTH);
	proto_put_u32(b, code);
	if (n)
		proto_put_bytes(b, data, n);
	proto_finish(b);
}

/* Type, length and room for a message of body bytes (the login's messages, written whole
 * where proto_begin/proto_finish would measure them); returns where the body goes. */
static uint8_t *put_header(struct buf *b, uint8_t type, size_t body)
{
	uint32_t n = htonl((uint32_t)(body + 4));
	buf_reserve(b, PQ_HEADER_LEN + body);
	uint8_t *o = b->data + b->len;
	o[0] = type;
	memcpy(o + 1, &n, 4);
	b->len += PQ_HEADER_LEN + body;
	return o + PQ_HEADER_LEN;
}

void proto_write_param(struct buf *b, const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	uint8_t *o = put_header(b, PQMSG_PARAMETER_STATUS, nl + vl);
	memcpy(o, name, nl);
	memcpy(o + nl, value, vl);
}

void proto_write_backend_key(struct buf *b, uint32_t pid, const uint8_t *key, size_t keylen)
{
	uint32_t n = htonl(pid);
	uint8_t *o = put_header(b, PQMSG_BACKEND_KEY, 4 + keylen);
	memcpy(o, &n, 4);
	memcpy(o + 4, key, keylen);
}

void proto_key_bytes(uint32_t key, uint8_t out[4])
{
	out[0] = (uint8_t)(key >> 24);
	out[1] = (uint8_t)(key >> 16);
	out[2] = (uint8_t)(key >> 8);
	out[3] = (uint8_t)key;
}

void proto_write_ready(struct buf *b, char status)
{
	*put_header(b, PQMSG_READY, 1) = (uint8_t)status;
}

void proto_write_query(struct buf *b, const char *sql)
{
	proto_begin(b, PQMSG_QUERY);
	proto_put_str(b, sql);
	proto_finish(b);
}

static int16_t type_len(uint32_t oid)
{
	switch (oid) {
	case PQ_OID_INT4: return 4;
	case PQ_OID_INT8:
	case PQ_OID_TIMESTAMPTZ: return 8;
	default: return -1; /* varlena */
	}
}

void proto_write_row_description(struct buf *b, int n, const char *const *names,
				 const uint32_t *type_oids)
{
	proto_begin(b, PQMSG_ROW_DESCRIPTION);
	proto_put_u16(b, (uint16_t)n);
	for (int i = 0; i < n; i++) {
		proto_put_str(b, names[i]);
		proto_put_u32(b, 0); /* no table */
		proto_put_u16(b, 0); /* no column number */
		proto_put_u32(b, type_oids[i]);
		proto_put_u16(b, (uint16_t)type_len(type_oids[i]));
		proto_put_u32(b, 0xffffffff); /* typmod -1 */
		proto_put_u16(b, 0);          /* text format */
	}
	proto_finish(b);
}

void proto_write_data_row(struct buf *b, int n, const char *const *values)
{
	proto_begin(b, PQMSG_DATA_ROW);
	proto_put_u16(b, (uint16_t)n);
	for (int i = 0; i < n; i++) {
		if (!values[i]) {
			proto_put_u32(b, 0xffffffff);
			continue;
		}
		size_t len = strlen(values[i]);
		proto_put_u32(b, (uint32_t)len);
		proto_put_bytes(b, values[i], len);
	}
	proto_finish(b);
}

void proto_write_command_complete(struct buf *b, const char *tag)
{
	proto_begin(b, PQMSG_COMMAND_COMPLETE);
	proto_put_str(b, tag);
	proto_finish(b);
}

void proto_write_terminate(struct buf *b)
{
	proto_begin(b, PQMSG_TERMINATE);
	proto_finish(b);
}

void proto_write_cancel(struct buf *b, uint32_t pid, const uint8_t *key, size_t keylen)
{
	proto_begin(b, 0);
	proto_put_u32(b, PQ_CANCEL_CODE);
	proto_put_u32(b, pid);
	proto_put_bytes(b, key, keylen);
	proto_finish(b);
}

void proto_write_negotiate(struct buf *b, uint32_t minor, const char *const *opts, int nopts)
{
	proto_begin(b, PQMSG_NEGOTIATE);
	proto_put_u32(b, (3u << 16) | minor);
	proto_put_u32(b, (uint32_t)nopts);
	for (int i = 0; i < nopts; i++)
		proto_put_str(b, opts[i]);
	proto_finish(b);
}
