/* registry.c: pool handles. A handle is a slot number and a generation, not a pointer, so a call
 * made with a handle after shoal_pool_close() finds nothing and returns SHOAL_ECLOSED instead of
 * touching freed memory. Calls take a reference under the read lock; close drops the slot under
 * the write lock, so a pool is never freed while a call that found it is still running. */
#include <stdlib.h>

#include "internal.h"

#define GEN_SHIFT (sizeof(uintptr_t) * 4)
#define IDX_MASK  (((uintptr_t)1 << GEN_SHIFT) - 1)

struct slot {
	struct lpool *p;
	uintptr_t gen;
};

static pthread_rwlock_t reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct slot *slots;
static size_t nslots;

static shoal_pool *encode(size_t idx, uintptr_t gen)
{
	return (shoal_pool *)(((gen & IDX_MASK) << GEN_SHIFT) | (uintptr_t)(idx + 1));
}

/* The slot for h if it is current, else NULL. Caller holds reg_lock. */
static struct slot *lookup(shoal_pool *h)
{
	uintptr_t v = (uintptr_t)h;
	size_t idx = (size_t)(v & IDX_MASK);

	if (idx == 0 || idx > nslots)
		return NULL;
	if (!slots[idx - 1].p || (slots[idx - 1].gen & IDX_MASK) != v >> GEN_SHIFT)
		return NULL;
	return &slots[idx - 1];
}

static int free_slot(size_t *idx)
{
	struct slot *grown;
	size_t n;

	for (*idx = 0; *idx < nslots; (*idx)++)
		if (!slots[*idx].p)
			return SHOAL_OK;
	n = nslots ? nslots * 2 : 8;
	if (n >= IDX_MASK || !(grown = realloc(slots, n * sizeof(*slots))))
		return SHOAL_ENOMEM;
	for (size_t i = nslots; i < n; i++)
		grown[i] = (struct slot){NULL, 1};
	slots = grown;
	*idx = nslots;
	nslots = n;
	return SHOAL_OK;
}

int registry_add(struct lpool *p, shoal_pool **out)
{
	size_t idx;
	int rc;

	pthread_rwlock_wrlock(&reg_lock);
	rc = free_slot(&idx);
	if (rc == SHOAL_OK) {
		slots[idx].p = p;
		*out = encode(idx, slots[idx].gen);
	}
	pthread_rwlock_unlock(&reg_lock);
	return rc;
}

struct lpool *registry_get(shoal_pool *h)
{
	struct lpool *p = NULL;
	struct slot *s;

	pthread_rwlock_rdlock(&reg_lock);
	if ((s = lookup(h)) != NULL) {
		p = s->p;
		pool_ref(p);
	}
	pthread_rwlock_unlock(&reg_lock);
	return p;
}

void registry_remove(shoal_pool *h, struct lpool *p)
{
	struct slot *s;
	bool removed = false;

	pthread_rwlock_wrlock(&reg_lock);
	if ((s = lookup(h)) != NULL && s->p == p) {
		s->p = NULL;
		s->gen++;
		removed = true;
	}
	pthread_rwlock_unlock(&reg_lock);
	if (removed)
		pool_unref(p);
}
