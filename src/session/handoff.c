/* handoff.c: a client's state into a handoff message (old process), and a client object made
 * from one (new process): logged in, idle, in its pool, with its parameters, cancel key and
 * prepared statements, as if it had never left. The sockets are handoff_io.c's. */
#include "handoff.h"
#include "cancel.h"
#include "client.h"
#include "client_admit.h"
#include "door.h"
#include "handoff_msg.h"
#include "log.h"
#include "params.h"
#include "pool.h"
#include "prepared_int.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Only a client the new process can go on serving without a word: idle between transactions,
 * nothing half-read or unsent, no server of its own. */
enum handoff_way handoff_way(const struct client *c)
{
	if (c->c.dead || c->ops || c->internal || c->admin)
		return HO_STAY;
	if (c->repl || c->owns_server || c->pin_reason || !c->pool ||
	    pool_mode_of(c->pool) == POOL_SESSION)
		return HO_STAY;
	if (c->state != CL_IDLE || c->server || c->c.fwd_left ||
	    buf_avail(&c->c.in) || buf_avail(&c->c.out))
		return HO_LATER;
	return c->c.tls ? HO_CLOSE : HO_MOVE;
}

static struct handoff_kv *pack_params(const struct param_list *pl)
{
	struct handoff_kv *kv = xcalloc((size_t)pl->n + 1, sizeof(*kv));
	for (int i = 0; i < pl->n; i++) {
		kv[i].name = pl->items[i].name;
		kv[i].value = pl->items[i].value ? pl->items[i].value : "";
		kv[i].raw = pl->items[i].raw;
	}
	return kv;
}

/* Its named statements and its unnamed one; false if one is private (ps_parse_head: its text
 * was not kept), which only a pinned client has. */
static bool pack_stmts(const struct client *c, struct handoff_rec *r)
{
	const struct ps_client *pc = c->ps;
	if (!pc)
		return true;
	size_t cap = pc->names.n + 1;
	r->stmts = xcalloc(cap, sizeof(*r->stmts));
	for (size_t b = 0; b < pc->names.nb; b++) {
		for (struct hent *e = pc->names.b[b]; e; e = e->next) {
			const struct ps_def *d = e->val;
			if (d->priv || e->klen > HANDOFF_MAX_STR || memchr(e->key, 0, e->klen))
				return false;
			char *name = xmalloc(e->klen + 1);
			memcpy(name, e->key, e->klen);
			name[e->klen] = 0;
			r->stmts[r->nstmts++] = (struct handoff_stmt){name, d->body, d->len};
		}
	}
	if (pc->unnamed && !pc->unnamed->priv)
		r->stmts[r->nstmts++] =
		    (struct handoff_stmt){xstrdup(""), pc->unnamed->body, pc->unnamed->len};
	return true;
}

/* The server credentials c's pool learnt from a login, which the new process cannot know from
 * its configuration: auth_query's answer (a password the configuration does not give this
 * pool), the SCRAM pass-through keys (with the secret they belong to). Read under the pool's
 * lock; r->password is the caller's, to wipe and free. */
static void pack_creds(const struct client *c, struct handoff_rec *r)
{
	const struct config *cfg = config_current();
	struct pool *p = c->pool;
	const struct db_entry *db = config_find_db(cfg, p->name);
	const char *conf = NULL;
	if (db)
		conf = db->password ? db->password : config_find_secret(cfg, p->server_user);
	pool_lock(p);
	if (p->password) {
		if (!conf || strcmp(conf, p->password) != 0)
			r->creds |= HANDOFF_CRED_PASSWORD;
		if (p->has_scram_keys) {
			r->creds |= HANDOFF_CRED_KEYS;
			memcpy(r->scram_client_key, p->scram_client_key, 32);
			memcpy(r->scram_server_key, p->scram_server_key, 32);
		}
		if (r->creds)
			r->password = xstrdup(p->password);
	}
	pool_unlock(p);
}

static void free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

shoal_rc handoff_pack(const struct client *c, struct buf *out)
{
	struct handoff_rec r = {
	    .proto_minor = (uint8_t)c->proto_minor,
	    .cancel_pid = c->cancel_pid,
	    .cancel_key_len = c->cancel_key_len,
	    .user = c->user,
	    .dbname = c->dbname,
	    .nparams = c->params.n,
	    .nlogin = c->login.n,
	};
	if (cancel_key_of(c))
		memcpy(r.cancel_key, cancel_key_of(c), c->cancel_key_len);
	r.params = pack_params(&c->params);
	r.login = pack_params(&c->login);
	pack_creds(c, &r);
	shoal_rc rc = SHOAL_ERROR;
	if (pack_stmts(c, &r))
		rc = handoff_encode(&r, out);
	for (int i = 0; i < r.nstmts; i++)
		free((char *)r.stmts[i].name);
	free_secret((char *)r.password);
	handoff_rec_free(&r); /* the arrays; the strings are the client's */
	return rc;
}

