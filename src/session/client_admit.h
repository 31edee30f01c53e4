/* client_admit.h: the client-count limits max_db_client_connections and
 * max_user_client_connections, checked when a client has authenticated. */
#ifndef SHOAL_CLIENT_ADMIT_H
#define SHOAL_CLIENT_ADMIT_H

#include "objects.h"

/* Counts an authenticated client against its database's and its user's limits. false: a limit
 * is full and c has been closed with 53300 (PgBouncer's wording, naming the setting). */
bool client_admit(struct client *c) __attribute__((warn_unused_result));
/* The client leaves: its counts go down (nothing if it was never counted). */
void client_admit_release(struct client *c);
/* The database name a client is counted under: the console's is "pgbouncer". */
const char *client_admit_db(const struct client *c);

#endif
