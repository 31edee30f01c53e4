/* http_probe.c: /health's "SELECT 1" through the pools. Each probe is a socketpair: one end goes
 * to a worker by mail (MAIL_INTERNAL) and becomes a client that skips authentication (nothing
 * outside the process can reach that end); on this end the listener thread sends a startup
 * packet and the query and reads the answers, nonblocking, in its own event loop. */
#include "http_probe.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "objects.h"
#include "pool.h"
#include "proto.h"
#include "http_server.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBE_MAX	64	    /* databases probed per round */
#define PROBE_MSG_LIMIT (64 * 1024) /* a probe expects only small messages */

enum probe_step { P_LOGIN, P_QUERY, P_DONE };

struct probe {
	struct loop_fd lfd;
	struct probe_result *res;
	enum probe_step step;
	bool completed; /* CommandComplete seen */
	struct buf in, out;
	usec_t query_sent;
};

static struct {
	struct loop *loop;
	probe_done_fn done;
	struct probe_result results[PROBE_MAX];
	struct probe_skip skips[PROBE_MAX];
	int nskips;
	struct probe probes[PROBE_MAX];
	int n, pending;
	unsigned next_worker;
	bool running, have;
	bool fresh;	/* a round just ended: its waiters take it whatever the interval */
	bool launching; /* inside probe_round: a round that ends at once is answered directly */
	usec_t started, finished;
} pr;

void probe_init(struct loop *loop, probe_done_fn done)
{
	pr.loop = loop;
	pr.done = done;
}

static void round_done(void)
{
	pr.running = false;
	pr.have = true;
	pr.finished = shoal_now();
	if (pr.launching)
		return;
	pr.fresh = true;
	if (pr.done)
		pr.done();
	pr.fresh = false;
}

static void probe_finish(struct probe *p, bool ok, const char *reason)
{
	if (p->step == P_DONE)
		return;
	p->step = P_DONE;
	p->res->ok = ok;
	if (ok)
		p->res->latency_ms = (double)(shoal_now() - p->query_sent) / 1000.0;
	else
		snprintf(p->res->reason, sizeof(p->res->reason), "%s", reason);
	if (p->lfd.fd >= 0) {
		uint8_t bye[5] = {'X', 0, 0, 0, 4};
		if (write(p->lfd.fd, bye, sizeof(bye)) < 0)
			log_debug("health probe: terminate: %s", strerror(errno));
		loop_del(pr.loop, &p->lfd);
		close(p->lfd.fd);
		p->lfd.fd = -1;
	}
	buf_free(&p->in);
	buf_free(&p->out);
	if (--pr.pending == 0)
		round_done();
}

static void probe_flush(struct probe *p)
{
	while (buf_avail(&p->out)) {
		ssize_t n = write(p->lfd.fd, buf_head(&p->out), buf_avail(&p->out));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_set(pr.loop, &p->lfd, EPOLLIN | EPOLLOUT);
			return;
		}
		if (n < 0) {
			probe_finish(p, false, "the pooler closed the probe connection");
			return;
		}
		buf_consume(&p->out, (size_t)n);
	}
	loop_set(pr.loop, &p->lfd, EPOLLIN);
}

static void probe_error(struct probe *p, const uint8_t *body, size_t len)
{
	struct pq_error e;
	char why[256];
	if (proto_parse_error(body, len, &e) == SHOAL_OK && e.message)
		snprintf(why, sizeof(why), "%s: %s", e.sqlstate ? e.sqlstate : "?????", e.message);
	else
		snprintf(why, sizeof(why), "malformed error response");
	probe_finish(p, false, why);
}

/* One whole message from the pooler. */
static void probe_message(struct probe *p, uint8_t type, const uint8_t *body, size_t len)
{
	struct pq_reader r;
	switch (type) {
	case 'R':
		pqr_init(&r, body, len);
		if (pqr_u32(&r) != 0 || r.err)
			probe_finish(p, false, "the pooler asked the probe for a password");
		return;
	case 'E':
		probe_error(p, body, len);
		return;
	case 'C':
		p->completed = true;
		return;
	case 'Z':
		if (p->step == P_LOGIN) {
			p->step = P_QUERY;
			p->query_sent = shoal_now();
			proto_write_query(&p->out, "SELECT 1");
			probe_flush(p);
		} else {
			probe_finish(p, p->completed, "no CommandComplete before ReadyForQuery");
		}
		return;
	default:
		return; /* ParameterStatus, BackendKeyData, RowDescription, DataRow, notices */
	}
}

