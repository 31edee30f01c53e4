/* test_scram.c: SCRAM-SHA-256 against the RFC 7677 test vector (server side, client side, both
 * against each other), stored-secret parsing, strict base64, the mock secret, pass-through keys,
 * and refusals of malformed messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "scram.h"
#include "scram_server.h"

/* RFC 7677 section 3: user "user", password "pencil". */
#define RFC_SALT	 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CNONCE	 "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE	 "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL                                                                           \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The same secret in PostgreSQL's pg_authid form (StoredKey:ServerKey derived from "pencil"). */
#define RFC_SECRET                                                                                 \
	"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"            \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static const uint8_t rfc_client_key[32] = {
    0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16, 0xb9, 0x6e, 0xda, 0x5e, 0xf4,
    0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48, 0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b};

static const uint8_t *u8(const char *s)
{
	return (const uint8_t *)s;
}

/* Run the RFC exchange with a given stored secret; returns the server's final verdict. */
static bool rfc_exchange(const char *secret, const char *client_final, char *server_final)
{
	struct scram_server ss;
	char out[256];
	const char *err = NULL;
	scram_server_init(&ss, "user", secret, NULL, 0);
	assert_int_equal(scram_server_first_nonce(&ss, SCRAM_MECH, u8(RFC_CLIENT_FIRST),
						  strlen(RFC_CLIENT_FIRST), RFC_SNONCE, out,
						  sizeof(out), &err),
			 SHOAL_OK);
	assert_string_equal(out, RFC_SERVER_FIRST);
	assert_int_equal(scram_server_final(&ss, u8(client_final), strlen(client_final),
					    server_final, 256, &err),
			 SHOAL_OK);
	bool ok = ss.authenticated;
	if (ok)
		assert_memory_equal(ss.client_key, rfc_client_key, 32);
	scram_server_free(&ss);
	return ok;
}

static void test_rfc7677_server_side(void **state)
{
	(void)state;
	char final[256];
	assert_true(rfc_exchange(RFC_SECRET, RFC_CLIENT_FINAL, final));
	assert_string_equal(final, RFC_SERVER_FINAL);
}

static void test_rfc7677_wrong_proof_fails(void **state)
{
	(void)state;
	char final[256] = "";
	/* One bit of the proof flipped ('d' -> 'e' in the first base64 character block). */
	const char *bad =
	    "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
	assert_false(rfc_exchange(RFC_SECRET, bad, final));
	/* A plaintext secret runs a real exchange (fresh salt), not the mock one. */
	struct scram_server ss;
	scram_server_init(&ss, "user", "pencil2", NULL, 0);
	assert_false(ss.doomed);
	assert_int_equal(ss.secret.saltlen, 16);
	scram_server_free(&ss);
}

static void test_rfc7677_from_plaintext_secret(void **state)
{
	(void)state;
	struct scram_secret a, b;
	uint8_t salt[16];
	assert_int_equal(scram_b64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt)), 16);
	assert_int_equal(scram_secret_from_password("pencil", salt, 16, 4096, &a), SHOAL_OK);
	assert_int_equal(scram_parse_secret(RFC_SECRET, &b), SHOAL_OK);
	assert_int_equal(a.iterations, 4096);
	assert_int_equal(b.iterations, 4096);
	assert_int_equal(b.saltlen, 16);
	assert_memory_equal(a.salt, b.salt, 16);
	assert_memory_equal(a.stored_key, b.stored_key, 32);
	assert_memory_equal(a.server_key, b.server_key, 32);
	uint8_t h[32];
	SHA256(rfc_client_key, 32, h);
	assert_memory_equal(h, b.stored_key, 32);
}

static void test_check_password_against_scram_secret(void **state)
{
	(void)state;
	assert_true(scram_check_password(RFC_SECRET, "pencil"));
	assert_false(scram_check_password(RFC_SECRET, "pencil "));
	assert_false(scram_check_password(RFC_SECRET, ""));
	assert_true(auth_check_plain(RFC_SECRET, "user", "pencil"));
	assert_false(auth_check_plain(RFC_SECRET, "user", "Pencil"));
}

static void test_parse_secret_rejects_malformed(void **state)
{
	(void)state;
	struct scram_secret s;
	const char *bad[] = {
	    "SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
	    "SCRAM-SHA-256$0:" RFC_SALT "$a:b",
	    "SCRAM-SHA-256$x:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU= ",
	    "SCRAM-SHA-1$4096:" RFC_SALT "$a:b",
	    "md5abc",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (scram_parse_secret(bad[i], &s) != SHOAL_ERROR)
			fail_msg("accepted: %s", bad[i]);
	}
}

