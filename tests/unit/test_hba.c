/* test_hba.c: auth_hba_file parsing (types, keywords, lists, quotes, @file, CIDR, address and
 * mask, methods, errors with line numbers) and first-match rule selection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hba.h"

static struct sockaddr_storage ip(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1)
		a4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1)
		a6->sin6_family = AF_INET6;
	else
		fail_msg("bad test address %s", s);
	return ss;
}

static void parse_ok(struct hba *h, const char *text)
{
	char err[256] = "";
	if (hba_parse(text, strlen(text), NULL, h, err, sizeof(err)) != SHOAL_OK)
		fail_msg("parse failed: %s", err);
}

static enum hba_method m_host(const struct hba *h, const char *addr, bool tls, const char *db,
			      const char *user)
{
	struct sockaddr_storage ss = ip(addr);
	int line;
	return hba_match(h, false, tls, &ss, db, user, &line);
}

static void test_first_match_wins(void **state)
{
	(void)state;
	struct hba h;
	parse_ok(&h, "# comment\n"
		     "local   all  all                 peer\n"
		     "host    db1  alice  10.0.0.0/8   reject\n"
		     "host    all  alice  10.1.0.0/16  trust   # not reached for 10.1.x\n"
		     "hostssl all  all    0.0.0.0/0    scram-sha-256\n"
		     "hostnossl all all   0.0.0.0/0    md5\n");
	assert_int_equal(h.n, 5);
	int line;
	assert_int_equal(hba_match(&h, true, false, NULL, "x", "y", &line), HBA_PEER);
	assert_int_equal(line, 2);
	assert_int_equal(m_host(&h, "10.1.2.3", false, "db1", "alice"), HBA_REJECT);
	assert_int_equal(m_host(&h, "10.1.2.3", false, "db2", "alice"), HBA_TRUST);
	assert_int_equal(m_host(&h, "192.168.1.1", true, "db2", "alice"), HBA_SCRAM);
	assert_int_equal(m_host(&h, "192.168.1.1", false, "db2", "alice"), HBA_MD5);
	assert_int_equal(m_host(&h, "::1", false, "db2", "alice"), HBA_NO_MATCH);
	hba_free(&h);
}

static void test_keywords_lists_and_quotes(void **state)
{
	(void)state;
	struct hba h;
	parse_ok(&h, "host sameuser all 127.0.0.1/32 trust\n"
		     "host a,\"b c\",\"all\" bob,carol 127.0.0.1/32 password\n"
		     "host all \"all\" 127.0.0.1/32 md5\n");
	assert_int_equal(m_host(&h, "127.0.0.1", false, "bob", "bob"), HBA_TRUST);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "b c", "carol"), HBA_PASSWORD);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "all", "bob"), HBA_PASSWORD);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "a", "dave"), HBA_NO_MATCH);
	/* A quoted "all" is a user named all, not every user. */
	assert_int_equal(m_host(&h, "127.0.0.1", false, "z", "all"), HBA_MD5);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "z", "eve"), HBA_NO_MATCH);
	hba_free(&h);
}

/* PostgreSQL's rule: a physical replication connection (db NULL) matches only the keyword
 * replication, never all; the keyword matches no database, while a quoted "replication" is the
 * database of that name (issue 22). */
static void test_replication_keyword(void **state)
{
	(void)state;
	struct hba h;
	parse_ok(&h, "host replication rep 127.0.0.1/32 trust\n"
		     "host \"replication\" all 127.0.0.1/32 password\n"
		     "host all all 127.0.0.1/32 md5\n");
	assert_int_equal(m_host(&h, "127.0.0.1", false, NULL, "rep"), HBA_TRUST);
	assert_int_equal(m_host(&h, "127.0.0.1", false, NULL, "other"), HBA_NO_MATCH);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "replication", "rep"), HBA_PASSWORD);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "db", "rep"), HBA_MD5);
	hba_free(&h);
}

