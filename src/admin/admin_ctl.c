/* admin_ctl.c: the admin console's control commands: PAUSE, RESUME, DISABLE, ENABLE, RECONNECT,
 * WAIT_CLOSE, KILL, KILL_CLIENT, SHUTDOWN, RELOAD. Work on other workers' connections is sent
 * to them by mail (MAIL_ADMIN); commands that wait are finished by admin_tick. */
#include "admin_int.h"
#include "client.h"
#include "control.h"
#include "handoff.h"
#include "log.h"
#include "pause.h"
#include "pool.h"
#include "proto.h"
#include "server.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void tag(struct client *c, const char *t)
{
	proto_write_command_complete(&c->c.out, t);
}

/* A db argument must name a database (not the console). */
static bool check_db(struct client *c, const char *db, const char *verb)
{
	if (admin_is_console_db(db)) {
		admin_error(c, "08P01", "cannot %s admin db: %s", verb, db);
		return false;
	}
	if (!control_db_known(db)) {
		admin_error(c, "08P01", "no such database: %s", db);
		return false;
	}
	return true;
}

static void wait_for(struct client *c, enum admin_wait_kind kind, const char *db)
{
	struct admin_wait *aw = xcalloc(1, sizeof(*aw));
	aw->kind = kind;
	aw->has_db = *db != '\0';
	snprintf(aw->db, sizeof(aw->db), "%s", db);
	if (admin_wait_done(aw)) {
		tag(c, admin_wait_tag(aw));
		free(aw);
		return;
	}
	c->admin_wait = aw;
}

void admin_wait_job(struct client *c, struct control_job *job, const char *tag_text)
{
	struct admin_wait *aw = xcalloc(1, sizeof(*aw));
	aw->kind = AW_CONTROL;
	aw->job = job;
	snprintf(aw->tag, sizeof(aw->tag), "%s", tag_text);
	c->admin_wait = aw;
}

void admin_wait_free(struct admin_wait *aw)
{
	if (aw && aw->job)
		control_job_release(aw->job);
	free(aw);
}

void admin_wait_finish(struct client *c)
{
	struct admin_wait *aw = c->admin_wait;
	if (aw->kind == AW_CONTROL && control_job_state(aw->job) == CONTROL_FAILED) {
		if (strcmp(aw->tag, "RELOAD") == 0) /* PgBouncer's wording */
			admin_error(c, "F0000", "RELOAD failed, see logs for additional details");
		else
			admin_error(c, "08P01", "SET failed: %s", control_job_error(aw->job));
	} else {
		if (aw->kind == AW_CONTROL && *control_job_error(aw->job)) /* PgBouncer's words */
			admin_notice(c, "TLS settings could not be applied, still using old configuration",
				     control_job_error(aw->job));
		proto_write_command_complete(&c->c.out, admin_wait_tag(aw));
	}
	admin_wait_free(aw);
	c->admin_wait = NULL;
}

bool admin_wait_done(const struct admin_wait *aw)
{
	if (aw->kind == AW_CONTROL)
		return control_job_state(aw->job) != CONTROL_QUEUED;
	const char *db = aw->has_db ? aw->db : NULL;
	return aw->kind == AW_PAUSE ? control_servers_gone(db) : control_old_servers_gone(db);
}

const char *admin_wait_tag(const struct admin_wait *aw)
{
	if (aw->kind == AW_CONTROL)
		return aw->tag;
	return aw->kind == AW_PAUSE ? "PAUSE" : "WAIT_CLOSE";
}

static void cmd_pause(struct client *c, const char *db)
{
	if (pause_flag(NULL) || (*db && pause_flag(db))) {
		admin_error(c, "08P01", "already suspended/paused");
		return;
	}
	if (*db && !check_db(c, db, "pause"))
		return;
	pause_set(*db ? db : NULL, true);
	log_info("%s: PAUSE %s", c->c.name, *db ? db : "(all)");
	wait_for(c, AW_PAUSE, db);
}

static void cmd_resume(struct client *c, const char *db)
{
	if (control_shutting_down()) { /* as PgBouncer: a shutdown's wait is not undone */
		admin_error(c, "08P01", "pooler is shutting down");
		return;
	}
	if (*db) {
		if (!check_db(c, db, "resume"))
			return;
		if (!pause_flag(db)) {
			admin_error(c, "08P01", "database %s is not paused", db);
			return;
		}
	} else if (!pause_any()) {
		admin_error(c, "08P01", "pooler is not paused/suspended");
		return;
	}
	pause_set(*db ? db : NULL, false);
	log_info("%s: RESUME %s", c->c.name, *db ? db : "(all)");
	tag(c, "RESUME");
}

static void cmd_disable(struct client *c, const char *db, bool disable)
{
	if (!*db) {
		admin_error(c, "08P01", "a database is required");
		return;
	}
	if (!check_db(c, db, disable ? "disable" : "enable"))
		return;
	pause_set_disabled(db, disable);
	tag(c, disable ? "DISABLE" : "ENABLE");
}

