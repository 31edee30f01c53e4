/* test_hosts.c: hosts.c's host choice (load_balance_hosts), roles (target_session_attrs) and
 * circuit breaker, without servers: the registry is driven the way server.c drives it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "hosts.h"

static struct host_set *set_of(const char *db, const char *value)
{
	struct db_entry e = {0};
	char err[256] = "";
	if (config_parse_db(value, &e, err, sizeof(err)) != SHOAL_OK)
		fail_msg("%s: %s", value, err);
	struct host_set *hs = hosts_set_for(&e, db);
	free(e.host);
	free(e.port_list);
	free(e.weight);
	free(e.dbname);
	return hs;
}

static int pick_port(struct host_set *hs)
{
	char err[256];
	struct host_rec *h = hosts_pick(hs, err, sizeof(err));
	return h ? h->port : -1;
}

static void test_single_host_has_no_set(void **state)
{
	(void)state;
	assert_null(set_of("one", "host=a port=1"));
	assert_non_null(set_of("one_tsa", "host=a port=1 target_session_attrs=primary"));
}

static void test_round_robin_takes_hosts_in_turn(void **state)
{
	(void)state;
	struct host_set *hs = set_of("rr", "host=a,b,c port=1,2,3");
	int seq[6];
	for (int i = 0; i < 6; i++)
		seq[i] = pick_port(hs);
	int want[6] = {1, 2, 3, 1, 2, 3};
	assert_memory_equal(seq, want, sizeof(want));
	assert_int_equal(hs->h[0]->servers, 2);
	assert_false(hosts_rotate_idle(hs)); /* chosen by host instead */
	assert_true(hosts_balance_idle(hs));
}

/* Per transaction (hosts_pick_idle): 3,1 over two hosts with idle servers goes a,a,b,a; a busy
 * host next in turn makes the client wait (-2, nothing spent) or, when it may not wait, is
 * passed over and catches up; no idle server at all: -1. */
static void test_idle_pick_follows_the_weights_per_transaction(void **state)
{
	(void)state;
	struct host_set *hs = set_of("xrr", "host=a,b port=1,2 weight=3,1");
	int credit[SHOAL_MAX_HOSTS] = {0}, in_use[2] = {0, 0}, n[2] = {0, 0};
	bool idle[2] = {true, true};
	for (int i = 0; i < 8; i++)
		n[hosts_pick_idle(hs, credit, idle, in_use, true)]++;
	assert_int_equal(n[0], 6);
	assert_int_equal(n[1], 2);
	bool only_a[2] = {true, false}, none[2] = {false, false};
	int b_busy[2] = {0, 1};
	assert_int_equal(hosts_pick_idle(hs, credit, only_a, b_busy, true), 0);
	assert_int_equal(hosts_pick_idle(hs, credit, only_a, b_busy, true), 0);
	assert_int_equal(hosts_pick_idle(hs, credit, only_a, b_busy, true), -2); /* b's turn */
	assert_int_equal(hosts_pick_idle(hs, credit, only_a, b_busy, true), -2); /* unspent */
	assert_int_equal(hosts_pick_idle(hs, credit, only_a, b_busy, false), 0);
	assert_int_equal(hosts_pick_idle(hs, credit, idle, in_use, true), 1); /* b catches up */
	assert_int_equal(hosts_pick_idle(hs, credit, none, b_busy, true), -1);
}

static void test_idle_pick_least_connections_round_robins_ties(void **state)
{
	(void)state;
	struct host_set *hs =
	    set_of("xlc", "host=a,b port=1,2 load_balance_hosts=least-connections");
	int credit[SHOAL_MAX_HOSTS] = {0}, even[2] = {0, 0}, a_busy[2] = {2, 0};
	bool idle[2] = {true, true};
	int first = hosts_pick_idle(hs, credit, idle, even, true);
	assert_int_equal(hosts_pick_idle(hs, credit, idle, even, true), 1 - first);
	for (int i = 0; i < 3; i++) /* the fewest in use wins; it never waits */
		assert_int_equal(hosts_pick_idle(hs, credit, idle, a_busy, true), 1);
}

static void test_disable_takes_the_first_usable_host(void **state)
{
	(void)state;
	struct host_set *hs = set_of("first", "host=a,b port=1,2 load_balance_hosts=disable");
	assert_int_equal(pick_port(hs), 1);
	assert_int_equal(pick_port(hs), 1);
	assert_false(hosts_rotate_idle(hs));
	/* a failed login opens the first host's breaker: the second takes over */
	assert_true(hosts_server_gone(hs, hs->h[0], true, false, "refused"));
	assert_int_equal(hs->h[0]->breaker, BRK_OPEN);
	assert_int_equal(pick_port(hs), 2);
	assert_int_equal(pick_port(hs), 2);
}

