/* control.c: the configuration hand-over and shutdown modes, shared by signals (main thread) and
 * the admin console (worker threads).
 *
 * A configuration is immutable once current: a reload builds a whole new one from the files, a
 * SET changes one key of a copy of the one in force (an edited, unreloaded file is not applied),
 * and either is published whole (config_publish). Workers read config_current() at their own
 * safe points (an accept, a login, a janitor tick), so each decision sees one consistent
 * version. Old versions are freed by the main thread once no worker can use them
 * (config_collect, current.h). */
#include "control.h"
#include "admin.h"
#include "current.h"
#include "auth_query.h"
#include "dns.h"
#include "http_server.h"
#include "log.h"
#include "pause.h"
#include "pool.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct override {
	struct override *next;
	char *key, *value;
};

static pthread_t main_thread; /* set by control_init */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static struct config *first;  /* main.c's, which it uses until exit: never freed before */
static struct override *sets; /* SET key = value, applied again after every reload */
static const char *config_path;
static int base_verbose;
static const struct config *tls_applied; /* the configuration the TLS contexts were built from */
static atomic_bool wait_servers; /* SHUTDOWN WAIT_FOR_SERVERS in progress */
static atomic_bool shutting_down; /* any SHUTDOWN or SIGTERM/SIGINT/SIGQUIT has begun */

struct control_job {
	struct control_job *next;
	char *key, *value;
	struct worker *poster; /* told when done (NULL: nobody) */
	_Atomic int state;     /* enum control_job_state */
	atomic_int refs;   /* the poster's and the queue's */
	char err[512];
};
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct control_job *jobs, **jobs_tail = &jobs;

void control_init(struct config *cfg, const char *path, int verbose)
{
	pthread_mutex_lock(&lock);
	main_thread = pthread_self();
	config_path = path;
	base_verbose = verbose;
	first = cfg;
	tls_applied = cfg; /* main.c built the contexts from it */
	pthread_mutex_unlock(&lock);
	config_publish(cfg, false);
}

/* Under the lock: the file and the SET overrides, applied again after every reload. */
static struct config *build(char *err, size_t errlen)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	if (config_load(cfg, config_path, err, errlen) != SHOAL_OK) {
		free(cfg);
		return NULL;
	}
	shoal_rc rc = SHOAL_OK;
	for (struct override *o = sets; o && rc == SHOAL_OK; o = o->next)
		rc = config_set_value(cfg, o->key, o->value, err, errlen);
	if (rc != SHOAL_OK) {
		config_free(cfg);
		free(cfg);
		return NULL;
	}
	return cfg;
}

/* A server TLS setting changed: every pool's servers are recycled when next idle (a new
 * generation, as RECONNECT), so no server keeps the old, perhaps weaker, settings; the login
 * backoff of the old settings is forgotten. */
static void recycle_for_tls(struct pool *p, void *arg)
{
	(void)arg;
	p->gen++;
	p->connect_failures = 0;
	p->next_connect_at = 0;
	if (p->n_servers > 0) /* PgBouncer's words, which its tests look for */
		log_info("pool %s@%s: database configuration changed (server TLS settings): its "
			 "servers are closed when next idle",
			 p->user, p->name);
}

/* Under the lock: new TLS contexts from cfg. If they cannot be built (a SET changed the key
 * and not yet its certificate, a file is missing), the running ones stay in force and the rest
 * of cfg still applies, as in PgBouncer; err says why (else it is empty). */
static void apply_tls(const struct config *cfg, char *err, size_t errlen)
{
	err[0] = '\0';
	if (tls_configure(cfg, err, errlen) != SHOAL_OK) {
		log_error("TLS settings could not be applied, still using the old ones: %s", err);
		return;
	}
	if (tls_server_settings_differ(tls_applied, cfg))
		pool_foreach(recycle_for_tls, NULL);
	tls_applied = cfg;
}

