/* admin.h: the admin console (virtual databases "pgbouncer" and "shoal"): login, the simple
 * query protocol, PgBouncer's SHOW and control commands. Hooks called by the session and daemon
 * layers; everything runs on the thread of the worker that owns the admin client. */
#ifndef SHOAL_ADMIN_H
#define SHOAL_ADMIN_H

#include "client.h"
#include "objects.h"

struct worker;
struct mail;

/* The console's hooks for the session layer (client_set_console, at start). */
extern const struct client_console admin_console;
/* Is dbname one of the console's names? */
bool admin_is_console_db(const char *dbname);
/* At startup of a console client: decide its rights (admin_users, stats_users, or a Unix-socket
 * peer with Shoal's own UID). SHOAL_OK: authenticate it as usual; SHOAL_AGAIN: trusted peer,
 * log in now (admin_login_ok); SHOAL_ERROR: refused and closed. */
shoal_rc admin_startup(struct client *c) MUST_USE;
/* Authentication succeeded: send the console's welcome and take the client. */
void admin_login_ok(struct client *c);
/* Input from a logged-in console client. */
void admin_process(struct client *c);
/* A console client is closing: forget it. */
void admin_client_gone(struct client *c);
/* Shutdown of worker w: close its console clients. */
void admin_close_clients(struct worker *w);
/* Each tick of worker w: finish commands that wait (PAUSE, WAIT_CLOSE, RELOAD, SET). */
void admin_tick(struct worker *w);
/* Any thread: a RELOAD or SET posted from w is done; mails w, which finishes it at once. */
void admin_job_done(struct worker *w);
/* MAIL_ADMIN: a control command's share of work for worker w (its own connections). */
void admin_on_mail(struct worker *w, struct mail *m);
void admin_free_all(void);

#endif
