/* ledger.h: what pool.c and janitor.c use of the ledger beyond pool.h. */
#ifndef SHOAL_LEDGER_H
#define SHOAL_LEDGER_H

#include "pool.h"

/* Under the object's pool lock: move it to the list of state st. */
void server_state_locked(struct server *s, enum server_state st);
void client_state_locked(struct client *c, enum client_state st);
/* Under the pool's lock: a server of p is gone; give back its slots. */
void pool_release_slot(struct pool *p);
void pool_release_check_slot(struct pool *p); /* a health check's (pool_claim_check_slot) */

#endif
