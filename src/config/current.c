/* current.c: the configuration in force, read by every thread, replaced whole on reload. */
#include "config.h"

#include <stdatomic.h>

static _Atomic(const struct config *) current_config;

const struct config *config_current(void)
{
	return atomic_load(&current_config);
}

void config_set_current(const struct config *cfg)
{
	atomic_store(&current_config, cfg);
}
