/* current.h: the configurations in force and their lifetime. A configuration is immutable once
 * published; the main thread publishes a new one whole (RELOAD, SET) and frees an old one once
 * every reader thread has passed a quiescent point (the end of an event batch, where it holds no
 * configuration pointer) after the old one was replaced, and no object still points into it.
 *
 * Each reader thread (a worker, the HTTP thread) joins with a struct config_reader and calls
 * config_quiescent at the end of each event batch with the oldest generation its objects still
 * point into (clients logging in keep a pointer to their [databases] entry:
 * config_gen_of_db). */
#ifndef SHOAL_CONFIG_CURRENT_H
#define SHOAL_CONFIG_CURRENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define CONFIG_NO_PIN UINT64_MAX

struct config_reader {
	struct config_reader *next;
	_Atomic uint64_t seen; /* this thread may still use configurations of this generation on */
};

/* Make cfg current (its generation is the previous one's plus one). owned: freed here once no
 * reader can use it (else the caller frees it after config_free_all). Main thread. */
void config_publish(struct config *cfg, bool owned);
/* The current configuration's generation (the first published is 1). */
uint64_t config_generation(void);
/* Some replaced configuration is still waiting to be freed. */
bool config_retired_pending(void);
/* The generation of the configuration whose [databases] array holds db (the current one's when
 * none does). */
uint64_t config_gen_of_db(const struct db_entry *db);

void config_reader_join(struct config_reader *r);
void config_reader_leave(struct config_reader *r);
/* A quiescent point of r's thread: it holds no configuration pointer but its objects' pins,
 * the oldest of which is of generation pinned (CONFIG_NO_PIN: none). */
void config_quiescent(struct config_reader *r, uint64_t pinned);

/* Main thread: free every replaced configuration that no reader can use any more, except keep
 * (NULL: none). Returns how many were freed. */
int config_collect(const struct config *keep);
/* How many replaced configurations are still kept (for tests and SHOW). */
int config_retired_count(void);
/* At exit, after every reader has left: free every owned configuration. */
void config_free_all(void);

/* copy.c: a deep copy of src, to be changed before it is published. */
struct config *config_copy(const struct config *src);
/* config_set_value on a copy; a changed auth_file, auth_hba_file or auth_type reads its file. */
shoal_rc config_copy_set(struct config *cfg, const char *name, const char *value, char *err,
			 size_t errlen) MUST_USE;

#endif
