/* histogram.h: latency histograms per pool (query, transaction, wait), one slot per worker like
 * the counters of stats.h, summed on read by /metrics. Bucket bounds are fixed (Prometheus `le`
 * values in seconds): observing is a short scan and one single-writer store. */
#ifndef SHOAL_HISTOGRAM_H
#define SHOAL_HISTOGRAM_H

#include "stats.h"

#define HIST_BOUNDS  14 /* finite upper bounds; the last bucket is +Inf */
#define HIST_BUCKETS (HIST_BOUNDS + 1)

/* Upper bounds in microseconds: 0.5 ms .. 10 s. */
extern const usec_t hist_bounds_usec[HIST_BOUNDS];

struct latency_hist {
	uint64_t bucket[HIST_BUCKETS]; /* not cumulative; /metrics accumulates */
};

struct pool_hists {
	struct latency_hist query, xact, wait;
} __attribute__((aligned(64)));

static inline void hist_observe(struct latency_hist *h, usec_t v)
{
	int i = 0;
	while (i < HIST_BOUNDS && v > hist_bounds_usec[i])
		i++;
	stats_add(&h->bucket[i], 1);
}

#endif
