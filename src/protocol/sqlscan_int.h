/* sqlscan_int.h: the lexer of sqlscan.c, shared with sqlroute.c; not for other files. */
#ifndef SHOAL_SQLSCAN_INT_H
#define SHOAL_SQLSCAN_INT_H

#include <stdbool.h>
#include <stddef.h>

struct sql_facts;

enum tok_kind { TK_END, TK_IDENT, TK_QIDENT, TK_STRING, TK_DOLLAR, TK_NUMBER, TK_PARAM, TK_PUNCT };

struct tok {
	enum tok_kind k;
	unsigned kw;   /* TK_IDENT: sqlscan.c's keyword number, or 0 (KW_NONE) */
	size_t s, n;   /* the token's span in the text */
	size_t bs, bn; /* TK_DOLLAR / TK_STRING / TK_QIDENT: the body between the quotes */
};

struct lexer {
	const char *p;
	size_t len, pos;
};

/* The next token from lx (comments and white space skipped); TK_END at the end. */
void sql_lex_next(struct lexer *lx, struct tok *t);

/* For the fuzz target's differential check (with sqlscan_plain): the lexing scan's facts. */
void sqlscan_lexed(const char *sql, size_t len, struct sql_facts *out);

#endif
