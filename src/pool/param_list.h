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
	bool joined;   /* value shares name's allocation (a new entry's first value) */
	/* Kept by params.c for the diff on every link: */
	bool at_initial; /* initial && value equals it */
	uint32_t hash;	 /* of the lower-cased name: a lookup compares this first */
};

struct param_list {
	struct param *items;
	int n, cap;
	int n_off;	  /* items not at_initial: the diff on a link skips its RESET pass when the
			   * client has every one of them (kept by session/params.c) */
	char *block;	  /* params_copy's one allocation (NULL if none): the items array and the */
	size_t block_len; /* strings inside it are freed with it, not one by one */
	/* Storage the list's owner lends it (NULL: none), never freed: params_copy's block, or
	 * else the first items array, goes there when it fits (a client's usual few values). */
	char *fixed;
	size_t fixed_len;
};

/* Free every entry and the array; pl is left empty. */
void params_free(struct param_list *pl);
/* Free p's value unless it lives in a shared allocation (pl's block, or its name's); leaves it
 * NULL. */
void param_drop_value(const struct param_list *pl, struct param *p);
/* The same for p's initial value. */
void param_drop_initial(const struct param_list *pl, struct param *p);
/* Free p's name, value and initial value, the ones not in a shared allocation. */
void param_drop(const struct param_list *pl, struct param *p);

#endif
