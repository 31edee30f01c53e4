/* server_int.h: what server.c, server_login.c, server_setup.c and server_read.c share; not for
 * other files. */
#ifndef SHOAL_SERVER_INT_H
#define SHOAL_SERVER_INT_H

#include "objects.h"

/* server_read.c: read the messages in s's input and forward or handle each. */
void server_process(struct server *s);
/* server_read.c: a ParameterStatus body: note it on s (initial: from the login) and on a
 * client that set it. */
void server_param(struct server *s, const uint8_t *body, size_t len, bool initial);
/* server_read.c: a whole ParameterStatus for c; held (hold) during a resync. */
void server_status_msg(struct server *s, struct client *c, const uint8_t *msg, size_t len,
		       bool hold);
/* server_read.c: send c the held ParameterStatus whose value changed (keep: stay held). */
void server_send_held(struct server *s, struct client *c, bool keep);
/* server_read.c: a ReadyForQuery reached c: release, refuse a block, or resync. */
void server_after_ready(struct server *s, struct client *c, char status);
/* server_login.c: a whole message from a server that is logging in (SV_CONNECTING). */
void server_login_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len);
/* server_setup.c: put the client's login values back after its RESET (held ReadyForQuery). */
void server_begin_resync(struct server *s);
/* server_setup.c: the ReadyForQuery that ends a setup, reset, connect_query or resync. */
void server_setup_done(struct server *s);
/* server_setup.c: an ErrorResponse during setup or reset, kept as the client's FATAL. */
void server_keep_setup_error(struct server *s, const uint8_t *msg, size_t len);

#endif