static void test_addresses(void **state)
{
	(void)state;
	struct hba h;
	parse_ok(&h, "host all a 192.168.0.0 255.255.0.0 trust\n"
		     "host all b 2001:db8::/32 trust\n"
		     "host all c all trust\n"
		     "host all d 10.0.0.1/32 trust\n"
		     "host all e 0.0.0.0/0 trust\n");
	assert_int_equal(m_host(&h, "192.168.7.9", false, "x", "a"), HBA_TRUST);
	assert_int_equal(m_host(&h, "192.169.7.9", false, "x", "a"), HBA_NO_MATCH);
	assert_int_equal(m_host(&h, "2001:db8:1::5", false, "x", "b"), HBA_TRUST);
	assert_int_equal(m_host(&h, "2001:db9::5", false, "x", "b"), HBA_NO_MATCH);
	assert_int_equal(m_host(&h, "::1", false, "x", "c"), HBA_TRUST);
	assert_int_equal(m_host(&h, "10.0.0.1", false, "x", "d"), HBA_TRUST);
	assert_int_equal(m_host(&h, "10.0.0.2", false, "x", "d"), HBA_NO_MATCH);
	/* IPv4-mapped IPv6 matches IPv4 rules. */
	assert_int_equal(m_host(&h, "::ffff:10.0.0.1", false, "x", "d"), HBA_TRUST);
	assert_int_equal(m_host(&h, "2001:db8::1", false, "x", "e"), HBA_NO_MATCH);
	hba_free(&h);
}

static void expect_error(const char *text, const char *why)
{
	struct hba h;
	char err[256] = "";
	if (hba_parse(text, strlen(text), NULL, &h, err, sizeof(err)) != SHOAL_ERROR)
		fail_msg("accepted: %s", text);
	if (!strstr(err, why))
		fail_msg("%s: error \"%s\" lacks \"%s\"", text, err, why);
	assert_int_equal(h.n, 0);
}

static void test_errors_name_the_line(void **state)
{
	(void)state;
	expect_error("local all all trust\nhost all all 1.2.3.4/33 trust\n",
		     "line 2: invalid CIDR");
	expect_error("host all all myhost trust\n", "invalid IP address");
	expect_error("host all all 1.2.3.4 trust\n", "mask expected");
	expect_error("hostgssenc all all all trust\n", "unsupported connection type");
	expect_error("host all all all ident\n", "unsupported authentication method");
	expect_error("host all all all peer\n", "only supported on local");
	expect_error("local all all\n", "end-of-line");
	expect_error("local all all md5 extra=1\n", "options are not supported");
	expect_error("local all +admins md5\n", "not supported");
	expect_error("local \"all all md5\n", "unterminated");
	expect_error("local @users all md5\n", "@file is not allowed");
	expect_error("local all all md5\n\nlocal a,,b all md5\n", "line 3: syntax error");
	expect_error("host all all 1.2.3.4 255.0.0.0.0 md5\n", "mask expected");
	/* Found by fuzz_hba: a list ending in a comma at the very end of the file. */
	expect_error("local sameuser,", "line 1: syntax error");
}

static void test_at_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/shoal-hba-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], users[256];
	snprintf(users, sizeof(users), "%s/users.txt", dir);
	snprintf(path, sizeof(path), "%s/hba.conf", dir);
	FILE *f = fopen(users, "w");
	fputs("alice, bob # admins\ncarol\n", f);
	fclose(f);
	f = fopen(path, "w");
	fputs("host all @users.txt 127.0.0.1/32 trust\n", f);
	fclose(f);
	struct hba h;
	char err[256];
	assert_int_equal(hba_load(path, &h, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "x", "carol"), HBA_TRUST);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "x", "bob"), HBA_TRUST);
	assert_int_equal(m_host(&h, "127.0.0.1", false, "x", "dave"), HBA_NO_MATCH);
	hba_free(&h);
	unlink(users);
	unlink(path);
	rmdir(dir);
	assert_int_equal(hba_load(path, &h, err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "hba.conf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_match_wins),
	    cmocka_unit_test(test_keywords_lists_and_quotes),
	    cmocka_unit_test(test_replication_keyword),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_errors_name_the_line),
	    cmocka_unit_test(test_at_file),
	};
	return cmocka_run_group_tests_name("hba", tests, NULL, NULL);
}
