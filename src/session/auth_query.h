/* auth_query.h: secrets of users not in auth_file, fetched with auth_user + auth_query over a
 * pooled server connection, without blocking the worker: the client waits in the auth user's
 * pool like any client waiting for a server, the query runs as that server's "setup", and the
 * client's authentication resumes when ReadyForQuery arrives. Results are cached. */
#ifndef SHOAL_AUTH_QUERY_H
#define SHOAL_AUTH_QUERY_H

#include "objects.h"

/* Should c's secret come from auth_query (auth_user set for its database, user not in
 * auth_file, not fetched yet)? */
bool auth_query_wanted(const struct client *c);
/* Find c's secret: SHOAL_OK when the cache answered (c->aq_secret set or NULL for no such
 * user); SHOAL_AGAIN when the query was started (client_auth_resume follows) or c was closed
 * (max_pools); SHOAL_ERROR when the auth database is reserved, unknown or disabled (c has been
 * closed). */
shoal_rc auth_query_start(struct client *c) MUST_USE;
/* Entries in the cache now (bounded: 10,000 found, 1,000 negative for at most 5 s). */
int auth_query_cache_count(void);

/* server_setup.c's and server_read.c's hooks, for a server linked to a client whose query it runs (s->auth_query). */
void auth_query_send(struct server *s);
void auth_query_row(struct server *s, const uint8_t *msg, size_t len);
/* ReadyForQuery: hand the server back, cache the answer, resume the client's authentication
 * (or fail it if the query failed). */
void auth_query_done(struct server *s);
/* The fetched secret becomes the server password of c's pool if it has none (same user), so
 * servers can log in with it (md5, plaintext) or with SCRAM pass-through keys. */
void auth_query_share_secret(struct client *c, struct pool *p);
void auth_query_cache_free(void);

#endif
