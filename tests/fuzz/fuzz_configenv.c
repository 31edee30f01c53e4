/* fuzz_configenv.c: libFuzzer target for the environment side of the configuration: ${VAR}
 * expansion, SHOAL_DATABASES lists and DATABASE_URL URLs (values operators paste from dashboards),
 * and the "did you mean" suggestion. The first byte picks which; the rest is the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_env.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void fuzz_databases(const char *text, bool url)
{
	struct config cfg;
	char err[512] = "";
	if (config_load(&cfg, NULL, err, sizeof(err)) != SHOAL_OK)
		abort();
	shoal_rc rc = url ? config_database_url(&cfg, text, "DATABASE_URL", err, sizeof(err))
			  : config_parse_database_list(&cfg, text, "SHOAL_DATABASES", err,
						       sizeof(err));
	if (rc != SHOAL_OK && !err[0])
		abort();
	for (int i = 0; i < cfg.ndbs; i++)
		if (config_find_db(&cfg, cfg.dbs[i].name) == NULL)
			abort();
	config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	if (!once) {
		once = true;
		log_set_verbose(LOG_ERR - LOG_INFO);
		setenv("SHOAL_FUZZ_A", "value", 1);
		setenv("SHOAL_FUZZ_EMPTY", "", 1);
	}
	if (size < 1)
		return 0;
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char *out = NULL, msg[256] = "";
	switch (data[0] % 4) {
	case 0:
		if (config_expand_vars(text, &out, msg, sizeof(msg)) == SHOAL_OK)
			sink += strlen(out);
		else if (out || !msg[0])
			abort();
		free(out);
		break;
	case 1: fuzz_databases(text, false); break;
	case 2: fuzz_databases(text, true); break;
	default: {
		const char *s = config_suggest_setting(text, NULL, 0);
		sink += s ? strlen(s) : 0;
	}
	}
	config_notes_reset();
	free(text);
	return 0;
}
