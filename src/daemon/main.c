/* main.c: arguments, config load, signals, start and stop of the workers. */
#include "admin.h"
#include "alerts.h"
#include "auth_query.h"
#include "client.h"
#include "client_budget.h"
#include "config.h"
#include "config_env.h"
#include "cpus.h"
#include "daemonize.h"
#include "control.h"
#include "dns.h"
#include "handoff.h"
#include "http_server.h"
#include "listen.h"
#include "log.h"
#include "client_limits.h"
#include "pause.h"
#include "pool.h"
#include "sdnotify.h"
#include "scram_server.h"
#include "stats.h"
#include "tls.h"
#include "worker_thread.h"
#include "shoal_version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
	"  CONFIG           pgbouncer.ini-style file; without one: listen on 127.0.0.1:6432,\n"
	"                   transaction pooling, auth_type trust, and forward to DATABASE_URL\n"
	"                   (or SHOAL_DATABASES) if set, else to the local PostgreSQL\n"
	"  -d, --daemon     run in the background (needs logfile and pidfile)\n"
	"  -u, --user USER  switch to USER after binding the listeners (as root)\n"
	"  -q, --quiet      do not log to stderr (the logfile, if any, still gets everything)\n"
	"  -v, --verbose    more log output (repeat for even more)\n"
	"  --check [CONFIG] validate CONFIG (or the default and environment configuration),\n"
	"                   print the effective configuration, exit 0 if it is OK, else 1\n"
	"  -V, --version    print the version and exit\n"
	"  -h, --help       print this help and exit\n"
	"\n"
	"Environment: SHOAL_<SETTING> overrides any setting (SHOAL_LISTEN_PORT=7432);\n"
	"DATABASE_URL and SHOAL_DATABASES (name=postgres://...;name=...) add databases;\n"
	"${VAR} and ${VAR:-default} expand in the file's values.\n"
	"\n"
	"Signals: SIGHUP reloads; SIGTERM stops accepting and serves the clients until they\n"
	"leave; SIGINT stops accepting and waits for servers to be released (both at most\n"
	"shutdown_timeout); a second SIGTERM or SIGINT, or SIGQUIT, exits at once; SIGUSR1\n"
	"pauses, SIGUSR2 resumes; SIGWINCH hands the idle clients over to the newer process\n"
	"listening on handoff_socket, then drains as SIGTERM does.\n";

/* PgBouncer's -R hands the listening sockets to a new process. Shoal does not; say what to do. */
static const char no_reboot[] =
	"shoal: -R/--reboot (online restart) is not supported: Shoal does not pass its sockets\n"
	"to a new process. To restart without refusing connections, run with so_reuseport = 1\n"
	"and start the new shoal while the old one runs -- both then accept on listen_port;\n"
	"a Unix socket and http_port cannot be shared, so give the new one its own\n"
	"unix_socket_dir and http_port (or none) -- then send the old one SIGTERM: it stops\n"
	"accepting, serves its clients until they leave and exits (shutdown_timeout).\n";

struct options {
	const char *config;
	bool check;
	int verbose;
	bool quiet;
	bool daemon;
	const char *user;
};

/* PgBouncer's options (getopt, so -dv and -vv work). Returns an exit code, or -1 to run. */
static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_CHECK = 256 };
	static const struct option longs[] = {
		{"daemon", no_argument, NULL, 'd'},  {"user", required_argument, NULL, 'u'},
		{"quiet", no_argument, NULL, 'q'},   {"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
		{"reboot", no_argument, NULL, 'R'},  {"check", no_argument, NULL, OPT_CHECK},
		{NULL, 0, NULL, 0},
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "du:qvVhR", longs, NULL)) != -1) {
		switch (c) {
		case 'd': o->daemon = true; break;
		case 'u': o->user = optarg; break;
		case 'q': o->quiet = true; break;
		case 'v': o->verbose++; break;
		case OPT_CHECK: o->check = true; break;
		case 'V': printf("%s\n", SHOAL_VERSION_STRING); return 0;
		case 'h': fputs(usage, stdout); return 0;
		case 'R': fputs(no_reboot, stderr); return 2;
		default:
			fprintf(stderr, "shoal: unexpected argument \"%s\"\n%s", argv[optind - 1],
				usage);
			return 2;
		}
	}
	if (optind < argc)
		o->config = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "shoal: unexpected argument \"%s\"\n%s", argv[optind], usage);
		return 2;
	}
	return -1;
}

