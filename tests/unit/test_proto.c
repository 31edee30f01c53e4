/* test_proto.c: unit tests for proto.c: header decoding, size caps, startup packets of every
 * kind, the bounds-checked reader, error/parameter parsing, and the writers' byte layouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto.h"

/* ---- helpers ---- */

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Check that b holds exactly want (n bytes). */
static void assert_bytes(const struct buf *b, const void *want, size_t n)
{
	assert_int_equal(buf_avail(b), n);
	assert_memory_equal(buf_head(b), want, n);
}

/* A protocol-3 startup packet with the given name/value pairs (NULL-terminated list). */
static void build_startup(struct buf *b, uint32_t code, const char *const *kv)
{
	proto_begin(b, 0);
	proto_put_u32(b, code);
	for (; kv && *kv; kv++)
		proto_put_str(b, *kv);
	proto_put_u8(b, 0);
	proto_finish(b);
}

static void parse_buf(const struct buf *b, struct startup_msg *m)
{
	proto_parse_startup(buf_head(b), buf_avail(b), m);
}

/* ---- headers and caps ---- */

static void test_header_needs_five_bytes(void **state)
{
	(void)state;
	const uint8_t msg[] = {'Q', 0, 0, 0, 9, 'x'};
	struct pq_header h;
	for (size_t n = 0; n < PQ_HEADER_LEN; n++)
		assert_int_equal(proto_header(msg, n, &h), SHOAL_AGAIN);
	assert_int_equal(proto_header(msg, sizeof(msg), &h), SHOAL_OK);
	assert_int_equal(h.type, 'Q');
	assert_int_equal(h.len, 9);
}

static void test_header_length_below_four_is_an_error(void **state)
{
	(void)state;
	struct pq_header h;
	const uint8_t three[] = {'X', 0, 0, 0, 3};
	const uint8_t four[] = {'X', 0, 0, 0, 4};
	const uint8_t zero[] = {'X', 0, 0, 0, 0};
	const uint8_t huge[] = {'d', 0xff, 0xff, 0xff, 0xff};
	assert_int_equal(proto_header(three, 5, &h), SHOAL_ERROR);
	assert_int_equal(proto_header(zero, 5, &h), SHOAL_ERROR);
	assert_int_equal(proto_header(four, 5, &h), SHOAL_OK);
	assert_int_equal(h.len, 4);
	assert_int_equal(proto_header(huge, 5, &h), SHOAL_OK);
	assert_int_equal(h.len, 0xffffffffu);
	assert_true(h.len > proto_client_msg_cap(h.type));
}

static void test_client_caps(void **state)
{
	(void)state;
	const uint8_t large[] = {PQMSG_QUERY,	      PQMSG_PARSE,     PQMSG_BIND,
				 PQMSG_FUNCTION_CALL, PQMSG_COPY_DATA, PQMSG_COPY_FAIL,
				 PQMSG_PASSWORD};
	const uint8_t small[] = {PQMSG_DESCRIBE, PQMSG_EXECUTE,	  PQMSG_CLOSE,	  PQMSG_SYNC,
				 PQMSG_FLUSH,	 PQMSG_COPY_DONE, PQMSG_TERMINATE};
	const uint8_t invalid[] = {0, 'Z', 'R', 'T', 'K', 'A', 'q', 0xff, 'v'};
	for (size_t i = 0; i < sizeof(large); i++)
		assert_int_equal(proto_client_msg_cap(large[i]), PQ_LARGE_MSG_LIMIT);
	for (size_t i = 0; i < sizeof(small); i++)
		assert_int_equal(proto_client_msg_cap(small[i]), PQ_SMALL_MSG_LIMIT);
	for (size_t i = 0; i < sizeof(invalid); i++)
		assert_int_equal(proto_client_msg_cap(invalid[i]), 0);
}

static void test_server_caps(void **state)
{
	(void)state;
	assert_int_equal(proto_server_msg_cap(PQMSG_READY), PQ_SMALL_MSG_LIMIT);
	assert_int_equal(proto_server_msg_cap(PQMSG_BACKEND_KEY), PQ_SMALL_MSG_LIMIT);
	assert_int_equal(proto_server_msg_cap(PQMSG_EMPTY_QUERY), PQ_SMALL_MSG_LIMIT);
	assert_int_equal(proto_server_msg_cap(PQMSG_DATA_ROW), PQ_LARGE_MSG_LIMIT);
	assert_int_equal(proto_server_msg_cap(PQMSG_ERROR), PQ_LARGE_MSG_LIMIT);
	assert_int_equal(proto_server_msg_cap(0), PQ_LARGE_MSG_LIMIT);
}

