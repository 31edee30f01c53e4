/* admin_hosts.c: the console's DISABLE HOST / ENABLE HOST <db> <host>:<port>: an operator takes
 * one host of an entry's host list out of rotation (planned maintenance) and puts it back. */
#include "admin_int.h"
#include "admin_parse.h"
#include "client.h"
#include "hosts.h"
#include "log.h"
#include "proto.h"

#include <stdio.h>

static void run(struct client *c, const struct admin_host_cmd *h)
{
	char err[300];
	const struct db_entry *e = config_find_db(config_current(), h->db);
	if (admin_is_console_db(h->db) || !e) {
		admin_error(c, "08P01", "no such database: %s", h->db);
		return;
	}
	if (hosts_set_disabled(e, h->db, h->host, h->port, h->disable, err, sizeof(err)) !=
	    SHOAL_OK) {
		admin_error(c, "08P01", "%s", err);
		return;
	}
	const char *verb = h->disable ? "DISABLE" : "ENABLE";
	log_info("%s: %s HOST %s %s:%d", c->c.name, verb, h->db, h->host, h->port);
	proto_write_command_complete(&c->c.out, h->disable ? "DISABLE HOST" : "ENABLE HOST");
}

shoal_rc admin_hosts_command(struct client *c, const char *q)
{
	struct admin_host_cmd h;
	admin_parse_host(q, &h); /* the grammar is pure and fuzzed (admin_parse.c) */
	if (h.kind == AH_OTHER)
		return SHOAL_AGAIN; /* not this command: DISABLE <db> (even a db named host) etc. */
	if (c->admin != ADMIN_FULL)
		admin_error(c, "08P01", "admin access needed");
	else if (h.kind == AH_USAGE)
		admin_error(c, "08P01", "usage: %s HOST <db> <host>:<port>",
			    h.disable ? "DISABLE" : "ENABLE");
	else
		run(c, &h);
	return SHOAL_OK;
}