static void probe_parse(struct probe *p)
{
	struct pq_header h;
	while (p->step != P_DONE &&
	       proto_header(buf_head(&p->in), buf_avail(&p->in), &h) == SHOAL_OK) {
		if (h.len > PROBE_MSG_LIMIT) {
			probe_finish(p, false, "unexpected large message");
			return;
		}
		if (buf_avail(&p->in) < 1 + (size_t)h.len)
			return;
		const uint8_t *body = buf_head(&p->in) + PQ_HEADER_LEN;
		probe_message(p, h.type, body, h.len - 4);
		if (p->step != P_DONE)
			buf_consume(&p->in, 1 + (size_t)h.len);
	}
}

static void probe_event(struct loop_fd *lfd, uint32_t events)
{
	struct probe *p = container_of(lfd, struct probe, lfd);
	if (p->step == P_DONE)
		return;
	if (events & EPOLLOUT)
		probe_flush(p);
	if (p->step == P_DONE || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	buf_reserve(&p->in, 4096);
	ssize_t n = read(lfd->fd, p->in.data + p->in.len, p->in.cap - p->in.len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		probe_finish(p, false, "the pooler closed the probe connection");
		return;
	}
	p->in.len += (size_t)n;
	probe_parse(p);
}

static void startup_packet(struct buf *b, const char *user, const char *db)
{
	proto_begin(b, 0);
	proto_put_u32(b, PQ_PROTOCOL_3_0);
	proto_put_str(b, "user");
	proto_put_str(b, user);
	proto_put_str(b, "database");
	proto_put_str(b, db);
	proto_put_str(b, "application_name");
	proto_put_str(b, "shoal-health");
	proto_put_u8(b, 0);
	proto_finish(b);
}

/* Start probe i: a socketpair, our end in the loop, theirs mailed to the next worker. */
static void probe_launch(int i)
{
	struct probe *p = &pr.probes[i];
	*p = (struct probe){.res = &pr.results[i], .lfd = {.fd = -1, .cb = probe_event}};
	if (!http_workers_ready()) {
		probe_finish(p, false, "the pooler is starting");
		return;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		probe_finish(p, false, "socketpair failed");
		return;
	}
	p->lfd.fd = sv[0];
	if (loop_add(pr.loop, &p->lfd, EPOLLIN) != SHOAL_OK) {
		close(sv[1]);
		probe_finish(p, false, "epoll registration failed");
		return;
	}
	struct mail *m = xcalloc(1, sizeof(*m));
	m->kind = MAIL_INTERNAL;
	m->fd = sv[1];
	worker_mail(worker_get((int)(pr.next_worker++ % (unsigned)worker_count())), m);
	startup_packet(&p->out, p->res->user, p->res->database);
	probe_flush(p);
}

static bool is_console(const char *db)
{
	return strcmp(db, "pgbouncer") == 0 || strcmp(db, "shoal") == 0;
}

static int find_target(const char *db)
{
	for (int i = 0; i < pr.n; i++)
		if (strcmp(pr.results[i].database, db) == 0)
			return i;
	return -1;
}

static void add_skip(const char *db, const char *fmt, const char *arg)
{
	if (pr.nskips == PROBE_MAX)
		return;
	struct probe_skip *s = &pr.skips[pr.nskips++];
	snprintf(s->database, sizeof(s->database), "%s", db);
	snprintf(s->reason, sizeof(s->reason), fmt, arg);
}

static void add_target(const char *db, const char *user)
{
	if (is_console(db) || find_target(db) >= 0)
		return;
	if (pr.n == PROBE_MAX || strlen(db) >= PROBE_NAME_LEN || strlen(user) >= PROBE_NAME_LEN) {
		add_skip(db, "%s",
			 pr.n == PROBE_MAX ? "more databases than one round probes (64)"
					   : "its or its user's name is too long to probe");
		return;
	}
	struct probe_result *r = &pr.results[pr.n++];
	*r = (struct probe_result){0};
	snprintf(r->database, sizeof(r->database), "%s", db);
	snprintf(r->user, sizeof(r->user), "%s", user);
}

/* Has a client's login given pool (db, user) what a server login needs (read under its lock)? */
static bool pool_has_credentials(const char *db, const char *user)
{
	int n;
	bool ok = false;
	struct pool **ps = pool_snapshot(&n);
	for (int i = 0; i < n; i++) {
		struct pool *p = ps[i];
		if (strcmp(p->name, db) != 0 || strcmp(p->user, user) != 0)
			continue;
		pool_lock(p);
		ok = p->password && (!auth_secret_is_scram(p->password) || p->has_scram_keys);
		pool_unlock(p);
	}
	pool_snapshot_free(ps);
	return ok;
}

/* Could a probe log into the server as user without a real client's help? Not when the only
 * secret is a SCRAM one (pass-through needs a client's SCRAM login first) or when the secret
 * comes from auth_query: a login bound to fail would fail the pool's real waiters and delay
 * its reconnects. Such a database is probed once a client has logged in; until then it is
 * listed as unprobed, with why. */
static bool can_log_in(const struct config *cfg, const struct db_entry *db, const char *user)
{
	if (db->password)
		return true;
	const char *secret = config_find_secret(cfg, user);
	bool via_auth_query = !secret && (db->auth_user || cfg->auth_user);
	if (!(secret && auth_secret_is_scram(secret)) && !via_auth_query)
		return true;
	if (pool_has_credentials(db->name, user))
		return true;
	add_skip(db->name,
		 via_auth_query
		     ? "user %s's secret comes from auth_query: probed once a client has logged in"
		     : "user %s has only a SCRAM secret (pass-through): probed once a client has "
		       "logged in; or set health_probe_user to a user with a password",
		 user);
	return false;
}

/* The databases the config names (never "*": clients must not choose what is probed, or one
 * mistyped name would fail /health for good), each as its forced user, else as
 * health_probe_user. A database with neither is not probed. */
static void collect_targets(const struct config *cfg)
{
	pr.n = 0;
	pr.nskips = 0;
	for (int i = 0; i < cfg->ndbs; i++) {
		const struct db_entry *db = &cfg->dbs[i];
		const char *user = db->user ? db->user : cfg->health_probe_user;
		if (strcmp(db->name, "*") == 0)
			add_skip(db->name, "%s",
				 "the * entry is not probed (a client's database "
				 "name must not decide /health): name the "
				 "database in [databases]");
		else if (!user || !*user)
			add_skip(db->name, "%s",
				 "no user to probe as: give the entry user= or "
				 "set health_probe_user");
		else if (can_log_in(cfg, db, user))
			add_target(db->name, user);
	}
}

void probe_unprobed(const struct probe_skip **out, int *n)
{
	*out = pr.skips;
	*n = pr.nskips;
}

static void probe_round(usec_t now)
{
	collect_targets(config_current());
	pr.running = true;
	pr.started = now;
	pr.pending = pr.n;
	if (pr.n == 0) {
		round_done();
		return;
	}
	for (int i = 0; i < pr.n; i++)
		probe_launch(i);
}

bool probe_results(usec_t now, const struct probe_result **out, int *n)
{
	if (pr.have && !pr.running &&
	    (pr.fresh || now - pr.finished < config_current()->health_probe_interval)) {
		*out = pr.results;
		*n = pr.n;
		return true;
	}
	if (pr.running)
		return false;
	pr.launching = true;
	probe_round(now);
	pr.launching = false;
	if (pr.running)
		return false;
	*out = pr.results; /* every probe failed at once (or there was nothing to probe) */
	*n = pr.n;
	return true;
}

void probe_tick(usec_t now)
{
	if (!pr.running)
		return;
	usec_t limit = config_current()->health_probe_timeout;
	if (now - pr.started < limit)
		return;
	char why[64];
	snprintf(why, sizeof(why), "no answer within %.1f s", (double)limit / USEC_PER_SEC);
	for (int i = 0; i < pr.n && pr.running; i++)
		probe_finish(&pr.probes[i], false, why);
}

void probe_shutdown(void)
{
	pr.done = NULL;
	for (int i = 0; i < pr.n && pr.running; i++) {
		struct probe *p = &pr.probes[i];
		if (p->step != P_DONE && p->lfd.fd >= 0) {
			loop_del(pr.loop, &p->lfd);
			close(p->lfd.fd);
		}
		buf_free(&p->in);
		buf_free(&p->out);
	}
	pr.running = false;
}
