/* param_list.c: freeing a parameter list (param_list.h); the rest is session/params.c's. */
#include "param_list.h"

#include <stdint.h>
#include <stdlib.h>

static bool in_fixed(const struct param_list *pl, const void *s)
{
	uintptr_t a = (uintptr_t)s, b = (uintptr_t)pl->fixed;
	return pl->fixed && a >= b && a < b + pl->fixed_len;
}

/* Is s inside pl's block (so freed with it)? */
static bool in_block(const struct param_list *pl, const void *s)
{
	uintptr_t a = (uintptr_t)s, b = (uintptr_t)pl->block;
	return pl->block && a >= b && a < b + pl->block_len;
}

static void drop_str(const struct param_list *pl, char *s)
{
	if (s && !in_block(pl, s)) /* most initial values are NULL: no call to free */
		free(s);
}

void param_drop_value(const struct param_list *pl, struct param *p)
{
	if (!p->joined)
		drop_str(pl, p->value);
	p->value = NULL;
	p->joined = false;
}

void param_drop_initial(const struct param_list *pl, struct param *p)
{
	drop_str(pl, p->initial);
	p->initial = NULL;
}

void param_drop(const struct param_list *pl, struct param *p)
{
	param_drop_value(pl, p);
	param_drop_initial(pl, p);
	drop_str(pl, p->name);
	p->name = NULL;
}

void params_free(struct param_list *pl)
{
	for (int i = 0; i < pl->n; i++)
		param_drop(pl, &pl->items[i]);
	if (!in_block(pl, pl->items) && !in_fixed(pl, pl->items))
		free(pl->items);
	if (pl->block != pl->fixed)
		free(pl->block);
	pl->items = NULL;
	pl->block = NULL;
	pl->n = pl->cap = pl->n_off = 0;
	pl->block_len = 0;
}
