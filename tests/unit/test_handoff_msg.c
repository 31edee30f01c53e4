/* test_handoff_msg.c: unit tests for session/handoff_msg.c: a round trip with parameters,
 * statements and the pool's credentials, every truncation refused, the bounds on both sides, a
 * bad Parse body, credential bits and an older version refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "handoff_msg.h"

static const uint8_t body[] = "SELECT $1::int\0\0\1\0\0\0\x17"; /* 1 type: int4 */

static struct handoff_rec sample(struct handoff_kv *kv, struct handoff_stmt *st)
{
	kv[0] = (struct handoff_kv){"application_name", "app", false};
	kv[1] = (struct handoff_kv){"statement_timeout", "'5s'", true};
	st[0] = (struct handoff_stmt){"s1", body, sizeof(body) - 1};
	st[1] = (struct handoff_stmt){"", body, sizeof(body) - 1};
	struct handoff_rec r = {.proto_minor = 2,
				.cancel_pid = 0x512345,
				.cancel_key_len = 32,
				.user = "alice",
				.dbname = "db",
				.nparams = 2,
				.params = kv,
				.nlogin = 1,
				.login = kv,
				.nstmts = 2,
				.stmts = st};
	memset(r.cancel_key, 7, 32);
	return r;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct handoff_kv kv[2];
	struct handoff_stmt st[2];
	struct handoff_rec in = sample(kv, st), out;
	struct buf b = {0};
	const char *why;
	assert_int_equal(handoff_encode(&in, &b), SHOAL_OK);
	assert_int_equal(handoff_decode(buf_head(&b), buf_avail(&b), &out, &why), SHOAL_OK);
	assert_string_equal(out.user, "alice");
	assert_string_equal(out.dbname, "db");
	assert_int_equal(out.proto_minor, 2);
	assert_int_equal(out.cancel_pid, 0x512345);
	assert_memory_equal(out.cancel_key, in.cancel_key, 32);
	assert_int_equal(out.nparams, 2);
	assert_string_equal(out.params[1].value, "'5s'");
	assert_true(out.params[1].raw && !out.params[0].raw);
	assert_int_equal(out.nlogin, 1);
	assert_int_equal(out.nstmts, 2);
	assert_string_equal(out.stmts[0].name, "s1");
	assert_string_equal(out.stmts[1].name, "");
	assert_memory_equal(out.stmts[0].body, body, sizeof(body) - 1);
	handoff_rec_free(&out);
	/* every prefix, and one byte more, is refused */
	for (size_t n = 0; n < buf_avail(&b); n++)
		assert_int_equal(handoff_decode(buf_head(&b), n, &out, &why), SHOAL_ERROR);
	buf_append(&b, "", 1);
	assert_int_equal(handoff_decode(buf_head(&b), buf_avail(&b), &out, &why), SHOAL_ERROR);
	buf_free(&b);
}

static void test_bounds(void **state)
{
	(void)state;
	struct handoff_kv kv[2];
	struct handoff_stmt st[2];
	struct handoff_rec r = sample(kv, st);
	struct buf b = {0};
	r.cancel_key_len = 5;
	assert_int_equal(handoff_encode(&r, &b), SHOAL_ERROR);
	r = sample(kv, st);
	r.nparams = HANDOFF_MAX_PARAMS + 1;
	assert_int_equal(handoff_encode(&r, &b), SHOAL_ERROR);
	r = sample(kv, st);
	r.user = "";
	assert_int_equal(handoff_encode(&r, &b), SHOAL_ERROR);
	/* statements whose total passes HANDOFF_MAX_MSG */
	size_t big = 64 * 1024;
	uint8_t *q = malloc(big + 3);
	memset(q, 'x', big);
	memset(q + big, 0, 3);
	struct handoff_stmt many[8];
	for (int i = 0; i < 8; i++)
		many[i] = (struct handoff_stmt){"s", q, (uint32_t)big + 3};
	r = sample(kv, st);
	r.stmts = many;
	r.nstmts = 8;
	assert_int_equal(handoff_encode(&r, &b), SHOAL_ERROR);
	assert_int_equal(buf_avail(&b), 0);
	free(q);
	buf_free(&b);
}

