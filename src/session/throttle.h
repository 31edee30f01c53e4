/* throttle.h: failed logins per source address (auth_failure_limit, auth_failure_window). */
#ifndef SHOAL_THROTTLE_H
#define SHOAL_THROTTLE_H

#include "objects.h"

/* Count a failed login of c (a wrong password, a failed SCRAM proof). The address that reaches
 * auth_failure_limit failures within auth_failure_window is logged once, and blocked until its
 * window ends. Unix-socket clients are not counted. */
void throttle_failed(const struct client *c);
/* Is c's address blocked now? *wait: seconds until it is not. */
bool throttle_blocked(const struct client *c, int *wait);
/* Whether a failed login is logged line by line: the first of each second is; the others are
 * counted, and throttle_tick sums them up in one line, so that a storm of wrong passwords does
 * not flood the log. */
bool throttle_log_failure(void);
/* Worker 0's tick: one line for the failed logins not logged one by one, at most per second. */
void throttle_tick(usec_t now);

#endif