static void test_least_connections(void **state)
{
	(void)state;
	struct host_set *hs =
	    set_of("least", "host=a,b,c port=1,2,3 load_balance_hosts=least-connections");
	assert_int_equal(pick_port(hs), 1);
	assert_int_equal(pick_port(hs), 2);
	assert_int_equal(pick_port(hs), 3);
	hosts_server_gone(hs, hs->h[1], false, false, "idle timeout");
	assert_int_equal(pick_port(hs), 2);
}

static void test_weighted_round_robin_follows_the_weights(void **state)
{
	(void)state;
	struct host_set *hs = set_of("wrr", "host=a,b,c port=1,2,3 weight=3,1,1");
	int seq[10];
	for (int i = 0; i < 10; i++)
		seq[i] = pick_port(hs);
	int want[10] = {1, 2, 1, 3, 1, 1, 2, 1, 3, 1}; /* smooth: a,b,a,c,a; 6:2:2 */
	assert_memory_equal(seq, want, sizeof(want));
	assert_int_equal(hs->h[0]->weight, 3);
	/* a host out of rotation: the others share its turns by their own weights */
	assert_true(hosts_server_gone(hs, hs->h[0], true, false, "refused"));
	for (int i = 0; i < 4; i++)
		assert_int_not_equal(pick_port(hs), 1);
}

static void test_weighted_least_connections_counts_per_weight(void **state)
{
	(void)state;
	struct host_set *hs =
	    set_of("wlc", "host=a,b port=1,2 weight=3,1 load_balance_hosts=least-connections");
	int n[3] = {0};
	for (int i = 0; i < 8; i++)
		n[pick_port(hs)]++;
	assert_int_equal(n[1], 6);
	assert_int_equal(n[2], 2);
}

static void test_random_draws_by_weight_and_skips_a_held_host(void **state)
{
	(void)state;
	struct host_set *hs =
	    set_of("rnd", "host=a,b,c port=1,2,3 weight=6,2,2 load_balance_hosts=random");
	assert_true(hosts_rotate_idle(hs));
	int n[4] = {0};
	srand(18);
	for (int i = 0; i < 1000; i++)
		n[pick_port(hs)]++;
	assert_in_range(n[1], 540, 660);
	assert_in_range(n[2], 150, 250);
	assert_in_range(n[3], 150, 250);
	hs->h[1]->disabled = true;
	for (int i = 0; i < 50; i++)
		assert_int_not_equal(pick_port(hs), 2);
	hs->h[1]->disabled = false;
}

static void test_weight_list_is_checked(void **state)
{
	(void)state;
	struct db_entry e = {0};
	char err[256] = "";
	assert_int_equal(config_parse_db("host=a,b weight=1,2,3", &e, err, sizeof(err)),
			 SHOAL_ERROR);
	assert_non_null(strstr(err, "3 weights for 2 hosts"));
	assert_int_equal(config_parse_db("host=a,b weight=0", &e, err, sizeof(err)), SHOAL_ERROR);
	assert_int_equal(config_parse_db("host=a,b weight=2,x", &e, err, sizeof(err)), SHOAL_ERROR);
	struct host_set *hs = set_of("wall", "host=a,b port=1,2 weight=5");
	assert_false(hs->weighted); /* one weight for all: plain round-robin */
	assert_int_equal(hs->w[1], 5);
}

static void test_disabled_host_gets_no_connection(void **state)
{
	(void)state;
	struct db_entry e = {0};
	char err[256] = "";
	assert_int_equal(config_parse_db("host=a,b port=1,2", &e, err, sizeof(err)), SHOAL_OK);
	struct host_set *hs = hosts_set_for(&e, "dis");
	assert_int_equal(hosts_set_disabled(&e, "dis", "a", 1, true, err, sizeof(err)), SHOAL_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pick_port(hs), 2);
	assert_true(hosts_held(hs, hs->h[0]));
	assert_int_equal(hosts_set_disabled(&e, "dis", "a", 9, true, err, sizeof(err)),
			 SHOAL_ERROR);
	assert_int_equal(hosts_set_disabled(&e, "dis", "a", 1, false, err, sizeof(err)), SHOAL_OK);
	assert_false(hosts_held(hs, hs->h[0]));
	free(e.host);
	free(e.port_list);
}

