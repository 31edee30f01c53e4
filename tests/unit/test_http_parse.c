/* Unit tests for the HTTP listener's request-head parser (src/http/http_parse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http_parse.h"

static enum http_parse_rc parse(const char *s, struct http_request *req)
{
	return http_parse((const uint8_t *)s, strlen(s), req);
}

static void test_simple_get(void **state)
{
	(void)state;
	struct http_request r;
	const char *s = "GET /health?verbose=1 HTTP/1.1\r\nHost: x\r\n"
			"Authorization:   Bearer t0k  \r\n\r\nEXTRA";
	assert_int_equal(parse(s, &r), HTTP_DONE);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/health");
	assert_string_equal(r.auth, "Bearer t0k");
	assert_int_equal(r.minor, 1);
	assert_true(r.keep_alive);
	assert_int_equal(r.head_len, strlen(s) - strlen("EXTRA"));
}

static void test_http10_and_connection_header(void **state)
{
	(void)state;
	struct http_request r;
	assert_int_equal(parse("GET / HTTP/1.0\n\n", &r), HTTP_DONE);
	assert_false(r.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), HTTP_DONE);
	assert_true(r.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.1\r\nconnection: close\r\n\r\n", &r), HTTP_DONE);
	assert_false(r.keep_alive);
}

static void test_incomplete_until_empty_line(void **state)
{
	(void)state;
	struct http_request r;
	assert_int_equal(parse("", &r), HTTP_INCOMPLETE);
	assert_int_equal(parse("GET / HTTP/1.1\r\n", &r), HTTP_INCOMPLETE);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\n\r", &r), HTTP_INCOMPLETE);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r), HTTP_DONE);
}

static void test_malformed_request_lines(void **state)
{
	(void)state;
	struct http_request r;
	assert_int_equal(parse("\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET /\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET health HTTP/1.1\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("G(T / HTTP/1.1\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("VERYLONGMETHOD / HTTP/1.1\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET /a b HTTP/1.1\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET / HTTP/1.2\r\n\r\n", &r), HTTP_BAD_VERSION);
	assert_int_equal(parse("GET / FTP/1.1\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET /\x7f HTTP/1.1\r\n\r\n", &r), HTTP_BAD_REQUEST);
}

static void test_header_rules(void **state)
{
	(void)state;
	struct http_request r;
	assert_int_equal(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET / HTTP/1.1\r\n: empty\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\r\n cont\r\n\r\n", &r), HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r), HTTP_DONE);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n", &r), HTTP_DONE);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", &r), HTTP_TOO_LARGE);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &r),
			 HTTP_BAD_REQUEST);
	assert_int_equal(
	    parse("GET / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n", &r),
	    HTTP_BAD_REQUEST);
	assert_int_equal(parse("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &r),
			 HTTP_NOT_IMPLEMENTED);
}

static void test_limits(void **state)
{
	(void)state;
	struct http_request r;
	char big[HTTP_MAX_HEAD + 64];
	/* a target one byte over the limit, then exactly at it */
	memset(big, 0, sizeof(big));
	strcpy(big, "GET /");
	memset(big + 5, 'a', HTTP_MAX_TARGET);
	strcpy(big + 5 + HTTP_MAX_TARGET, " HTTP/1.1\r\n\r\n");
	assert_int_equal(parse(big, &r), HTTP_URI_TOO_LONG);
	strcpy(big + 4 + HTTP_MAX_TARGET, " HTTP/1.1\r\n\r\n");
	assert_int_equal(parse(big, &r), HTTP_DONE);
	assert_int_equal(strlen(r.path), HTTP_MAX_TARGET);
	/* a head that never ends within HTTP_MAX_HEAD bytes */
	memset(big, 'x', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(http_parse((const uint8_t *)big, HTTP_MAX_HEAD - 1, &r), HTTP_INCOMPLETE);
	assert_int_equal(http_parse((const uint8_t *)big, HTTP_MAX_HEAD, &r), HTTP_HEAD_TOO_LARGE);
	/* too many header lines */
	char many[2048] = "GET / HTTP/1.1\r\n";
	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		strcat(many, "A: b\r\n");
	strcat(many, "\r\n");
	assert_int_equal(parse(many, &r), HTTP_HEAD_TOO_LARGE);
	/* an Authorization value that does not fit */
	char auth[600] = "GET / HTTP/1.1\r\nAuthorization: ";
	memset(auth + strlen(auth), 'k', 300);
	strcat(auth, "\r\n\r\n");
	assert_int_equal(parse(auth, &r), HTTP_HEAD_TOO_LARGE);
}

static void test_nul_byte_is_refused(void **state)
{
	(void)state;
	struct http_request r;
	static const uint8_t s[] = "GET /\0 HTTP/1.1\r\n\r\n";
	assert_int_equal(http_parse(s, sizeof(s) - 1, &r), HTTP_BAD_REQUEST);
}

static void test_reasons(void **state)
{
	(void)state;
	assert_string_equal(http_reason(404), "Not Found");
	assert_string_equal(http_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_reason(599), "Error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_get),
	    cmocka_unit_test(test_http10_and_connection_header),
	    cmocka_unit_test(test_incomplete_until_empty_line),
	    cmocka_unit_test(test_malformed_request_lines),
	    cmocka_unit_test(test_header_rules),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_nul_byte_is_refused),
	    cmocka_unit_test(test_reasons),
	};
	return cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
}
