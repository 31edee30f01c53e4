/* test_cpus.c: the cgroup v2 cpu.max reading and the default worker count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cpus.h"

static void cpu_max_texts(void **state)
{
	(void)state;
	assert_int_equal(cpus_from_cpu_max("max 100000\n"), 0);
	assert_int_equal(cpus_from_cpu_max("200000 100000\n"), 2);
	assert_int_equal(cpus_from_cpu_max("150000 100000"), 2); /* 1.5 CPUs: rounded up */
	assert_int_equal(cpus_from_cpu_max("50000 100000"), 1);
	assert_int_equal(cpus_from_cpu_max(""), 0);
	assert_int_equal(cpus_from_cpu_max("x 100000"), 0);
	assert_int_equal(cpus_from_cpu_max("100000 0"), 0);
	assert_int_equal(cpus_from_cpu_max(NULL), 0);
}

static void default_workers(void **state)
{
	(void)state;
	assert_int_equal(cpus_default_workers(1), 1);
	assert_int_equal(cpus_default_workers(2), 1);
	assert_int_equal(cpus_default_workers(4), 3);
	assert_int_equal(cpus_default_workers(16), 15);
	assert_int_equal(cpus_default_workers(256), 64);
	assert_true(cpus_usable() >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(cpu_max_texts),
	    cmocka_unit_test(default_workers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
