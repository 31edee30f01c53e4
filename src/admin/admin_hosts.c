/* admin_hosts.c: the console's DISABLE HOST / ENABLE HOST <db> <host>:<port>: an operator takes
 * one host of an entry's host list out of rotation (planned maintenance) and puts it back. */
#include "admin_int.h"
#include "client.h"
#include "hosts.h"
#include "log.h"
#include "proto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The next space-separated word of *pp into out (a trailing ';' ends the command); false when
 * there is none or it is too long. */
static bool word(const char **pp, char *out, size_t outlen)
{
	const char *s = *pp;
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strcspn(s, " \t\r\n;");
	*pp = s + len;
	if (len == 0 || len >= outlen)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

/* Only spaces and one ';' may follow the last word. */
static bool at_end(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	if (*s == ';')
		s++;
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0';
}

/* host:port, the port after the last ':' (an IPv6 address keeps its own colons). */
static bool split_host_port(char *hp, int *port)
{
	char *colon = strrchr(hp, ':'), *end;
	if (!colon || colon == hp)
		return false;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p < 1 || p > 65535)
		return false;
	*colon = '\0';
	*port = (int)p;
	return true;
}

static void run(struct client *c, bool disable, const char *db, char *hp)
{
	int port = 0;
	char err[300];
	if (!split_host_port(hp, &port)) {
		admin_error(c, "08P01", "expected <host>:<port>, got \"%s\"", hp);
		return;
	}
	const struct db_entry *e = config_find_db(config_current(), db);
	if (admin_is_console_db(db) || !e) {
		admin_error(c, "08P01", "no such database: %s", db);
		return;
	}
	if (hosts_set_disabled(e, db, hp, port, disable, err, sizeof(err)) != SHOAL_OK) {
		admin_error(c, "08P01", "%s", err);
		return;
	}
	log_info("%s: %s HOST %s %s:%d", c->c.name, disable ? "DISABLE" : "ENABLE", db, hp, port);
	proto_write_command_complete(&c->c.out, disable ? "DISABLE HOST" : "ENABLE HOST");
}

shoal_rc admin_hosts_command(struct client *c, const char *q)
{
	char verb[16], kw[16], db[64], hp[300];
	const char *p = q;
	if (!word(&p, verb, sizeof(verb)) || !word(&p, kw, sizeof(kw)) ||
	    strcasecmp(kw, "host") != 0 || at_end(p) ||
	    (strcasecmp(verb, "disable") != 0 && strcasecmp(verb, "enable") != 0))
		return SHOAL_AGAIN; /* not this command: DISABLE <db> (even a db named host) etc. */
	bool disable = strcasecmp(verb, "disable") == 0;
	if (c->admin != ADMIN_FULL) {
		admin_error(c, "08P01", "admin access needed");
		return SHOAL_OK;
	}
	if (!word(&p, db, sizeof(db)) || !word(&p, hp, sizeof(hp)) || !at_end(p)) {
		admin_error(c, "08P01", "usage: %s HOST <db> <host>:<port>",
			    disable ? "DISABLE" : "ENABLE");
		return SHOAL_OK;
	}
	run(c, disable, db, hp);
	return SHOAL_OK;
}
