/* fuzz_authfile.c: libFuzzer target for auth_file (userlist.txt) parsing through config_load: the
 * input is written as the auth_file of a minimal configuration, loaded, and every entry read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char ini_path[64], auth_path[64];
static volatile size_t sink;

static void setup(void)
{
	snprintf(ini_path, sizeof(ini_path), "/tmp/shoal-fuzz-%d.ini", (int)getpid());
	snprintf(auth_path, sizeof(auth_path), "/tmp/shoal-fuzz-%d.users", (int)getpid());
	FILE *f = fopen(ini_path, "w");
	if (!f)
		abort();
	fprintf(f, "[pgbouncer]\nauth_file = %s\n", auth_path);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ini_path[0])
		setup();
	FILE *f = fopen(auth_path, "w");
	if (!f || fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	struct config cfg;
	char err[512];
	memset(&cfg, 0, sizeof(cfg));
	if (config_load(&cfg, ini_path, err, sizeof(err)) == SHOAL_OK) {
		for (int i = 0; i < cfg.nauth; i++)
			sink += strlen(cfg.auth[i].user) + strlen(cfg.auth[i].secret);
		if (cfg.nauth > 0 && !config_find_secret(&cfg, cfg.auth[0].user))
			abort();
	} else if (!err[0]) {
		abort();
	}
	config_free(&cfg);
	return 0;
}
