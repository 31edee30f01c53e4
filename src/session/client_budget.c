/* client_budget.c: the process-wide budget for client buffers (see client_budget.h). */
#include "client_budget.h"
#include "client.h"
#include "log.h"
#include "worker.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

/* A client with at least this much in buffers is a candidate to close: the largest are found
 * among these only, so that a worker does not walk its idle clients. */
#define BUDGET_BIG	 (64 * 1024)
#define BUDGET_LOG_EVERY (10 * USEC_PER_SEC)

static _Atomic int64_t used;
_Atomic int64_t client_budget_limit;

void client_budget_configure(const struct config *cfg)
{
	atomic_store_explicit(&client_budget_limit, cfg->max_client_buffer_bytes,
			      memory_order_relaxed);
}

int64_t client_budget_used(void)
{
	return atomic_load_explicit(&used, memory_order_relaxed);
}

static int64_t budget_max(void)
{
	return atomic_load_explicit(&client_budget_limit, memory_order_relaxed);
}

void client_budget_update(struct client *c)
{
	int64_t max = budget_max();
	size_t now = c->c.in.cap + c->c.out.cap;
	if (now == c->buf_bytes)
		return;
	int64_t delta = (int64_t)now - (int64_t)c->buf_bytes;
	int64_t total = atomic_fetch_add_explicit(&used, delta, memory_order_relaxed) + delta;
	c->buf_bytes = now;
	bool big = now >= BUDGET_BIG;
	if (big != c->buf_big) {
		if (big)
			list_append(&c->c.w->big_clients, &c->big_node);
		else
			list_del(&c->big_node);
		c->buf_big = big;
	}
	if (delta > 0 && max > 0 && total > max)
		c->c.w->over_budget = true;
}

void client_budget_forget(struct client *c)
{
	if (c->buf_bytes)
		atomic_fetch_sub_explicit(&used, (int64_t)c->buf_bytes, memory_order_relaxed);
	c->buf_bytes = 0;
	if (c->buf_big)
		list_del(&c->big_node);
	c->buf_big = false;
}

static struct client *largest(struct worker *w)
{
	struct client *best = NULL;
	for (struct list *i = w->big_clients.next; i != &w->big_clients; i = i->next) {
		struct client *c = container_of(i, struct client, big_node);
		if (!c->c.dead && (!best || c->buf_bytes > best->buf_bytes))
			best = c;
	}
	return best;
}

static void budget_log(struct worker *w, const struct client *c, size_t bytes)
{
	w->budget_closed++;
	usec_t now = shoal_clock();
	if (w->budget_logged && now - w->budget_logged < BUDGET_LOG_EVERY)
		return;
	log_warn("client buffers over max_client_buffer_bytes (%" PRId64 "): closed %s holding "
		 "%zu bytes (%u client(s) closed for it since the last such line)",
		 budget_max(), c->c.name, bytes, w->budget_closed);
	w->budget_logged = now;
	w->budget_closed = 0;
}

void client_budget_enforce(struct worker *w)
{
	if (!w->over_budget)
		return;
	w->over_budget = false;
	int64_t max = budget_max();
	struct client *c;
	while (max > 0 && client_budget_used() > max && (c = largest(w)) != NULL) {
		size_t bytes = c->buf_bytes;
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "out of memory: client buffers exceed max_client_buffer_bytes (%" PRId64
			 " bytes); this connection held the most (%zu bytes)",
			 max, bytes);
		budget_log(w, c, bytes);
		client_close(c, "53200", msg); /* its share goes with its buffers */
	}
}
