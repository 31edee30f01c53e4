/* pause.c: pause and disable flags, per database and global, behind one mutex; atomic counts
 * of paused and disabled entries keep the common case (nothing paused) free of the lock. */
#include "pause.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct db_flags {
	struct db_flags *next;
	char *name;
	bool paused, disabled;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct db_flags *dbs;
static bool all_paused;
atomic_int pause_n_paused;
static atomic_bool shutting_down; /* pause_set_shutdown: all_paused stays true */

/* Under the lock. */
static struct db_flags *find(const char *db, bool create)
{
	for (struct db_flags *f = dbs; f; f = f->next)
		if (strcmp(f->name, db) == 0)
			return f;
	if (!create)
		return NULL;
	struct db_flags *f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(db);
	f->next = dbs;
	dbs = f;
	return f;
}

static void set_flag(bool *flag, bool v)
{
	if (*flag != v)
		atomic_fetch_add(&pause_n_paused, v ? 1 : -1);
	*flag = v;
}

void pause_set(const char *db, bool paused)
{
	pthread_mutex_lock(&lock);
	if (db) {
		set_flag(&find(db, true)->paused, paused);
	} else {
		set_flag(&all_paused, paused || atomic_load(&shutting_down));
		if (!paused) /* RESUME without a name resumes everything */
			for (struct db_flags *f = dbs; f; f = f->next)
				set_flag(&f->paused, false);
	}
	pthread_mutex_unlock(&lock);
}

bool pause_lookup(const char *db)
{
	pthread_mutex_lock(&lock);
	struct db_flags *f = db ? find(db, false) : NULL;
	bool v = all_paused || (f && f->paused);
	pthread_mutex_unlock(&lock);
	return v;
}

bool pause_flag(const char *db)
{
	pthread_mutex_lock(&lock);
	struct db_flags *f = db ? find(db, false) : NULL;
	bool v = db ? (f && f->paused) : all_paused;
	pthread_mutex_unlock(&lock);
	return v;
}

static atomic_int n_disabled; /* disabled entries: none (the common case), no lock */

void pause_set_disabled(const char *db, bool disabled)
{
	pthread_mutex_lock(&lock);
	struct db_flags *f = find(db, true);
	if (f->disabled != disabled)
		atomic_fetch_add(&n_disabled, disabled ? 1 : -1);
	f->disabled = disabled;
	pthread_mutex_unlock(&lock);
}

bool pause_is_disabled(const char *db)
{
	if (atomic_load(&n_disabled) == 0)
		return false;
	pthread_mutex_lock(&lock);
	struct db_flags *f = find(db, false);
	bool v = f && f->disabled;
	pthread_mutex_unlock(&lock);
	return v;
}

bool pause_any(void)
{
	return atomic_load(&pause_n_paused) > 0;
}

void pause_set_shutdown(void)
{
	pthread_mutex_lock(&lock);
	atomic_store(&shutting_down, true);
	set_flag(&all_paused, true);
	pthread_mutex_unlock(&lock);
}

bool pause_shutdown(void)
{
	return atomic_load(&shutting_down);
}

void pause_free_all(void)
{
	pthread_mutex_lock(&lock);
	while (dbs) {
		struct db_flags *f = dbs;
		dbs = f->next;
		free(f->name);
		free(f);
	}
	pthread_mutex_unlock(&lock);
}
