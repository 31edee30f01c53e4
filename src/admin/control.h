/* control.h: what the main thread's signals and the admin console's control commands share:
 * the configuration hand-over (reload, SET), shutdown modes and the pause condition. */
#ifndef SHOAL_CONTROL_H
#define SHOAL_CONTROL_H

#include "config.h"

#include <signal.h>

enum shutdown_mode {
	SHUTDOWN_NOW,	       /* SIGQUIT, SHUTDOWN, a second SIGTERM/SIGINT */
	SHUTDOWN_WAIT_CLIENTS, /* SIGTERM, SHUTDOWN WAIT_FOR_CLIENTS */
	SHUTDOWN_WAIT_SERVERS, /* SIGINT, SHUTDOWN WAIT_FOR_SERVERS: pause, then exit */
};

/* Take over cfg (the first configuration, loaded from path) and remember how to reload. */
void control_init(struct config *cfg, const char *path, int verbose);
/* Read the file again (plus SET overrides) and make it current. A bad file leaves the running
 * configuration in force: SHOAL_ERROR with err. TLS contexts that cannot be built leave the
 * running ones in force and the rest applies: SHOAL_OK with err saying why (else err is empty).
 * A changed server_tls_* setting recycles every pool's servers when next idle. Any thread. */
shoal_rc control_reload(char *err, size_t errlen) MUST_USE;
/* SET key = value: a new configuration with one reloadable setting changed (err as reload's). */
shoal_rc control_set(const char *key, const char *value, char *err, size_t errlen) MUST_USE;
/* RELOAD and SET from the console run on the main thread (they read files, build TLS contexts
 * and may resolve names: a worker would stall its clients meanwhile). A job is posted by a
 * worker, done by control_poll, and read back by its poster: CONTROL_QUEUED until then. */
enum control_job_state { CONTROL_QUEUED, CONTROL_DONE, CONTROL_FAILED };
struct control_job;
/* Sent to the main thread when a job is queued, so that its signal wait returns at once; blocked
 * in every thread (main.c) and otherwise ignored. */
#define CONTROL_WAKE_SIGNAL SIGURG
/* key NULL: RELOAD; else SET key = value. The poster owns one reference (control_job_release).
 * Once the job is done the main thread mails `poster` (MAIL_ADMIN, AM_JOB_DONE), so the
 * console answers at once rather than at its worker's next tick; NULL: nobody is told. */
struct worker;
struct control_job *control_post(const char *key, const char *value, struct worker *poster);
enum control_job_state control_job_state(const struct control_job *j);
/* Why it failed (valid once CONTROL_FAILED). */
const char *control_job_error(const struct control_job *j);
void control_job_release(struct control_job *j);
/* Begin a shutdown (any thread). */
void control_shutdown(enum shutdown_mode mode);
/* A shutdown has begun (RESUME and SIGUSR2 are refused). */
bool control_shutting_down(void);
/* Main thread, a few times a second: posted jobs, and a shutdown that waits for servers. */
void control_poll(void);
/* No server of db (NULL: any database) is left: PAUSE is complete. */
bool control_servers_gone(const char *db);
/* No server of db connected before the last RECONNECT or target change: WAIT_CLOSE is done. */
bool control_old_servers_gone(const char *db);
/* Is there a pool for database db? */
bool control_db_known(const char *db);
void control_free_all(void);

#endif
