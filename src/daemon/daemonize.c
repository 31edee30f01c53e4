/* daemonize.c: going to the background (-d) and dropping root (-u), as PgBouncer does. */
#include "daemonize.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1;

shoal_rc daemon_check_user(const char *user, char *err, size_t errlen)
{
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "user %s: no such user%s%s", user, errno ? ": " : "",
			 errno ? strerror(errno) : "");
		return SHOAL_ERROR;
	}
	if (geteuid() != 0 && geteuid() != pw->pw_uid) {
		snprintf(err, errlen, "user %s: only root can switch to another user", user);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

shoal_rc daemon_drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "user %s: no such user", user);
		return SHOAL_ERROR;
	}
	if (geteuid() == pw->pw_uid)
		return SHOAL_OK;
	/* glibc applies setgid/setuid to every thread of the process. */
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "user %s: cannot switch user: %s", user, strerror(errno));
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

static void parent_wait(int fd, pid_t child, const char *logfile)
{
	char c;
	ssize_t n;
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(0);
	int st = 0;
	waitpid(child, &st, WNOHANG);
	fprintf(stderr, "shoal: the daemon did not start; see %s\n", logfile);
	_exit(1);
}

shoal_rc daemon_detach(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->logfile || !cfg->pidfile) {
		snprintf(err, errlen,
			 "-d needs logfile and pidfile set (in the file or as "
			 "SHOAL_LOGFILE and SHOAL_PIDFILE): in the background nobody "
			 "reads stderr");
		return SHOAL_ERROR;
	}
	int p[2];
	if (pipe(p) != 0) {
		snprintf(err, errlen, "-d: pipe: %s", strerror(errno));
		return SHOAL_ERROR;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "-d: fork: %s", strerror(errno));
		return SHOAL_ERROR;
	}
	if (pid > 0) {
		close(p[1]);
		parent_wait(p[0], pid, cfg->logfile);
	}
	close(p[0]);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	ready_fd = p[1];
	setsid();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	return SHOAL_OK;
}

void daemon_ready(void)
{
	if (ready_fd < 0)
		return;
	ssize_t w = write(ready_fd, "1", 1);
	UNUSED(w);
	close(ready_fd);
	ready_fd = -1;
}
