/* test_hmap.c: unit tests for core/hmap.c and core/hash.h: lookups by bytes, growth, deletion,
 * colliding hashes kept apart by their keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

static void test_fnv1a_vectors(void **state)
{
	(void)state;
	/* 32 bits: the FNV-1a reference value. 64 bits: FNV-1a's prime over HASH64_SEED (which
	 * is not FNV's offset basis; values are only compared within one process). */
	uint32_t h = HASH_SEED;
	h = hash_byte(h, 'a');
	assert_true(h == 0xe40c292cu);
	assert_true(hash_bytes("", 0) == HASH64_SEED);
	assert_true(hash_bytes("a", 1) == (HASH64_SEED ^ 'a') * 1099511628211ULL);
	assert_true(hash_bytes("ab", 2) == hash_more(hash_bytes("a", 1), "b", 1));
}

static void test_put_get_grow_del(void **state)
{
	(void)state;
	struct hmap m = {0};
	static int vals[1000];
	char k[16];
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(k, sizeof(k), "stmt%d", i);
		hmap_put(&m, k, (size_t)n, hash_bytes(k, (size_t)n), &vals[i]);
	}
	assert_int_equal(m.n, 1000);
	assert_true(m.nb >= 1000); /* grown so chains stay short */
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(k, sizeof(k), "stmt%d", i);
		struct hent *e = hmap_get(&m, k, (size_t)n, hash_bytes(k, (size_t)n));
		assert_non_null(e);
		assert_ptr_equal(e->val, &vals[i]);
		assert_ptr_equal(hmap_del(&m, e), &vals[i]);
		assert_null(hmap_get(&m, k, (size_t)n, hash_bytes(k, (size_t)n)));
	}
	assert_int_equal(m.n, 0);
	assert_null(hmap_get(&m, "stmt", 4, hash_bytes("stmt", 4)));
	free(m.b);
}

static void test_same_hash_different_keys(void **state)
{
	(void)state;
	struct hmap m = {0};
	int a = 1, b = 2;
	hmap_put(&m, "ab", 2, 42, &a);
	hmap_put(&m, "abc", 3, 42, &b); /* same hash, longer key */
	assert_ptr_equal(hmap_get(&m, "ab", 2, 42)->val, &a);
	assert_ptr_equal(hmap_get(&m, "abc", 3, 42)->val, &b);
	assert_null(hmap_get(&m, "ba", 2, 42));
	assert_ptr_equal(hmap_del(&m, hmap_get(&m, "ab", 2, 42)), &a);
	assert_ptr_equal(hmap_get(&m, "abc", 3, 42)->val, &b);
	hmap_del(&m, hmap_get(&m, "abc", 3, 42));
	free(m.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fnv1a_vectors),
	    cmocka_unit_test(test_put_get_grow_del),
	    cmocka_unit_test(test_same_hash_different_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
