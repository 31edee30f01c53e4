/* prepared_int.h: what prepared.c shares with prepared_stream.c (the heads of messages too
 * large to read whole): its state and the helpers that change it. Not for other modules. */
#ifndef SHOAL_PREPARED_INT_H
#define SHOAL_PREPARED_INT_H

#include "prepared.h"
#include "buf.h"
#include "hmap.h"
#include "list.h"
#include "objects.h"

#include <stdatomic.h>

/* A statement's definition: the Parse body after the name (query, NUL, Int16 n, n OIDs). */
struct ps_def {
	uint64_t hash;
	uint64_t desc;	 /* hash of its description (describe_done), 0: not known yet */
	uint8_t *params; /* the body of its ParameterDescription (owned), NULL: not known yet */
	uint64_t priv;	 /* a private statement (ps_parse_head): SHOAL_p<priv> on the server its
			  * client is pinned to, its text not kept (len 0); 0: no */
	uint64_t serial; /* unique to this body (a copy keeps it): ps_server.memo's key */
	uint32_t plen;
	uint32_t len;
	uint8_t body[];
};

/* Room for a server statement's name, "SHOAL_<id>" or "SHOAL_p<id>", and its NUL. */
#define SRV_NAME_MAX 32
/* Slots of ps_server.memo. */
#define SRV_MEMO 16

/* One statement prepared on a server. */
struct srv_stmt {
	uint64_t id; /* server-side name SHOAL_<id> */
	struct list lru;
	struct hent *e;	   /* its entry in ps_server.stmts (key: the definition); NULL: retired */
	uint64_t bound_in; /* ps_server.xact when a Bind to a named portal last used it */
	uint64_t desc;	   /* hash of its description, 0: its Describe is still in flight */
	uint8_t nlen;	   /* strlen(name) */
	char name[SRV_NAME_MAX]; /* "SHOAL_<id>", formatted once: every Bind names it */
};

enum op_kind {
	OP_PARSE, /* client Parse, forwarded (maybe renamed) */
	OP_BIND,
	OP_DESCRIBE,
	OP_EXECUTE,
	OP_CLOSE, /* client Close of a portal or the unnamed statement, forwarded */
	OP_SYNC,
	OP_QUERY,
	OP_FUNC,
	OP_INJ_PARSE,	      /* injected: its ParseComplete is swallowed */
	OP_INJ_CLOSE,	      /* injected eviction: its CloseComplete is swallowed */
	OP_PARSE_UNNAMED,     /* client Parse of the unnamed statement (def: the client's previous
			       * one, restored if skipped) */
	OP_INJ_PARSE_UNNAMED, /* injected: the client's unnamed statement, on another server */
	OP_CLOSE_UNNAMED,     /* client Close of the unnamed statement (def: as above) */
	OP_CLOSE_NAMED,	      /* client Close of a named statement sent on (cname/def: undo) */
	OP_SYN_CLOSE,	      /* answered locally: CloseComplete emitted in its turn */
	OP_INJ_CLOSE_UNNAMED, /* injected: the client has no unnamed statement */
	OP_INJ_DESCRIBE,      /* injected Describe of a new server statement: learns its
			       * description (cname: the client statement it was parsed for) */
};

/* A message sent to the server whose reply is awaited, and how to undo what it did to the
 * name maps if the server skips it or refuses it. */
struct ps_op {
	uint8_t kind;
	bool stale;	    /* sent to fail: a Bind/Describe's ErrorResponse becomes 0A000, a
			     * Parse's 53200 (max_client_prepared_bytes) */
	char *cname;	    /* client statement name it added (PARSE) or removed (SYN_CLOSE) */
	struct ps_def *def; /* that statement's definition (owned) */
	uint64_t srv_id;    /* server statement it added (PARSE/INJ_PARSE) or used, 0: none */
};

/* A client's Bind or Describe held back until the description of the server statement it
 * names is known (see hold_check). */
struct ps_held {
	uint8_t kind; /* OP_BIND or OP_DESCRIBE */
	uint8_t *msg; /* the message as the server would get it */
	size_t len;
	struct ps_def *def; /* the client's statement (with the description it holds) */
};

