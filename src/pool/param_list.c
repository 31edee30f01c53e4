/* param_list.c: freeing a parameter list (param_list.h); the rest is session/params.c's. */
#include "param_list.h"

#include <stdlib.h>

void params_free(struct param_list *pl)
{
	for (int i = 0; i < pl->n; i++) {
		free(pl->items[i].name);
		free(pl->items[i].value);
		free(pl->items[i].initial);
	}
	free(pl->items);
	pl->items = NULL;
	pl->n = pl->cap = pl->n_off = 0;
}
