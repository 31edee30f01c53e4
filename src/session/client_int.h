/* client_int.h: what client.c, client_login.c and client_route.c share; not for other files. */
#ifndef SHOAL_CLIENT_INT_H
#define SHOAL_CLIENT_INT_H

#include "objects.h"

/* client.c: act on what the client sent (login steps, then routing or the console's input). */
void client_process(struct client *c);
/* client_login.c: one step of the login over c's input: SHOAL_OK to continue, SHOAL_AGAIN to
 * wait for bytes (or for the login to finish), SHOAL_ERROR when c was closed. */
shoal_rc client_login_step(struct client *c);
/* client_route.c: forward a linked client's input to its server, with backpressure. */
void client_route(struct client *c);
/* client_route.c: a client without a server sent something: a Terminate, or work for the pool. */
void client_idle_input(struct client *c);

/* client_split.c, read_write_split: look at the first message of c's next transaction (header
 * h) before it asks the pool: SPLIT_GO (c->route set), SPLIT_WAIT for the rest of it, or
 * SPLIT_DONE when Shoal answered it itself (SET shoal.route; c may have been closed). */
struct pq_header;
enum split_step { SPLIT_GO, SPLIT_WAIT, SPLIT_DONE };
enum split_step client_split_start(struct client *c, const struct pq_header *h);

#endif
