/* handoff_msg.c: encode and validate the handoff message of one client (handoff_msg.h). */
#include "handoff_msg.h"
#include "proto.h"

#include <stdlib.h>
#include <string.h>

#define HEAD_LEN 12 /* magic, version, flags, total length */

static bool str_ok(const char *s, bool empty_ok)
{
	return s && (empty_ok || *s) && strlen(s) <= HANDOFF_MAX_STR;
}

static void put_kvs(struct buf *b, const struct handoff_kv *kv, int n)
{
	proto_put_u16(b, (uint16_t)n);
	for (int i = 0; i < n; i++) {
		proto_put_str(b, kv[i].name);
		proto_put_str(b, kv[i].value);
		proto_put_u8(b, kv[i].raw ? 1 : 0);
	}
}

static bool kvs_ok(const struct handoff_kv *kv, int n)
{
	if (n < 0 || n > HANDOFF_MAX_PARAMS)
		return false;
	for (int i = 0; i < n; i++)
		if (!str_ok(kv[i].name, false) || !str_ok(kv[i].value, true))
			return false;
	return true;
}

static bool creds_ok(const struct handoff_rec *r)
{
	return (r->creds & ~HANDOFF_CRED_ALL) == 0 && (!r->creds || str_ok(r->password, false));
}

static bool rec_ok(const struct handoff_rec *r)
{
	return r->proto_minor <= 2 && (r->cancel_key_len == 4 || r->cancel_key_len == 32) &&
	       str_ok(r->user, false) && str_ok(r->dbname, false) && creds_ok(r) &&
	       kvs_ok(r->params, r->nparams) && kvs_ok(r->login, r->nlogin) && r->nstmts >= 0 &&
	       r->nstmts <= HANDOFF_MAX_STMTS;
}

static void put_creds(struct buf *b, const struct handoff_rec *r)
{
	proto_put_u8(b, r->creds);
	if (!r->creds)
		return;
	proto_put_str(b, r->password);
	if (r->creds & HANDOFF_CRED_KEYS) {
		proto_put_bytes(b, r->scram_client_key, 32);
		proto_put_bytes(b, r->scram_server_key, 32);
	}
}

