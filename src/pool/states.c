/* states.c: the tables of legal client and server state changes (states.h). */
#include "states.h"
#include "log.h"

#include <stdatomic.h>

#define TO(st) (1u << (st))

/* Each state's legal next states, besides itself. */
static const unsigned client_moves[CL_CLOSED + 1] = {
    /* authenticated: waits for a login check, is idle, or is linked for one (auth_query) */
    [CL_LOGIN] = TO(CL_WAIT_LOGIN) | TO(CL_IDLE) | TO(CL_WAITING) | TO(CL_LINKED) | TO(CL_CLOSED),
    [CL_WAIT_LOGIN] = TO(CL_HANDOFF) | TO(CL_LINKED) | TO(CL_CLOSED),
    [CL_IDLE] = TO(CL_WAITING) | TO(CL_WAIT_LOGIN) | TO(CL_LINKED) | TO(CL_CLOSED),
    [CL_WAITING] = TO(CL_HANDOFF) | TO(CL_LINKED) | TO(CL_CLOSED),
    /* the server in flight failed on arrival: back in the queue */
    [CL_HANDOFF] = TO(CL_LINKED) | TO(CL_WAITING) | TO(CL_CLOSED),
    /* an auth_query's server let go: back to logging in */
    [CL_LINKED] = TO(CL_IDLE) | TO(CL_LOGIN) | TO(CL_CLOSED),
    [CL_CLOSED] = 0,
};

static const unsigned server_moves[SV_CLOSED + 1] = {
    /* logged in: idle, linked at once, connect_query (reset), or handed to another worker */
    [SV_CONNECTING] = TO(SV_IDLE) | TO(SV_SETUP) | TO(SV_ACTIVE) | TO(SV_RESET) | TO(SV_TRANSIT) |
		      TO(SV_CLOSED),
    [SV_IDLE] = TO(SV_SETUP) | TO(SV_TRANSIT) | TO(SV_CLOSED),
    [SV_SETUP] = TO(SV_ACTIVE) | TO(SV_IDLE) | TO(SV_RESET) | TO(SV_CLOSED),
    [SV_ACTIVE] = TO(SV_IDLE) | TO(SV_SETUP) | TO(SV_RESET) | TO(SV_TRANSIT) |
		  TO(SV_BEING_CANCELED) | TO(SV_CLOSED),
    [SV_RESET] = TO(SV_IDLE) | TO(SV_SETUP) | TO(SV_ACTIVE) | TO(SV_TRANSIT) | TO(SV_CLOSED),
    [SV_TRANSIT] = TO(SV_SETUP) | TO(SV_IDLE) | TO(SV_CLOSED),
    [SV_BEING_CANCELED] = TO(SV_IDLE) | TO(SV_SETUP) | TO(SV_TRANSIT) | TO(SV_CLOSED),
    [SV_CLOSED] = 0,
};

static const char *const client_names[] = {"login",   "wait_login", "idle",  "waiting",
					   "handoff", "linked",	    "closed"};
static const char *const server_names[] = {"connecting", "idle",    "setup",	      "active",
					   "reset",	 "transit", "being_canceled", "closed"};

bool client_move_ok(enum client_state from, enum client_state to)
{
	return from == to || (from <= CL_CLOSED && (client_moves[from] & TO(to)));
}

bool server_move_ok(enum server_state from, enum server_state to)
{
	return from == to || (from <= SV_CLOSED && (server_moves[from] & TO(to)));
}

/* One line per (side, from, to), ever: 2 sides of at most 8 x 8 moves. */
static void illegal(int side, const char *name, const char *from, const char *to, int f, int t)
{
	static _Atomic uint64_t said[2];
	uint64_t bit = 1ull << (f * 8 + t);
	if (atomic_fetch_or(&said[side], bit) & bit)
		return;
	log_error("%s illegal state change %s -> %s (a defect: please report it)", name, from, to);
}

void client_move_check(const struct client *c, enum client_state to)
{
	enum client_state from = c->state;
	if (!client_move_ok(from, to))
		illegal(0, c->c.name, client_names[from], client_names[to], (int)from, (int)to);
}

void server_move_check(const struct server *s, enum server_state to)
{
	enum server_state from = s->state;
	if (!server_move_ok(from, to))
		illegal(1, s->c.name, server_names[from], server_names[to], (int)from, (int)to);
}

void client_state_mark(struct client *c, enum client_state st)
{
	client_move_check(c, st);
	c->state = st;
}

void server_state_mark(struct server *s, enum server_state st)
{
	server_move_check(s, st);
	s->state = st;
}
