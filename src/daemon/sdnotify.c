/* sdnotify.c: READY/RELOADING/STOPPING datagrams to $NOTIFY_SOCKET (systemd's sd_notify). */
#include "sdnotify.h"
#include "log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Sends one state datagram. Outside systemd ($NOTIFY_SOCKET unset) it does nothing; a failure is
 * logged once per state and never stops the daemon: readiness is advice to the service manager. */
static void sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
		log_warn("NOTIFY_SOCKET %s: not a socket path; systemd is not told '%s'", path,
			 state);
		return;
	}
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@') /* an abstract socket: its name starts with a NUL, not '@' */
		sa.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("sd_notify: socket: %s", strerror(errno));
		return;
	}
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		log_warn("sd_notify to %s: %s", path, strerror(errno));
	close(fd);
}

void sdnotify_ready(void)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld\n", (long)getpid());
	sdnotify_send(msg);
}

void sdnotify_reloading(void)
{
	/* systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC reading taken when it sent
	 * SIGHUP, so that a late RELOADING=1 from an earlier reload is not taken for this one. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[96];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%lld\n",
		 (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000);
	sdnotify_send(msg);
}

void sdnotify_reloaded(const char *status)
{
	char msg[600];
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\n", status);
	sdnotify_send(msg);
}

void sdnotify_stopping(void)
{
	sdnotify_send("STOPPING=1\n");
}