static void bump_gen(struct pool *p, void *arg)
{
	const char *db = arg;
	if (!*db || strcmp(p->name, db) == 0)
		p->gen++;
}

static void cmd_reconnect(struct client *c, const char *db)
{
	if (*db && !check_db(c, db, "reconnect"))
		return;
	pool_foreach(bump_gen, (void *)db);
	tag(c, "RECONNECT");
}

static void cmd_wait_close(struct client *c, const char *db)
{
	if (*db && !check_db(c, db, "wait in"))
		return;
	wait_for(c, AW_WAIT_CLOSE, db);
}

static void mail_all(enum admin_mail_op op, const char *arg)
{
	for (int i = 0; i < worker_count(); i++) {
		size_t len = strlen(arg) + 1;
		struct mail *m = xcalloc(1, sizeof(*m) + len);
		m->kind = MAIL_ADMIN;
		m->hops = op;
		m->len = len;
		memcpy(m->data, arg, len);
		worker_mail(worker_get(i), m);
	}
}

static void cmd_kill(struct client *c, const char *db)
{
	if (pause_flag(NULL) || (*db && pause_flag(db))) {
		admin_error(c, "08P01", "already suspended/paused");
		return;
	}
	if (*db && !check_db(c, db, "kill"))
		return;
	pause_set(*db ? db : NULL, true); /* as PgBouncer: RESUME lets clients in again */
	log_info("%s: KILL %s", c->c.name, *db ? db : "(all)");
	mail_all(AM_KILL_DB, db);
	tag(c, "KILL");
}

struct find_id {
	uint64_t id;
	int worker; /* -1: not found */
};

static void find_in(struct find_id *f, struct list *head)
{
	for (struct list *i = head->next; i != head; i = i->next) {
		struct client *c = container_of(i, struct client, node);
		if (c->id == f->id)
			f->worker = c->c.w->id;
	}
}

static void find_in_pool(struct pool *p, void *arg)
{
	find_in(arg, &p->active_clients);
	find_in(arg, &p->waiting);
	find_in(arg, &p->handoff);
}

static void find_in_admin(struct client *c, void *arg)
{
	struct find_id *f = arg;
	if (c->id == f->id)
		f->worker = c->c.w->id;
}

static void cmd_kill_client(struct client *c, const char *arg)
{
	char *end;
	struct find_id f = {.worker = -1};
	f.id = strtoull(arg, &end, 10);
	if (!*arg || *end) {
		admin_error(c, "08P01", "invalid client pointer supplied");
		return;
	}
	pool_foreach(find_in_pool, &f);
	admin_foreach_client(find_in_admin, &f);
	if (f.worker < 0) {
		admin_error(c, "08P01", "client not found");
		return;
	}
	size_t len = strlen(arg) + 1; /* its own worker closes it */
	struct mail *m = xcalloc(1, sizeof(*m) + len);
	m->kind = MAIL_ADMIN;
	m->hops = AM_KILL_CLIENT;
	m->len = len;
	memcpy(m->data, arg, len);
	worker_mail(worker_get(f.worker), m);
	tag(c, "KILL_CLIENT");
}

static void cmd_shutdown(struct client *c, const char *arg)
{
	if (!strcasecmp(arg, "wait_for_servers")) {
		control_shutdown(SHUTDOWN_WAIT_SERVERS);
		tag(c, "SHUTDOWN");
	} else if (!strcasecmp(arg, "wait_for_clients")) {
		control_shutdown(SHUTDOWN_WAIT_CLIENTS);
		tag(c, "SHUTDOWN");
	} else if (!*arg) {
		control_shutdown(SHUTDOWN_NOW); /* no answer: the connection closes */
	} else {
		admin_error(c, "08P01", "invalid command 'SHUTDOWN %s', use SHOW HELP;", arg);
	}
}

/* HANDOFF: the idle clients go to the newer process on handoff_socket, then a WAIT_FOR_CLIENTS
 * shutdown (handoff.h). */
static void cmd_handoff(struct client *c)
{
	char err[256];
	if (handoff_begin(err, sizeof(err)) != SHOAL_OK) {
		admin_error(c, "55000", "%s", err);
		return;
	}
	control_shutdown(SHUTDOWN_WAIT_CLIENTS);
	tag(c, "HANDOFF");
}

static void cmd_reload(struct client *c)
{
	admin_wait_job(c, control_post(NULL, NULL, c->c.w), "RELOAD");
}

