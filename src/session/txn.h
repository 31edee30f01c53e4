/* txn.h: transaction-pooling fidelity hooks between client.c/server.c and the modules that keep
 * a client's session intact across servers: prepared statements (prepared.c), tracked SET/RESET
 * (params.c, recognised by sqlscan.c) and pinning a client to its server when it creates session
 * state that cannot follow it (LISTEN, temp tables, advisory locks, ...). Off in session mode. */
#ifndef SHOAL_TXN_H
#define SHOAL_TXN_H

#include "buf.h"
#include "common.h"
#include "prepared.h"

struct client;
struct server;

/* Must the client's message of this type be seen whole before it goes to server s? */
bool txn_wants_whole(const struct server *s, uint8_t type);
/* A whole client message (header included): inspect it and write what the server must see to
 * s->c.out. Call before the pooler's own bookkeeping of the message (client_note_msg). */
void txn_client_msg(struct client *c, struct server *s, const uint8_t *msg, size_t len);
/* A client message of this type that txn_wants_whole but that is larger than
 * message_inspect_limit: true when it may be forwarded as it arrives (the client is pinned and
 * the message noted), false when it must still be read whole. */
bool txn_stream(struct client *c, struct server *s, uint8_t type);
/* A client message forwarded by header (Execute, Sync, ...). */
void txn_client_note(struct server *s, uint8_t type);
/* At the header of each message from the linked server s (msg: the whole message if it was read
 * whole, else NULL). False: drop it (a reply to an injected message). A server closed as out of
 * step also returns false. */
bool txn_server_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len);
/* Must a ParameterStatus from s be held until its ReadyForQuery (a RESET of the client's login
 * values in flight, whose values Shoal puts back then)? */
bool txn_holds_status(const struct server *s);
/* A client message waits for the server (prepared.c): read no more from the client. */
static inline bool txn_holding(const struct server *s)
{
	return ps_holding(s); /* inline: asked before every client message */
}
/* Must CommandComplete tags be seen (a SET inside a transaction block awaits its outcome)? */
bool txn_wants_tags(const struct server *s);
/* A whole CommandComplete from the linked server s. False: drop it (it answers a SET Shoal
 * added to the client's Query). */
bool txn_server_tag(struct server *s, struct client *c, const uint8_t *msg, size_t len);
/* Append to out an ErrorResponse or NoticeResponse (whole) from the linked server s, its
 * position (P) moved back by the text Shoal added to the client's Query before it. */
void txn_position_out(const struct server *s, struct buf *out, const uint8_t *msg, size_t len);
/* ReadyForQuery with this status from the linked server s: confirm a tracked SET. */
void txn_server_ready(struct server *s, struct client *c, char status);
/* Keep the client on its server until it leaves (logs the reason once). reason: static text. */
void txn_pin(struct client *c, const char *reason);
/* Shoal sends the server a query of its own (setup on link, reset before reuse): what it
 * drops. */
void txn_server_reset(struct server *s, const char *query);

void txn_client_free(struct client *c);
void txn_server_free(struct server *s);

#endif
