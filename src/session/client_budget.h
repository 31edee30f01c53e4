/* client_budget.h: the process-wide budget for client I/O buffers (max_client_buffer_bytes,
 * Redis's maxmemory-clients): over it, the clients holding the most are closed with 53200.
 *
 * A client's share is the capacity of its input and output buffers, brought up to date at the
 * end of every event that may have changed it (client_budget_account). */
#ifndef SHOAL_CLIENT_BUDGET_H
#define SHOAL_CLIENT_BUDGET_H

#include "objects.h"

#include <stdatomic.h>

struct worker;

/* max_client_buffer_bytes in force (client_budget_configure); 0: no budget. */
extern _Atomic int64_t client_budget_limit;

/* The configuration in force changed (registered with config_on_change). */
void client_budget_configure(const struct config *cfg);
/* The slow half of client_budget_account. */
void client_budget_update(struct client *c);
/* Bring c's share of the budget up to date. Marks c's worker to enforce the budget after its
 * event batch when a growth takes the process over it. Inline: it runs at the end of every
 * event, and with no budget set and no share held there is nothing to do. */
static inline void client_budget_account(struct client *c)
{
	if (c->buf_bytes == 0 &&
	    atomic_load_explicit(&client_budget_limit, memory_order_relaxed) == 0)
		return;
	client_budget_update(c);
}
/* c is closing: its share goes. */
void client_budget_forget(struct client *c);
/* After an event batch: while the process is over the budget, close this worker's client with
 * the largest buffers (53200), with one log line per 10 seconds at most. */
void client_budget_enforce(struct worker *w);
/* Bytes of client buffers accounted, process-wide. */
int64_t client_budget_used(void);

#endif
