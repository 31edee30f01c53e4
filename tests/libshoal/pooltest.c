/* pooltest.c: runs one libshoal scenario against a real PostgreSQL:
 *   pooltest SCENARIO CONNINFO
 * prints key=value lines (and "FAIL ..." on a failed check), exits 0 when every check passed.
 * Driven by tests/integration/test_libshoal.py. */
#include <string.h>

#include "common.h"

static const struct {
	const char *name;
	int (*run)(const char *conninfo);
} scenarios[] = {
    {"timeout", scen_timeout},
    {"idle", scen_idle},
    {"lifetime", scen_lifetime},
    {"health", scen_health},
    {"env", scen_env},
    {"invalid", scen_invalid},
    {"closed", scen_closed},
    {"leak", scen_leak},
    {"kill_idle", scen_kill_idle},
    {"kill_borrowed", scen_kill_borrowed},
    {"restart", scen_restart},
    {"retry", scen_retry},
    {"rollback", scen_rollback},
    {"stress", scen_stress},
    {"fifo", scen_fifo},
    {"drain", scen_drain},
};

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SCENARIO CONNINFO\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strcmp(argv[1], scenarios[i].name) == 0) {
			int rc = scenarios[i].run(argv[2]);

			printf(rc == 0 ? "PASS\n" : "FAIL\n");
			return rc;
		}
	}
	fprintf(stderr, "unknown scenario %s\n", argv[1]);
	return 2;
}