/* --check: every error at once on stderr, "configuration OK" last on success. Unknown keys are
 * errors here whatever strict_config says: this is the linter. */
static int run_check(const char *path)
{
	struct config cfg = {0};
	char err[8192];
	config_force_strict(true);
	if (config_load(&cfg, path, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "%s\nshoal: configuration has errors\n", err);
		return 1;
	}
	if (tls_configure(&cfg, err, sizeof(err)) != SHOAL_OK) { /* certificates and keys load */
		fprintf(stderr, "%s\nshoal: configuration has errors\n", err);
		config_free(&cfg);
		return 1;
	}
	tls_shutdown();
	config_print(&cfg, stdout);
	config_free(&cfg);
	printf("\nconfiguration OK (%s)\n", path ? path : "no file: the default and environment");
	return 0;
}

/* The log: -q keeps it off stderr; the configuration's warnings, said on stderr while loading,
 * are written again to a logfile so that they are where the operator looks. */
static shoal_rc open_log(const struct config *cfg, int verbose, bool quiet)
{
	const char *path = cfg->logfile;
	if (!path && quiet)
		path = "/dev/null";
	if (log_open(path, verbose + cfg->verbose) != SHOAL_OK) {
		fprintf(stderr, "shoal: cannot open logfile %s: %s\n", path, strerror(errno));
		return SHOAL_ERROR;
	}
	if (cfg->logfile)
		config_notes_replay();
	return SHOAL_OK;
}

