/* txn.c: transaction-pooling hooks: SQL sniffing for pins and tracked SETs, prepared statements. */
#include "txn.h"
#include "log.h"
#include "objects.h"
#include "pool.h"
#include "prepared.h"
#include "proto.h"
#include "worker.h"
#include "sqlscan.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A SET/RESET sent outside a transaction, applied to the client's tracked parameters when the
 * server confirms it (ReadyForQuery 'I' with no error in between). */
struct txn_set {
	char *name;  /* NULL: no SET, only forget */
	char *value; /* SQL text; NULL: RESET */
	bool failed;
	bool forget;  /* DEALLOCATE ALL / DISCARD ALL: the client's statements go */
	bool discard; /* DISCARD ALL: its tracked SETs go too */
	bool in_block;    /* sent inside a transaction block: known only when the block ends */
	bool rolled_back; /* a ROLLBACK (or ROLLBACK TO SAVEPOINT) ran since */
};

static bool active(const struct server *s)
{
	return pool_mode_of(s->pool) != POOL_SESSION;
}

bool txn_wants_whole(const struct server *s, uint8_t type)
{
	if (!active(s))
		return false;
	if (type == PQMSG_QUERY || type == PQMSG_PARSE)
		return true;
	return (type == PQMSG_BIND || type == PQMSG_DESCRIBE || type == PQMSG_CLOSE) &&
	       ps_enabled(s);
}

void txn_pin(struct client *c, const char *reason)
{
	if (c->pin_reason)
		return;
	/* Under the pool lock: SHOW CLIENTS reads it from other workers. */
	if (c->pool)
		pool_lock(c->pool);
	c->pin_reason = reason;
	if (c->pool)
		pool_unlock(c->pool);
	log_info("%s pinned to its server for the rest of its session: %s", c->c.name, reason);
}

/* Is name listed in track_extra_parameters (comma/space separated, case-insensitive)? */
static bool tracked_name(const char *name)
{
	const char *list = config_current()->track_extra_parameters;
	size_t n = strlen(name);
	for (const char *p = list ? list : ""; *p;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		size_t w = strcspn(p, ", \t");
		if (w == n && strncasecmp(p, name, n) == 0)
			return true;
		p += w;
	}
	return false;
}

static void txn_set(struct client *c, struct server *s, struct sql_facts *f)
{
	const struct param *sp = f->set_name[0] ? params_find(&s->params, f->set_name) : NULL;
	if (sp && sp->initial)
		return; /* the server reports it: ParameterStatus keeps the client's value */
	/* Nothing in flight: the server's state is known. In a block ('T'), the SET counts only if
	 * the block commits (see txn_server_ready). */
	bool quiet = (s->ready_status == 'I' || s->ready_status == 'T') && s->pending == 0 &&
		     !s->ext_open && !(s->txn_set && s->txn_set->name);
	if (!f->set_trackable || !quiet) {
		txn_pin(c, "SET inside a failed transaction or with other statements");
		return;
	}
	if (!tracked_name(f->set_name)) {
		txn_pin(c, "SET of a parameter not in track_extra_parameters");
		return;
	}
	struct txn_set *t = s->txn_set ? s->txn_set : xcalloc(1, sizeof(*t));
	t->name = xstrdup(f->set_name);
	t->value = f->set_reset ? NULL : f->set_value;
	t->in_block = s->ready_status == 'T';
	if (!f->set_reset)
		f->set_value = NULL;
	s->txn_set = t;
}

static void txn_sniff(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	struct pq_reader r;
	pqr_init(&r, msg + 5, len - 5);
	if (msg[0] == PQMSG_PARSE)
		(void)pqr_cstr(&r);
	const char *q = pqr_cstr(&r);
	if (!q)
		return; /* malformed: the server answers it */
	struct sql_facts f;
	sqlscan(q, strlen(q), &f);
	if (f.pin_reason)
		txn_pin(c, f.pin_reason);
	if (f.deallocate_all || f.discard_all) {
		/* The server may drop every statement, other clients' too: forget them now (a
		 * statement forgotten in vain is prepared again). The client's own go when the
		 * server confirms (in a failed transaction block it refuses). */
		ps_server_forget(s);
		if (!s->txn_set)
			s->txn_set = xcalloc(1, sizeof(*s->txn_set));
		s->txn_set->forget = true;
		s->txn_set->discard |= f.discard_all;
	}
	if (f.discard_all) {
		/* The server goes back to its login values (its reported parameters come back by
		 * ParameterStatus to the client). */
		struct param_list none = {0};
		params_assume_applied(&none, &s->params);
	}
	if (f.has_set)
		txn_set(c, s, &f);
	sql_facts_free(&f);
}

