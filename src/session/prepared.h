/* prepared.h: protocol-level prepared statements in transaction and statement modes.
 *
 * A client's statement names are its own; on a server, statements are named SHOAL_<n> and kept
 * in a per-server cache keyed by the Parse body (query text and parameter types), bounded by
 * max_prepared_statements and max_prepared_statement_bytes with LRU eviction (an injected Close).
 * A client's Parse is always prepared afresh on the server (a cached statement may be stale); a
 * Bind/Describe naming a statement the server lacks is preceded by an injected Parse. Every new
 * server statement is described (an injected Describe); a client statement used where the
 * server's is described otherwise than it was is refused with PostgreSQL's 0A000.
 *
 * Replies: every message sent to a linked server that gets a reply is queued (struct ps_op) in
 * send order with what to do with its reply: forward it, swallow it (injected Parse, Describe,
 * Close), or stand in for it (a locally answered Close, emitted once every earlier reply has
 * reached the client). An ErrorResponse to an extended-protocol message makes the server skip to
 * the next Sync: the queued messages it skips are rolled back (names they added are removed again).
 */
#ifndef SHOAL_PREPARED_H
#define SHOAL_PREPARED_H

#include "common.h"

struct buf;
struct client;
struct server;

/* Is statement rewriting on for this server's pool (transaction/statement mode and
 * max_prepared_statements > 0)? Decided when a client is linked. */
bool ps_enabled(const struct server *s);

/* Client side: handle one whole P/B/D/C message (msg: header included, len bytes) from c for
 * its linked server s, writing what the server must see to s->c.out. */
void ps_client_msg(struct client *c, struct server *s, const uint8_t *msg, size_t len);
/* Client side: the start of a Bind of total bytes (msg: avail of them, header included) that
 * is too large to read whole. PS_BIND_MORE: its statement name has not arrived yet, or (while
 * ps_holding) its statement's description on this server must be known first.
 * PS_BIND_WHOLE: read it whole after all (ps_client_msg). PS_BIND_RAW: forward it unchanged.
 * PS_BIND_STREAM: the rewritten header, portal and statement name are in s->c.out; drop the
 * first *head bytes and forward the rest unchanged. */
enum ps_bind_way { PS_BIND_MORE, PS_BIND_WHOLE, PS_BIND_RAW, PS_BIND_STREAM };
enum ps_bind_way ps_bind_head(struct client *c, struct server *s, const uint8_t *msg,
			      size_t avail, size_t total, size_t *head);
/* Client side: the start of a Parse too large to read whole, the same way. PS_BIND_STREAM:
 * under a private server name (its text is not kept: the caller pins the client); RAW: the
 * unnamed statement (pinned too), or one the server skips; WHOLE: a Parse Shoal answers
 * otherwise (a failed transaction, max_client_prepared_bytes). */
enum ps_bind_way ps_parse_head(struct client *c, struct server *s, const uint8_t *msg,
			       size_t avail, size_t total, size_t *head);
/* Client side: any other message (Execute, Sync, Query, FunctionCall, ...) is being forwarded
 * unchanged: queue its reply expectation. */
void ps_client_note(struct server *s, uint8_t type);
/* read_write_split: the SQL text (len bytes, not NUL-terminated) of c's statement name (""
 * for the unnamed one) as Shoal keeps it, or NULL when it does not know it. */
const char *ps_client_text(struct client *c, const char *name, size_t *len);
/* The client's named statements are gone (its DEALLOCATE ALL / DISCARD ALL succeeded). */
void ps_client_forget(struct client *c);
/* The server's statements are gone (DISCARD ALL as reset query). */
void ps_server_forget(struct server *s);
/* Shoal sent the server a simple Query of its own (setup, reset): that destroys the unnamed
 * statement. */
void ps_server_query_sent(struct server *s);

/* Must the server's next message of this type be read whole before ps_server_msg (it may
 * answer an injected message)? */
bool ps_wants_whole(const struct server *s, uint8_t type);
/* Could ps_wants_whole be true for this type at all (ParseComplete, CloseComplete, the
 * descriptions)? Inline: most replies are none of these and need no call. */
static inline bool ps_may_want_whole(uint8_t type)
{
	return type == '1' || type == '3' || type == 't' || type == 'T' || type == 'n';
}
/* Does a reply of this type pass the reply queue untouched: not wanted whole (ps_wants_whole),
 * nothing for ps_server_msg to note, no stand-in reply due after it (ps_emit)? True with no reply
 * awaited, and behind a simple Query for all but ReadyForQuery and the extended protocol's
 * completions: most replies of simple-protocol traffic, which then need no other hook. */
bool ps_passes(const struct server *s, uint8_t type);
/* Server side, at the header of each message of a linked server (msg: the whole message when
 * read whole, else NULL). Returns false when the message is an injected message's reply, to be
 * dropped. SHOAL_ERROR-like failures (replies out of step) close the server and return false;
 * check s->c.dead. */
bool ps_server_msg(struct server *s, uint8_t type, const uint8_t *msg, size_t len);
/* A client's message waits for a description (stop reading the client until it is sent). */
bool ps_holding(const struct server *s);
/* A held message was just sent on (true once): flush the server and read the client again. */
bool ps_take_resume(struct server *s);
/* The ErrorResponse being handled answers a message Shoal sent to fail: write PostgreSQL's
 * 0A000 reply (or 53200 for a Parse over max_client_prepared_bytes) to out instead (true:
 * drop the server's error). Or it answers a Describe whose
 * statement could not be prepared again: write the ParameterDescription PostgreSQL sends first
 * (false: the server's error follows). */
bool ps_stale_reply(struct server *s, struct buf *out);
/* Server side, after a message went through whole: emit the stand-in replies now due. */
void ps_emit(struct server *s, struct client *c);
/* The server reported ReadyForQuery 'I': portals are gone, any statement may be evicted. */
void ps_server_idle(struct server *s);
/* No reply outstanding on this server. */
bool ps_idle(const struct server *s);

void ps_client_free(struct client *c);
void ps_server_free(struct server *s);

#endif
