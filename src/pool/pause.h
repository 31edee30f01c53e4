/* pause.h: the pause and disable state of the pooler and of each database (admin PAUSE,
 * RESUME, DISABLE, ENABLE, KILL; SIGUSR1/SIGUSR2). Any thread may read or change it. */
#ifndef SHOAL_PAUSE_H
#define SHOAL_PAUSE_H

#include <stdatomic.h>

#include "common.h"

/* Pause (true) or resume every database (db NULL) or one. Paused: no server is handed to a
 * client or opened; servers are closed as they are released. */
void pause_set(const char *db, bool paused);
/* Paused entries, the global flag included (pause.c's; read here so that the common case is
 * one load in the caller). */
extern atomic_int pause_n_paused;
bool pause_lookup(const char *db);
/* Is db paused, by itself or because everything is? One load when nothing is paused. */
static inline bool pause_is_paused(const char *db)
{
	return atomic_load_explicit(&pause_n_paused, memory_order_acquire) != 0 &&
	       pause_lookup(db);
}
/* Paused by name (db) or globally (NULL), for SHOW DATABASES / SHOW STATE. */
bool pause_flag(const char *db);
/* DISABLE / ENABLE: a disabled database refuses new client connections. */
void pause_set_disabled(const char *db, bool disabled);
bool pause_is_disabled(const char *db);
/* Is anything (a database, or everything) paused? */
bool pause_any(void);
/* SHUTDOWN WAIT_FOR_SERVERS (or SIGINT): everything is paused for good (a later resume leaves
 * it paused) and clients that would wait for a server are refused (57P01). Never undone. */
void pause_set_shutdown(void);
/* Has pause_set_shutdown been called? Lock-free. */
bool pause_shutdown(void);
void pause_free_all(void);

#endif