struct ps_server {
	struct hmap stmts;   /* definition -> struct srv_stmt */
	struct list lru;     /* least recently used first */
	struct list retired; /* out of the cache, still on the server: closed when safe */
	size_t nbytes;
	uint64_t next_id;
	/* Recent lookups: a definition's serial -> its statement in stmts, so that a Bind of a
	 * statement the server has needs no hashing or comparing of its text. Cleared whenever a
	 * statement leaves stmts (an entry added later cannot change what one found). */
	struct {
		uint64_t serial;
		struct srv_stmt *st;
	} memo[SRV_MEMO];
	struct ps_op *q; /* replies awaited, oldest at q[qhead] */
	size_t qhead, qlen, qcap;
	bool skipping;	 /* an error came before the Sync was sent: the server skips until it */
	size_t named;	 /* ops in q for which op_names: name_in_doubt has something to look for */
	bool doubt_wait; /* the client waits for a named Parse or Close of an earlier batch to be
			  * answered (name_in_doubt): resume it when an op is answered */
	uint64_t unnamed_owner;	 /* token of the client unnamed statement the server holds (or of a
				  * client's having none, after a Close); 0: unknown */
	uint64_t xact;		 /* counts transactions ended (ReadyForQuery 'I') */
	uint64_t unnamed_portal; /* statement the unnamed portal was last bound from, 0: none */
	uint64_t desc_acc;	 /* description hash of an injected Describe, so far */
	struct buf pdesc;	 /* its ParameterDescription, for a refused Describe (0A000) */
	struct ps_held *held;	 /* the client waits for a description; NULL: no */
	bool resume;		 /* held message released: flush it and read the client again */
	bool head_wait;		 /* a large Bind waits, mostly unread, for the description of its
				  * statement on this server (ps_bind_head) */
	bool head_check;	 /* that description came: compare it, as held_release does */
	uint8_t stale_error;	 /* the ErrorResponse being handled answers an op sent to fail:
				  * PQMSG_BIND or PQMSG_DESCRIBE (0A000), PQMSG_PARSE (53200);
				  * 't': a held Describe's Parse,
				  * pdesc goes first; 0: no */
};

struct ps_client {
	struct hmap names;	/* client statement name -> struct ps_def */
	struct hent *last;	/* the entry of names client_lookup last found (a client Binds
				 * the same statement over and over), NULL: none */
	struct ps_def *unnamed; /* its unnamed statement (it outlives transactions), or NULL */
	uint64_t unnamed_token; /* names that statement (or its absence), unique among clients: a
				 * server may hold an older one of the same client */
	size_t nbytes;		/* its named statements' names and definitions: the bytes
				 * max_client_prepared_bytes bounds */
	bool warned;		/* the cap's refusal was logged for this client */
};

/* The per-server and per-client state, created on first use (ps_srv inline: every message
 * of a linked server asks for it, and it exists but for the first). */
struct ps_server *ps_srv_new(struct server *s);
static inline struct ps_server *ps_srv(struct server *s)
{
	return s->ps ? s->ps : ps_srv_new(s);
}
struct ps_client *ps_cli(struct client *c);
/* The client's statement of that name (n bytes, NUL-terminated), or NULL; add one (the map
 * owns d). */
struct ps_def *client_lookup(struct client *c, const char *name);
struct ps_def *client_lookup_n(struct client *c, const char *name, size_t n);
void client_add(struct client *c, const char *name, struct ps_def *d);
/* Would a new statement of cost bytes take the client past max_client_prepared_bytes? */
bool client_over_cap(struct client *c, size_t cost);
/* Queue the reply expectation of a message sent to the server (d is copied). */
void op_push(struct ps_server *ps, uint8_t kind, const char *cname, const struct ps_def *d,
	     uint64_t srv_id);
/* Make room in the queue for one more op (op_push's slow half). */
void op_room(struct ps_server *ps);
/* op_push of an op with no name and no definition (Bind, Describe, Execute, Sync, ...): inline,
 * it is most of the queue's traffic. */