/* Under the lock: make cfg current and apply it to the pools. */
static void install(struct config *cfg, char *err, size_t errlen)
{
	apply_tls(cfg, err, errlen);
	log_set_verbose(base_verbose + cfg->verbose);
	/* New host names are resolved before the config is current when the main thread reloads
	 * (SIGHUP); a console RELOAD runs on a worker, which must not block: it queues them. */
	dns_prime(cfg, pthread_equal(pthread_self(), main_thread));
	config_publish(cfg, true);
	pool_apply_config(cfg);
	auth_query_cache_free(); /* auth_query, auth_user or auth_dbname may have changed */
}

/* The logfile is opened again at every reload, whether or not the new config is good: logrotate
 * moves the file and then sends SIGHUP (or runs RELOAD). */
static void reopen_log(void)
{
	const char *path = config_current()->logfile;
	if (log_reopen(path) != SHOAL_OK)
		log_error("cannot reopen logfile %s: %s; logging on to the old one", path,
			  strerror(errno));
}

shoal_rc control_reload(char *err, size_t errlen)
{
	pthread_mutex_lock(&lock);
	usec_t t0 = shoal_now();
	struct config *cfg = build(err, errlen);
	usec_t t1 = shoal_now();
	if (cfg)
		install(cfg, err, errlen);
	reopen_log();
	pthread_mutex_unlock(&lock);
	if (!cfg) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return SHOAL_ERROR;
	}
	log_info("configuration reloaded from %s (%d databases; read in %.1f ms, applied in %.1f ms)",
		 config_path ? config_path : "(embedded default)", cfg->ndbs, (double)(t1 - t0) / 1e3,
		 (double)(shoal_now() - t1) / 1e3);
	return SHOAL_OK;
}

/* Under the lock: key = value is applied again after every reload; one entry per key (a
 * later SET of the same key replaces its value), so repeated SETs do not grow the list. */
static void remember(const char *key, const char *value)
{
	struct override **tail = &sets;
	for (; *tail; tail = &(*tail)->next)
		if (!strcasecmp((*tail)->key, key)) {
			free((*tail)->value);
			(*tail)->value = xstrdup(value);
			return;
		}
	struct override *o = xcalloc(1, sizeof(*o));
	o->key = xstrdup(key);
	o->value = xstrdup(value);
	*tail = o;
}

shoal_rc control_set(const char *key, const char *value, char *err, size_t errlen)
{
	pthread_mutex_lock(&lock);
	struct config *cfg = config_copy(config_current());
	if (config_copy_set(cfg, key, value, err, errlen) != SHOAL_OK) {
		config_free(cfg);
		free(cfg);
		cfg = NULL;
	}
	if (cfg) {
		remember(key, value);
		install(cfg, err, errlen);
	}
	pthread_mutex_unlock(&lock);
	if (!cfg) {
		log_warn("SET %s failed: %s", key, err);
		return SHOAL_ERROR;
	}
	log_info("SET %s = %s", key, value);
	return SHOAL_OK;
}

static void post_all(int cmds)
{
	for (int i = 0; i < worker_count(); i++)
		worker_post(worker_get(i), cmds);
}

void control_shutdown(enum shutdown_mode mode)
{
	http_set_draining(); /* /health/ready turns 503 whichever way the shutdown goes */
	atomic_store(&shutting_down, true);
	switch (mode) {
	case SHUTDOWN_NOW:
		log_info("shutting down now");
		post_all(WCMD_SHUTDOWN_NOW);
		break;
	case SHUTDOWN_WAIT_CLIENTS:
		log_info("shutting down once every client has left");
		post_all(WCMD_SHUTDOWN_WAIT_CLIENTS);
		break;
	case SHUTDOWN_WAIT_SERVERS:
		log_info("shutting down once every server is released");
		pause_set_shutdown(); /* clients that would wait for a server are refused */
		atomic_store(&wait_servers, true);
		post_all(WCMD_SHUTDOWN_WAIT_CLIENTS); /* the listeners close; bounded */
		break;
	}
}

bool control_shutting_down(void)
{
	return atomic_load(&shutting_down);
}

