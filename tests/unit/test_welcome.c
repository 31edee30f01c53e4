/* test_welcome.c: unit tests for welcome.c: the welcome copied from a pool's encoded block, the
 * client's values spliced in, is byte for byte the welcome formatted message by message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "proto.h"
#include "welcome.h"

/* A server's login set: reported values (initial), and one it does not report. */
static void server_list(struct param_list *s)
{
	static const char *const kv[] = {
	    "application_name", "", "client_encoding", "UTF8", "DateStyle", "ISO, MDY",
	    "integer_datetimes", "on", "IntervalStyle", "postgres", "is_superuser", "on",
	    "server_encoding", "UTF8", "server_version", "15.4", "session_authorization", "u",
	    "standard_conforming_strings", "on", "TimeZone", "UTC", NULL};
	for (int i = 0; kv[i]; i += 2)
		params_set(s, kv[i], kv[i + 1], true);
	params_set(s, "work_mem", "8MB", false); /* SET for a client: not in the welcome */
}

/* The welcome with and without the cached block must be the same bytes. */
static void check_same(const struct param_list *server, struct welcome_block **cache,
		       const struct param_list *mine)
{
	struct buf a = {0}, b = {0};
	welcome_write(&a, cache, server, mine);
	welcome_write(&b, NULL, server, mine);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	buf_free(&a);
	buf_free(&b);
}

static void test_no_client_values(void **state)
{
	(void)state;
	struct param_list s = {0}, c = {0};
	struct welcome_block *cache = NULL;
	server_list(&s);
	check_same(&s, &cache, &c);
	assert_non_null(cache);
	check_same(&s, &cache, &c); /* from the block now */
	free(cache);
	params_free(&s);
}

static void test_client_values_in_any_order_and_case(void **state)
{
	(void)state;
	struct param_list s = {0}, c = {0};
	struct welcome_block *cache = NULL;
	server_list(&s);
	params_set(&c, "timezone", "Europe/Paris", false); /* the last item */
	params_set(&c, "application_name", "pgbench", false); /* the first */
	params_set(&c, "work_mem", "1MB", false);	       /* not reported: no message */
	params_set(&c, "datestyle", "German", false);
	params_set(&c, "app.x", "1", false);
	check_same(&s, &cache, &c);
	check_same(&s, &cache, &c);
	struct buf b = {0};
	welcome_write(&b, &cache, &s, &c);
	assert_non_null(memmem(b.data, b.len, "TimeZone\0Europe/Paris", 21));
	assert_null(memmem(b.data, b.len, "work_mem", 8));
	buf_free(&b);
	free(cache);
	params_free(&s);
	params_free(&c);
}

static void test_many_client_values(void **state)
{
	(void)state;
	struct param_list s = {0}, c = {0};
	struct welcome_block *cache = NULL;
	server_list(&s);
	char name[32];
	for (int i = 0; i < 20; i++) { /* more than the block splices: formatted one by one */
		snprintf(name, sizeof(name), "x%d", i);
		params_set(&s, name, "server", true);
		params_set(&c, name, "mine", false);
	}
	check_same(&s, &cache, &c);
	params_remove(&c, "x3");
	for (int i = 4; i < 20; i += 2) {
		snprintf(name, sizeof(name), "x%d", i);
		params_remove(&c, name);
	}
	check_same(&s, &cache, &c);
	free(cache);
	params_free(&s);
	params_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_client_values),
	    cmocka_unit_test(test_client_values_in_any_order_and_case),
	    cmocka_unit_test(test_many_client_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