/* ---- startup packets ---- */

static void test_startup_normal(void **state)
{
	(void)state;
	static const char *const kv[] = {"user", "alice", "database", "db", "options", "", NULL};
	struct buf b = {0};
	struct startup_msg m;
	build_startup(&b, PQ_PROTOCOL_3_0, kv);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_NORMAL);
	assert_null(m.error);
	assert_int_equal(m.code, PQ_PROTOCOL_3_0);
	assert_int_equal(m.nparams, 3);
	assert_string_equal(m.params[0].name, "user");
	assert_string_equal(m.params[0].value, "alice");
	assert_string_equal(m.params[1].name, "database");
	assert_string_equal(m.params[1].value, "db");
	assert_string_equal(m.params[2].name, "options");
	assert_string_equal(m.params[2].value, "");
	/* strings point into the packet */
	assert_true((const uint8_t *)m.params[0].name >= buf_head(&b));
	assert_true((const uint8_t *)m.params[2].value < buf_head(&b) + buf_avail(&b));
	buf_free(&b);
}

static void test_startup_no_params_and_newer_minor(void **state)
{
	(void)state;
	struct buf b = {0};
	struct startup_msg m;
	build_startup(&b, PQ_PROTOCOL_3_0 | 2, NULL);
	assert_int_equal(buf_avail(&b), 9);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_NORMAL);
	assert_int_equal(m.code, PQ_PROTOCOL_3_0 | 2);
	assert_int_equal(m.nparams, 0);
	buf_free(&b);
}

static void test_startup_special_codes(void **state)
{
	(void)state;
	struct startup_msg m;
	const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
	const uint8_t gss[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30};
	const uint8_t cancel[] = {0, 0, 0,    16,   0x04, 0xd2, 0x16, 0x2e,
				  0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef};
	proto_parse_startup(ssl, sizeof(ssl), &m);
	assert_int_equal(m.kind, STARTUP_SSL);
	assert_int_equal(m.code, PQ_SSL_CODE);
	assert_null(m.error);
	proto_parse_startup(gss, sizeof(gss), &m);
	assert_int_equal(m.kind, STARTUP_GSSENC);
	assert_int_equal(m.code, PQ_GSSENC_CODE);
	proto_parse_startup(cancel, sizeof(cancel), &m);
	assert_int_equal(m.kind, STARTUP_CANCEL);
	assert_int_equal(m.cancel_pid, 12345);
	assert_int_equal(m.cancel_key_len, 4);
	assert_memory_equal(m.cancel_key, "\xde\xad\xbe\xef", 4);
	assert_ptr_equal(m.cancel_key, cancel + 12); /* points into the packet */
	assert_null(m.error);
}

/* Protocol 3.2 (PostgreSQL 18): the key runs to the end of the packet, 4 to 256 bytes. */
static void test_startup_cancel_long_keys(void **state)
{
	(void)state;
	struct startup_msg m;
	uint8_t pkt[12 + PQ_CANCEL_KEY_MAX + 1];
	for (size_t i = 0; i < sizeof(pkt); i++)
		pkt[i] = (uint8_t)(i * 7);
	const size_t lens[] = {4, 8, 32, 255, 256};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct buf b = {0};
		proto_write_cancel(&b, 777, pkt, lens[i]);
		parse_buf(&b, &m);
		assert_int_equal(m.kind, STARTUP_CANCEL);
		assert_int_equal(m.cancel_pid, 777);
		assert_int_equal(m.cancel_key_len, lens[i]);
		assert_memory_equal(m.cancel_key, pkt, lens[i]);
		buf_free(&b);
	}
	struct buf b = {0}; /* 257 bytes: over PostgreSQL's maximum */
	proto_write_cancel(&b, 777, pkt, PQ_CANCEL_KEY_MAX + 1);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_non_null(m.error);
	assert_null(m.cancel_key);
	buf_free(&b);
}

