/* hba.h: auth_hba_file in PgBouncer's (pg_hba.conf's) format: parse the rules, then find the
 * first one that matches a connection. Pure code (files are read only for @file lists), no I/O on
 * connections: the fuzz target feeds it text. */
#ifndef SHOAL_HBA_H
#define SHOAL_HBA_H

#include <sys/socket.h>

#include "common.h"

enum hba_conn_type { HBA_LOCAL, HBA_HOST, HBA_HOSTSSL, HBA_HOSTNOSSL };

enum hba_method {
	HBA_NO_MATCH = 0, /* no rule matched: refused */
	HBA_TRUST,
	HBA_REJECT,
	HBA_MD5,
	HBA_SCRAM,
	HBA_PASSWORD,
	HBA_PEER,
	HBA_CERT,
};

struct hba_names {
	char **items;
	int n;
	bool all;      /* keyword all */
	bool sameuser; /* databases only: the database named like the user */
	bool replication; /* databases only: keyword replication (physical replication only) */
};

struct hba_rule {
	int line;
	enum hba_conn_type type;
	struct hba_names dbs, users;
	bool addr_all;
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16], mask[16];
	enum hba_method method;
};

struct hba {
	struct hba_rule *rules;
	int n;
};

/* Parse rules from text. dir: where @file names are looked up (NULL: @file is refused). On
 * error *out is empty and err names the line. */
shoal_rc hba_parse(const char *text, size_t len, const char *dir, struct hba *out, char *err,
		   size_t errlen) MUST_USE;
/* Read and parse a file (@file relative to its directory). */
shoal_rc hba_load(const char *path, struct hba *out, char *err, size_t errlen) MUST_USE;
/* The method of the first rule matching this connection, HBA_NO_MATCH if none. addr: the
 * client's address (ignored for Unix sockets). *line: the rule's line (0 when none). db NULL:
 * a physical replication connection, which only the keyword replication matches (PostgreSQL's
 * rule; a logical one, replication=database, matches by its database like any other). */
enum hba_method hba_match(const struct hba *h, bool is_unix, bool tls,
			  const struct sockaddr_storage *addr, const char *db, const char *user,
			  int *line);
const char *hba_method_name(enum hba_method m);
void hba_free(struct hba *h);

#endif
