/* hosts_ryw.c: read-your-writes over a host list (read_your_writes): when a client last ended a
 * transaction through a write alias, and which hosts may serve its reads meanwhile. */
#include "hosts.h"
#include "hosts_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Read-your-writes: when each (user, client address, host group) last ended a transaction
 * through a write alias. A short list (one entry per application instance and user), under the
 * registry's lock; entries older than any window are reused. */
struct ryw_entry {
	char key[512];
	usec_t at;
};
static struct ryw_entry *ryw;
static int nryw;
#define RYW_KEEP (600 * USEC_PER_SEC)

static void ryw_key(char *out, size_t n, const struct host_set *hs, const char *user,
		    const char *addr)
{
	snprintf(out, n, "%s|%s|%s", user, addr, hs->group);
}

void hosts_ryw_note(const struct host_set *hs, const char *user, const char *addr)
{
	if (!hs || !(hosts_tsa_writes(hs->tsa) || hs->split))
		return;
	char key[512];
	ryw_key(key, sizeof(key), hs, user, addr);
	usec_t now = shoal_now();
	pthread_mutex_lock(&hosts_lock);
	struct ryw_entry *e = NULL, *old = NULL;
	for (int i = 0; i < nryw && !e; i++) {
		if (strcmp(ryw[i].key, key) == 0)
			e = &ryw[i];
		else if (now - ryw[i].at > RYW_KEEP)
			old = &ryw[i];
	}
	if (!e && old)
		e = old;
	if (!e) {
		ryw = xrealloc(ryw, sizeof(*ryw) * (size_t)(nryw + 1));
		e = &ryw[nryw++];
	}
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->at = now;
	/* The group's hosts are checked at the next tick: the reads wait for that position. */
	for (int i = 0; i < hosts_nsets; i++)
		for (int j = 0;
		     j < hosts_sets[i]->n && strcmp(hosts_sets[i]->group, hs->group) == 0; j++)
			hosts_sets[i]->h[j]->check_next = 0;
	pthread_mutex_unlock(&hosts_lock);
}

usec_t hosts_ryw_since(const struct host_set *hs, const char *user, const char *addr, usec_t window)
{
	if (!hs || (hosts_tsa_writes(hs->tsa) && !hs->split))
		return 0;
	char key[512];
	ryw_key(key, sizeof(key), hs, user, addr);
	usec_t now = shoal_now(), at = 0;
	pthread_mutex_lock(&hosts_lock);
	for (int i = 0; i < nryw; i++)
		if (strcmp(ryw[i].key, key) == 0 && now - ryw[i].at <= window)
			at = ryw[i].at;
	pthread_mutex_unlock(&hosts_lock);
	return at;
}

/* The floor a standby must have replayed for a write noted before the primary's check began:
 * its insert position, less a page header it may point past (pg_current_wal_insert_lsn() at a
 * page start counts the header, a standby's replay position the record end before it; no
 * record ends inside the first 40 bytes of a page but at its start, with 8 kB WAL pages). */
static uint64_t ryw_floor(uint64_t insert_lsn)
{
	uint64_t off = insert_lsn % 8192;
	return off > 0 && off <= 40 ? insert_lsn - off : insert_lsn;
}

bool hosts_ryw_allows(struct host_rec *h, usec_t since)
{
	if (!h)
		return true; /* one host: nothing to choose */
	pthread_mutex_lock(&hosts_lock);
	struct host_rec *pri = hosts_primary_of(h);
	bool ok = hosts_claims_primary(h);
	if (!ok && pri && pri->lsn_since > since && h->role == HOST_ROLE_STANDBY)
		ok = h->lsn >= ryw_floor(pri->lsn);
	if (!ok) { /* ask again soon: the primary's position after the write, or the replay */
		h->check_next = 0;
		if (pri && pri->lsn_since <= since)
			pri->check_next = 0;
	}
	pthread_mutex_unlock(&hosts_lock);
	return ok;
}