static void test_b64_strict(void **state)
{
	(void)state;
	uint8_t out[32];
	assert_int_equal(scram_b64_decode("YQ==", 4, out, sizeof(out)), 1);
	assert_int_equal(scram_b64_decode("YWI=", 4, out, sizeof(out)), 2);
	assert_int_equal(scram_b64_decode("YWJj", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "abc", 3);
	assert_int_equal(scram_b64_decode("YWJ", 3, out, sizeof(out)), -1);
	assert_int_equal(scram_b64_decode("Y=Jj", 4, out, sizeof(out)), -1);
	assert_int_equal(scram_b64_decode("YW Jj", 5, out, sizeof(out)), -1);
	assert_int_equal(scram_b64_decode(" YWJ", 4, out, sizeof(out)), -1);
	assert_int_equal(scram_b64_decode("", 0, out, sizeof(out)), -1);
	assert_int_equal(scram_b64_decode("YWJj", 4, out, 2), -1);
}

static void test_mock_secret_is_stable_per_user(void **state)
{
	(void)state;
	struct scram_secret a, b, c;
	scram_mock_secret("mallory", &a);
	scram_mock_secret("mallory", &b);
	scram_mock_secret("trudy", &c);
	assert_memory_equal(a.salt, b.salt, 16);
	assert_int_equal(a.saltlen, 16);
	assert_int_equal(a.iterations, 4096);
	assert_memory_not_equal(a.salt, c.salt, 16);
}

/* Unknown users and md5 secrets run the whole exchange and fail at the end. */
static void test_doomed_exchange_fails_at_the_end(void **state)
{
	(void)state;
	const char *secrets[] = {NULL, "md5a3556571e93b0d20722ba62be61e8c2d", "SCRAM-SHA-256$bad"};
	for (size_t i = 0; i < 3; i++) {
		struct scram_server ss;
		char out[256];
		const char *err = NULL;
		scram_server_init(&ss, "user", secrets[i], NULL, 0);
		assert_true(ss.doomed);
		assert_int_equal(scram_server_first(&ss, SCRAM_MECH, u8(RFC_CLIENT_FIRST),
						    strlen(RFC_CLIENT_FIRST), out, sizeof(out),
						    &err),
				 SHOAL_OK);
		char final[256];
		snprintf(final, sizeof(final), "c=biws,r=%s,p=%s", ss.nonce,
			 "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
		assert_int_equal(
		    scram_server_final(&ss, u8(final), strlen(final), out, sizeof(out), &err),
		    SHOAL_OK);
		assert_false(ss.authenticated);
		scram_server_free(&ss);
	}
}

/* Shoal's client side against Shoal's server side, with a password and then with the keys the
 * server recovered (pass-through): both must log in and verify the server's signature. */
static void client_login(const char *password, const uint8_t *ckey, const uint8_t *skey,
			 uint8_t recovered[32])
{
	struct scram_client sc;
	struct scram_server ss;
	char first[128], sfirst[256], cfinal[512], sfinal[256];
	const char *err = NULL;
	assert_int_equal(scram_client_first(&sc, first, sizeof(first)), SHOAL_OK);
	if (ckey)
		scram_client_use_keys(&sc, ckey, skey);
	scram_server_init(&ss, "user", RFC_SECRET, NULL, 0);
	assert_int_equal(scram_server_first(&ss, SCRAM_MECH, u8(first), strlen(first), sfirst,
					    sizeof(sfirst), &err),
			 SHOAL_OK);
	assert_int_equal(
	    scram_client_final(&sc, password, sfirst, strlen(sfirst), cfinal, sizeof(cfinal)),
	    SHOAL_OK);
	assert_int_equal(
	    scram_server_final(&ss, u8(cfinal), strlen(cfinal), sfinal, sizeof(sfinal), &err),
	    SHOAL_OK);
	assert_true(ss.authenticated);
	assert_int_equal(scram_verify_server(&sc, sfinal, strlen(sfinal)), SHOAL_OK);
	memcpy(recovered, ss.client_key, 32);
	scram_client_free(&sc);
	scram_server_free(&ss);
}

static void test_client_and_server_sides_agree_and_pass_through(void **state)
{
	(void)state;
	uint8_t ckey[32], again[32];
	struct scram_secret sec;
	client_login("pencil", NULL, NULL, ckey);
	assert_memory_equal(ckey, rfc_client_key, 32);
	assert_int_equal(scram_parse_secret(RFC_SECRET, &sec), SHOAL_OK);
	client_login(NULL, ckey, sec.server_key, again);
	assert_memory_equal(again, rfc_client_key, 32);
}

static void test_client_rejects_forged_server_signature(void **state)
{
	(void)state;
	struct scram_client sc;
	char first[128], cfinal[512];
	assert_int_equal(scram_client_first(&sc, first, sizeof(first)), SHOAL_OK);
	char sfirst[256];
	snprintf(sfirst, sizeof(sfirst), "r=%sxyz,s=%s,i=4096", sc.nonce, RFC_SALT);
	assert_int_equal(
	    scram_client_final(&sc, "pencil", sfirst, strlen(sfirst), cfinal, sizeof(cfinal)),
	    SHOAL_OK);
	assert_int_equal(scram_verify_server(&sc, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)),
			 SHOAL_ERROR);
	scram_client_free(&sc);
}

static void expect_first_error(const char *mech, const char *msg, bool tls, const char *why)
{
	struct scram_server ss;
	char out[256];
	const char *err = NULL;
	static const uint8_t cb[32];
	scram_server_init(&ss, "user", RFC_SECRET, tls ? cb : NULL, tls ? 32 : 0);
	if (scram_server_first(&ss, mech, u8(msg), strlen(msg), out, sizeof(out), &err) !=
	    SHOAL_ERROR)
		fail_msg("accepted: %s", msg);
	if (!strstr(err, why))
		fail_msg("%s: error \"%s\" does not mention \"%s\"", msg, err, why);
	scram_server_free(&ss);
}

static void test_client_first_refusals(void **state)
{
	(void)state;
	expect_first_error(SCRAM_MECH, "", false, "empty");
	expect_first_error(SCRAM_MECH, "n,", false, "truncated");
	expect_first_error(SCRAM_MECH, "n,a=x,n=,r=abc", false, "authorization identity");
	expect_first_error(SCRAM_MECH, "n,,m=x,n=,r=abc", false, "mandatory");
	expect_first_error(SCRAM_MECH, "n,,n=,r=a,bc", false, "garbage");
	expect_first_error(SCRAM_MECH, "n,,n=", false, "nonce");
	expect_first_error(SCRAM_MECH, "y,,n=,r=abc", true, "negotiation");
	expect_first_error(SCRAM_MECH_PLUS, "n,,n=,r=abc", true, "does not match");
	expect_first_error(SCRAM_MECH_PLUS, "p=tls-unique,,n=,r=abc", true, "unsupported");
	expect_first_error(SCRAM_MECH_PLUS, "p=tls-server-end-point,,n=,r=abc", false,
			   "not supported");
	expect_first_error("SCRAM-SHA-1", "n,,n=,r=abc", false, "not supported");
}

static void test_parse_initial_response(void **state)
{
	(void)state;
	const char *mech;
	const uint8_t *data;
	size_t dlen;
	static const uint8_t ok[] = "SCRAM-SHA-256\0\0\0\0\3abc";
	assert_int_equal(scram_parse_initial_response(ok, sizeof(ok) - 1, &mech, &data, &dlen),
			 SHOAL_OK);
	assert_string_equal(mech, "SCRAM-SHA-256");
	assert_int_equal(dlen, 3);
	assert_memory_equal(data, "abc", 3);
	static const uint8_t none[] = "SCRAM-SHA-256\0\xff\xff\xff\xff";
	assert_int_equal(scram_parse_initial_response(none, sizeof(none) - 1, &mech, &data, &dlen),
			 SHOAL_ERROR);
	static const uint8_t longer[] = "SCRAM-SHA-256\0\0\0\0\4abc";
	assert_int_equal(
	    scram_parse_initial_response(longer, sizeof(longer) - 1, &mech, &data, &dlen),
	    SHOAL_ERROR);
	static const uint8_t trailing[] = "SCRAM-SHA-256\0\0\0\0\2abc";
	assert_int_equal(
	    scram_parse_initial_response(trailing, sizeof(trailing) - 1, &mech, &data, &dlen),
	    SHOAL_ERROR);
	static const uint8_t unterminated[] = "SCRAM-SHA-256";
	assert_int_equal(scram_parse_initial_response(unterminated, sizeof(unterminated) - 1, &mech,
						      &data, &dlen),
			 SHOAL_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test(f)
	    T(test_rfc7677_server_side),
	    T(test_rfc7677_wrong_proof_fails),
	    T(test_rfc7677_from_plaintext_secret),
	    T(test_check_password_against_scram_secret),
	    T(test_parse_secret_rejects_malformed),
	    T(test_b64_strict),
	    T(test_mock_secret_is_stable_per_user),
	    T(test_doomed_exchange_fails_at_the_end),
	    T(test_client_and_server_sides_agree_and_pass_through),
	    T(test_client_rejects_forged_server_signature),
	    T(test_client_first_refusals),
	    T(test_parse_initial_response),
#undef T
	};
	return cmocka_run_group_tests_name("scram", tests, NULL, NULL);
}
