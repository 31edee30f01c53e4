/* fuzz_sqlscan.c: libFuzzer target for the SQL lexer (sqlscan.c), which reads every Query and
 * Parse text a client sends in transaction mode (and in session mode, a client with startup
 * parameters). The input is copied into an exactly-sized heap
 * buffer with no terminating NUL, as the scanner must never read past len. */
#include <stdlib.h>
#include <string.h>

#include "sqlscan.h"
#include "sqlscan_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *sql = malloc(size ? size : 1);
	if (!sql)
		abort();
	memcpy(sql, data, size);
	struct sql_facts f;
	sqlscan(sql, size, &f);
	if ((unsigned)sql_route(sql, size) > SQLR_SET_BAD) /* read_write_split's look, same text */
		abort();
	/* A captured value is a NUL-terminated string; a trackable SET has a name. */
	if (f.set_value && strlen(f.set_value) > 2 * size + 2)
		abort();
	if (f.set_trackable && (!f.set_name[0] || strlen(f.set_name) >= SQL_NAME_MAX))
		abort();
	if (f.nstmts < 0)
		abort();
	/* txn.c splices SETs into the text at the reset ends: in order, inside the text, each in a
	 * statement that exists. */
	if (f.nresets < 0 || f.nresets > SQL_MAX_RESETS)
		abort();
	for (int i = 0; i < f.nresets; i++)
		if (f.reset_ends[i] > size || (i > 0 && f.reset_ends[i] < f.reset_ends[i - 1]) ||
		    f.reset_stmts[i] < 1 || f.reset_stmts[i] > f.nstmts ||
		    strlen(f.reset_names[i]) >= SQL_NAME_MAX)
			abort();
	/* The path that decides without lexing agrees with the lexer: one statement, no facts. */
	if (sqlscan_plain(sql, size)) {
		struct sql_facts g;
		sqlscan_lexed(sql, size, &g);
		if (g.nstmts != 1 || g.pin_reason || g.has_set || g.nresets || g.reset_all ||
		    g.reset_unsure || g.discard_all || g.deallocate_all)
			abort();
		sql_facts_free(&g);
	}
	sql_facts_free(&f);
	free(sql);
	return 0;
}