static void test_startup_special_codes_with_wrong_length(void **state)
{
	(void)state;
	struct startup_msg m;
	const uint8_t ssl12[] = {0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2f, 0, 0, 0, 0};
	const uint8_t cancel12[] = {0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1};
	/* a key of 3 bytes: below the minimum of 4 */
	const uint8_t cancel15[] = {0, 0, 0, 15, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 2};
	proto_parse_startup(ssl12, sizeof(ssl12), &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_non_null(m.error);
	proto_parse_startup(cancel12, sizeof(cancel12), &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_non_null(m.error);
	proto_parse_startup(cancel15, sizeof(cancel15), &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_non_null(m.error);
}

static void test_startup_protocol_2_is_rejected(void **state)
{
	(void)state;
	struct buf b = {0};
	struct startup_msg m;
	build_startup(&b, 2u << 16, NULL);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_string_equal(m.error, "unsupported frontend protocol");
	buf_free(&b);
	build_startup(&b, 4u << 16, NULL);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	buf_free(&b);
}

static void test_startup_bad_lengths(void **state)
{
	(void)state;
	static const char *const kv[] = {"user", "u", NULL};
	struct buf b = {0};
	struct startup_msg m;
	build_startup(&b, PQ_PROTOCOL_3_0, kv);
	/* truncated: every shorter prefix disagrees with the declared length */
	for (size_t n = 0; n < buf_avail(&b); n++) {
		proto_parse_startup(buf_head(&b), n, &m);
		assert_int_equal(m.kind, STARTUP_INVALID);
		assert_non_null(m.error);
	}
	/* declared length larger than the bytes given */
	b.data[3] += 1;
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_string_equal(m.error, "invalid startup packet length");
	/* declared length below 8 */
	const uint8_t tiny[] = {0, 0, 0, 4, 0, 3, 0, 0};
	proto_parse_startup(tiny, sizeof(tiny), &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	buf_free(&b);
}

static void test_startup_oversized(void **state)
{
	(void)state;
	static char big[PQ_MAX_STARTUP];
	memset(big, 'x', sizeof(big) - 1);
	const char *kv[] = {"user", big, NULL};
	struct buf b = {0};
	struct startup_msg m;
	build_startup(&b, PQ_PROTOCOL_3_0, kv);
	assert_true(buf_avail(&b) > PQ_MAX_STARTUP);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_string_equal(m.error, "invalid startup packet length");
	buf_free(&b);
}

static void test_startup_unterminated_and_malformed(void **state)
{
	(void)state;
	struct buf b = {0};
	struct startup_msg m;
	/* no final NUL after the last pair */
	proto_begin(&b, 0);
	proto_put_u32(&b, PQ_PROTOCOL_3_0);
	proto_put_str(&b, "user");
	proto_put_str(&b, "u");
	proto_finish(&b);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_string_equal(m.error, "startup packet is not terminated");
	buf_free(&b);
	/* a name with no value */
	proto_begin(&b, 0);
	proto_put_u32(&b, PQ_PROTOCOL_3_0);
	proto_put_str(&b, "user");
	proto_finish(&b);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_string_equal(m.error, "startup parameter has no value");
	buf_free(&b);
	/* an unterminated name */
	proto_begin(&b, 0);
	proto_put_u32(&b, PQ_PROTOCOL_3_0);
	proto_put_bytes(&b, "use", 3);
	proto_finish(&b);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	buf_free(&b);
	/* bytes after the terminating NUL */
	proto_begin(&b, 0);
	proto_put_u32(&b, PQ_PROTOCOL_3_0);
	proto_put_u8(&b, 0);
	proto_put_str(&b, "junk");
	proto_finish(&b);
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
	assert_string_equal(m.error, "trailing bytes after startup parameters");
	buf_free(&b);
}

static void test_startup_too_many_params(void **state)
{
	(void)state;
	struct buf b = {0};
	struct startup_msg m;
	for (int n = PQ_MAX_STARTUP_PARAMS; n <= PQ_MAX_STARTUP_PARAMS + 1; n++) {
		proto_begin(&b, 0);
		proto_put_u32(&b, PQ_PROTOCOL_3_0);
		for (int i = 0; i < n; i++) {
			proto_put_str(&b, "k");
			proto_put_str(&b, "v");
		}
		proto_put_u8(&b, 0);
		proto_finish(&b);
		parse_buf(&b, &m);
		if (n == PQ_MAX_STARTUP_PARAMS) {
			assert_int_equal(m.kind, STARTUP_NORMAL);
			assert_int_equal(m.nparams, PQ_MAX_STARTUP_PARAMS);
		} else {
			assert_int_equal(m.kind, STARTUP_INVALID);
			assert_string_equal(m.error, "too many startup parameters");
		}
		buf_free(&b);
	}
}

/* ---- the reader ---- */

static void test_reader_reads_in_order(void **state)
{
	(void)state;
	const uint8_t body[] = {7, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 'h', 'i', 0, 'x', 'y'};
	struct pq_reader r;
	pqr_init(&r, body, sizeof(body));
	assert_int_equal(pqr_u8(&r), 7);
	assert_int_equal(pqr_u16(&r), 0x1234);
	assert_int_equal(pqr_u32(&r), 0xdeadbeefu);
	assert_string_equal(pqr_cstr(&r), "hi");
	const uint8_t *p = pqr_bytes(&r, 2);
	assert_ptr_equal(p, body + 10);
	assert_non_null(pqr_bytes(&r, 0));
	assert_false(r.err);
	assert_int_equal(r.pos, sizeof(body));
}

static void test_reader_bounds_are_sticky(void **state)
{
	(void)state;
	const uint8_t body[] = {1, 2, 3};
	struct pq_reader r;
	pqr_init(&r, body, sizeof(body));
	assert_int_equal(pqr_u32(&r), 0);
	assert_true(r.err);
	assert_int_equal(r.pos, 0);
	/* once in error, even in-bounds reads fail */
	assert_int_equal(pqr_u8(&r), 0);
	assert_null(pqr_bytes(&r, 1));
	assert_null(pqr_cstr(&r));

	pqr_init(&r, body, sizeof(body));
	assert_int_equal(pqr_u16(&r), 0x0102);
	assert_int_equal(pqr_u16(&r), 0);
	assert_true(r.err);

	pqr_init(&r, body, sizeof(body));
	assert_null(pqr_bytes(&r, 4));
	assert_true(r.err);

	pqr_init(&r, body, sizeof(body));
	assert_null(pqr_bytes(&r, SIZE_MAX));
	assert_true(r.err);

	pqr_init(&r, body, 0);
	assert_int_equal(pqr_u8(&r), 0);
	assert_true(r.err);
}

static void test_reader_unterminated_string(void **state)
{
	(void)state;
	const uint8_t body[] = {'a', 0, 'b', 'c'};
	struct pq_reader r;
	pqr_init(&r, body, sizeof(body));
	assert_string_equal(pqr_cstr(&r), "a");
	assert_null(pqr_cstr(&r));
	assert_true(r.err);
	assert_int_equal(r.pos, 2);

	pqr_init(&r, body, 2);
	assert_string_equal(pqr_cstr(&r), "a");
	assert_null(pqr_cstr(&r)); /* at the end: nothing left to scan */
	assert_true(r.err);
}

/* An empty body may come as (NULL, 0): no reader function may do arithmetic on it. */
static void test_reader_null_empty_body(void **state)
{
	(void)state;
	struct pq_reader r;
	pqr_init(&r, NULL, 0);
	assert_null(pqr_cstr(&r));
	assert_true(r.err);
	pqr_init(&r, NULL, 0);
	assert_int_equal(pqr_u32(&r), 0);
	assert_true(r.err);
	const char *name, *value;
	assert_int_equal(proto_parse_param(NULL, 0, &name, &value), SHOAL_ERROR);
	struct pq_error e;
	assert_int_equal(proto_parse_error(NULL, 0, &e), SHOAL_ERROR);
	struct startup_msg m;
	proto_parse_startup(NULL, 0, &m);
	assert_int_equal(m.kind, STARTUP_INVALID);
}

/* A message built while the buffer's unsent head is moved to the front (the buffer grows with
 * bytes already sent from it) keeps its length field in the right place. Before the fix the
 * length was written at the old offset: PostgreSQL saw a Bind of length 0. */
static void test_builder_survives_compaction(void **state)
{
	(void)state;
	struct buf b = {0};
	uint8_t filler[400];
	memset(filler, 'f', sizeof(filler));
	buf_append(&b, filler, sizeof(filler));
	buf_consume(&b, 300); /* 300 bytes sent, 100 still queued */
	proto_begin(&b, 'B');
	uint8_t payload[200];
	memset(payload, 'p', sizeof(payload));
	proto_put_bytes(&b, payload, sizeof(payload)); /* room by compaction, not realloc */
	proto_finish(&b);
	assert_int_equal(buf_avail(&b), 100 + 1 + 4 + 200);
	const uint8_t *m = buf_head(&b) + 100;
	assert_int_equal(m[0], 'B');
	assert_int_equal(be32(m + 1), 4 + 200);
	assert_memory_equal(m + 5, payload, sizeof(payload));
	buf_free(&b);
}

/* ---- error and parameter messages ---- */

static void test_error_round_trip(void **state)
{
	(void)state;
	struct buf b = {0};
	proto_write_error(&b, "FATAL", "08P01", "invalid startup packet");
	struct pq_header h = {0}; /* set: the compiler sees proto_header's AGAIN path, inline */
	assert_int_equal(proto_header(buf_head(&b), buf_avail(&b), &h), SHOAL_OK);
	assert_int_equal(h.type, PQMSG_ERROR);
	assert_int_equal(h.len + 1, buf_avail(&b));
	struct pq_error e;
	assert_int_equal(proto_parse_error(buf_head(&b) + 5, h.len - 4, &e), SHOAL_OK);
	assert_string_equal(e.severity, "FATAL");
	assert_string_equal(e.severity_nl, "FATAL");
	assert_string_equal(e.sqlstate, "08P01");
	assert_string_equal(e.message, "invalid startup packet");
	assert_null(e.detail);
	/* the exact layout: fields S V C M, then a terminating zero */
	static const char want[] = "E\0\0\0\x32"
				   "SFATAL\0VFATAL\0C08P01\0Minvalid startup packet\0";
	assert_bytes(&b, want, sizeof(want));
	buf_free(&b);
}

static void test_error_with_detail_and_unknown_fields(void **state)
{
	(void)state;
	static const char body[] = "SERROR\0Dsome detail\0Ffile.c\0L42\0M msg\0C42P01\0";
	struct pq_error e;
	assert_int_equal(proto_parse_error((const uint8_t *)body, sizeof(body), &e), SHOAL_OK);
	assert_string_equal(e.severity, "ERROR");
	assert_null(e.severity_nl);
	assert_string_equal(e.detail, "some detail");
	assert_string_equal(e.message, " msg");
	assert_string_equal(e.sqlstate, "42P01");
	/* just the terminator */
	assert_int_equal(proto_parse_error((const uint8_t *)"", 1, &e), SHOAL_OK);
	assert_null(e.message);
}

static void test_error_malformed(void **state)
{
	(void)state;
	struct pq_error e;
	static const char no_term[] = "SERROR\0Mmsg"; /* sizeof includes one NUL: no terminator */
	static const char unterminated_field[] = "SERROR\0Mmsg";
	static const char trailing[] = "SERROR\0\0junk";
	assert_int_equal(proto_parse_error((const uint8_t *)no_term, sizeof(no_term), &e),
			 SHOAL_ERROR);
	assert_int_equal(proto_parse_error((const uint8_t *)unterminated_field,
					   sizeof(unterminated_field) - 1, &e),
			 SHOAL_ERROR);
	assert_int_equal(proto_parse_error((const uint8_t *)trailing, sizeof(trailing), &e),
			 SHOAL_ERROR);
	assert_int_equal(proto_parse_error((const uint8_t *)"", 0, &e), SHOAL_ERROR);
}

static void test_param_round_trip(void **state)
{
	(void)state;
	struct buf b = {0};
	proto_write_param(&b, "server_version", "16.2");
	static const char want[] = "S\0\0\0\x18server_version\0"
				   "16.2";
	assert_bytes(&b, want, sizeof(want));
	const char *name, *value;
	assert_int_equal(proto_parse_param(buf_head(&b) + 5, buf_avail(&b) - 5, &name, &value),
			 SHOAL_OK);
	assert_string_equal(name, "server_version");
	assert_string_equal(value, "16.2");
	buf_free(&b);
}

static void test_param_malformed(void **state)
{
	(void)state;
	const char *name, *value;
	static const char one[] = "name";
	static const char extra[] = "a\0b\0c";
	static const char unterminated[] = {'a', 0, 'b'};
	assert_int_equal(proto_parse_param((const uint8_t *)one, sizeof(one), &name, &value),
			 SHOAL_ERROR);
	assert_int_equal(proto_parse_param((const uint8_t *)extra, sizeof(extra), &name, &value),
			 SHOAL_ERROR);
	assert_int_equal(
	    proto_parse_param((const uint8_t *)unterminated, sizeof(unterminated), &name, &value),
	    SHOAL_ERROR);
	assert_int_equal(proto_parse_param((const uint8_t *)"", 0, &name, &value), SHOAL_ERROR);
}

/* ---- writers ---- */

static void test_write_auth(void **state)
{
	(void)state;
	struct buf b = {0};
	proto_write_auth(&b, PQAUTH_OK, NULL, 0);
	assert_bytes(&b, "R\0\0\0\x08\0\0\0\0", 9);
	buf_free(&b);
	proto_write_auth(&b, PQAUTH_MD5, "salt", 4);
	assert_bytes(&b, "R\0\0\0\x0c\0\0\0\x05salt", 13);
	buf_free(&b);
	static const char mechs[] = "SCRAM-SHA-256\0"; /* list of names, then an empty one */
	proto_write_auth(&b, PQAUTH_SASL, mechs, sizeof(mechs));
	assert_int_equal(be32(buf_head(&b) + 1), 4 + 4 + sizeof(mechs));
	assert_int_equal(be32(buf_head(&b) + 5), PQAUTH_SASL);
	assert_memory_equal(buf_head(&b) + 9, mechs, sizeof(mechs));
	buf_free(&b);
}

static void test_write_small_messages(void **state)
{
	(void)state;
	struct buf b = {0};
	uint8_t key[4];
	proto_key_bytes(0xa0b0c0d0, key);
	proto_write_backend_key(&b, 0x01020304, key, sizeof(key));
	assert_bytes(&b, "K\0\0\0\x0c\x01\x02\x03\x04\xa0\xb0\xc0\xd0", 13);
	buf_free(&b);
	proto_write_backend_key(&b, 0x01020304, (const uint8_t *)"0123456789abcdef", 16);
	assert_bytes(&b, "K\0\0\0\x18\x01\x02\x03\x04" "0123456789abcdef", 25);
	buf_free(&b);
	proto_write_ready(&b, 'T');
	assert_bytes(&b, "Z\0\0\0\x05T", 6);
	buf_free(&b);
	proto_write_query(&b, "SELECT 1");
	assert_bytes(&b, "Q\0\0\0\x0dSELECT 1", 14);
	buf_free(&b);
	proto_write_terminate(&b);
	assert_bytes(&b, "X\0\0\0\x04", 5);
	buf_free(&b);
}

static void test_write_result_set(void **state)
{
	(void)state;
	struct buf b = {0};
	const char *names[] = {"database", "cl_active"};
	const uint32_t oids[] = {PQ_OID_TEXT, PQ_OID_INT4};
	proto_write_row_description(&b, 2, names, oids);
	assert_bytes(&b,
		     "T\0\0\0\x3d\0\x02"
		     "database\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0"
		     "cl_active\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
		     62);
	buf_free(&b);
	const char *row[] = {"app", NULL};
	proto_write_data_row(&b, 2, row);
	assert_bytes(&b, "D\0\0\0\x11\0\x02\0\0\0\x03" "app\xff\xff\xff\xff", 18);
	buf_free(&b);
	proto_write_command_complete(&b, "SHOW");
	assert_bytes(&b, "C\0\0\0\x09SHOW\0", 10);
	buf_free(&b);
}

static void test_write_cancel_parses_back(void **state)
{
	(void)state;
	struct buf b = {0};
	uint8_t key[4];
	proto_key_bytes(0x89abcdef, key);
	proto_write_cancel(&b, 4242, key, sizeof(key));
	assert_bytes(&b, "\0\0\0\x10\x04\xd2\x16\x2e\0\0\x10\x92\x89\xab\xcd\xef", 16);
	struct startup_msg m;
	parse_buf(&b, &m);
	assert_int_equal(m.kind, STARTUP_CANCEL);
	assert_int_equal(m.cancel_pid, 4242);
	assert_int_equal(m.cancel_key_len, 4);
	assert_memory_equal(m.cancel_key, key, 4);
	buf_free(&b);
}

static void test_write_negotiate(void **state)
{
	(void)state;
	struct buf b = {0};
	static const char *const opts[] = {"_pq_.a", "_pq_.b"};
	proto_write_negotiate(&b, 0, opts, 2);
	static const char want[] = "v\0\0\0\x1a\0\x03\0\0\0\0\0\x02_pq_.a\0_pq_.b";
	assert_bytes(&b, want, sizeof(want));
	buf_free(&b);
	proto_write_negotiate(&b, 2, NULL, 0);
	assert_bytes(&b, "v\0\0\0\x0c\0\x03\0\x02\0\0\0\0", 13);
	buf_free(&b);
}

static void test_builders_append_several_messages(void **state)
{
	(void)state;
	struct buf b = {0};
	proto_write_ready(&b, 'I');
	proto_begin(&b, 'd');
	proto_put_u8(&b, 1);
	proto_put_u16(&b, 0x0203);
	proto_put_u32(&b, 0x04050607);
	proto_put_bytes(&b, "xy", 2);
	proto_put_str(&b, "z");
	proto_finish(&b);
	proto_write_terminate(&b);
	static const uint8_t want[] = {'Z', 0, 0, 0, 5,	  'I', 'd', 0, 0,   0, 0x0f, 1, 2, 3,
				       4,   5, 6, 7, 'x', 'y', 'z', 0, 'X', 0, 0,    0, 4};
	assert_bytes(&b, want, sizeof(want));
	/* messages still parse after the first one has been consumed */
	buf_consume(&b, 6);
	struct pq_header h;
	assert_int_equal(proto_header(buf_head(&b), buf_avail(&b), &h), SHOAL_OK);
	assert_int_equal(h.type, 'd');
	assert_int_equal(h.len, 0x0f);
	buf_free(&b);
}

static void test_builder_after_consumed_bytes(void **state)
{
	(void)state;
	struct buf b = {0};
	proto_write_query(&b, "SELECT 1");
	buf_consume(&b, 3); /* off > 0: the mark must stay right */
	proto_write_ready(&b, 'E');
	buf_consume(&b, buf_avail(&b) - 6);
	assert_bytes(&b,
		     "Z\0\0\0\x05"
		     "E",
		     6);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_needs_five_bytes),
	    cmocka_unit_test(test_header_length_below_four_is_an_error),
	    cmocka_unit_test(test_client_caps),
	    cmocka_unit_test(test_server_caps),
	    cmocka_unit_test(test_startup_normal),
	    cmocka_unit_test(test_startup_no_params_and_newer_minor),
	    cmocka_unit_test(test_startup_special_codes),
	    cmocka_unit_test(test_startup_cancel_long_keys),
	    cmocka_unit_test(test_startup_special_codes_with_wrong_length),
	    cmocka_unit_test(test_startup_protocol_2_is_rejected),
	    cmocka_unit_test(test_startup_bad_lengths),
	    cmocka_unit_test(test_startup_oversized),
	    cmocka_unit_test(test_startup_unterminated_and_malformed),
	    cmocka_unit_test(test_startup_too_many_params),
	    cmocka_unit_test(test_reader_reads_in_order),
	    cmocka_unit_test(test_reader_bounds_are_sticky),
	    cmocka_unit_test(test_reader_unterminated_string),
	    cmocka_unit_test(test_reader_null_empty_body),
	    cmocka_unit_test(test_builder_survives_compaction),
	    cmocka_unit_test(test_error_round_trip),
	    cmocka_unit_test(test_error_with_detail_and_unknown_fields),
	    cmocka_unit_test(test_error_malformed),
	    cmocka_unit_test(test_param_round_trip),
	    cmocka_unit_test(test_param_malformed),
	    cmocka_unit_test(test_write_auth),
	    cmocka_unit_test(test_write_small_messages),
	    cmocka_unit_test(test_write_cancel_parses_back),
	    cmocka_unit_test(test_write_result_set),
	    cmocka_unit_test(test_write_negotiate),
	    cmocka_unit_test(test_builders_append_several_messages),
	    cmocka_unit_test(test_builder_after_consumed_bytes),
	};
	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
