/* test_sqlscan.c: unit tests for sqlscan.c: what pins a client, which SETs are tracked and how
 * their values are captured, and text that only looks like those statements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sqlscan.h"

static struct sql_facts scan(const char *sql)
{
	struct sql_facts f;
	sqlscan(sql, strlen(sql), &f);
	return f;
}

static void assert_pins(const char *sql, const char *reason)
{
	struct sql_facts f = scan(sql);
	if (!f.pin_reason || strcmp(f.pin_reason, reason) != 0)
		fail_msg("%s: pin \"%s\", want \"%s\"", sql, f.pin_reason ? f.pin_reason : "(none)",
			 reason);
	sql_facts_free(&f);
}

static void assert_no_pin(const char *sql)
{
	struct sql_facts f = scan(sql);
	if (f.pin_reason)
		fail_msg("%s: unexpected pin \"%s\"", sql, f.pin_reason);
	sql_facts_free(&f);
}

static void test_session_state_pins(void **state)
{
	(void)state;
	assert_pins("LISTEN x", "LISTEN");
	assert_pins("/* c */ -- d\n  listen \"X\"", "LISTEN");
	assert_pins("SELECT 1; LISTEN x", "LISTEN");
	assert_pins("PREPARE p AS SELECT 1", "PREPARE");
	assert_pins("CREATE TEMP TABLE t (x int)", "temporary table");
	assert_pins("create global temporary table t (x int)", "temporary table");
	assert_pins("SELECT 1 INTO TEMP t", "temporary table");
	assert_pins("CREATE TABLE pg_temp.t (x int)", "temporary table");
	assert_pins("SELECT pg_advisory_lock(1)", "session advisory lock");
	assert_pins("SELECT PG_TRY_ADVISORY_LOCK_SHARED(1, 2)", "session advisory lock");
	assert_pins("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "WITH HOLD cursor");
	assert_pins("SET ROLE r", "SET ROLE");
	assert_pins("SET SESSION ROLE r", "SET ROLE");
	assert_pins("SET SESSION AUTHORIZATION r", "SET SESSION AUTHORIZATION");
	assert_pins("RESET ALL", "RESET ALL");
	assert_pins("SELECT set_config('a.b', 'x', false)", "set_config() with is_local false");
	assert_pins("DO $$BEGIN EXECUTE 'LISTEN x'; END$$", "LISTEN");
	assert_pins("DO $f$ BEGIN PERFORM pg_advisory_lock(1); END $f$", "session advisory lock");
	assert_pins("CREATE FUNCTION f() RETURNS void AS $$ SET search_path = x $$ LANGUAGE sql",
		    "SET inside a function body");
}

