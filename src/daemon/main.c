/* main.c: arguments, config load, signals, start and stop of the workers. */
#include "alerts.h"
#include "auth_query.h"
#include "client.h"
#include "config.h"
#include "control.h"
#include "dns.h"
#include "http_server.h"
#include "listen.h"
#include "log.h"
#include "pause.h"
#include "pool.h"
#include "stats.h"
#include "tls.h"
#include "worker.h"
#include "shoal_version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
	"Signals: SIGHUP reloads; SIGTERM waits for clients to finish their transactions\n"
	"(shutdown_timeout); SIGINT waits for servers to be released; a second SIGTERM or\n"
	"SIGINT, or SIGQUIT, exits at once; SIGUSR1 pauses, SIGUSR2 resumes.\n";

struct options {
	const char *config;
	const char *check;
	int verbose;
	int pidfile_fd; /* locked for the daemon's life; -1: no pidfile */
};

static int parse_args(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("%s\n", SHOAL_VERSION_STRING);
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

/* The pidfile is held with an exclusive flock for the daemon's life: a second Shoal given the same
 * file finds it locked and exits without writing or removing it. Returns the locked fd, -1 with
 * no pidfile configured, -2 (err set) when it cannot be taken. */
static int pidfile_lock(const char *path, char *err, size_t errlen)
{
	if (!path || !*path)
		return -1;
	for (int tries = 0; tries < 10; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(err, errlen, "cannot open pidfile %s: %s", path, strerror(errno));
			return -2;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			char pid[32] = "";
			ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = 0;
			pid[strcspn(pid, "\n")] = 0;
			snprintf(err, errlen, "pidfile %s is locked: Shoal is already running (pid %s)",
				 path, *pid ? pid : "?");
			close(fd);
			return -2;
		}
		/* The holder before us may have removed the file between our open and our lock:
		 * then the lock is on a file nobody sees, and we try again. */
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev) {
			char line[32];
			int n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
			if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n)
				log_warn("cannot write pidfile %s: %s", path, strerror(errno));
			return fd;
		}
		close(fd);
	}
	snprintf(err, errlen, "pidfile %s keeps changing under us", path);
	return -2;
}

/* At exit: removed while still locked, so that no second instance locks a file about to go. */
static void pidfile_release(const char *path, int fd)
{
	if (fd < 0)
		return;
	unlink(path);
	close(fd);
}

struct daemon_state {
	struct worker *workers;
	int nworkers;
	const char *path;
	int verbose;
	int pidfile_fd; /* locked for the daemon's life; -1: no pidfile */
};

static bool all_stopped(const struct daemon_state *d)
{
	for (int i = 0; i < d->nworkers; i++)
		if (!d->workers[i].stopped)
			return false;
	return true;
}

/* Signals as PgBouncer's: HUP reload; TERM wait for clients (a second one: now); INT wait for
 * servers (a second one: now); QUIT now; USR1 pause; USR2 resume. */
static void on_signal(int sig, int *stops)
{
	char err[512];
	switch (sig) {
	case SIGHUP:
		if (control_reload(err, sizeof(err)) != SHOAL_OK)
			log_warn("SIGHUP: reload failed");
		break;
	case SIGUSR1:
		log_info("got SIGUSR1: pausing");
		pause_set(NULL, true);
		break;
	case SIGUSR2:
		log_info("got SIGUSR2: resuming");
		pause_set(NULL, false);
		break;
	case SIGQUIT: control_shutdown(SHUTDOWN_NOW); break;
	case SIGTERM:
	case SIGINT:
		if ((*stops)++ > 0)
			control_shutdown(SHUTDOWN_NOW);
		else
			control_shutdown(sig == SIGTERM ? SHUTDOWN_WAIT_CLIENTS : SHUTDOWN_WAIT_SERVERS);
		break;
	default: break;
	}
}

static void signal_loop(struct daemon_state *d, const sigset_t *set)
{
	int stops = 0;
	usec_t next_stats = shoal_now() + config_current()->stats_period;
	while (!all_stopped(d)) {
		usec_t period = config_current()->stats_period;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
		int sig = sigtimedwait(set, NULL, &ts);
		alerts_check(shoal_now());
		if (period > 0 && shoal_now() >= next_stats) {
			stats_log(period);
			next_stats = shoal_now() + period;
		}
		if (sig > 0)
			on_signal(sig, &stops);
		control_poll();
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
			if (cfg->logfile && *cfg->logfile) /* a fatal start error is seen on stderr too */
				fprintf(stderr, "shoal: %s\n", err);
			return SHOAL_ERROR;
		}
	}
	worker_set_all(d->workers, d->nworkers);
	http_set_workers_ready(); /* before any worker accepts: a /health may come at once */
	pool_create_static(cfg);
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
	if (tls_configure(cfg, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "shoal: %s\n", err);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	d->pidfile_fd = pidfile_lock(cfg->pidfile, err, sizeof(err));
	if (d->pidfile_fd == -2) {
		fprintf(stderr, "shoal: %s\n", err);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	control_init(cfg, d->path, d->verbose);
	if (log_open(cfg->logfile, d->verbose + cfg->verbose) != SHOAL_OK) {
		fprintf(stderr, "shoal: cannot open logfile %s: %s\n", cfg->logfile, strerror(errno));
		pidfile_release(cfg->pidfile, d->pidfile_fd);
		return 1;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (dns_start() != SHOAL_OK) {
		log_error("cannot start the resolver thread");
		pidfile_release(cfg->pidfile, d->pidfile_fd);
		return 1;
	}
	dns_prime(cfg, true);
	listen_fd_budget(cfg, workers_wanted(cfg));
	if (http_start(cfg, err, sizeof(err)) != SHOAL_OK) {
		log_error("%s", err);
		http_stop();
		dns_stop();
		pidfile_release(cfg->pidfile, d->pidfile_fd);
		return 1;
	}
	if (start_workers(d, cfg) != SHOAL_OK) {
		http_stop();
		dns_stop();
		pidfile_release(cfg->pidfile, d->pidfile_fd);
		return 1;
	}
	signal_loop(d, &set);
	for (int i = 0; i < d->nworkers; i++)
		worker_join(&d->workers[i]);
	http_stop();
	for (int i = 0; i < d->nworkers; i++)
		worker_destroy(&d->workers[i]);
	dns_stop();
	free(d->workers);
	pidfile_release(cfg->pidfile, d->pidfile_fd);
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
	stats_free_all();
	pause_free_all();
	control_free_all();
	auth_query_cache_free();
	tls_shutdown();
	return rc;
}
