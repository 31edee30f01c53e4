/* control.h: what the main thread's signals and the admin console's control commands share:
 * the configuration hand-over (reload, SET), shutdown modes and the pause condition. */
#ifndef SHOAL_CONTROL_H
#define SHOAL_CONTROL_H

#include "config.h"

enum shutdown_mode {
	SHUTDOWN_NOW,	       /* SIGQUIT, SHUTDOWN, a second SIGTERM/SIGINT */
	SHUTDOWN_WAIT_CLIENTS, /* SIGTERM, SHUTDOWN WAIT_FOR_CLIENTS */
	SHUTDOWN_WAIT_SERVERS, /* SIGINT, SHUTDOWN WAIT_FOR_SERVERS: pause, then exit */
};

/* Take over cfg (the first configuration, loaded from path) and remember how to reload. */
void control_init(struct config *cfg, const char *path, int verbose);
/* Read the file again (plus SET overrides) and make it current. A bad file leaves the running
 * configuration in force: SHOAL_ERROR with err. Any thread. */
shoal_rc control_reload(char *err, size_t errlen) MUST_USE;
/* SET key = value: a new configuration with one reloadable setting changed. */
shoal_rc control_set(const char *key, const char *value, char *err, size_t errlen) MUST_USE;
/* Begin a shutdown (any thread). */
void control_shutdown(enum shutdown_mode mode);
/* Main thread, a few times a second: carry on a shutdown that waits for servers. */
void control_poll(void);
/* No server of db (NULL: any database) is left: PAUSE is complete. */
bool control_servers_gone(const char *db);
/* No server of db connected before the last RECONNECT or target change: WAIT_CLOSE is done. */
bool control_old_servers_gone(const char *db);
/* Is there a pool for database db? */
bool control_db_known(const char *db);
void control_free_all(void);

#endif
