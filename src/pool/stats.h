/* stats.h: per-pool counters (one slot per worker, summed on read) and the periodic stats log
 * line. */
#ifndef SHOAL_STATS_H
#define SHOAL_STATS_H

#include "common.h"

/* Add to a counter of the calling worker's slot. One writer per slot: a relaxed load and store,
 * no read-modify-write instruction; readers on other threads see whole values. */
static inline void stats_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Log one line per pool with the rates and averages since the previous call, period_usec ago. */
void stats_log(usec_t period_usec);

#endif
