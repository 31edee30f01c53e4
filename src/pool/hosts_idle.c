/* hosts_idle.c: per transaction, which host's idle server a client takes (hosts_pick_idle): the
 * balancing rule of a host list over the pool's idle servers. Pure: the caller holds its pool's
 * lock and passes the counts. */
#include "hosts.h"

/* A host passed over while its servers were all in use catches up by at most this many rounds
 * of picks (a host busy for long, or slow, gets no burst). */
#define CATCH_UP 16

/* Whether host i has fewer in-use servers than host j for its weight. */
static bool busier(const struct host_set *hs, const int *in_use, int i, int j)
{
	return (long)in_use[i] * hs->w[j] > (long)in_use[j] * hs->w[i];
}

int hosts_pick_idle(const struct host_set *hs, int *credit, const bool *idle, const int *in_use,
		    bool may_wait)
{
	int in_use_z[SHOAL_MAX_HOSTS];
	bool cand[SHOAL_MAX_HOSTS], any = false, near_idle = false, near_only[SHOAL_MAX_HOSTS];
	int least = -1, total = 0, best = -1, top = -1, earned[SHOAL_MAX_HOSTS];
	for (int i = 0; i < hs->n; i++)
		near_idle |= hs->zoned && hs->near[i] && idle[i];
	/* zones: while a host of this instance's zone has an idle server, the others are out of
	 * this choice (and of the turn), as if they had no server */
	if (near_idle) {
		for (int i = 0; i < hs->n; i++) {
			near_only[i] = hs->near[i] && idle[i];
			in_use_z[i] = hs->near[i] ? in_use[i] : 0;
		}
		idle = near_only;
		in_use = in_use_z;
	}
	for (int i = 0; i < hs->n; i++) {
		cand[i] = idle[i];
		any |= idle[i];
		if (idle[i] && hs->lb == LB_LEAST_CONN &&
		    (least < 0 || busier(hs, in_use, least, i)))
			least = i;
	}
	if (!any)
		return -1; /* nothing handed out: nobody earns or pays */
	/* least-connections: only the hosts with the fewest in use per weight; round-robin
	 * between those that tie (at low load: all of them). */
	for (int i = 0; least >= 0 && i < hs->n; i++)
		cand[i] = idle[i] && !busier(hs, in_use, i, least);
	/* Smooth weighted round-robin (as pick_weighted) over the hosts in rotation (a server idle
	 * or in use): a host whose servers are all in use earns its turn too. */
	for (int i = 0; i < hs->n; i++) {
		earned[i] = credit[i];
		if (!idle[i] && !in_use[i])
			continue;
		earned[i] += hs->w[i];
		total += hs->w[i];
		if (top < 0 || earned[i] > earned[top])
			top = i;
		if (cand[i] && (best < 0 || earned[i] > earned[best]))
			best = i;
	}
	/* round-robin: the host next in turn is busy; the client waits for one of its servers
	 * (the caller bounds the wait), so the shares do not follow which host answers faster. */
	if (may_wait && hs->lb == LB_ROUND_ROBIN && earned[top] > earned[best])
		return -2;
	earned[best] -= total;
	for (int i = 0; i < hs->n; i++) /* a host passed over catches up by a few rounds at most */
		credit[i] = earned[i] > CATCH_UP * total    ? CATCH_UP * total
			    : earned[i] < -CATCH_UP * total ? -CATCH_UP * total
							    : earned[i];
	return best;
}
