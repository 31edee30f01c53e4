/* hosts_int.h: the host registry shared by hosts.c and hosts_*.c (not for
 * other callers). */
#ifndef SHOAL_HOSTS_INT_H
#define SHOAL_HOSTS_INT_H

#include <pthread.h>

#include "hosts.h"

extern pthread_mutex_t hosts_lock;	/* a leaf: nothing else is locked while it is held */
extern struct host_rec *hosts_registry; /* every host record, in configuration order */
extern struct host_set **hosts_sets;	/* every host set made, kept until exit */
extern int hosts_nsets;

/* How long a host's role, read by a check or a login, is trusted. */
#define ROLE_TTL (30 * USEC_PER_SEC)

/* Under the lock: whether h may take the next connection (breaker, role, held, zone tier,
 * max_host_connections); pass 0 of prefer-standby also skips known primaries. */
bool hosts_usable(const struct host_set *hs, const struct host_rec *h, int pass, usec_t now);
/* Under the lock: whether the breaker lets a connection to h through now. */
bool hosts_breaker_allows(const struct host_rec *h, usec_t now);

/* Under the lock: the freshest known primary of h's entry, or NULL. */
struct host_rec *hosts_primary_of(const struct host_rec *h);
/* Under the lock: whether o answered its last check, as primary. */
bool hosts_claims_primary(const struct host_rec *o);
/* Whether target_session_attrs tsa sends writes (read-write, primary). */
bool hosts_tsa_writes(int tsa);

/* This instance's zone (the zone setting): "" none, "nearest" measured (hosts_zone.c). */
const char *hosts_own_zone(void);
/* Under the lock: each set of entry db takes its hosts' near marks. */
void hosts_zone_spread(const char *db);
/* zone = nearest, under the lock, after a check of a host of entry db: the zone whose host
 * answered fastest becomes the near one (another takes over when 20% faster). */
void hosts_zone_nearest(const char *db);

#endif