static void test_bad_parse_body_and_version(void **state)
{
	(void)state;
	struct handoff_kv kv[2];
	struct handoff_stmt st[2];
	struct handoff_rec r = sample(kv, st), out;
	static const uint8_t bad[] = "SELECT 1\0\0\2\0\0\0\x17"; /* says 2 types, has 1 */
	st[0].body = bad;
	st[0].len = sizeof(bad) - 1;
	struct buf b = {0};
	const char *why;
	assert_int_equal(handoff_encode(&r, &b), SHOAL_OK); /* the sender does not parse it */
	assert_int_equal(handoff_decode(buf_head(&b), buf_avail(&b), &out, &why), SHOAL_ERROR);
	buf_free(&b);
	r = sample(kv, st);
	st[0] = (struct handoff_stmt){"s1", body, sizeof(body) - 1};
	assert_int_equal(handoff_encode(&r, &b), SHOAL_OK);
	b.data[b.off + 5] = 1; /* version 1: no credentials byte */
	assert_int_equal(handoff_decode(buf_head(&b), buf_avail(&b), &out, &why), SHOAL_ERROR);
	assert_string_equal(why, "unsupported handoff version");
	buf_free(&b);
}

static void test_credentials(void **state)
{
	(void)state;
	struct handoff_kv kv[2];
	struct handoff_stmt st[2];
	struct handoff_rec in = sample(kv, st), out;
	in.creds = HANDOFF_CRED_PASSWORD | HANDOFF_CRED_KEYS;
	in.password = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";
	memset(in.scram_client_key, 0xc1, 32);
	memset(in.scram_server_key, 0x5e, 32);
	struct buf b = {0};
	const char *why;
	assert_int_equal(handoff_encode(&in, &b), SHOAL_OK);
	assert_int_equal(handoff_decode(buf_head(&b), buf_avail(&b), &out, &why), SHOAL_OK);
	assert_int_equal(out.creds, HANDOFF_CRED_PASSWORD | HANDOFF_CRED_KEYS);
	assert_string_equal(out.password, in.password);
	assert_memory_equal(out.scram_client_key, in.scram_client_key, 32);
	assert_memory_equal(out.scram_server_key, in.scram_server_key, 32);
	assert_int_equal(out.nstmts, 2); /* what follows is still read right */
	handoff_rec_free(&out);
	for (size_t n = 0; n < buf_avail(&b); n++)
		assert_int_equal(handoff_decode(buf_head(&b), n, &out, &why), SHOAL_ERROR);
	/* the credentials byte follows the database: an unknown bit is refused */
	size_t at = 12 + 2 + 4 + 32 + sizeof("alice") + sizeof("db");
	assert_int_equal(b.data[b.off + at], HANDOFF_CRED_PASSWORD | HANDOFF_CRED_KEYS);
	b.data[b.off + at] |= 0x04;
	assert_int_equal(handoff_decode(buf_head(&b), buf_avail(&b), &out, &why), SHOAL_ERROR);
	buf_free(&b);
	/* the sender refuses an unknown bit, and credentials without a password */
	in.creds = 0x04;
	assert_int_equal(handoff_encode(&in, &b), SHOAL_ERROR);
	in.creds = HANDOFF_CRED_KEYS;
	in.password = "";
	assert_int_equal(handoff_encode(&in, &b), SHOAL_ERROR);
	in.password = NULL;
	assert_int_equal(handoff_encode(&in, &b), SHOAL_ERROR);
	assert_int_equal(buf_avail(&b), 0);
	/* none: one zero byte, nothing more */
	in = sample(kv, st);
	assert_int_equal(handoff_encode(&in, &b), SHOAL_OK);
	assert_int_equal(handoff_decode(buf_head(&b), buf_avail(&b), &out, &why), SHOAL_OK);
	assert_int_equal(out.creds, 0);
	assert_null(out.password);
	handoff_rec_free(&out);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_bad_parse_body_and_version),
	    cmocka_unit_test(test_credentials),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