/* -u and -d, after the log is open and before any thread starts. */
static shoal_rc prepare_process(const struct config *cfg, const char *user, bool daemon)
{
	char err[512];
	if (user && daemon_check_user(user, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "shoal: %s\n", err);
		return SHOAL_ERROR;
	}
	if (daemon && daemon_detach(cfg, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "shoal: %s\n", err);
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

/* After the listeners are bound: drop root (-u), then release a waiting -d parent. False: the
 * switch failed and the daemon is shutting down (exit status 1). */
static bool process_started(const char *user)
{
	char err[512];
	if (user && daemon_drop_privileges(user, err, sizeof(err)) != SHOAL_OK) {
		log_error("%s", err);
		control_shutdown(SHUTDOWN_NOW);
		return false;
	}
	if (user)
		log_info("running as user %s", user);
	daemon_ready();
	sdnotify_ready();
	return true;
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
	bool quiet, daemon;
	const char *user;
	char *cfg_user; /* user = from the config, when -u did not say */
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
 * servers (a second one: now); QUIT now; USR1 pause; USR2 resume. Shoal's own: WINCH hands the
 * idle clients over to a newer process (handoff.h) and drains (as nginx's WINCH, its workers'
 * graceful stop in a binary upgrade; no other signal was free and sent by nobody by accident:
 * a terminal sends WINCH to its foreground job, which a daemon is not, and a shoal run in a
 * terminal ignores a resize unless another process listens on handoff_socket). */
static void on_signal(int sig, int *stops)
{
	char err[512];
	switch (sig) {
	case SIGHUP:
		sdnotify_reloading();
		if (control_reload(err, sizeof(err)) != SHOAL_OK) {
			log_warn("SIGHUP: reload failed");
			sdnotify_reloaded("reload failed, running with the previous configuration");
		} else {
			sdnotify_reloaded("configuration reloaded");
		}
		break;
	case SIGUSR1:
		log_info("got SIGUSR1: pausing");
		pause_set(NULL, true);
		break;
	case SIGUSR2:
		if (control_shutting_down()) {
			log_info("got SIGUSR2 while shutting down, ignoring");
			break;
		}
		log_info("got SIGUSR2: resuming");
		pause_set(NULL, false);
		break;
	case SIGQUIT:
		sdnotify_stopping();
		control_shutdown(SHUTDOWN_NOW);
		break;
	case SIGWINCH:
		if (handoff_begin(err, sizeof(err)) != SHOAL_OK) {
			log_warn("SIGWINCH: no handoff: %s", err);
			break;
		}
		sdnotify_stopping();
		(*stops)++;
		control_shutdown(SHUTDOWN_WAIT_CLIENTS);
		break;
	case SIGTERM:
	case SIGINT:
		sdnotify_stopping();
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
	return cpus_default_workers(cpus_usable());
}

static shoal_rc start_workers(struct daemon_state *d, const struct config *cfg)
{
	char err[512];
	d->nworkers = workers_wanted(cfg);
	d->workers = xcalloc((size_t)d->nworkers, sizeof(*d->workers));
	client_set_console(&admin_console); /* before any client logs in */
	pool_set_acts(&session_acts);
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
	log_info("Shoal %s started (pool_mode %s, auth_type %s, %d worker%s, %d usable CPU%s)",
		 SHOAL_VERSION, config_pool_mode_name(cfg->pool_mode),
		 config_auth_type_name(cfg->auth_type), d->nworkers, d->nworkers == 1 ? "" : "s",
		 cpus_usable(), cpus_usable() == 1 ? "" : "s");
	config_fleet_check(cfg);
	for (int i = 0; i < d->nworkers; i++) {
		if (worker_start(&d->workers[i]) != SHOAL_OK) {
			log_error("cannot start worker thread %d", i);
			return SHOAL_ERROR;
		}
	}
	return SHOAL_OK;
}

/* The SCRAM mock salt's key, from the auth_file's secrets: the same after a restart (an unknown
 * user's salt stays as stable as a real one's) and unknown to anyone who lacks the file. Without
 * secrets the key is random per process. */
static void seed_scram_mock(const struct config *cfg)
{
	struct buf b = {0};
	for (int i = 0; i < cfg->nauth; i++) {
		buf_append(&b, cfg->auth[i].user, strlen(cfg->auth[i].user) + 1);
		buf_append(&b, cfg->auth[i].secret, strlen(cfg->auth[i].secret) + 1);
	}
	if (b.len > b.off) {
		scram_mock_seed(b.data + b.off, b.len - b.off);
		explicit_bzero(b.data, b.len);
	}
	buf_free(&b);
}

/* PgBouncer refuses root; so does Shoal, unless told which user to become after binding (user =
 * or -u) or allowed explicitly (allow_root = 1). */
static bool root_refused(const char *user, bool allow_root)
{
	if (geteuid() != 0 || user || allow_root)
		return false;
	fprintf(stderr, "shoal: refusing to run as root: set user = NAME (or -u NAME) so that Shoal "
			"drops root after binding its sockets, or allow_root = 1\n");
	return true;
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
	config_on_change(client_budget_configure); /* before the first config_publish */
	if (!d->user && cfg->user)
		d->user = d->cfg_user = xstrdup(cfg->user); /* -u wins */
	if (root_refused(d->user, cfg->allow_root)) {
		config_free(cfg);
		free(cfg);
		return 1;
	}
	control_init(cfg, d->path, d->verbose);
	if (open_log(cfg, d->verbose, d->quiet) != SHOAL_OK ||
	    prepare_process(cfg, d->user, d->daemon) != SHOAL_OK)
		return 1;
	/* Taken after -d's fork (the file names the daemon) and before the listeners are bound. */
	d->pidfile_fd = pidfile_lock(cfg->pidfile, err, sizeof(err));
	if (d->pidfile_fd == -2) {
		fprintf(stderr, "shoal: %s\n", err);
		log_error("%s", err);
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
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, CONTROL_WAKE_SIGNAL); /* a console RELOAD or SET is queued (control.c) */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (dns_start() != SHOAL_OK) {
		log_error("cannot start the resolver thread");
		pidfile_release(cfg->pidfile, d->pidfile_fd);
		return 1;
	}
	dns_prime(cfg, true);
	seed_scram_mock(cfg);
	listen_fd_budget(cfg, workers_wanted(cfg));
	if (handoff_listen(cfg, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "shoal: %s\n", err);
		log_error("%s", err);
		dns_stop();
		pidfile_release(cfg->pidfile, d->pidfile_fd);
		return 1;
	}
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
	bool started = process_started(d->user);
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
	return started ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (o.check)
		return run_check(o.config);
	/* -q: nothing on stderr but errors while the configuration loads */
	log_set_verbose(o.quiet ? LOG_ERR - LOG_INFO : o.verbose);
	static struct daemon_state d;
	d.path = o.config;
	d.verbose = o.verbose;
	d.quiet = o.quiet;
	d.daemon = o.daemon;
	d.user = o.user;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	rc = run_daemon(&d);
	free(d.cfg_user);
	pool_free_all();
	stats_free_all();
	pause_free_all();
	climit_free_all();
	control_free_all();
	auth_query_cache_free();
	tls_shutdown();
	return rc;
}
