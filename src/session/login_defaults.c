/* login_defaults.c: a [databases] entry's session defaults, applied to a client's startup
 * parameters before they are copied as its login values (what RESET goes back to). */
#include "login_defaults.h"

#include "params.h"

/* PostgreSQL's names, as it reports them in ParameterStatus (GUC names compare
 * case-insensitively, so a client's "timezone" is found as "TimeZone"). */
static void set_default(struct param_list *params, const char *name, const char *value)
{
	if (value && !params_find(params, name))
		params_set(params, name, value, false);
}

void login_apply_db_defaults(struct param_list *params, const struct db_entry *db)
{
	set_default(params, "application_name", db->application_name);
	set_default(params, "client_encoding", db->client_encoding);
	set_default(params, "DateStyle", db->datestyle);
	set_default(params, "TimeZone", db->timezone);
}
