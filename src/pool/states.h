/* states.h: the legal state changes of a client and of a server, next to their movers
 * (ledger.c's client_state_locked and server_state_locked, and the marks below).
 *
 * A change outside the table is logged once per (side, from, to) with both state names, in
 * every build ("illegal state change"), and the test harness fails any test whose Shoal logged
 * one; the change itself still happens, so a production pooler keeps serving. */
#ifndef SHOAL_STATES_H
#define SHOAL_STATES_H

#include "objects.h"

/* Is from -> to a legal move? A state may always be set again (a list re-entered). */
bool client_move_ok(enum client_state from, enum client_state to);
bool server_move_ok(enum server_state from, enum server_state to);
/* Check a move about to happen (logs an illegal one once). */
void client_move_check(const struct client *c, enum client_state to);
void server_move_check(const struct server *s, enum server_state to);
/* Set the state of an object whose list its owner keeps (the console's clients, the closed):
 * checked like the movers' changes. */
void client_state_mark(struct client *c, enum client_state st);
void server_state_mark(struct server *s, enum server_state st);

#endif
