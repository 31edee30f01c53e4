/* cancel.h: cancel keys. Each client gets Shoal's own (pid, key); a CancelRequest carrying them
 * reaches the server currently running that client's query, on a fresh connection. */
#ifndef SHOAL_CANCEL_H
#define SHOAL_CANCEL_H

#include "objects.h"

struct worker;

/* Key lengths Shoal hands out: 4 bytes to protocol 3.0/3.1 clients, 32 to 3.2 clients (as
 * PostgreSQL 18 does). A 3.2 key ends in a routing trailer: tag, issuing peer id, hops left. */
#define CANCEL_KEY_LEN 32
#define CANCEL_KEY_TAG 0x53 /* 'S': byte CANCEL_KEY_LEN - 4 of a key Shoal issued to 3.2 */
/* How many times a cancel may be forwarded between peers: the low two bits of a 3.0 key (as
 * PgBouncer's peering), the last byte of a 3.2 key. Decremented at each forward. */
#define CANCEL_HOPS 3

/* Give c a fresh random key (pid positive, as drivers store it as a signed int) and register it.
 * Its length follows c->proto_minor; with peer_id set, the key names this instance: for 3.0 in
 * the pid's second and third bytes (PgBouncer's layout), for 3.2 in the trailer. */
shoal_rc cancel_register(struct client *c) MUST_USE;
/* Register a key another process issued to c (a client handed over, handoff.c), as it is.
 * SHOAL_ERROR: a bad length, or (pid, key) already names a client here. */
shoal_rc cancel_adopt(struct client *c, uint32_t pid, const uint8_t *key, size_t keylen) MUST_USE;
/* The key c tells its driver (c->cancel_key_len bytes; read by c's worker), from its entry in
 * the registry: the client keeps no copy. NULL before registration. */
const uint8_t *cancel_key_of(const struct client *c);
void cancel_unregister(struct client *c);
/* Session mode: file c's entry under pid (its server's real backend pid, which the client is
 * told instead of Shoal's random one); the key stays Shoal's. No change if that (pid, key) is
 * already taken. */
void cancel_use_pid(struct client *c, uint32_t pid);
/* Shoal's own pids are at least this (Linux pids are below it): they name no real backend. */
#define CANCEL_PID_FLOOR 0x400000u
/* Record which server (NULL: none) the client's queries run on now. Cleared before the server
 * is unlinked or closed: a key never reaches a server its client no longer holds. */
void cancel_set_target(struct client *c, struct server *s);
/* Handle c's CancelRequest (then the caller closes c): if (pid, key) names a client with a
 * target, forward a CancelRequest with the server's key on a fresh connection, and keep c's
 * socket open (a duplicate) until the server has closed that connection. The server is not
 * handed to another client before then (pool_cancel_answered). Anything else is ignored. */
/* With peer_id set, a key naming another peer is forwarded unchanged but for one hop less to
 * that [peers] entry; a peer not listed there, with peer_discovery_dns set, gets it through
 * every address that name resolves to, with no hops left. Not forwarded when no hops are left
 * or the peer is unknown. */
void cancel_handle(struct client *c, uint32_t pid, const uint8_t *key, size_t keylen);
/* Cancel requests this process forwarded to [peers] entry peer (1..CANCEL_PEER_ID_MAX) since
 * it started, for /metrics; 0 for any other id. */
#define CANCEL_PEER_ID_MAX 16383
uint64_t cancel_forwarded_to(int peer);
/* Send s (owned by w) a CancelRequest for its running query (query_timeout), counted the same
 * way: s goes to no other client until the server has closed that connection. */
void cancel_send(struct worker *w, struct server *s);
/* Close w's cancel connections older than CANCEL_CONN_TIMEOUT (now = 0: all of them). */
void cancel_reap(struct worker *w, usec_t now);

#define CANCEL_CONN_TIMEOUT (10 * USEC_PER_SEC)

#endif
