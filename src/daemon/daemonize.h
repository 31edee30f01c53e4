/* daemonize.h: PgBouncer's -d (run in the background) and -u (drop root after binding). */
#ifndef SHOAL_DAEMONIZE_H
#define SHOAL_DAEMONIZE_H

#include "config.h"

/* Before anything is bound: can this process become user (it exists; we are root or already
 * that user)? SHOAL_ERROR with err otherwise. */
shoal_rc daemon_check_user(const char *user, char *err, size_t errlen) MUST_USE;
/* Fork into the background before any thread starts. Daemon mode needs logfile and pidfile
 * (as in PgBouncer: nobody would see stderr). The parent waits until the child calls
 * daemon_ready() and exits 0, or exits 1 when the child dies first; only the child returns,
 * in a new session with stdin/out/err on /dev/null. */
shoal_rc daemon_detach(const struct config *cfg, char *err, size_t errlen) MUST_USE;
/* Tell a waiting parent that the listeners are bound (no-op when not detached). */
void daemon_ready(void);
/* Switch to user (its uid, gid and groups), for every thread; after binding. */
shoal_rc daemon_drop_privileges(const char *user, char *err, size_t errlen) MUST_USE;

#endif
