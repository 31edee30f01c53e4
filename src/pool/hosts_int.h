/* hosts_int.h: the host registry shared by hosts.c and hosts_ryw.c (not for other callers). */
#ifndef SHOAL_HOSTS_INT_H
#define SHOAL_HOSTS_INT_H

#include <pthread.h>

#include "hosts.h"

extern pthread_mutex_t hosts_lock;	/* a leaf: nothing else is locked while it is held */
extern struct host_rec *hosts_registry; /* every host record, in configuration order */
extern struct host_set **hosts_sets;	/* every host set made, kept until exit */
extern int hosts_nsets;

/* Under the lock: the freshest known primary of h's entry, or NULL. */
struct host_rec *hosts_primary_of(const struct host_rec *h);
/* Under the lock: whether o answered its last check, as primary. */
bool hosts_claims_primary(const struct host_rec *o);
/* Whether target_session_attrs tsa sends writes (read-write, primary). */
bool hosts_tsa_writes(int tsa);

#endif
