/* door.h: the front door's budgets: clients still logging in (max_login_clients), logged-in
 * clients (max_client_conn) with slots kept for the admin console (admin_reserved_conn), and
 * the startup-packet timeout (client_startup_timeout). */
#ifndef SHOAL_DOOR_H
#define SHOAL_DOOR_H

#include "objects.h"

struct worker;

/* A connection was accepted on w: is there room in the login budget? When it is full, the
 * oldest connection of w that has been logging in for over a second is closed to make room
 * (true); with none, false: the caller refuses the new one (door_refuse). */
bool door_room(struct worker *w);
/* Close a just-accepted client that found no room (53300). */
void door_refuse(struct client *c);
/* c enters / leaves the login budget (leaving twice is harmless). */
void door_login_begin(struct client *c);
void door_login_end(struct client *c);
/* Clients logging in now, across all workers. */
int door_logging_in(void);
/* May a client still logging in (left false) take a logged-in slot? max_client_conn, plus
 * admin_reserved_conn for a console login. */
bool door_fits(bool console);
/* c, just logged in, takes a slot: false (and no slot) if none is left. */
bool door_join(struct client *c, bool console);
/* c gives its slot back (at the start of its close, before its last bytes are sent, so a
 * client that saw the close never finds the slot still taken). Twice is harmless. */
void door_leave(struct client *c);
/* Is this close one the door counts and logs once per episode (not per client)? */
bool door_quiet(const struct client *c, const char *reason);
/* Each tick of w: close connections past client_startup_timeout without a startup packet
 * (started(c) false), and log the end of a budget episode. */
void door_tick(struct worker *w, usec_t now, bool (*started)(const struct client *));

#endif
