/* login_defaults.h: a [databases] entry's session defaults (application_name, client_encoding,
 * datestyle, timezone) given to a client at login. */
#ifndef SHOAL_LOGIN_DEFAULTS_H
#define SHOAL_LOGIN_DEFAULTS_H

#include "config.h"
#include "param_list.h"

/* Set in params each of db's defaults that the client did not send itself (as a startup
 * parameter or through options=-c): as PgBouncer, the client's own value wins. */
void login_apply_db_defaults(struct param_list *params, const struct db_entry *db);

#endif
