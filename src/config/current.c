/* current.c: the configuration in force, read by every thread, replaced whole on reload; old
 * ones are freed once no reader thread can use them (an epoch scheme, see current.h). */
#include "current.h"

#include <pthread.h>
#include <stdlib.h>

struct live {
	struct live *next;
	struct config *cfg;
	uint64_t gen;
	bool owned;
};

static _Atomic(const struct config *) current_config;
static _Atomic uint64_t generation;			 /* of current_config */
static atomic_int n_retired;				 /* owned, replaced, not yet freed */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards what follows */
static struct live *lives;				 /* newest first */
static struct config_reader *readers;

const struct config *config_current(void)
{
	return atomic_load(&current_config);
}

uint64_t config_generation(void)
{
	return atomic_load(&generation);
}

#define MAX_HOOKS 4
static void (*hooks[MAX_HOOKS])(const struct config *cfg);
static int nhooks;

void config_on_change(void (*fn)(const struct config *cfg))
{
	if (nhooks < MAX_HOOKS)
		hooks[nhooks++] = fn;
}

void config_publish(struct config *cfg, bool owned)
{
	struct live *l = xcalloc(1, sizeof(*l));
	l->cfg = cfg;
	l->owned = owned;
	pthread_mutex_lock(&lock);
	l->gen = atomic_load(&generation) + 1;
	if (lives && lives->owned)
		atomic_fetch_add(&n_retired, 1);
	l->next = lives;
	lives = l;
	/* The pointer first: a reader that sees the new generation then sees this config. */
	atomic_store(&current_config, cfg);
	atomic_store(&generation, l->gen);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < nhooks; i++)
		hooks[i](cfg);
}

/* For harnesses that own their configurations (the fuzzers): no record is kept, so calling it
 * once per input grows nothing; not mixed with config_publish. */
void config_set_current(const struct config *cfg)
{
	pthread_mutex_lock(&lock);
	atomic_store(&current_config, cfg);
	atomic_fetch_add(&generation, 1);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < nhooks; i++)
		hooks[i](cfg);
}

bool config_retired_pending(void)
{
	return atomic_load_explicit(&n_retired, memory_order_relaxed) > 0;
}

int config_retired_count(void)
{
	return atomic_load(&n_retired);
}

uint64_t config_gen_of_db(const struct db_entry *db)
{
	uint64_t gen = config_generation();
	pthread_mutex_lock(&lock);
	for (struct live *l = lives; l; l = l->next)
		if (l->cfg->ndbs > 0 && db >= l->cfg->dbs && db < l->cfg->dbs + l->cfg->ndbs) {
			gen = l->gen;
			break;
		}
	pthread_mutex_unlock(&lock);
	return gen;
}

void config_reader_join(struct config_reader *r)
{
	pthread_mutex_lock(&lock);
	atomic_store(&r->seen, atomic_load(&generation));
	r->next = readers;
	readers = r;
	pthread_mutex_unlock(&lock);
}

void config_reader_leave(struct config_reader *r)
{
	pthread_mutex_lock(&lock);
	for (struct config_reader **p = &readers; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	pthread_mutex_unlock(&lock);
}

void config_quiescent(struct config_reader *r, uint64_t pinned)
{
	uint64_t g = atomic_load(&generation);
	atomic_store(&r->seen, pinned < g ? pinned : g);
}

static void live_free(struct live *l)
{
	if (l->owned) {
		config_free(l->cfg);
		free(l->cfg);
	}
	free(l);
}

int config_collect(const struct config *keep)
{
	if (!config_retired_pending())
		return 0;
	int freed = 0;
	pthread_mutex_lock(&lock);
	uint64_t oldest = atomic_load(&generation);
	for (struct config_reader *r = readers; r; r = r->next) {
		uint64_t s = atomic_load(&r->seen);
		if (s < oldest)
			oldest = s;
	}
	/* lives is newest first; the head is the current configuration and stays. */
	for (struct live **p = lives ? &lives->next : &lives; *p;) {
		struct live *l = *p;
		if (!l->owned || l->gen >= oldest || l->cfg == keep) {
			p = &l->next;
			continue;
		}
		*p = l->next;
		live_free(l);
		atomic_fetch_sub(&n_retired, 1);
		freed++;
	}
	pthread_mutex_unlock(&lock);
	return freed;
}

void config_free_all(void)
{
	pthread_mutex_lock(&lock);
	while (lives) {
		struct live *l = lives;
		lives = l->next;
		live_free(l);
	}
	atomic_store(&n_retired, 0);
	atomic_store(&current_config, NULL);
	pthread_mutex_unlock(&lock);
}
