/* http_server.h: the HTTP listener (http_addr:http_port): one thread with its own event loop,
 * serving /health, /metrics and the dashboard. Off unless http_port is set. */
#ifndef SHOAL_HTTP_SERVER_H
#define SHOAL_HTTP_SERVER_H

#include "config.h"

/* Start the listener thread when cfg->http_port > 0. SHOAL_ERROR with err when it cannot
 * listen. Call with the daemon's signals blocked (the thread inherits the mask). */
shoal_rc http_start(const struct config *cfg, char *err, size_t errlen) MUST_USE;
/* Stop the thread and close every connection; a no-op when not started. */
void http_stop(void);
/* The daemon stops accepting clients: /health/ready answers 503 from now on. */
void http_set_draining(void);
bool http_draining(void);
/* The workers are running (main, after start_workers): probes may be mailed to them. Before
 * that, the worker table is still being written by the main thread. */
void http_set_workers_ready(void);
bool http_workers_ready(void);
/* Seconds since http_start's process began serving (for /health's uptime_s). */
double http_uptime(void);

#endif
