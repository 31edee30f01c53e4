/* error_stats.h: ErrorResponses clients received, counted by SQLSTATE and by who produced them
 * (the pooler itself, or a server whose error was forwarded), for /metrics. */
#ifndef SHOAL_ERROR_STATS_H
#define SHOAL_ERROR_STATS_H

#include "common.h"

enum error_source { ERR_FROM_POOLER = 0, ERR_FROM_SERVER = 1 };

/* Count one error; any thread. A sqlstate that is not 5 characters of [0-9A-Z] is ignored. */
void error_stats_count(const char *sqlstate, enum error_source from);

struct error_stat {
	char sqlstate[6];
	uint64_t count[2]; /* by enum error_source */
};
/* Copy up to max entries (unordered); returns how many. */
int error_stats_read(struct error_stat *out, int max);

#endif
