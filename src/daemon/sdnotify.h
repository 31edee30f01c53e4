/* sdnotify.h: systemd's readiness protocol (sd_notify) for Type=notify-reload units, without
 * libsystemd: one datagram per state change to the socket named in $NOTIFY_SOCKET. */
#ifndef SHOAL_SDNOTIFY_H
#define SHOAL_SDNOTIFY_H

/* The listeners are bound and the workers run: READY=1 with MAINPID (the pid after -d's fork). */
void sdnotify_ready(void);
/* A reload starts (SIGHUP): RELOADING=1 with MONOTONIC_USEC, as notify-reload requires. */
void sdnotify_reloading(void);
/* The reload is over (applied or refused, status says which): READY=1 and STATUS=. */
void sdnotify_reloaded(const char *status);
/* Shutdown has begun: STOPPING=1. */
void sdnotify_stopping(void);

#endif
