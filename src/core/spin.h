/* spin.h: a lock for critical sections of a few dozen instructions (a pool's lists, a cancel
 * key's target). Taking it uncontended is one atomic exchange and releasing it one store, where
 * an uncontended pthread mutex costs about 55 instructions per pair (bench/icount.py). A waiter
 * spins on plain loads, and yields the CPU after a while, so a holder that was preempted (more
 * workers than cores) gets to run. Nothing may block while holding one. */
#ifndef SHOAL_SPIN_H
#define SHOAL_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

struct spin {
	atomic_bool held;
};

#define SPIN_INIT {false}

static inline void spin_init(struct spin *l)
{
	atomic_init(&l->held, false);
}

static inline void spin_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static inline void spin_lock(struct spin *l)
{
	for (unsigned tries = 0;
	     atomic_exchange_explicit(&l->held, true, memory_order_acquire); tries++) {
		while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
			if (++tries < 64)
				spin_relax();
			else
				sched_yield();
		}
	}
}

static inline void spin_unlock(struct spin *l)
{
	atomic_store_explicit(&l->held, false, memory_order_release);
}

#endif
