/* alerts.h: log alerts on pool saturation, once per episode (see docs/observability.md). */
#ifndef SHOAL_ALERTS_H
#define SHOAL_ALERTS_H

#include "common.h"

/* Check every pool against alert_waiting_after / alert_at_max_after; call periodically from
 * one thread (the main thread's signal loop). */
void alerts_check(usec_t now);

#endif
