/* server.h: server connections: connect, login (trust, cleartext, md5, SCRAM-SHA-256), idle,
 * linked traffic, reset, cancel, and the one path by which a server connection dies. */
#ifndef SHOAL_SERVER_H
#define SHOAL_SERVER_H

#include "objects.h"

struct worker;

/* Start a new server connection for pool p on worker w (counted in the pool at once). */
void server_connect(struct worker *w, struct pool *p);
/* The same for a health check of host h (server_check.c) instead of serving clients. */
void server_connect_check(struct worker *w, struct pool *p, struct host_rec *h);
/* server_check.c: the janitor's hook (start the checks due for p's hosts), and the check's
 * steps: its query after login, its row, its end (record and close), its close. */
void server_check_pool(struct worker *w, struct pool *p);
void server_check_send(struct server *s);
void server_check_row(struct server *s, const uint8_t *body, size_t len);
void server_check_finish(struct server *s);
void server_check_gone(struct server *s, const char *reason);
/* The one way a server dies: log reason, tell a linked client (its own FATAL if the server sent
 * one, else 08006), close, account. */
void server_close(struct server *s, const char *reason);
/* Send what is queued; on a socket error the server is closed (SHOAL_ERROR). A linked server
 * whose side is closed (EPIPE, ECONNRESET) stays until its read side has forwarded what it
 * wrote before closing: what is sent to it since is dropped (SHOAL_OK). */
shoal_rc server_flush(struct server *s);
/* An idle server (s->dying) that must go, and whose backend must be gone from PostgreSQL before
 * its slot of max_db/user_connections is given back: send Terminate, then close at the server's
 * EOF (or after RETIRE_WAIT, janitor.c), logging reason. */
void server_retire(struct server *s, const char *reason);
/* Just linked to s->client: run the SET/RESET that makes the session match the client, then
 * hand over to the client (client_on_linked). */
void server_begin_link(struct server *s);
/* Session mode: the client left a clean server; run server_reset_query, then make it ready. */
void server_begin_reset(struct server *s);
/* The same with another query (a pinned client's server is cleaned with DISCARD ALL). */
void server_begin_reset_with(struct server *s, const char *query);
/* Send the server a CancelRequest for its running query on a fresh connection. */
void server_send_cancel(struct server *s);
/* Is the server between transactions with nothing in flight? */
bool server_is_clean(const struct server *s);
/* The client drained its output: read the server again and forward what it has. */
void server_resume(struct server *s);
/* Flow control (docs/internals.md): each side of a link is read only while the buffers it
 * feeds hold at most CONN_HIGH_WATER bytes. Called at the end of every event of either side:
 * however a buffer drained, the side it held back is read again. */
void server_link_settle(struct server *s);
/* Free closed servers (after an event batch; left to pool_cancel_answered while forwarded
 * cancels name it). */
void server_free(struct server *s);

#endif
