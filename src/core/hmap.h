/* hmap.h: a chained hash map over byte keys (copied into the entry), values are the caller's.
 * Not thread-safe: the owner of the map serialises access. A zeroed struct hmap is empty; once
 * every entry is deleted, free(m->b) releases the rest. */
#ifndef SHOAL_HMAP_H
#define SHOAL_HMAP_H

#include "hash.h"

#include <stddef.h>
#include <stdint.h>

struct hent {
	struct hent *next;
	uint64_t hash;
	uint32_t klen;
	void *val;
	uint8_t key[];
};

struct hmap {
	struct hent **b; /* nb chains; a caller may empty the map by deleting b[i] until NULL */
	size_t nb, n;
};

/* The entry with key k[0..n) whose hash (hash_bytes of the key, or the caller's own
 * consistent hash) is h; NULL when absent. */
struct hent *hmap_get(const struct hmap *m, const void *k, size_t n, uint64_t h);
/* Add key k[0..n) with hash h and value val (the key must not be present); returns its entry,
 * valid until hmap_del. Grows the table to keep chains short. */
struct hent *hmap_put(struct hmap *m, const void *k, size_t n, uint64_t h, void *val);
/* Unlink and free entry e; returns its value. */
void *hmap_del(struct hmap *m, struct hent *e);

#endif
