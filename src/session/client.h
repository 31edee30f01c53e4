/* client.h: client connections: startup, authentication, the welcome, then routing messages to
 * the linked server; and the one path by which a client dies. */
#ifndef SHOAL_CLIENT_H
#define SHOAL_CLIENT_H

#include <sys/socket.h>

#include "acts.h"
#include "objects.h"

struct worker;

/* Take a socket accepted from a listening socket that has the tcp_* options
 * (net_set_listen_tcp_opts with client_tcp_opts_of), so none are set on it here. */
struct client *client_accept(struct worker *w, int fd, const struct sockaddr_storage *addr);
/* A logged-in client's socket handed over by another Shoal process (handoff.c): a client in
 * CL_LOGIN outside the login budget, for the caller to log in without a word to the client. */
struct client *client_accept_handed(struct worker *w, int fd, const struct sockaddr_storage *addr);
/* The health probe's end of a socketpair (MAIL_INTERNAL): a client that skips authentication. */
void client_accept_internal(struct worker *w, int fd);
/* The tcp_* settings in force on a connected TCP socket, a client's or a server's. */
void client_tcp_opts(int fd);
/* Those settings in cfg, for a listening socket to pass on to the clients it accepts. */
struct net_tcp_opts client_tcp_opts_of(const struct config *cfg);
/* The one way a client dies: log reason, send an ErrorResponse (FATAL, sqlstate, msg) when
 * sqlstate is not NULL, close, unlink (a linked server is released if clean, else closed). */
void client_close(struct client *c, const char *sqlstate, const char *msg);
/* Same, with a complete ErrorResponse message (e.g. the server's own) to send first. */
void client_close_with(struct client *c, const uint8_t *errmsg, size_t len, const char *reason);
/* The server linked to c is ready for c's traffic (setup done). */
void client_on_linked(struct client *c);
/* The linked server finished a transaction in transaction/statement mode, or a server reply was
 * forwarded: continue with any input the client already sent. */
void client_resume(struct client *c);
/* auth_query found (or did not find) c's secret: go on with its authentication. */
void client_auth_resume(struct client *c);
/* Flush the client's output; on a socket error the client is closed (SHOAL_ERROR). */
shoal_rc client_flush(struct client *c) MUST_USE;
void client_free(struct client *c);
/* read_write_split (client_split.c): drop the copy of c's read kept for a retry (a byte of its
 * answer came, or c is going). */
void client_split_forget(struct client *c);
/* c's server died (dead: its host; why: the reason) with c's read unanswered: true when the
 * read was put back in front of c's input and c asked the pool for a server again (once per
 * read); false: c gets the error as before. */
/* A message of the answer to c's read came: the RowDescription held back goes to c's output
 * first, and the copy of the read goes. */
void client_split_answered(struct client *c);
struct host_rec;
bool client_split_retry(struct client *c, struct host_rec *dead, const char *why);
/* Clients connected now, across all workers (max_client_conn). */
int client_count(void);
/* Has c sent its startup packet? (client_startup_timeout, door.c) */
bool client_started(const struct client *c);

/* A console client (admin/) is driven through these hooks, set on it when it is let in; the
 * session layer calls them instead of knowing the console. */
struct client_ops {
	void (*login_ok)(struct client *c); /* authenticated: welcome it and take it over */
	void (*input)(struct client *c);    /* input from it once logged in */
	void (*gone)(struct client *c);     /* it is closing: forget it */
};

/* How the session layer recognises and admits console clients (registered once, at start). */
struct client_console {
	bool (*is_console_db)(const char *dbname);
	/* Decide its rights and set c->ops. SHOAL_OK: authenticate it as usual; SHOAL_AGAIN:
	 * trusted peer, log in now; SHOAL_ERROR: refused and closed (c->ops left NULL). */
	shoal_rc (*startup)(struct client *c);
};
/* The session functions pool/ calls (acts.c): main registers them with pool_set_acts. */
extern const struct pool_acts session_acts;
/* Register the console before any worker starts; without one, no database is a console. */
void client_set_console(const struct client_console *console);
/* Is dbname the console's (pgbouncer, shoal)? False before a console is registered. */
bool client_is_console_db(const char *dbname);

/* Set *name (c->user or c->dbname) to a copy of v, in inline_buf when it fits, else
 * allocated; v NULL frees what it held. */
void client_name_set(char **name, char inline_buf[CLIENT_NAME_INLINE], const char *v);
/* c->app_name: its application_name at login (a value of c->login), or "". */
void client_app_name_set(struct client *c);

#endif