struct control_job *control_post(const char *key, const char *value, struct worker *poster)
{
	struct control_job *j = xcalloc(1, sizeof(*j));
	j->poster = poster;
	j->key = key ? xstrdup(key) : NULL;
	j->value = value ? xstrdup(value) : NULL;
	atomic_store(&j->refs, 2);
	pthread_mutex_lock(&jobs_lock);
	*jobs_tail = j;
	jobs_tail = &j->next;
	pthread_mutex_unlock(&jobs_lock);
	pthread_kill(main_thread, CONTROL_WAKE_SIGNAL); /* not at its next 100 ms poll */
	return j;
}

enum control_job_state control_job_state(const struct control_job *j)
{
	return (enum control_job_state)atomic_load(&j->state);
}

const char *control_job_error(const struct control_job *j)
{
	return j->err;
}

void control_job_release(struct control_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	free(j->key);
	free(j->value);
	free(j);
}

/* Main thread: run the posted jobs in order. */
static void control_run_jobs(void)
{
	pthread_mutex_lock(&jobs_lock);
	struct control_job *j = jobs;
	jobs = NULL;
	jobs_tail = &jobs;
	pthread_mutex_unlock(&jobs_lock);
	while (j) {
		struct control_job *next = j->next;
		shoal_rc rc = j->key ? control_set(j->key, j->value, j->err, sizeof(j->err))
				     : control_reload(j->err, sizeof(j->err));
		atomic_store(&j->state, rc == SHOAL_OK ? CONTROL_DONE : CONTROL_FAILED);
		if (j->poster)
			admin_job_done(j->poster);
		control_job_release(j);
		j = next;
	}
}

/* Free the configurations no worker can use any more; the TLS contexts' stays for comparison. */
static void control_collect(void)
{
	pthread_mutex_lock(&lock);
	int n = config_collect(tls_applied);
	pthread_mutex_unlock(&lock);
	if (n > 0)
		log_debug("freed %d old configuration%s, %d still in use", n, n == 1 ? "" : "s",
			  config_retired_count());
}

void control_poll(void)
{
	control_run_jobs();
	control_collect();
	if (atomic_load(&wait_servers) && control_servers_gone(NULL)) {
		atomic_store(&wait_servers, false);
		control_shutdown(SHUTDOWN_NOW);
	}
}

struct gone_arg {
	const char *db;
	bool old_only;
	bool gone;
	bool found;
};

static bool old_in(struct list *head, unsigned gen)
{
	for (struct list *i = head->next; i != head; i = i->next)
		if (container_of(i, struct server, node)->gen != gen)
			return true;
	return false;
}

static void check_gone(struct pool *p, void *arg)
{
	struct gone_arg *a = arg;
	if (a->db && strcmp(a->db, p->name) != 0)
		return;
	a->found = true;
	if (!a->old_only) {
		if (p->n_servers > 0)
			a->gone = false;
		return;
	}
	if (old_in(&p->idle, p->gen) || old_in(&p->used, p->gen) ||
	    old_in(&p->connecting, p->gen) || old_in(&p->resetting, p->gen) ||
	    old_in(&p->transit, p->gen))
		a->gone = false;
}

bool control_servers_gone(const char *db)
{
	struct gone_arg a = {.db = db, .gone = true};
	pool_foreach(check_gone, &a);
	return a.gone;
}

bool control_old_servers_gone(const char *db)
{
	struct gone_arg a = {.db = db, .old_only = true, .gone = true};
	pool_foreach(check_gone, &a);
	return a.gone;
}

bool control_db_known(const char *db)
{
	struct gone_arg a = {.db = db, .gone = true};
	pool_foreach(check_gone, &a);
	return a.found || config_find_db(config_current(), db) != NULL;
}

void control_free_all(void)
{
	pthread_mutex_lock(&jobs_lock);
	while (jobs) { /* posted after the main loop's last run: nobody will run them */
		struct control_job *j = jobs;
		jobs = j->next;
		control_job_release(j);
	}
	jobs_tail = &jobs;
	pthread_mutex_unlock(&jobs_lock);
	pthread_mutex_lock(&lock);
	config_free_all();
	if (first) {
		config_free(first);
		free(first);
		first = NULL;
	}
	while (sets) {
		struct override *o = sets;
		sets = o->next;
		free(o->key);
		free(o->value);
		free(o);
	}
	pthread_mutex_unlock(&lock);
}
