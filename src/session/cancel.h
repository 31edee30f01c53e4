/* cancel.h: cancel keys. Each client gets Shoal's own (pid, key); a CancelRequest carrying them
 * reaches the server currently running that client's query, on a fresh connection. */
#ifndef SHOAL_CANCEL_H
#define SHOAL_CANCEL_H

#include "objects.h"

struct worker;

/* Give c a fresh random key (pid positive, as drivers store it as a signed int) and register it. */
shoal_rc cancel_register(struct client *c) MUST_USE;
void cancel_unregister(struct client *c);
/* Session mode: file c's entry under pid (its server's real backend pid, which the client is
 * told instead of Shoal's random one); the key stays Shoal's. No change if that (pid, key) is
 * already taken. */
void cancel_use_pid(struct client *c, uint32_t pid);
/* Shoal's own pids are at least this (Linux pids are below it): they name no real backend. */
#define CANCEL_PID_FLOOR 0x400000u
/* Record which server (NULL: none) the client's queries run on now. */
void cancel_set_target(struct client *c, const struct server *s);
/* Handle a CancelRequest: if (pid, key) names a client with a target, open a connection to that
 * server and forward a CancelRequest with the server's key. Anything else is ignored. */
void cancel_handle(struct worker *w, uint32_t pid, uint32_t key, const char *from);
/* Send a CancelRequest for (pid, key) to host:port from worker w (fire and forget). */
void cancel_send(struct worker *w, const char *host, int port, uint32_t pid, uint32_t key);
/* Close w's cancel connections older than CANCEL_CONN_TIMEOUT (now = 0: all of them). */
void cancel_reap(struct worker *w, usec_t now);

#define CANCEL_CONN_TIMEOUT (10 * USEC_PER_SEC)

#endif
