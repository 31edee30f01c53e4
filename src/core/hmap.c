/* hmap.c: the chained hash map over byte keys (hmap.h). */
#include "hmap.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

struct hent *hmap_get(const struct hmap *m, const void *k, size_t n, uint64_t h)
{
	if (!m->nb)
		return NULL;
	for (struct hent *e = m->b[h % m->nb]; e; e = e->next)
		if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0)
			return e;
	return NULL;
}

static void hmap_grow(struct hmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	struct hent **b = xcalloc(nb, sizeof(*b));
	for (size_t i = 0; i < m->nb; i++) {
		for (struct hent *e = m->b[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash % nb];
			b[e->hash % nb] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

struct hent *hmap_put(struct hmap *m, const void *k, size_t n, uint64_t h, void *val)
{
	if (m->n >= m->nb)
		hmap_grow(m);
	struct hent *e = xmalloc(sizeof(*e) + n);
	e->hash = h;
	e->klen = (uint32_t)n;
	e->val = val;
	memcpy(e->key, k, n);
	e->next = m->b[h % m->nb];
	m->b[h % m->nb] = e;
	m->n++;
	return e;
}

void *hmap_del(struct hmap *m, struct hent *e)
{
	struct hent **pp = &m->b[e->hash % m->nb];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	m->n--;
	void *val = e->val;
	free(e);
	return val;
}
