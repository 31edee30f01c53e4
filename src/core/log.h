/* log.h: leveled logging to stderr or logfile; every line about a connection names it. */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

#include "common.h"

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_NOISE };

/* Open path for appending (NULL: stderr). verbose raises the level: 0 info, 1 debug, 2 noise. */
shoal_rc log_open(const char *path, int verbose) MUST_USE;
/* Open path again (logrotate without copytruncate: SIGHUP and RELOAD) and log there from now on;
 * NULL: nothing changes. SHOAL_ERROR (errno set): the old file stays. */
shoal_rc log_reopen(const char *path) MUST_USE;
void log_set_verbose(int verbose);
bool log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) PRINTF(2, 3);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_DEBUG))                                                        \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)
#define log_noise(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_NOISE))                                                        \
			log_msg(LOG_NOISE, __VA_ARGS__);                                           \
	} while (0)

#endif
