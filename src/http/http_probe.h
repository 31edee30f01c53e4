/* http_probe.h: the /health probe. One round runs "SELECT 1" through Shoal's own pools for
 * every database: the listener thread opens a socketpair, hands one end to a worker as a trusted
 * internal client and speaks the protocol on the other, without blocking. A round's results are
 * reused for health_probe_interval, so probes cannot flood PostgreSQL. */
#ifndef SHOAL_HTTP_PROBE_H
#define SHOAL_HTTP_PROBE_H

#include "common.h"

struct loop;

#define PROBE_NAME_LEN 64

struct probe_result {
	char database[PROBE_NAME_LEN];
	char user[PROBE_NAME_LEN];
	bool ok;
	double latency_ms;
	char reason[256]; /* why it failed: the server's error, "timeout after 3 s", ... */
};

/* A database of the configuration that a round did not probe, and why ("no user to probe as:
 * ...", "the * entry is not probed ...", SCRAM pass-through without a client login yet). */
struct probe_skip {
	char database[PROBE_NAME_LEN];
	char reason[200];
};

/* Called on the listener thread when a round has finished. */
typedef void (*probe_done_fn)(void);

void probe_init(struct loop *loop, probe_done_fn done);
/* Results of a round finished less than health_probe_interval ago: true with out and n set.
 * Otherwise false, and a round is started unless one is running (probe_done_fn follows). */
bool probe_results(usec_t now, const struct probe_result **out, int *n);
/* The databases the last round (that probe_results returned) left out; valid until the next. */
void probe_unprobed(const struct probe_skip **out, int *n);
/* Time out probes still running (the listener's tick). */
void probe_tick(usec_t now);
/* Abort a running round and free everything (the listener is stopping). */
void probe_shutdown(void);

#endif