static void test_standby_skips_a_known_primary(void **state)
{
	(void)state;
	struct host_set *hs = set_of("ro", "host=p,s1,s2 port=1,2,3 target_session_attrs=standby");
	assert_true(hosts_wants_role(hs));
	assert_int_equal(pick_port(hs), 1);
	assert_false(hosts_role_seen(hs, hs->h[0], false, false)); /* a primary: refused */
	hosts_server_gone(hs, hs->h[0], false, false, "role");
	assert_int_equal(hs->h[0]->breaker, BRK_CLOSED); /* a wrong role is not a failure */
	for (int i = 0; i < 4; i++) {
		int port = pick_port(hs);
		assert_true(port == 2 || port == 3);
		assert_true(hosts_role_seen(hs, hs->h[port - 1], true, true));
	}
	assert_int_equal(hs->h[1]->servers, 2);
	assert_int_equal(hs->h[2]->servers, 2);
}

static void test_read_write_wants_the_writable_host(void **state)
{
	(void)state;
	struct host_set *hs = set_of("rw", "host=s,p port=1,2 target_session_attrs=read-write");
	assert_int_equal(pick_port(hs), 1);
	assert_false(hosts_role_seen(hs, hs->h[0], true, true));
	hosts_server_gone(hs, hs->h[0], false, false, "role");
	assert_int_equal(pick_port(hs), 2);
	assert_true(hosts_role_seen(hs, hs->h[1], false, false));
	assert_int_equal(pick_port(hs), 2); /* the standby is skipped while its role is fresh */
}

static void test_primary_missing_once_no_host_may_be_primary(void **state)
{
	(void)state;
	struct host_set *hs = set_of("pm", "host=s,p port=1,2 target_session_attrs=read-write");
	assert_false(hosts_primary_missing(hs)); /* not seen yet: either may be */
	assert_int_equal(pick_port(hs), 1);
	assert_false(hosts_role_seen(hs, hs->h[0], true, true));
	hosts_server_gone(hs, hs->h[0], false, false, "role");
	assert_false(hosts_primary_missing(hs)); /* p not seen yet */
	assert_int_equal(pick_port(hs), 2);
	assert_true(hosts_role_seen(hs, hs->h[1], false, false));
	assert_false(hosts_primary_missing(hs));
	/* the primary's login fails: its breaker opens and the standby's role is read again (it
	 * may have been promoted); once it answers as a standby again, no host may be primary */
	hosts_server_gone(hs, hs->h[1], true, false, "refused");
	assert_false(hosts_primary_missing(hs));
	assert_int_equal(pick_port(hs), 1);
	assert_false(hosts_role_seen(hs, hs->h[0], true, true));
	hosts_server_gone(hs, hs->h[0], false, false, "role");
	assert_true(hosts_primary_missing(hs));
	assert_false(hosts_primary_missing(set_of("pm_ro", "host=s,p port=1,2")));
}

/* Failover without health checks: the believed primary's connection is lost; the standby's
 * role, read a moment ago, no longer keeps it out: the next pick asks it again, and once it
 * answers as primary the search is over (its roles are trusted for long again). */
static void test_lost_primary_makes_roles_be_read_again(void **state)
{
	(void)state;
	struct host_set *hs = set_of("seek", "host=p,s port=1,2 target_session_attrs=read-write");
	assert_int_equal(pick_port(hs), 1);
	assert_true(hosts_role_seen(hs, hs->h[0], false, false));
	assert_int_equal(pick_port(hs), 2);
	assert_false(hosts_role_seen(hs, hs->h[1], true, true));
	hosts_server_gone(hs, hs->h[1], false, false, "role");
	assert_int_equal(pick_port(hs), 1); /* the standby is skipped while its role is fresh */
	hosts_server_gone(hs, hs->h[0], false, true, "server closed the connection");
	assert_true(hs->h[1]->seeking);
	assert_int_equal(pick_port(hs), 2); /* asked again at once (the primary is a probe) */
	assert_true(hosts_role_seen(hs, hs->h[1], false, false)); /* promoted */
	assert_false(hs->h[0]->seeking || hs->h[1]->seeking);
}

/* A host back in rotation (here: ENABLE HOST) gets the next new server whatever the turn, and
 * hosts_returned_waiting says so while it has none and another host has two. */
