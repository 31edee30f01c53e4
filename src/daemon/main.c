/* main.c: arguments, config load, signals, start and stop of the workers. */
#include "auth_query.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "stats.h"
#include "tls.h"
#include "worker.h"
#include "shoal_version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONFIGS 64

static const char usage[] =
	"Shoal " SHOAL_VERSION ", a PostgreSQL connection pooler\n"
	"\n"
	"Usage: shoal [OPTIONS] [CONFIG]\n"
	"  CONFIG           pgbouncer.ini-style file; without one, listen on 127.0.0.1:6432 and\n"
	"                   pool every database of the local PostgreSQL (transaction mode)\n"
	"  -v, --verbose    more log output (repeat for even more)\n"
	"  -q, --quiet      only warnings and errors\n"
	"  --check FILE     validate FILE, print the effective configuration, exit\n"
	"  -V, --version    print the version and exit\n"
	"  -h, --help       print this help and exit\n"
	"\n"
	"Signals: SIGHUP reloads; SIGTERM waits for transactions to finish (shutdown_timeout),\n"
	"a second SIGTERM or SIGINT exits at once.\n";

struct options {
	const char *config;
	const char *check;
	int verbose;
};

static int parse_args(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("shoal %s\n", SHOAL_VERSION);
			return 0;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			o->verbose++;
		} else if (!strncmp(a, "-vv", 3)) {
			o->verbose += (int)strlen(a) - 1;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			o->verbose = -1;
		} else if (!strcmp(a, "--check") && i + 1 < argc) {
			o->check = argv[++i];
		} else if (a[0] == '-' || o->config) {
			fprintf(stderr, "shoal: unexpected argument \"%s\"\n%s", a, usage);
			return 2;
		} else {
			o->config = a;
		}
	}
	return -1;
}

static int run_check(const char *path)
{
	struct config cfg = {0};
	char err[512];
	if (config_load(&cfg, path, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "shoal: %s\n", err);
		return 1;
	}
	if (tls_configure(&cfg, err, sizeof(err)) != SHOAL_OK) { /* certificates and keys load */
		fprintf(stderr, "shoal: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	tls_shutdown();
	config_print(&cfg, stdout);
	config_free(&cfg);
	return 0;
}

static void write_pidfile(const char *path)
{
	if (!path || !*path)
		return;
	FILE *f = fopen(path, "w");
	if (!f) {
		log_warn("cannot write pidfile %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

struct daemon_state {
	struct config *configs[MAX_CONFIGS]; /* every config ever in force: workers may hold any */
	int nconfigs;
	struct worker *workers;
	int nworkers;
	const char *path;
	int verbose;
};

static void reload(struct daemon_state *d)
{
	char err[512];
	if (d->nconfigs == MAX_CONFIGS) {
		log_error("reload refused: too many reloads in this process's life (%d)", MAX_CONFIGS);
		return;
	}
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	if (config_load(cfg, d->path, err, sizeof(err)) != SHOAL_OK) {
		log_error("reload failed, keeping the running configuration: %s", err);
		free(cfg);
		return;
	}
	if (tls_configure(cfg, err, sizeof(err)) != SHOAL_OK) {
		log_error("reload failed, keeping the running configuration: %s", err);
		config_free(cfg);
		free(cfg);
		return;
	}
	d->configs[d->nconfigs++] = cfg;
	log_set_verbose(d->verbose + cfg->verbose);
	config_set_current(cfg);
	pool_apply_config(cfg);
	log_info("configuration reloaded from %s", d->path ? d->path : "(embedded default)");
}

static void post_all(struct daemon_state *d, int cmds)
{
	for (int i = 0; i < d->nworkers; i++)
		worker_post(&d->workers[i], cmds);
}

static bool all_stopped(const struct daemon_state *d)
{
	for (int i = 0; i < d->nworkers; i++)
		if (!d->workers[i].stopped)
			return false;
	return true;
}

static void signal_loop(struct daemon_state *d, const sigset_t *set)
{
	int terms = 0;
	usec_t next_stats = shoal_now() + config_current()->stats_period;
	while (!all_stopped(d)) {
		usec_t period = config_current()->stats_period;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
		int sig = sigtimedwait(set, NULL, &ts);
		if (period > 0 && shoal_now() >= next_stats) {
			stats_log(period);
			next_stats = shoal_now() + period;
		}
		if (sig == SIGHUP) {
			reload(d);
		} else if (sig == SIGINT || sig == SIGQUIT || (sig == SIGTERM && terms > 0)) {
			log_info("got signal %d: shutting down now", sig);
			post_all(d, WCMD_SHUTDOWN_NOW);
			break;
		} else if (sig == SIGTERM) {
			terms++;
			post_all(d, WCMD_SHUTDOWN_GRACEFUL);
		}
	}
}

static int workers_wanted(const struct config *cfg)
{
	if (cfg->workers > 0)
		return cfg->workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static shoal_rc start_workers(struct daemon_state *d, const struct config *cfg)
{
	char err[512];
	d->nworkers = workers_wanted(cfg);
	d->workers = xcalloc((size_t)d->nworkers, sizeof(*d->workers));
	for (int i = 0; i < d->nworkers; i++) {
		if (worker_init(&d->workers[i], i, cfg, i ? &d->workers[0] : NULL, err,
				sizeof(err)) != SHOAL_OK) {
			log_error("%s", err);
			return SHOAL_ERROR;
		}
	}
	worker_set_all(d->workers, d->nworkers);
	pool_create_static(cfg);
	write_pidfile(cfg->pidfile);
	log_info("Shoal %s started (pool_mode %s, auth_type %s, %d worker%s)", SHOAL_VERSION,
		 config_pool_mode_name(cfg->pool_mode), config_auth_type_name(cfg->auth_type),
		 d->nworkers, d->nworkers == 1 ? "" : "s");
	for (int i = 0; i < d->nworkers; i++) {
		if (worker_start(&d->workers[i]) != SHOAL_OK) {
			log_error("cannot start worker thread %d", i);
			return SHOAL_ERROR;
		}
	}
	return SHOAL_OK;
}

static int run_daemon(struct daemon_state *d)
{
	char err[512];
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	if (config_load(cfg, d->path, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "shoal: %s\n", err);
		free(cfg);
		return 1;
	}
	d->configs[d->nconfigs++] = cfg;
	if (tls_configure(cfg, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "shoal: %s\n", err);
		return 1;
	}
	config_set_current(cfg);
	if (log_open(cfg->logfile, d->verbose + cfg->verbose) != SHOAL_OK) {
		fprintf(stderr, "shoal: cannot open logfile %s: %s\n", cfg->logfile, strerror(errno));
		return 1;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (start_workers(d, cfg) != SHOAL_OK)
		return 1;
	signal_loop(d, &set);
	for (int i = 0; i < d->nworkers; i++)
		worker_join(&d->workers[i]);
	for (int i = 0; i < d->nworkers; i++)
		worker_destroy(&d->workers[i]);
	free(d->workers);
	if (cfg->pidfile && *cfg->pidfile)
		unlink(cfg->pidfile);
	log_info("Shoal stopped");
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (o.check)
		return run_check(o.check);
	log_set_verbose(o.verbose);
	static struct daemon_state d;
	d.path = o.config;
	d.verbose = o.verbose;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	rc = run_daemon(&d);
	pool_free_all();
	auth_query_cache_free();
	tls_shutdown();
	for (int i = 0; i < d.nconfigs; i++) {
		config_free(d.configs[i]);
		free(d.configs[i]);
	}
	return rc;
}
