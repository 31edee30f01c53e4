/* objcache.c: per-thread free lists of fixed-size objects. Under AddressSanitizer a cached
 * object is poisoned, so a use after its owner freed it is still reported. */
#include "objcache.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

#if defined(SHOAL_ASAN)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct objcache_obj {
	struct objcache_obj *next;
};

static __thread struct objcache *listed; /* this thread's caches that were given objects */
static __thread int enabled;		 /* objcache_enable: this thread drains at its end */

void objcache_enable(void)
{
	enabled = 1;
}

void *objcache_take(struct objcache *oc, size_t size)
{
	struct objcache_obj *o = oc->head;
	if (!o)
		return xcalloc(1, size);
	UNPOISON(o, size);
	oc->head = o->next;
	oc->n--;
	memset(o, 0, size);
	return o;
}

void objcache_give(struct objcache *oc, void *p, size_t size)
{
	if (!enabled || oc->n == OBJCACHE_MAX) {
		free(p);
		return;
	}
	if (!oc->listed) {
		oc->listed = 1;
		oc->next_cache = listed;
		listed = oc;
	}
	struct objcache_obj *o = p;
	o->next = oc->head;
	oc->head = o;
	oc->n++;
	POISON(p, size);
}

void objcache_drain_all(void)
{
	for (struct objcache *oc = listed; oc; oc = oc->next_cache) {
		while (oc->head) {
			struct objcache_obj *o = oc->head;
			UNPOISON(o, sizeof(*o));
			oc->head = o->next;
			free(o);
		}
		oc->n = 0;
		oc->listed = 0;
	}
	listed = NULL;
}
