/* current.c: the configuration in force, read by every thread, replaced whole on reload. */
#include "config.h"

#include <stdatomic.h>

static _Atomic(const struct config *) current_config;

const struct config *config_current(void)
{
	return atomic_load(&current_config);
}

#define MAX_HOOKS 4
static void (*hooks[MAX_HOOKS])(const struct config *cfg);
static int nhooks;

void config_on_change(void (*fn)(const struct config *cfg))
{
	if (nhooks < MAX_HOOKS)
		hooks[nhooks++] = fn;
}

void config_set_current(const struct config *cfg)
{
	atomic_store(&current_config, cfg);
	for (int i = 0; i < nhooks; i++)
		hooks[i](cfg);
}
