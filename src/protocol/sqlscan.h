/* sqlscan.h: a small SQL lexer (comments, quotes, dollar quotes, multi-statement text) and the
 * facts transaction pooling needs from a client's SQL: what would leave session state behind on
 * a server, which plain SET/RESET can be tracked, DEALLOCATE ALL / DISCARD ALL. Pure code over
 * (ptr, len): a fuzz target. */
#ifndef SHOAL_SQLSCAN_H
#define SHOAL_SQLSCAN_H

#include "common.h"

#define SQL_NAME_MAX   64
#define SQL_MAX_RESETS 4

struct sql_facts {
	const char *pin_reason; /* static text: session state that must keep its server, or NULL */
	bool deallocate_all;	/* DEALLOCATE [PREPARE] ALL */
	bool discard_all;	/* DISCARD ALL */
	int nstmts;		/* statements in the text (empty ones not counted) */
	/* A session-level SET or RESET of one parameter: set_name below. */
	bool has_set;
	bool set_trackable; /* it is the only statement and its value could be captured */
	bool set_reset;	    /* RESET name / SET name TO DEFAULT */
	char *set_value; /* the value as SQL text to put after "SET name = " (malloc'd), or NULL */
	/* Parameters sent back to their reset value, in any statement of the text: RESET name,
	 * RESET ALL (name ""), SET [SESSION] name {TO | =} DEFAULT (and SET TIME ZONE / NAMES
	 * DEFAULT); for each, where its statement ends (the offset after its last token) and which
	 * statement of the text it is (1 for the first). reset_all: RESET ALL, or reset_unsure: a
	 * name that could not be read, or more than SQL_MAX_RESETS of them. DISCARD ALL is
	 * discard_all. */
	bool reset_all, reset_unsure;
	int nresets;
	/* The arrays come last: sqlscan() clears only what is above them, set_name[0] and nresets
	 * (entries past nresets are never read). */
	char set_name[SQL_NAME_MAX];
	char reset_names[SQL_MAX_RESETS][SQL_NAME_MAX];
	uint32_t reset_ends[SQL_MAX_RESETS];
	int reset_stmts[SQL_MAX_RESETS];
};

/* Scan len bytes of SQL (need not be NUL-terminated). Fills out; free with sql_facts_free. */
void sqlscan(const char *sql, size_t len, struct sql_facts *out);
void sql_facts_free(struct sql_facts *f);
/* The common case, decided without lexing or facts to fill: true when sqlscan() would report
 * one statement and nothing else (the fuzz target checks it against the lexer). */
bool sqlscan_plain(const char *sql, size_t len);

/* read_write_split (sqlroute.c): where a Query's text goes. */
enum sql_route {
	SQLR_PRIMARY = 0,   /* a write, several statements, or in doubt */
	SQLR_READ,	    /* one plain SELECT / VALUES / SHOW / TABLE, no row locks or writers */
	SQLR_READ_TXN,	    /* BEGIN / START TRANSACTION ... READ ONLY */
	SQLR_FORCE_PRIMARY, /* a comment at its head: shoal:route=primary */
	SQLR_FORCE_STANDBY, /* shoal:route=standby */
	SQLR_SET_AUTO,	    /* SET shoal.route = auto (or default) */
	SQLR_SET_PRIMARY,   /* SET shoal.route = primary */
	SQLR_SET_STANDBY,   /* SET shoal.route = standby */
	SQLR_SET_BAD,	    /* SET shoal.route to another value */
};
/* Classify len bytes of a Query's SQL (need not be NUL-terminated). Called only when the
 * setting is on: the plain path never pays for it. */
enum sql_route sql_route(const char *sql, size_t len);

#endif
