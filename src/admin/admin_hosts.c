/* admin_hosts.c: the console's DISABLE HOST / ENABLE HOST <db> <host>:<port>: an operator takes
 * one host of an entry's host list out of rotation (planned maintenance) and puts it back; and
 * PRIMARY HOST <db> <host>:<port>: during a split brain, the operator picks the primary. */
#include "admin_int.h"
#include "admin_parse.h"
#include "client.h"
#include "hosts.h"
#include "log.h"
#include "proto.h"

#include <stdio.h>

static const char *verb_of(const struct admin_host_cmd *h)
{
	return h->primary ? "PRIMARY" : h->disable ? "DISABLE" : "ENABLE";
}

static void run(struct client *c, const struct admin_host_cmd *h)
{
	char err[300];
	const struct db_entry *e = config_find_db(config_current(), h->db);
	if (admin_is_console_db(h->db) || !e) {
		admin_error(c, "08P01", "no such database: %s", h->db);
		return;
	}
	shoal_rc rc = h->primary ? hosts_pick_primary(e, h->db, h->host, h->port, err, sizeof(err))
				 : hosts_set_disabled(e, h->db, h->host, h->port, h->disable, err,
						      sizeof(err));
	if (rc != SHOAL_OK) {
		admin_error(c, "08P01", "%s", err);
		return;
	}
	if (h->primary)
		log_warn("%s: PRIMARY HOST %s %s:%d: split brain: writes go to %s:%d, the other "
			 "hosts claiming primary get none",
			 c->c.name, h->db, h->host, h->port, h->host, h->port);
	else
		log_info("%s: %s HOST %s %s:%d", c->c.name, verb_of(h), h->db, h->host, h->port);
	char tag[32];
	snprintf(tag, sizeof(tag), "%s HOST", verb_of(h));
	proto_write_command_complete(&c->c.out, tag);
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
		admin_error(c, "08P01", "usage: %s HOST <db> <host>:<port>", verb_of(&h));
	else
		run(c, &h);
	return SHOAL_OK;
}
