/* client_admit.c: max_db_client_connections / max_user_client_connections at login. As in
 * PgBouncer, an entry's own limit (> 0) wins over the global one, the console counts as the
 * database "pgbouncer", and an admin user on the console is counted but never refused. */
#include "client_admit.h"
#include "client.h"
#include "client_limits.h"
#include "config.h"
#include "log.h"
#include "worker.h"

#include <stdio.h>

static int pick_limit(int entry, int global)
{
	return entry > 0 ? entry : global;
}

const char *client_admit_db(const struct client *c)
{
	return c->admin ? "pgbouncer" : c->dbname;
}

bool client_admit(struct client *c)
{
	if (c->internal || c->climit_counted || (!c->admin && !c->db))
		return true; /* the probe, a second call, or an unknown database (refused next) */
	const struct config *cfg = config_current();
	const struct user_entry *u = config_find_user(cfg, c->user);
	int db_max =
	    c->admin ? cfg->max_db_client_connections
		     : pick_limit(c->db->max_db_client_connections, cfg->max_db_client_connections);
	int user_max =
	    pick_limit(u ? u->max_user_client_connections : -1, cfg->max_user_client_connections);
	const char *db = client_admit_db(c);
	enum climit_refusal r = climit_admit(db, db_max, c->user, user_max, c->admin == ADMIN_FULL);
	if (r == CLIMIT_OK) {
		c->climit_counted = true;
		return true;
	}
	bool by_db = r == CLIMIT_DB_FULL;
	log_debug("%s: %s '%s' full (%d clients)", c->c.name, by_db ? "db" : "user",
		  by_db ? db : c->user, by_db ? db_max : user_max);
	client_close(c, "53300",
		     by_db ? "client connections exceeded (max_db_client_connections)"
			   : "client connections exceeded (max_user_client_connections)");
	return false;
}

void client_admit_release(struct client *c)
{
	if (!c->climit_counted)
		return;
	c->climit_counted = false;
	climit_release(client_admit_db(c), c->user);
}
