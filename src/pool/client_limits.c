/* client_limits.c: client counts per database name and per login user behind one mutex, taken
 * once per login and once per logout. An entry lives while it counts a client: names reached
 * through "*" come and go (autodb_idle_timeout), and one small entry kept per name that came
 * would pin pages of freed pools in the workers' malloc arenas (issue 16). */
#include "client_limits.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct count {
	struct count *next;
	char *name;
	int n;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct count *dbs, *users;

/* Under the lock. */
static struct count *find(struct count **head, const char *name, bool create)
{
	for (struct count *c = *head; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	if (!create)
		return NULL;
	struct count *c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(name);
	c->next = *head;
	*head = c;
	return c;
}

/* Under the lock: c (may be NULL) leaves its list once it counts no client. */
static void drop_unused(struct count **head, struct count *c)
{
	if (!c || c->n > 0)
		return;
	for (struct count **at = head; *at; at = &(*at)->next)
		if (*at == c) {
			*at = c->next;
			free(c->name);
			free(c);
			return;
		}
}

enum climit_refusal climit_admit(const char *db, int db_max, const char *user, int user_max,
				 bool exempt)
{
	enum climit_refusal r = CLIMIT_OK;
	pthread_mutex_lock(&lock);
	struct count *d = find(&dbs, db, true), *u = find(&users, user, true);
	if (!exempt && db_max > 0 && d->n >= db_max)
		r = CLIMIT_DB_FULL;
	else if (!exempt && user_max > 0 && u->n >= user_max)
		r = CLIMIT_USER_FULL;
	if (r == CLIMIT_OK) {
		d->n++;
		u->n++;
	}
	drop_unused(&dbs, d);
	drop_unused(&users, u);
	pthread_mutex_unlock(&lock);
	return r;
}

void climit_release(const char *db, const char *user)
{
	pthread_mutex_lock(&lock);
	struct count *d = find(&dbs, db, false), *u = find(&users, user, false);
	assert(d && u && d->n > 0 && u->n > 0);
	if (d && d->n > 0)
		d->n--;
	if (u && u->n > 0)
		u->n--;
	drop_unused(&dbs, d);
	drop_unused(&users, u);
	pthread_mutex_unlock(&lock);
}

static int count_of(struct count **head, const char *name)
{
	pthread_mutex_lock(&lock);
	struct count *c = find(head, name, false);
	int n = c ? c->n : 0;
	pthread_mutex_unlock(&lock);
	return n;
}

int climit_db_clients(const char *db)
{
	return count_of(&dbs, db);
}

int climit_user_clients(const char *user)
{
	return count_of(&users, user);
}

void climit_foreach_user(void (*fn)(const char *user, void *arg), void *arg)
{
	pthread_mutex_lock(&lock);
	for (struct count *c = users; c; c = c->next)
		if (c->n > 0)
			fn(c->name, arg);
	pthread_mutex_unlock(&lock);
}

static void free_list(struct count **head)
{
	while (*head) {
		struct count *c = *head;
		*head = c->next;
		free(c->name);
		free(c);
	}
}

void climit_free_all(void)
{
	pthread_mutex_lock(&lock);
	free_list(&dbs);
	free_list(&users);
	pthread_mutex_unlock(&lock);
}
