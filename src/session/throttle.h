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

#endif
