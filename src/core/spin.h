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

/* spin_lock's wait for a lock that was held (spin.c): out of line, so that taking a free lock,
 * inline in many short functions, needs no registers saved for the loop. */
void spin_lock_wait(struct spin *l);

static inline void spin_lock(struct spin *l)
{
	if (__builtin_expect(atomic_exchange_explicit(&l->held, true, memory_order_acquire), 0))
		spin_lock_wait(l);
}

static inline void spin_unlock(struct spin *l)
{
	atomic_store_explicit(&l->held, false, memory_order_release);
}

#endif