static void test_lookalikes_do_not_pin(void **state)
{
	(void)state;
	assert_no_pin("SELECT 'LISTEN x'");
	assert_no_pin("SELECT E'\\' LISTEN x'");
	assert_no_pin("SELECT 1 -- LISTEN x\n");
	assert_no_pin("SELECT /* LISTEN /* nested */ x */ 1");
	assert_no_pin("SELECT \"listen\" FROM t");
	assert_no_pin("SELECT $$ CREATE TEMP TABLE t() $$");
	assert_no_pin("SELECT pg_advisory_xact_lock(1)");
	assert_no_pin("SELECT set_config('a.b', 'x', true)");
	assert_no_pin("SELECT temp FROM weather");
	assert_no_pin("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1");
	assert_no_pin("SET LOCAL search_path = x");
	assert_no_pin("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
	assert_no_pin("RESET ROLE");
	assert_no_pin("UPDATE t SET x = 1");
	assert_no_pin("PREPARE TRANSACTION 'x'");
}

static void test_set_capture(void **state)
{
	(void)state;
	struct sql_facts f = scan("SET search_path = \"My Schema\", public -- tenant\n;");
	assert_true(f.set_trackable);
	assert_string_equal(f.set_name, "search_path");
	assert_string_equal(f.set_value, "\"My Schema\", public");
	sql_facts_free(&f);
	f = scan("set session DEFAULT_TRANSACTION_READ_ONLY to on");
	assert_true(f.set_trackable);
	assert_string_equal(f.set_name, "default_transaction_read_only");
	assert_string_equal(f.set_value, "on");
	sql_facts_free(&f);
	f = scan("SET my.var = 'x'::text");
	assert_string_equal(f.set_name, "my.var");
	assert_string_equal(f.set_value, "'x'::text");
	sql_facts_free(&f);
	f = scan("SET search_path TO DEFAULT");
	assert_true(f.set_trackable && f.set_reset);
	sql_facts_free(&f);
	f = scan("RESET search_path");
	assert_true(f.set_trackable && f.set_reset);
	assert_string_equal(f.set_name, "search_path");
	sql_facts_free(&f);
	f = scan("SET SCHEMA 'x'");
	assert_string_equal(f.set_name, "search_path");
	assert_string_equal(f.set_value, "'x'");
	sql_facts_free(&f);
}

static void test_set_not_trackable(void **state)
{
	(void)state;
	struct sql_facts f = scan("SET search_path = a; SELECT 1");
	assert_true(f.has_set && !f.set_trackable);
	sql_facts_free(&f);
	f = scan("SET a = 1; SET b = 2");
	assert_true(f.has_set && !f.set_trackable);
	sql_facts_free(&f);
	f = scan("SET search_path");
	assert_false(f.set_trackable);
	sql_facts_free(&f);
}

static void test_deallocate_discard(void **state)
{
	(void)state;
	struct sql_facts f = scan("DEALLOCATE ALL");
	assert_true(f.deallocate_all);
	f = scan("deallocate prepare all");
	assert_true(f.deallocate_all);
	f = scan("DEALLOCATE p");
	assert_false(f.deallocate_all);
	f = scan("DISCARD ALL");
	assert_true(f.discard_all);
	f = scan("SELECT 'DISCARD ALL'");
	assert_false(f.discard_all);
	f = scan("SELECT 1; SELECT 2;;");
	assert_int_equal(f.nstmts, 2);
}

static void test_resets(void **state)
{
	(void)state;
	struct sql_facts f =
	    scan("set datestyle = iso; reset DateStyle; SET SESSION x.y TO DEFAULT;"
		 "set time zone default; set names default; SET a = b");
	assert_false(f.reset_all);
	assert_int_equal(f.nresets, 4);
	assert_string_equal(f.reset_names[0], "datestyle");
	assert_string_equal(f.reset_names[1], "x.y");
	assert_string_equal(f.reset_names[2], "timezone");
	assert_string_equal(f.reset_names[3], "client_encoding");
	assert_int_equal(f.reset_stmts[0], 2);
	assert_int_equal(f.reset_ends[0], strlen("set datestyle = iso; reset DateStyle"));
	assert_int_equal(f.reset_stmts[3], 5);
	sql_facts_free(&f);
	f = scan("RESET ALL -- x\n; select 1");
	assert_true(f.reset_all && !f.reset_unsure);
	assert_int_equal(f.nresets, 1);
	assert_string_equal(f.reset_names[0], "");
	assert_int_equal(f.reset_ends[0], 9);
	sql_facts_free(&f);
	f = scan("reset \"DateStyle\"");
	assert_true(f.reset_all && f.reset_unsure); /* a quoted name: assume every one */
	sql_facts_free(&f);
	f = scan("SET LOCAL timezone TO DEFAULT; SELECT 'RESET x'; SET x = 'default'");
	assert_false(f.reset_all);
	assert_int_equal(f.nresets, 0);
	sql_facts_free(&f);
	f = scan("SET TIME ZONE LOCAL");
	assert_int_equal(f.nresets, 1); /* PostgreSQL takes LOCAL as DEFAULT here */
	assert_string_equal(f.reset_names[0], "timezone");
	assert_true(f.set_reset);
	sql_facts_free(&f);
	f = scan("SET TIME ZONE 'local'");
	assert_int_equal(f.nresets, 0);
	sql_facts_free(&f);
	f = scan("reset a; reset b; reset c; reset d; reset e");
	assert_true(f.reset_all && f.reset_unsure);
	sql_facts_free(&f);
	f = scan("DO $$BEGIN RESET ALL; RESET x; END$$");
	assert_false(f.reset_all);
	assert_int_equal(f.nresets, 0);
	sql_facts_free(&f);
}

static int stmts(const char *sql)
{
	struct sql_facts f = scan(sql);
	sql_facts_free(&f);
	return f.nstmts;
}

/* The path that decides without lexing (one statement starting with a plain word, no byte run
 * that could spell a rule's word) must give the lexer's answer, and must hand every text that
 * might matter to the lexer. */
static void test_plain_statement_path(void **state)
{
	(void)state;
	assert_int_equal(stmts("SELECT abalance FROM pgbench_accounts WHERE aid = 1;"), 1);
	assert_int_equal(stmts("select 1;  \n"), 1);
	assert_int_equal(stmts(""), 0);
	assert_int_equal(stmts("  -- only a comment\n"), 0);
	assert_int_equal(stmts(";"), 0);
	assert_int_equal(stmts("/* c */ SELECT 1"), 1);
	assert_int_equal(stmts("SELECT 1; -- trailing comment"), 1);
	assert_int_equal(stmts("SELECT ';' ; SELECT 2"), 2);
	/* words a rule looks for, in any case and at any place of the statement */
	assert_pins("SELECT 1 INTO TeMpOrArY t", "temporary table");
	assert_pins("select * from PG_TEMP.t", "temporary table");
	assert_pins("SeLeCt SeT_CoNfIg('a.b', 'x', false)", "set_config() with is_local false");
	assert_pins("pg_advisory_lock", "session advisory lock"); /* first word too */
	assert_pins("select x from t; declare c cursor WITH HOLD for select 1", "WITH HOLD cursor");
	assert_pins("  LiStEn x", "LISTEN");
	/* look-alikes: scanned, not pinned */
	assert_no_pin("SELECT attempt, household, settle, advice FROM t");
	assert_no_pin("SELECT 'temp table' AS x");
	assert_no_pin("SELECT \"set_config\"(1)");
	/* identifiers longer than any keyword, and non-ASCII ones */
	assert_no_pin("SELECT pg_try_advisory_lock_shared_but_longer(1)");
	assert_no_pin("SELECT caf\xc3\xa9 FROM t");
}

/* "head" + n copies of "pad" + "tail" in buf (n * strlen(pad) < 200). */
static const char *padded(char *buf, const char *head, const char *pad, int n, const char *tail)
{
	strcpy(buf, head);
	for (int i = 0; i < n; i++)
		strcat(buf, pad);
	strcat(buf, tail);
	return buf;
}

/* The plain path looks at 16 bytes at a time where SSE2 is there (and one byte at a time
 * elsewhere: test_sqlscan_scalar runs these without it). Each text below is shifted by 0 to 40
 * bytes, so what decides it (a word a rule looks for, a ';', a quote, a comment, the byte before
 * a word) falls at every place of a 16-byte block, across two blocks, and in the tail of fewer
 * than 16 bytes; the shortest texts are shorter than one block. */
static void test_plain_path_block_boundaries(void **state)
{
	(void)state;
	char b[256];
	for (int n = 0; n <= 40; n++) {
		assert_pins(padded(b, "SELECT ", " ", n, "pg_advisory_lock(1)"),
			    "session advisory lock");
		assert_pins(padded(b, "SELECT ", " ", n, "sEt_CoNfIg('a.b', 'x', false)"),
			    "set_config() with is_local false");
		assert_pins(padded(b, "SELECT 1 INTO ", " ", n, "TEMP t"), "temporary table");
		assert_pins(padded(b, "SELECT 1", " ", n, ";LISTEN x"), "LISTEN");
		assert_pins(padded(b, "SELECT 1;", " ", n, "LISTEN x"), "LISTEN");
		assert_pins(padded(b, "SELECT 1 --", "-", n, "\n; LISTEN x"), "LISTEN");
		assert_pins(padded(b, "SELECT 'a;", "b", n, "', pg_advisory_lock(1)"),
			    "session advisory lock");
		assert_pins(padded(b, "", " ", n, "pg_advisory_lock(1)"), "session advisory lock");
		/* the byte before the word is a word byte: part of a longer identifier */
		assert_no_pin(padded(b, "SELECT ", "a", n, "temp FROM t"));
		assert_no_pin(
		    padded(b, "SELECT x", "\xc3\xa9", n, "set_config('a.b', 'x', false)"));
		assert_no_pin(padded(b, "SELECT x", "_", n, "pg_advisory_lock(1)"));
		/* in quotes and comments */
		assert_no_pin(padded(b, "SELECT '", " ", n, "LISTEN x' AS hold"));
		assert_no_pin(padded(b, "SELECT 1 /*", " ", n, "; LISTEN x */"));
		assert_no_pin(padded(b, "SELECT 1 --", " ", n, "; LISTEN x"));
		assert_no_pin(padded(b, "SELECT \"", "x", n, "; LISTEN\""));
		assert_no_pin(padded(b, "SELECT $$", " ", n, ";LISTEN x$$"));
		/* one statement, the ';' anywhere, white space after it */
		assert_int_equal(stmts(padded(b, "SELECT 1", " ", n, ";")), 1);
		assert_int_equal(stmts(padded(b, "SELECT 1;", " ", n, "")), 1);
		assert_int_equal(stmts(padded(b, "SELECT 1;", "\t", n, "SELECT 2")), 2);
		assert_int_equal(stmts(padded(b, "SELECT '", ";", n, "'")), 1);
		/* a word a rule looks for cut short by the end of the text */
		assert_no_pin(padded(b, "SELECT", " ", n, "pg_"));
		assert_no_pin(padded(b, "SELECT", " ", n, "te"));
	}
}

/* A word a rule looks for right after any punctuation byte (no word byte: '{' is 'z' + 1,
 * '@' and '[' are 'A' - 1 and 'Z' + 1, '`' is 'a' - 1), at every place of a block. */
static void test_plain_path_after_punctuation(void **state)
{
	(void)state;
	char b[256], tail[32];
	for (const char *c = "(),+-*/<>=~!@#%^&|`?{}[]:\t\n"; *c; c++) {
		snprintf(tail, sizeof(tail), "x%cpg_advisory_lock(1)", *c);
		for (int n = 0; n <= 17; n++)
			assert_pins(padded(b, "SELECT ", " ", n, tail), "session advisory lock");
	}
}

/* Bytes >= 0x80 whose low seven bits spell t, h, s, p or ';' (0xd4 = 'T' | 0x80, ...) are no
 * hint letters; UTF-8 text before and after a rule's word does not hide it. */
static void test_plain_path_high_bytes(void **state)
{
	(void)state;
	char b[256];
	for (int n = 0; n <= 20; n++) {
		assert_no_pin(
		    padded(b, "SELECT '", "\xd4\xc8\xd3\xd0\xbb\xf4\xe8\xf3\xf0", n, "' AS x"));
		assert_int_equal(stmts(padded(b, "SELECT '", "\xbb\xc3\xa9", n, "'")), 1);
		assert_pins(
		    padded(b, "SELECT '", "\xc3\xa9", n, "', set_config('a.b', 'x', false)"),
		    "set_config() with is_local false");
		assert_pins(padded(b, "SELECT caf\xc3\xa9", " ", n, ";\n LISTEN x -- \xc3\xa9"),
			    "LISTEN");
	}
}

/* read_write_split (sqlroute.c): what a standby may answer, and what stays on the primary. */
static void assert_route(const char *sql, enum sql_route want)
{
	enum sql_route got = sql_route(sql, strlen(sql));
	if (got != want)
		fail_msg("%s: route %d, want %d", sql, (int)got, (int)want);
}

static void test_route(void **state)
{
	(void)state;
	assert_route("SELECT 1", SQLR_READ);
	assert_route("  select * from t where a = 'update' ;  ", SQLR_READ);
	assert_route("VALUES (1)", SQLR_READ);
	assert_route("SHOW search_path", SQLR_READ);
	assert_route("TABLE t", SQLR_READ);
	assert_route("/* any */ SELECT 1", SQLR_READ);
	assert_route("SELECT * FROM t FOR UPDATE", SQLR_PRIMARY);
	assert_route("SELECT * FROM t FOR NO KEY UPDATE", SQLR_PRIMARY);
	assert_route("SELECT * FROM t FOR SHARE", SQLR_PRIMARY);
	assert_route("SELECT nextval('s')", SQLR_PRIMARY);
	assert_route("SELECT \"setval\"('s', 1)", SQLR_PRIMARY);
	assert_route("SELECT * INTO t2 FROM t", SQLR_PRIMARY);
	assert_route("SELECT pg_advisory_lock(1)", SQLR_PRIMARY);
	assert_route("SELECT txid_current()", SQLR_PRIMARY);
	assert_route("SELECT 1; SELECT 2", SQLR_PRIMARY);
	assert_route("SELECT 1; INSERT INTO t VALUES (1)", SQLR_PRIMARY);
	assert_route("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", SQLR_PRIMARY);
	assert_route("INSERT INTO t VALUES (1)", SQLR_PRIMARY);
	assert_route("EXPLAIN ANALYZE SELECT 1", SQLR_PRIMARY);
	assert_route("", SQLR_PRIMARY);
	assert_route("BEGIN READ ONLY", SQLR_READ_TXN);
	assert_route("begin isolation level repeatable read, read only;", SQLR_READ_TXN);
	assert_route("START TRANSACTION READ ONLY", SQLR_READ_TXN);
	assert_route("BEGIN", SQLR_PRIMARY);
	assert_route("BEGIN READ WRITE", SQLR_PRIMARY);
	assert_route("BEGIN READ ONLY; SELECT 1", SQLR_PRIMARY);
	assert_route("/* shoal:route=primary */ SELECT 1", SQLR_FORCE_PRIMARY);
	assert_route(" /*shoal:route=standby*/ INSERT INTO t VALUES (1)", SQLR_FORCE_STANDBY);
	assert_route("SELECT 1 /* shoal:route=primary */", SQLR_READ);
	assert_route("/* shoal:route=primaryx */ SELECT 1", SQLR_READ);
	assert_route("SET shoal.route = primary", SQLR_SET_PRIMARY);
	assert_route("set session shoal.route to 'standby';", SQLR_SET_STANDBY);
	assert_route("SET shoal.route TO auto", SQLR_SET_AUTO);
	assert_route("SET shoal.route = DEFAULT", SQLR_SET_AUTO);
	assert_route("SET shoal.route = sideways", SQLR_SET_BAD);
	assert_route("SET shoal.other = primary", SQLR_PRIMARY);
	assert_route("SET LOCAL shoal.route = primary", SQLR_PRIMARY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session_state_pins),
	    cmocka_unit_test(test_lookalikes_do_not_pin),
	    cmocka_unit_test(test_set_capture),
	    cmocka_unit_test(test_set_not_trackable),
	    cmocka_unit_test(test_deallocate_discard),
	    cmocka_unit_test(test_resets),
	    cmocka_unit_test(test_plain_statement_path),
	    cmocka_unit_test(test_plain_path_block_boundaries),
	    cmocka_unit_test(test_plain_path_after_punctuation),
	    cmocka_unit_test(test_plain_path_high_bytes),
	    cmocka_unit_test(test_route),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