static inline void op_push_plain(struct ps_server *ps, uint8_t kind, uint64_t srv_id)
{
	if (ps->qhead == ps->qlen)
		ps->qhead = ps->qlen = 0;
	if (ps->qlen == ps->qcap)
		op_room(ps);
	ps->q[ps->qlen++] = (struct ps_op){.kind = kind, .srv_id = srv_id};
}
/* The server's cached statement of d, or NULL; or make sure the server has one (an injected
 * Parse and Describe when it lacks it). */
struct srv_stmt *srv_lookup(struct ps_server *ps, const struct ps_def *d);
struct srv_stmt *srv_ensure(struct server *s, const struct ps_def *d, const char *cname);
/* A statement of this text and types on the server, for Shoal's own use: its id. */
uint64_t srv_placeholder(struct server *s, const char *query, const uint8_t *types, size_t tlen);
/* The placeholder a refused Bind is bound to instead (fails with 22012, shown as 0A000). */
uint64_t refuse_placeholder(struct server *s);
/* Server names: SHOAL_<id> (shared, cached), SHOAL_p<id> (one client's, ps_parse_head). */
void srv_name(uint64_t id, char *out, size_t n);
void priv_name(uint64_t id, char *out, size_t n);
/* Is the server known to be in a failed transaction block? */
bool known_aborted(const struct server *s);
/* Is an injected Describe awaiting its reply? */
bool describe_pending(const struct ps_server *ps);
/* The server's unnamed statement must be the client's before a Bind/Describe of it. */
void unnamed_ensure(struct client *c, struct server *s);
/* The client's unnamed statement changed: its new token. */
uint64_t unnamed_changed(struct ps_client *pc);
struct ps_def *def_new(const uint8_t *body, size_t len);
void def_free(struct ps_def *d);

/* Shared by prepared.c, prepared_client.c and prepared_describe.c. */
void held_release(struct server *s);
void describe_params(struct ps_server *ps, const uint8_t *msg, size_t len);
void describe_done(struct server *s, uint8_t type, const uint8_t *msg, size_t len);
size_t client_cost(size_t name_len, const struct ps_def *d);
void srv_retire(struct ps_server *ps, struct srv_stmt *st);
void ps_count(_Atomic uint64_t *counter);
struct srv_stmt *srv_add(struct server *s, const struct ps_def *d);
void srv_describe(struct server *s, struct srv_stmt *st, const char *cname, const struct ps_def *d);
/* Must a Bind/Describe of d (st on the server) be held by send_or_hold? Else it is sent. */
bool must_hold(const struct ps_def *d, const struct srv_stmt *st);
void send_or_hold(struct server *s, uint8_t kind, struct buf *m, const struct ps_def *d,
		  const struct srv_stmt *st);
void put_describe_stmt(struct buf *o, const char *name);
struct ps_def *client_remove(struct client *c, const char *name);
void put_parse(struct buf *o, const char *name, const struct ps_def *d);
void put_close(struct buf *o, char what, const char *name);
struct ps_def *def_dup(const struct ps_def *d);
bool def_same(const struct ps_def *a, const struct ps_def *b);
void def_learn(struct ps_def *d, uint64_t h, const uint8_t *p, size_t plen);
struct ps_op *op_head(struct ps_server *ps);
/* Answered: drop the head op (op_pop_slow frees what it holds and wakes a name_in_doubt wait). */
void op_pop_slow(struct ps_server *ps);
static inline void op_pop(struct ps_server *ps)
{
	const struct ps_op *op = &ps->q[ps->qhead];
	if (op->cname || op->def || ps->doubt_wait)
		op_pop_slow(ps);
	else
		ps->qhead++;
}
bool srv_in_use(const struct ps_server *ps, const struct srv_stmt *st);
void srv_drop(struct ps_server *ps, struct srv_stmt *st);
/* Does the client's next message name a statement whose Parse or Close, sent before a Sync
 * still unanswered, may yet be skipped by the server (an error before it)? Then it waits. */
bool name_in_doubt(const struct server *s);
bool op_names(const struct ps_op *op);

#endif
