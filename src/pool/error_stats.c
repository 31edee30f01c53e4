/* error_stats.c: a fixed open-addressing table of SQLSTATE counters. A SQLSTATE is five
 * characters, packed into one integer key; a slot is claimed with one compare-and-swap and never
 * freed, so readers and writers need no lock. The few hundred SQLSTATEs PostgreSQL defines fit;
 * should the table fill, further codes count under "XX000". */
#include "error_stats.h"

#include <stdatomic.h>
#include <string.h>

#define SLOTS 512 /* a power of two */

static struct slot {
	_Atomic uint64_t key; /* 0: free */
	_Atomic uint64_t count[2];
} table[SLOTS];

static uint64_t pack(const char *s)
{
	if (!s || strlen(s) != 5)
		return 0;
	uint64_t k = 0;
	for (int i = 0; i < 5; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')))
			return 0;
		k = k << 8 | (uint8_t)ch;
	}
	return k;
}

static struct slot *find_or_claim(uint64_t key)
{
	uint64_t h = (key * 0x9E3779B97F4A7C15ull) >> 55; /* 9 bits: SLOTS = 512 */
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &table[(h + (uint64_t)i) & (SLOTS - 1)];
		uint64_t have = atomic_load_explicit(&s->key, memory_order_acquire);
		if (have == key)
			return s;
		if (have == 0 && atomic_compare_exchange_strong(&s->key, &have, key))
			return s;
		if (have == key) /* lost the race to the same code */
			return s;
	}
	return NULL;
}

void error_stats_count(const char *sqlstate, enum error_source from)
{
	uint64_t key = pack(sqlstate);
	if (!key)
		return;
	struct slot *s = find_or_claim(key);
	if (!s)
		s = find_or_claim(pack("XX000"));
	if (s)
		atomic_fetch_add_explicit(&s->count[from], 1, memory_order_relaxed);
}

int error_stats_read(struct error_stat *out, int max)
{
	int n = 0;
	for (int i = 0; i < SLOTS && n < max; i++) {
		uint64_t key = atomic_load_explicit(&table[i].key, memory_order_acquire);
		if (!key)
			continue;
		for (int j = 4; j >= 0; j--, key >>= 8)
			out[n].sqlstate[j] = (char)(key & 0xff);
		out[n].sqlstate[5] = '\0';
		out[n].count[0] = atomic_load_explicit(&table[i].count[0], memory_order_relaxed);
		out[n].count[1] = atomic_load_explicit(&table[i].count[1], memory_order_relaxed);
		n++;
	}
	return n;
}