static void test_returned_host_goes_first(void **state)
{
	(void)state;
	struct db_entry e = {0};
	char err[256];
	assert_int_equal(config_parse_db("host=a,b port=1,2", &e, err, sizeof(err)), SHOAL_OK);
	struct host_set *hs = hosts_set_for(&e, "back");
	assert_int_equal(hosts_set_disabled(&e, "back", "b", 2, true, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(pick_port(hs), 1);
	assert_int_equal(pick_port(hs), 1);
	assert_false(hosts_returned_waiting(hs));
	assert_int_equal(hosts_set_disabled(&e, "back", "b", 2, false, err, sizeof(err)), SHOAL_OK);
	assert_true(hosts_returned_waiting(hs));
	hs->next = 0; /* a's turn: b goes first anyway */
	assert_int_equal(pick_port(hs), 2);
	assert_false(hosts_returned_waiting(hs));
	free(e.host);
	free(e.port_list);
}

/* Split brain: two hosts answer their checks as primary; a write alias holds both until the
 * operator picks one (PRIMARY HOST); the pick ends with the split. */
static void test_primary_pick_during_split_brain(void **state)
{
	(void)state;
	struct db_entry e = {0};
	char err[256];
	assert_int_equal(config_parse_db("host=a,b port=1,2 target_session_attrs=read-write", &e,
					 err, sizeof(err)),
			 SHOAL_OK);
	struct host_set *hs = hosts_set_for(&e, "sb");
	struct host_check up = {.ok = true}, down = {.ok = false};
	assert_int_equal(hosts_pick_primary(&e, "sb", "b", 2, err, sizeof(err)), SHOAL_ERROR);
	assert_non_null(strstr(err, "no split brain"));
	for (int i = 0; i < 2; i++) {
		assert_true(hosts_check_claim(hs->h[i], USEC_PER_SEC));
		hosts_check_done(hs->h[i], &up, NULL);
	}
	assert_true(hosts_held(hs, hs->h[0]) && hosts_held(hs, hs->h[1]));
	assert_int_equal(hosts_pick_primary(&e, "sb", "c", 3, err, sizeof(err)), SHOAL_ERROR);
	assert_int_equal(hosts_pick_primary(&e, "sb", "b", 2, err, sizeof(err)), SHOAL_OK);
	assert_true(hosts_held(hs, hs->h[0]));
	assert_false(hosts_held(hs, hs->h[1]));
	assert_int_equal(pick_port(hs), 2);
	hs->h[0]->check_next = 0; /* its next check is due */
	assert_true(hosts_check_claim(hs->h[0], USEC_PER_SEC));
	hosts_check_done(hs->h[0], &down, "refused"); /* a steps down: over, the pick cleared */
	assert_false(hs->h[1]->split || hs->h[1]->picked);
	free(e.host);
	free(e.port_list);
}

/* zone=: one per host or one for all; a wrong count or a bad name is refused at load. */
static void test_zone_list(void **state)
{
	(void)state;
	const char *bad[] = {"host=a,b,c zone=x,y", "host=a,b zone=x,", "host=a,b zone=x;y,z",
			     "host=a,b zone=0123456789012345678901234567890123,y"};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct db_entry e = {0};
		struct host_addr out[SHOAL_MAX_HOSTS];
		char err[256] = "";
		int n = 0;
		if (config_parse_db(bad[k], &e, err, sizeof(err)) == SHOAL_OK)
			assert_int_equal(
			    config_host_list(&e, out, SHOAL_MAX_HOSTS, &n, err, sizeof(err)),
			    SHOAL_ERROR);
		assert_non_null(strstr(err, "zone"));
		free(e.host);
		free(e.zone);
	}
	struct db_entry e = {0};
	struct host_addr out[SHOAL_MAX_HOSTS];
	char err[256];
	int n = 0;
	assert_int_equal(config_parse_db("host=a,b,c zone=eu-1", &e, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(config_host_list(&e, out, SHOAL_MAX_HOSTS, &n, err, sizeof(err)),
			 SHOAL_OK);
	assert_string_equal(out[2].zone, "eu-1");
	free(e.host);
	free(e.zone);
	e = (struct db_entry){0};
	assert_int_equal(config_parse_db("host=a,b zone=x,y", &e, err, sizeof(err)), SHOAL_OK);
	assert_int_equal(config_host_list(&e, out, SHOAL_MAX_HOSTS, &n, err, sizeof(err)),
			 SHOAL_OK);
	assert_string_equal(out[0].zone, "x");
	assert_string_equal(out[1].zone, "y");
	free(e.host);
	free(e.zone);
}

static void test_prefer_standby_takes_the_primary_only_when_no_standby_is_left(void **state)
{
	(void)state;
	struct host_set *hs =
	    set_of("pref", "host=p,s port=1,2 target_session_attrs=prefer-standby");
	assert_int_equal(pick_port(hs), 1);
	/* the other host may be a standby: the primary is refused */
	assert_false(hosts_role_seen(hs, hs->h[0], false, false));
	hosts_server_gone(hs, hs->h[0], false, false, "role");
	assert_int_equal(pick_port(hs), 2);
	/* the standby goes down: the primary can take connections, and is taken */
	assert_true(hosts_server_gone(hs, hs->h[1], true, false, "refused"));
	assert_int_equal(pick_port(hs), 1);
	assert_true(hosts_role_seen(hs, hs->h[0], false, false));
}

static void test_all_breakers_open_means_no_host(void **state)
{
	(void)state;
	struct host_set *hs = set_of("down", "host=a,b port=1,2");
	assert_int_equal(pick_port(hs), 1);
	assert_true(hosts_server_gone(hs, hs->h[0], true, false, "refused"));
	assert_int_equal(pick_port(hs), 2);
	assert_false(hosts_server_gone(hs, hs->h[1], true, false, "refused"));
	assert_int_equal(pick_port(hs), -1);
	assert_int_equal(hs->h[0]->failures, 1);
}

static void test_lost_connection_makes_one_probe(void **state)
{
	(void)state;
	struct host_set *hs = set_of("probe", "host=a,b port=1,2 load_balance_hosts=disable");
	assert_int_equal(pick_port(hs), 1);
	assert_int_equal(pick_port(hs), 1);
	hosts_server_gone(hs, hs->h[0], false, true, "server closed the connection");
	assert_int_equal(hs->h[0]->breaker, BRK_HALF_OPEN);
	assert_int_equal(pick_port(hs), 1); /* the probe */
	assert_true(hs->h[0]->probe_out);
	assert_int_equal(pick_port(hs), 2); /* the others wait for it */
	hosts_login_ok(hs->h[0]);
	assert_int_equal(hs->h[0]->breaker, BRK_CLOSED);
	assert_int_equal(pick_port(hs), 1);
	/* a failed probe opens it */
	hosts_server_gone(hs, hs->h[0], false, true, "lost");
	assert_int_equal(pick_port(hs), 1);
	hosts_server_gone(hs, hs->h[0], true, false, "refused");
	assert_int_equal(hs->h[0]->breaker, BRK_OPEN);
	assert_false(hs->h[0]->probe_out);
	assert_int_equal(pick_port(hs), 2);
}

static void test_snapshot_lists_hosts_in_order(void **state)
{
	(void)state;
	struct host_view v[64];
	int n = hosts_snapshot(v, 64);
	assert_true(n >= 3);
	assert_string_equal(v[0].db, "one_tsa");
	assert_string_equal(v[1].db, "rr");
	assert_string_equal(v[1].host, "a");
	assert_int_equal(v[1].port, 1);
	assert_string_equal(hosts_breaker_name(BRK_HALF_OPEN), "half-open");
	assert_string_equal(hosts_role_name(HOST_ROLE_STANDBY), "standby");
}

static int teardown(void **state)
{
	(void)state;
	hosts_free_all();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_host_has_no_set),
	    cmocka_unit_test(test_round_robin_takes_hosts_in_turn),
	    cmocka_unit_test(test_idle_pick_follows_the_weights_per_transaction),
	    cmocka_unit_test(test_idle_pick_least_connections_round_robins_ties),
	    cmocka_unit_test(test_disable_takes_the_first_usable_host),
	    cmocka_unit_test(test_least_connections),
	    cmocka_unit_test(test_weighted_round_robin_follows_the_weights),
	    cmocka_unit_test(test_weighted_least_connections_counts_per_weight),
	    cmocka_unit_test(test_random_draws_by_weight_and_skips_a_held_host),
	    cmocka_unit_test(test_weight_list_is_checked),
	    cmocka_unit_test(test_disabled_host_gets_no_connection),
	    cmocka_unit_test(test_standby_skips_a_known_primary),
	    cmocka_unit_test(test_read_write_wants_the_writable_host),
	    cmocka_unit_test(test_primary_missing_once_no_host_may_be_primary),
	    cmocka_unit_test(test_prefer_standby_takes_the_primary_only_when_no_standby_is_left),
	    cmocka_unit_test(test_all_breakers_open_means_no_host),
	    cmocka_unit_test(test_lost_connection_makes_one_probe),
	    cmocka_unit_test(test_snapshot_lists_hosts_in_order),
	    cmocka_unit_test(test_lost_primary_makes_roles_be_read_again),
	    cmocka_unit_test(test_returned_host_goes_first),
	    cmocka_unit_test(test_primary_pick_during_split_brain),
	    cmocka_unit_test(test_zone_list),
	};
	return cmocka_run_group_tests_name("hosts", tests, NULL, teardown);
}