void txn_client_msg(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	if (msg[0] == PQMSG_QUERY || msg[0] == PQMSG_PARSE)
		txn_sniff(c, s, msg, len);
	if (msg[0] != PQMSG_QUERY && ps_enabled(s)) {
		ps_client_msg(c, s, msg, len);
		return;
	}
	buf_append(&s->c.out, msg, len);
	ps_client_note(s, msg[0]);
}

void txn_client_note(struct server *s, uint8_t type)
{
	if (active(s))
		ps_client_note(s, type);
}

bool txn_server_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len)
{
	if (type == PQMSG_ERROR && s->txn_set)
		s->txn_set->failed = true;
	return ps_server_msg(s, type, msg, len);
}

bool txn_holding(const struct server *s)
{
	return ps_holding(s);
}

static void txn_set_free(struct server *s)
{
	if (!s->txn_set)
		return;
	free(s->txn_set->name);
	free(s->txn_set->value);
	free(s->txn_set);
	s->txn_set = NULL;
}

bool txn_wants_tags(const struct server *s)
{
	return s->txn_set && s->txn_set->in_block;
}

void txn_server_tag(struct server *s, struct client *c, const uint8_t *msg, size_t len)
{
	UNUSED(c);
	if (!txn_wants_tags(s))
		return;
	/* ROLLBACK, ROLLBACK TO SAVEPOINT and a COMMIT of a failed block all say "ROLLBACK";
	 * PREPARE TRANSACTION takes the block out of this session. */
	const char *tag = (const char *)msg + 5;
	size_t n = strnlen(tag, len - 5);
	if ((n >= 8 && strncmp(tag, "ROLLBACK", 8) == 0) ||
	    (n >= 19 && strncmp(tag, "PREPARE TRANSACTION", 19) == 0))
		s->txn_set->rolled_back = true;
}

void txn_server_ready(struct server *s, struct client *c, char status)
{
	struct txn_set *t = s->txn_set;
	if (status == 'I')
		ps_server_idle(s);
	if (!t)
		return;
	if (t->name && status != 'I')
		t->in_block = true; /* a BEGIN came behind the SET: it is part of that block now */
	if (t->in_block) {
		if (status != 'I')
			return; /* the block goes on */
		if (t->failed || t->rolled_back) {
			/* Committed after a savepoint rollback, or rolled back: the server's value is
			 * not known for sure. */
			txn_pin(c, "SET in a transaction block that did not simply commit");
			txn_set_free(s);
			return;
		}
	}
	if (!t->failed && t->forget) {
		ps_client_forget(c);
		if (t->discard)
			params_remove_raw(&c->params);
	}
	if (t->name && !t->failed && status == 'I') {
		log_debug("%s tracks %s = %s", c->c.name, t->name, t->value ? t->value : "DEFAULT");
		if (t->value) {
			params_set_raw(&c->params, t->name, t->value);
			params_set_raw(&s->params, t->name, t->value);
		} else {
			params_remove(&c->params, t->name);
			params_remove(&s->params, t->name);
		}
	}
	txn_set_free(s);
}

void txn_server_reset(struct server *s, const char *query)
{
	struct sql_facts f;
	sqlscan(query, strlen(query), &f);
	if (f.deallocate_all || f.discard_all)
		ps_server_forget(s);
	sql_facts_free(&f);
	ps_server_query_sent(s);
	txn_set_free(s);
}

void txn_client_free(struct client *c)
{
	ps_client_free(c);
}

void txn_server_free(struct server *s)
{
	txn_set_free(s);
	ps_server_free(s);
}