static bool set_params(struct param_list *pl, const struct handoff_kv *kv, int n)
{
	for (int i = 0; i < n; i++) {
		if (!params_valid_name(kv[i].name))
			return false;
		if (kv[i].raw)
			params_set_raw(pl, kv[i].name, kv[i].value);
		else
			params_set(pl, kv[i].name, kv[i].value, false);
	}
	return true;
}

static void set_stmts(struct client *c, const struct handoff_rec *r)
{
	for (int i = 0; i < r->nstmts; i++) {
		const struct handoff_stmt *st = &r->stmts[i];
		struct ps_def *d = def_new(st->body, st->len);
		if (!*st->name) {
			def_free(ps_cli(c)->unnamed);
			ps_cli(c)->unnamed = d;
		} else if (!client_lookup(c, st->name)) {
			client_add(c, st->name, d);
		} else {
			def_free(d); /* a name twice: the first one counts */
		}
	}
}

/* The credentials its pool had in the old process, where this one has none, under the pool's
 * lock and on the same conditions as when a login here supplies them (auth_query.c,
 * client_sasl.c): the server login uses the client's own name, and the keys belong to the very
 * secret this pool will use. */
static void adopt_creds(struct pool *p, const struct handoff_rec *r)
{
	if (!r->creds)
		return;
	pool_lock(p);
	if (strcmp(p->server_user, r->user) == 0) {
		if ((r->creds & HANDOFF_CRED_PASSWORD) && !p->password)
			p->password = xstrdup(r->password);
		if ((r->creds & HANDOFF_CRED_KEYS) && !p->has_scram_keys && p->password &&
		    strcmp(p->password, r->password) == 0) {
			memcpy(p->scram_client_key, r->scram_client_key, 32);
			memcpy(p->scram_server_key, r->scram_server_key, 32);
			p->has_scram_keys = true;
		}
	}
	pool_unlock(p);
}

/* The identity, its pool and its cancel key: NULL when it is refused here (c closed, with the
 * error the client gets at once: it may be waiting for an answer). */
static const char *adopt_login(struct client *c, const struct handoff_rec *r, const char **state)
{
	const struct config *cfg = config_current();
	client_name_set(&c->user, c->user_buf, r->user);
	client_name_set(&c->dbname, c->dbname_buf, r->dbname);
	c->proto_minor = r->proto_minor;
	size_t n = str_cat(c->c.name, sizeof(c->c.name), strlen(c->c.name), " ");
	n = str_cat(c->c.name, sizeof(c->c.name), n, c->user);
	n = str_cat(c->c.name, sizeof(c->c.name), n, "@");
	str_cat(c->c.name, sizeof(c->c.name), n, c->dbname);
	if (!set_params(&c->params, r->params, r->nparams) ||
	    !set_params(&c->login, r->login, r->nlogin)) {
		*state = "08P01";
		return "handoff: invalid parameter name";
	}
	c->db = client_is_console_db(c->dbname) ? NULL : config_find_db(cfg, c->dbname);
	if (!c->db) {
		*state = "3D000";
		return "handoff: no such database here";
	}
	if (!door_join(c, false)) {
		*state = "53300";
		return "no more connections allowed (max_client_conn)";
	}
	if (!client_admit(c))
		return NULL; /* closed */
	if (cancel_adopt(c, r->cancel_pid, r->cancel_key, r->cancel_key_len) != SHOAL_OK) {
		*state = "53000";
		return "handoff: its cancel key is taken here";
	}
	struct pool *p = pool_get(cfg, c->db, c->dbname, c->user, NULL);
	if (!p) {
		*state = "53400";
		return POOL_MAX_MSG;
	}
	c->pool = p;
	adopt_creds(p, r);
	pool_lock(p);
	p->n_clients++;
	pool_unlock(p);
	pool_show(p);
	c->db = NULL; /* it points into this configuration, which a reload may free */
	return NULL;
}

bool handoff_adopt(struct worker *w, int fd, const uint8_t *msg, size_t len)
{
	struct handoff_rec r;
	const char *why;
	if (handoff_decode(msg, len, &r, &why) != SHOAL_OK) {
		log_warn("handoff: %s (%zu bytes): connection closed", why, len);
		close(fd);
		return false;
	}
	struct sockaddr_storage addr = {0};
	socklen_t alen = sizeof(addr);
	if (getpeername(fd, (struct sockaddr *)&addr, &alen) != 0)
		addr.ss_family = AF_UNIX; /* its peer is gone: it reads EOF next */
	struct client *c = client_accept_handed(w, fd, &addr);
	if (!c) {
		handoff_rec_free(&r);
		return false;
	}
	const char *state = NULL, *err = adopt_login(c, &r, &state);
	if (err || c->c.dead) {
		if (!c->c.dead)
			client_close(c, state, err);
		handoff_rec_free(&r);
		return false;
	}
	set_stmts(c, &r);
	handoff_rec_free(&r);
	client_app_name_set(c);
	client_set_state(c, CL_IDLE);
	log_debug("%s taken over (pool %s@%s, worker %d)", c->c.name, c->pool->user, c->pool->name,
		  w->id);
	return true;
}
