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

#endif
