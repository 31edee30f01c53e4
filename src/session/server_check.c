/* server_check.c: the background health check of a host list's hosts (host_check_interval).
 * Run from each worker's janitor tick; the host registry lets one check per host be under way,
 * whichever pool and worker starts it. A check is a short-lived server connection of the pool
 * (a slot of max_db_connections and max_user_connections but not of pool_size; in the
 * pool's checking list, out of the counts that decide when to open servers for waiters, where
 * the janitor closes it after host_check_timeout): it logs in as the pool's servers do, reads the role and
 * WAL position in one query, gives them to the registry and closes. A failure (refused, timed
 * out, an error) opens the host's breaker; a good answer closes it and refreshes the role. */
#include "config.h"
#include "hosts.h"
#include "ledger.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "server.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Role (as libpq's target_session_attrs checks read it), WAL position in bytes (replayed on a
 * standby, inserted on the primary: past every commit acknowledged before the check began) and a standby's replay delay in seconds (0 while it has
 * replayed all it received: an idle primary is not lag). */
#define CHECK_QUERY                                                                              \
	"SELECT pg_catalog.pg_is_in_recovery(), "                                                \
	"pg_catalog.current_setting('transaction_read_only'), "                                  \
	"pg_catalog.pg_wal_lsn_diff(CASE WHEN pg_catalog.pg_is_in_recovery() "                   \
	"THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_insert_lsn() END, "    \
	"'0/0')::int8, "                                                                         \
	"CASE WHEN NOT pg_catalog.pg_is_in_recovery() OR pg_catalog.pg_last_wal_receive_lsn() "  \
	"<= pg_catalog.pg_last_wal_replay_lsn() THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM "        \
	"pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()), 0) END::float8"

void server_check_pool(struct worker *w, struct pool *p)
{
	usec_t interval = config_current()->host_check_interval;
	if (interval <= 0)
		return;
	pool_lock(p);
	struct host_set *hs = p->hosts;
	pool_unlock(p);
	for (int i = 0; hs && i < hs->n; i++) {
		pool_lock(p); /* a slot first: with max_db_connections full, no check this tick */
		bool slot = pool_claim_check_slot(p);
		pool_unlock(p);
		if (!slot)
			return;
		if (hosts_check_claim(hs->h[i], interval)) {
			server_connect_check(w, p, hs->h[i]);
			continue;
		}
		pool_lock(p);
		pool_release_check_slot(p);
		pool_unlock(p);
	}
}

void server_check_send(struct server *s)
{
	proto_write_query(&s->c.out, CHECK_QUERY);
}

/* One text column of a DataRow into buf (empty when NULL or too long). */
static void column(struct pq_reader *r, char *buf, size_t cap)
{
	uint32_t n = pqr_u32(r);
	buf[0] = '\0';
	if (n == 0xFFFFFFFFu || n >= cap)
		return;
	const uint8_t *v = pqr_bytes(r, n);
	if (!v)
		return;
	memcpy(buf, v, n);
	buf[n] = '\0';
}

void server_check_row(struct server *s, const uint8_t *body, size_t len)
{
	struct pq_reader r;
	char v[4][64];
	pqr_init(&r, body, len);
	if (pqr_u16(&r) != 4)
		return;
	for (int i = 0; i < 4; i++)
		column(&r, v[i], sizeof(v[i]));
	s->role_standby = v[0][0] == 't';
	s->role_read_only = strcmp(v[1], "on") == 0;
	s->check_lsn = strtoull(v[2], NULL, 10);
	s->check_delay = strtod(v[3], NULL);
	s->check_row = v[0][0] != '\0';
}

void server_check_finish(struct server *s)
{
	if (!s->check_row) {
		server_close(s, "health check query gave no row");
		return;
	}
	struct host_check r = {.ok = true, .in_recovery = s->role_standby,
			       .read_only = s->role_read_only, .lsn = s->check_lsn,
			       .delay = s->check_delay,
			       .max_lag_bytes = config_current()->max_replica_lag_bytes,
			       .max_lag = config_current()->max_replica_lag};
	hosts_check_done(s->hrec, &r, NULL);
	s->check_done = true;
	s->login_ok = true;
	server_close(s, "health check done");
	if (config_current()->read_your_writes) /* a client held for this position may go */
		pool_serve_waiters(s->c.w, s->pool);
}

void server_check_gone(struct server *s, const char *reason)
{
	if (s->check_done)
		return;
	struct host_check r = {.ok = false};
	hosts_check_done(s->hrec, &r, reason);
}
