/* hash.h: the one hash function, FNV-1a: 32 bits one byte at a time for names hashed while
 * they are read (sqlscan.c, params.c), 64 bits over a buffer for map keys (hmap.h) and running
 * digests (prepared.c's statement descriptions). Not for untrusted keys an attacker can choose
 * to collide at will beyond what a chained map absorbs. */
#ifndef SHOAL_HASH_H
#define SHOAL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_SEED   2166136261u
#define HASH64_SEED 1469598103934665603ULL

/* Fold byte c into the 32-bit hash h (start from HASH_SEED). */
static inline uint32_t hash_byte(uint32_t h, unsigned char c)
{
	return (h ^ c) * 16777619u;
}

/* Fold n bytes at p into the 64-bit hash h (start from HASH64_SEED). */
static inline uint64_t hash_more(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

/* The 64-bit hash of n bytes at p. */
static inline uint64_t hash_bytes(const void *p, size_t n)
{
	return hash_more(HASH64_SEED, p, n);
}

#endif
