/* param_list.h: the session parameters a client or a server carries (objects.h); the functions
 * over them, the SET/RESET diff among them, are session/params.h's. */
#ifndef SHOAL_PARAM_LIST_H
#define SHOAL_PARAM_LIST_H

#include "common.h"

struct param {
	char *name;
	char *value;
	char *initial; /* server lists: the value at login (NULL if unknown: not reported) */
	bool raw;      /* value is SQL text from the client's own SET, applied unquoted */
	/* Kept by params.c for the diff on every link: */
	bool at_initial; /* initial && value equals it */
	uint32_t hash;	 /* of the lower-cased name: a lookup compares this first */
};

struct param_list {
	struct param *items;
	int n, cap;
	int n_off; /* items not at_initial: the diff on a link skips its RESET pass when the
		    * client has every one of them (kept by session/params.c) */
};

/* Free every entry and the array; pl is left empty. */
void params_free(struct param_list *pl);

#endif
