/* admin_parse.h: the admin console's query grammar, as PgBouncer's admin_parse_query: one command
 * word and at most one argument (a word [0-9a-zA-Z_]+ or a "quoted" one), or SET key (= | TO)
 * value (a word or a 'quoted string'); trailing spaces and one ';' allowed. Pure: the fuzz
 * target's surface. */
#ifndef SHOAL_ADMIN_PARSE_H
#define SHOAL_ADMIN_PARSE_H

#include "common.h"

enum admin_query_kind {
	AQ_INVALID, /* "invalid command '...', use SHOW HELP;" */
	AQ_COMMAND, /* cmd (lower-cased) and arg ("" when none; case kept) */
	AQ_SET,	    /* key and value (unquoted) */
};

struct admin_query {
	enum admin_query_kind kind;
	char cmd[32];
	char arg[64];
	char key[64];
	char value[256];
};

/* Parse the NUL-terminated query q. Always fills out->kind. */
void admin_parse(const char *q, struct admin_query *out);

/* DISABLE HOST / ENABLE HOST / PRIMARY HOST <db> <host>:<port>, which PgBouncer's grammar has
 * no room for. PRIMARY HOST: during a split brain, the operator's pick of the primary. */
enum admin_host_kind {
	AH_OTHER, /* not this command (DISABLE <db>, even a database named host): admin_parse's */
	AH_USAGE, /* the two words, then not <db> <host>:<port> */
	AH_OK,
};

struct admin_host_cmd {
	enum admin_host_kind kind;
	bool disable; /* DISABLE (else ENABLE, or PRIMARY when primary) */
	bool primary;
	char db[64];
	char host[256];
	int port;
};

/* Parse q as a host command. Always fills out->kind; db, host and port only for AH_OK. */
void admin_parse_host(const char *q, struct admin_host_cmd *out);

#endif