shoal_rc admin_control(struct client *c, const char *cmd, const char *arg)
{
	static const char *const known[] = {"pause",	 "resume",     "disable", "enable",
					    "reconnect", "wait_close", "kill",	  "kill_client",
					    "shutdown",	 "reload",     "suspend", "handoff"};
	bool found = false;
	for (size_t i = 0; i < ARRAY_LEN(known); i++)
		found |= strcmp(cmd, known[i]) == 0;
	if (!found)
		return SHOAL_AGAIN;
	if ((!strcmp(cmd, "reload") || !strcmp(cmd, "handoff")) && *arg)
		return SHOAL_AGAIN; /* "invalid command" */
	if (c->admin != ADMIN_FULL) {
		admin_error(c, "08P01", "admin access needed");
		return SHOAL_OK;
	}
	if (!strcmp(cmd, "pause"))
		cmd_pause(c, arg);
	else if (!strcmp(cmd, "resume"))
		cmd_resume(c, arg);
	else if (!strcmp(cmd, "disable"))
		cmd_disable(c, arg, true);
	else if (!strcmp(cmd, "enable"))
		cmd_disable(c, arg, false);
	else if (!strcmp(cmd, "reconnect"))
		cmd_reconnect(c, arg);
	else if (!strcmp(cmd, "wait_close"))
		cmd_wait_close(c, arg);
	else if (!strcmp(cmd, "kill"))
		cmd_kill(c, arg);
	else if (!strcmp(cmd, "kill_client"))
		cmd_kill_client(c, arg);
	else if (!strcmp(cmd, "shutdown"))
		cmd_shutdown(c, arg);
	else if (!strcmp(cmd, "reload"))
		cmd_reload(c);
	else if (!strcmp(cmd, "handoff"))
		cmd_handoff(c);
	else
		admin_error(c, "0A000", "SUSPEND is not supported by Shoal (no online restart)");
	return SHOAL_OK;
}

/* ---- this worker's share of KILL / KILL_CLIENT --------------------------------------------- */

struct kill_scan {
	struct worker *w;
	const char *db; /* AM_KILL_DB: "" for every database */
	uint64_t id;	/* AM_KILL_CLIENT */
	bool by_id;
	void **items;
	bool *is_server;
	int n, cap;
};

static void scan_add(struct kill_scan *k, void *obj, bool server)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 32;
		k->items = xrealloc(k->items, sizeof(void *) * (size_t)k->cap);
		k->is_server = xrealloc(k->is_server, sizeof(bool) * (size_t)k->cap);
	}
	k->items[k->n] = obj;
	k->is_server[k->n++] = server;
}

static void scan_clients(struct kill_scan *k, struct list *head)
{
	for (struct list *i = head->next; i != head; i = i->next) {
		struct client *c = container_of(i, struct client, node);
		if (c->c.w == k->w && (!k->by_id || c->id == k->id))
			scan_add(k, c, false);
	}
}

static void scan_servers(struct kill_scan *k, struct list *head)
{
	for (struct list *i = head->next; i != head; i = i->next) {
		struct server *s = container_of(i, struct server, node);
		if (s->c.w == k->w)
			scan_add(k, s, true);
	}
}

static void scan_pool(struct pool *p, void *arg)
{
	struct kill_scan *k = arg;
	if (!k->by_id && *k->db && strcmp(p->name, k->db) != 0)
		return;
	scan_clients(k, &p->active_clients);
	scan_clients(k, &p->waiting);
	scan_clients(k, &p->handoff);
	if (k->by_id)
		return;
	scan_servers(k, &p->idle);
	scan_servers(k, &p->used);
	scan_servers(k, &p->connecting);
	scan_servers(k, &p->resetting);
}

static void scan_admin(struct client *c, void *arg)
{
	struct kill_scan *k = arg;
	if (c->c.w == k->w && c->id == k->id)
		scan_add(k, c, false);
}

void admin_job_done(struct worker *w)
{
	struct mail *m = xcalloc(1, sizeof(*m));
	m->kind = MAIL_ADMIN;
	m->hops = AM_JOB_DONE;
	worker_mail(w, m);
}

void admin_on_mail(struct worker *w, struct mail *m)
{
	if (m->hops == AM_JOB_DONE) { /* a RELOAD or SET of this worker's console is done */
		admin_tick(w);
		return;
	}
	struct kill_scan k = {.w = w, .db = (const char *)m->data};
	k.by_id = m->hops == AM_KILL_CLIENT;
	if (k.by_id)
		k.id = strtoull(k.db, NULL, 10);
	pool_foreach(scan_pool, &k);
	if (k.by_id)
		admin_foreach_client(scan_admin, &k);
	/* Objects found stay allocated until the end of this event batch. */
	for (int i = 0; i < k.n; i++) {
		if (k.is_server[i]) {
			struct server *s = k.items[i];
			if (!s->c.dead)
				server_close(s, "killed by the admin console (KILL)");
		} else {
			client_close(k.items[i], "08P01",
				     k.by_id ? "client killed by the admin console (KILL_CLIENT)"
					     : "database killed by the admin console (KILL)");
		}
	}
	free(k.items);
	free(k.is_server);
}
