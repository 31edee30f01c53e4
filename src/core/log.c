/* log.c: leveled logging; one line per event, written with a single write() so that lines from
 * different threads never interleave. */
#include "log.h"

#include <stdatomic.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static _Atomic int log_fd = 2;
static _Atomic int log_level = LOG_INFO; /* a reload on any thread may change it */

static const char *const level_names[] = {"ERROR", "WARNING", "LOG", "DEBUG", "NOISE"};

shoal_rc log_open(const char *path, int verbose)
{
	log_set_verbose(verbose);
	if (!path || !*path)
		return SHOAL_OK;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return SHOAL_ERROR;
	log_fd = fd;
	return SHOAL_OK;
}

shoal_rc log_reopen(const char *path)
{
	if (!path || !*path)
		return SHOAL_OK;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return SHOAL_ERROR;
	int old = atomic_load(&log_fd);
	if (old == 2) { /* was stderr: the file from now on */
		atomic_store(&log_fd, fd);
		return SHOAL_OK;
	}
	/* dup2 swaps the file under the same number at once: a thread writing meanwhile writes
	 * whole lines to the old file or the new one. */
	shoal_rc rc = dup2(fd, old) < 0 ? SHOAL_ERROR : SHOAL_OK;
	close(fd);
	return rc;
}

void log_set_verbose(int verbose)
{
	int lvl = LOG_INFO + verbose;
	atomic_store_explicit(&log_level, lvl > LOG_NOISE ? LOG_NOISE : lvl, memory_order_relaxed);
}

bool log_enabled(enum log_level lvl)
{
	return (int)lvl <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (!log_enabled(lvl))
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03d UTC [%d] %s ",
			      (int)(tv.tv_usec / 1000), (int)getpid(), level_names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, n);
	UNUSED(w);
}
