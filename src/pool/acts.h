/* acts.h: what pool/ decides and session/ carries out. The session layer owns the client and
 * server state machines; pool code (acquire, release, janitor, ledger) only asks them to act,
 * through this table, which session/ fills (session_acts, session/acts.c) and main registers
 * once at start. So pool/ includes nothing of session/. the .c files of pool/ call it through acts_call.h. */
#ifndef SHOAL_ACTS_H
#define SHOAL_ACTS_H

#include "objects.h"

struct worker;

struct pool_acts {
	void (*client_close)(struct client *c, const char *sqlstate, const char *msg);
	void (*client_close_with)(struct client *c, const uint8_t *errmsg, size_t len,
				  const char *reason);
	void (*server_connect)(struct worker *w, struct pool *p);
	void (*server_close)(struct server *s, const char *reason);
	void (*server_retire)(struct server *s, const char *reason);
	void (*server_begin_link)(struct server *s);
	void (*server_send_cancel)(struct server *s);
	bool (*server_is_clean)(const struct server *s);
	void (*server_free)(struct server *s);
	void (*cancel_set_target)(struct client *c, struct server *s);
	shoal_rc (*client_flush)(struct client *c);
	void (*server_check_pool)(struct worker *w, struct pool *p);
};

/* Set once, before any worker starts (pool.c holds a copy: one load less per call). */
void pool_set_acts(const struct pool_acts *acts);
extern struct pool_acts pool_acts;

#endif
