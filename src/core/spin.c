/* spin.c: the contended part of spin.h's lock: spin on plain loads, then yield. */
#include "spin.h"

void spin_lock_wait(struct spin *l)
{
	unsigned tries = 0;
	do {
		while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
			if (++tries < 64)
				spin_relax();
			else
				sched_yield();
		}
		tries++;
	} while (atomic_exchange_explicit(&l->held, true, memory_order_acquire));
}
