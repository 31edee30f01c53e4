/* stats.h: per-pool counters (updated by workers with relaxed atomics) and the periodic stats
 * log line. */
#ifndef SHOAL_STATS_H
#define SHOAL_STATS_H

#include "common.h"

/* Log one line per pool with the rates and averages since the previous call, period_usec ago. */
void stats_log(usec_t period_usec);

#endif
