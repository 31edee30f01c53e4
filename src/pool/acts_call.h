/* acts_call.h: pool/'s calls into the session layer, through the table it registered (acts.h).
 * Include this only from the .c files of pool/: its wrappers bear the names of the session functions they
 * reach, whose contracts are in session/client.h, server.h and cancel.h. */
#ifndef SHOAL_ACTS_CALL_H
#define SHOAL_ACTS_CALL_H

#include "acts.h"

static inline void client_close(struct client *c, const char *sqlstate, const char *msg)
{
	pool_acts.client_close(c, sqlstate, msg);
}

static inline void client_close_with(struct client *c, const uint8_t *errmsg, size_t len,
				     const char *reason)
{
	pool_acts.client_close_with(c, errmsg, len, reason);
}

static inline void server_connect(struct worker *w, struct pool *p)
{
	pool_acts.server_connect(w, p);
}

static inline void server_close(struct server *s, const char *reason)
{
	pool_acts.server_close(s, reason);
}

static inline void server_retire(struct server *s, const char *reason)
{
	pool_acts.server_retire(s, reason);
}

static inline void server_begin_link(struct server *s)
{
	pool_acts.server_begin_link(s);
}

static inline void server_send_cancel(struct server *s)
{
	pool_acts.server_send_cancel(s);
}

static inline bool server_is_clean(const struct server *s)
{
	return pool_acts.server_is_clean(s);
}

static inline void server_free(struct server *s)
{
	pool_acts.server_free(s);
}

static inline void cancel_set_target(struct client *c, struct server *s)
{
	pool_acts.cancel_set_target(c, s);
}

static inline shoal_rc client_flush(struct client *c)
{
	return pool_acts.client_flush(c);
}

static inline void server_check_pool(struct worker *w, struct pool *p)
{
	pool_acts.server_check_pool(w, p);
}

#endif