void handoff_buf_free(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

shoal_rc handoff_encode(const struct handoff_rec *r, struct buf *out)
{
	if (!rec_ok(r))
		return SHOAL_ERROR;
	struct buf b = {0};
	proto_put_bytes(&b, HANDOFF_MAGIC, 4);
	proto_put_u16(&b, HANDOFF_VERSION);
	proto_put_u16(&b, 0);
	proto_put_u32(&b, 0); /* the total length, filled in below */
	proto_put_u8(&b, r->proto_minor);
	proto_put_u8(&b, r->cancel_key_len);
	proto_put_u32(&b, r->cancel_pid);
	proto_put_bytes(&b, r->cancel_key, r->cancel_key_len);
	proto_put_str(&b, r->user);
	proto_put_str(&b, r->dbname);
	put_creds(&b, r);
	put_kvs(&b, r->params, r->nparams);
	put_kvs(&b, r->login, r->nlogin);
	proto_put_u16(&b, (uint16_t)r->nstmts);
	for (int i = 0; i < r->nstmts && b.len - b.off <= HANDOFF_MAX_MSG; i++) {
		proto_put_str(&b, r->stmts[i].name);
		proto_put_u32(&b, r->stmts[i].len);
		proto_put_bytes(&b, r->stmts[i].body, r->stmts[i].len);
	}
	size_t n = b.len - b.off;
	if (n > HANDOFF_MAX_MSG) {
		handoff_buf_free(&b);
		return SHOAL_ERROR;
	}
	uint8_t *p = b.data + b.off + 8;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	buf_append(out, b.data + b.off, n);
	handoff_buf_free(&b);
	return SHOAL_OK;
}

static shoal_rc get_kvs(struct pq_reader *rd, struct handoff_kv **out, int *n)
{
	*n = pqr_u16(rd);
	if (rd->err || *n > HANDOFF_MAX_PARAMS)
		return SHOAL_ERROR;
	*out = *n ? xcalloc((size_t)*n, sizeof(**out)) : NULL;
	for (int i = 0; i < *n; i++) {
		struct handoff_kv *kv = &(*out)[i];
		kv->name = pqr_cstr(rd);
		kv->value = pqr_cstr(rd);
		uint8_t raw = pqr_u8(rd);
		if (rd->err || raw > 1 || !str_ok(kv->name, false) || !str_ok(kv->value, true))
			return SHOAL_ERROR;
		kv->raw = raw;
	}
	return SHOAL_OK;
}

/* A Parse body after the name: the query (NUL-terminated), u16 n, n OIDs, nothing more. */
static bool body_ok(const uint8_t *p, uint32_t len)
{
	struct pq_reader rd;
	pqr_init(&rd, p, len);
	(void)pqr_cstr(&rd);
	uint16_t n = pqr_u16(&rd);
	(void)pqr_bytes(&rd, (size_t)n * 4);
	return !rd.err && rd.pos == len;
}

static shoal_rc get_stmts(struct pq_reader *rd, struct handoff_rec *r)
{
	r->nstmts = pqr_u16(rd);
	if (rd->err || r->nstmts > HANDOFF_MAX_STMTS)
		return SHOAL_ERROR;
	r->stmts = r->nstmts ? xcalloc((size_t)r->nstmts, sizeof(*r->stmts)) : NULL;
	for (int i = 0; i < r->nstmts; i++) {
		struct handoff_stmt *st = &r->stmts[i];
		st->name = pqr_cstr(rd);
		st->len = pqr_u32(rd);
		if (rd->err || !str_ok(st->name, true) || st->len > rd->len - rd->pos)
			return SHOAL_ERROR;
		st->body = pqr_bytes(rd, st->len);
		if (!st->body || !body_ok(st->body, st->len))
			return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

static shoal_rc get_head(struct pq_reader *rd, size_t len, const char **why)
{
	const uint8_t *magic = pqr_bytes(rd, 4);
	uint16_t version = pqr_u16(rd), flags = pqr_u16(rd);
	uint32_t total = pqr_u32(rd);
	if (rd->err || memcmp(magic, HANDOFF_MAGIC, 4) != 0) {
		*why = "not a handoff message";
		return SHOAL_ERROR;
	}
	if (version != HANDOFF_VERSION || flags != 0) {
		*why = "unsupported handoff version";
		return SHOAL_ERROR;
	}
	if (total != len) {
		*why = "length mismatch";
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

static shoal_rc get_identity(struct pq_reader *rd, struct handoff_rec *r)
{
	r->proto_minor = pqr_u8(rd);
	r->cancel_key_len = pqr_u8(rd);
	r->cancel_pid = pqr_u32(rd);
	if (rd->err || r->proto_minor > 2 || (r->cancel_key_len != 4 && r->cancel_key_len != 32))
		return SHOAL_ERROR;
	const uint8_t *key = pqr_bytes(rd, r->cancel_key_len);
	if (!key || r->cancel_pid == 0)
		return SHOAL_ERROR;
	memcpy(r->cancel_key, key, r->cancel_key_len);
	r->user = pqr_cstr(rd);
	r->dbname = pqr_cstr(rd);
	return str_ok(r->user, false) && str_ok(r->dbname, false) ? SHOAL_OK : SHOAL_ERROR;
}

static shoal_rc get_creds(struct pq_reader *rd, struct handoff_rec *r)
{
	r->creds = pqr_u8(rd);
	if (rd->err || (r->creds & ~HANDOFF_CRED_ALL))
		return SHOAL_ERROR;
	if (!r->creds)
		return SHOAL_OK;
	r->password = pqr_cstr(rd);
	if (rd->err || !str_ok(r->password, false))
		return SHOAL_ERROR;
	if (r->creds & HANDOFF_CRED_KEYS) {
		const uint8_t *ck = pqr_bytes(rd, 32), *sk = pqr_bytes(rd, 32);
		if (rd->err || !ck || !sk)
			return SHOAL_ERROR;
		memcpy(r->scram_client_key, ck, 32);
		memcpy(r->scram_server_key, sk, 32);
	}
	return SHOAL_OK;
}

shoal_rc handoff_decode(const uint8_t *msg, size_t len, struct handoff_rec *r, const char **why)
{
	struct pq_reader rd;
	memset(r, 0, sizeof(*r));
	*why = "malformed handoff message";
	if (len < HEAD_LEN || len > HANDOFF_MAX_MSG) {
		*why = "handoff message of a bad size";
		return SHOAL_ERROR;
	}
	pqr_init(&rd, msg, len);
	if (get_head(&rd, len, why) != SHOAL_OK)
		return SHOAL_ERROR;
	if (get_identity(&rd, r) != SHOAL_OK || get_creds(&rd, r) != SHOAL_OK ||
	    get_kvs(&rd, &r->params, &r->nparams) != SHOAL_OK ||
	    get_kvs(&rd, &r->login, &r->nlogin) != SHOAL_OK || get_stmts(&rd, r) != SHOAL_OK ||
	    rd.pos != len) {
		handoff_rec_free(r);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

void handoff_rec_free(struct handoff_rec *r)
{
	free(r->params);
	free(r->login);
	free(r->stmts);
	explicit_bzero(r->cancel_key, sizeof(r->cancel_key));
	explicit_bzero(r->scram_client_key, sizeof(r->scram_client_key));
	explicit_bzero(r->scram_server_key, sizeof(r->scram_server_key));
	memset(r, 0, sizeof(*r));
}
