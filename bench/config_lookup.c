/* config_lookup.c: time config_load of a file (best of 5) and config_find_db of each name
 * given (best of 5 runs of 200,000 lookups), against the shoal_core library of a build:
 *
 *   gcc -O2 -Isrc -Isrc/core -Isrc/config -Ibuild bench/config_lookup.c \
 *       build/src/libshoal_core.a $(pkg-config --libs inih) -lpthread -lm -o /tmp/config_lookup
 *   /tmp/config_lookup FILE NAME...
 *
 * bench/faults.py --only many_entries writes such a FILE (5,000 entries and *). */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE NAME...\n", argv[0]);
		return 2;
	}
	char err[512];
	double best = 1e9;
	struct config cfg;
	for (int r = 0; r < 5; r++) {
		struct config c = {0};
		double t0 = now();
		if (config_load(&c, argv[1], err, sizeof(err)) != SHOAL_OK) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		double t = now() - t0;
		best = t < best ? t : best;
		if (r < 4)
			config_free(&c);
		else
			cfg = c;
	}
	printf("%s: %d databases, load best of 5: %.2f ms\n", argv[1], cfg.ndbs, best * 1e3);
	for (int a = 2; a < argc; a++) {
		int n = 200000;
		double lb = 1e9;
		const void *volatile sink;
		for (int r = 0; r < 5; r++) {
			double t0 = now();
			for (int i = 0; i < n; i++)
				sink = config_find_db(&cfg, argv[a]);
			double t = (now() - t0) / n;
			lb = t < lb ? t : lb;
		}
		(void)sink;
		printf("  find %-10s %8.1f ns\n", argv[a], lb * 1e9);
	}
	return 0;
}
