/* throttle.c: failed logins per source address, in a bounded table (auth_failure_limit). */
#include "throttle.h"
#include "config.h"
#include "log.h"
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* The table: a fixed number of slots (the addresses of a flood need not all fit: a slot whose
 * window is over is reused first, else the one whose window began first). */
#define THROTTLE_SLOTS 4096
#define THROTTLE_PROBE 8

struct slot {
	char addr[48]; /* "" free */
	usec_t since;  /* start of this address's window */
	int failures;
	bool blocked; /* logged; refused until since + window */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[THROTTLE_SLOTS];

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Under lock: c's slot, or NULL (create false and none). A slot past its window starts anew. */
static struct slot *slot_for(const char *addr, usec_t now, usec_t window, bool create)
{
	unsigned h = hash(addr);
	struct slot *over_one = NULL, *oldest = NULL;
	for (int i = 0; i < THROTTLE_PROBE; i++) {
		struct slot *s = &slots[(h + (unsigned)i) % THROTTLE_SLOTS];
		bool over = !s->addr[0] || now - s->since >= window;
		if (s->addr[0] && strcmp(s->addr, addr) == 0) {
			if (over) {
				*s = (struct slot){.since = now};
				strcpy(s->addr, addr);
			}
			return s;
		}
		if (over && !over_one)
			over_one = s;
		if (!oldest || s->since < oldest->since)
			oldest = s;
	}
	if (!create)
		return NULL;
	struct slot *s = over_one ? over_one : oldest;
	*s = (struct slot){.since = now};
	strcpy(s->addr, addr);
	return s;
}

void throttle_failed(const struct client *c)
{
	const struct config *cfg = config_current();
	if (cfg->auth_failure_limit <= 0 || c->is_unix || strlen(c->addr) >= sizeof(slots[0].addr))
		return;
	usec_t now = shoal_now(), window = cfg->auth_failure_window;
	pthread_mutex_lock(&lock);
	struct slot *s = slot_for(c->addr, now, window, true);
	bool starts = ++s->failures >= cfg->auth_failure_limit && !s->blocked;
	if (starts)
		s->blocked = true;
	int left = (int)((s->since + window - now + USEC_PER_SEC - 1) / USEC_PER_SEC);
	pthread_mutex_unlock(&lock);
	if (starts)
		log_warn("%s: %d failed logins within auth_failure_window: its logins are refused "
			 "for %d s (auth_failure_limit)",
			 c->addr, cfg->auth_failure_limit, left);
}

bool throttle_blocked(const struct client *c, int *wait)
{
	const struct config *cfg = config_current();
	if (cfg->auth_failure_limit <= 0 || c->is_unix)
		return false;
	usec_t now = shoal_now(), window = cfg->auth_failure_window;
	pthread_mutex_lock(&lock);
	struct slot *s = slot_for(c->addr, now, window, false);
	bool blocked = s && s->blocked;
	if (blocked)
		*wait = (int)((s->since + window - now + USEC_PER_SEC - 1) / USEC_PER_SEC);
	pthread_mutex_unlock(&lock);
	return blocked;
}

/* ---- the failed-login log lines ---- */

static _Atomic usec_t log_second;	    /* the second whose failure was logged */
static _Atomic unsigned long long unlogged; /* failures since throttle_tick's last line */

bool throttle_log_failure(void)
{
	usec_t sec = shoal_now() / USEC_PER_SEC, was = atomic_load(&log_second);
	if (was != sec && atomic_compare_exchange_strong(&log_second, &was, sec))
		return true;
	atomic_fetch_add(&unlogged, 1);
	return false;
}

void throttle_tick(usec_t now)
{
	static usec_t last; /* worker 0's thread only */
	if (now - last < USEC_PER_SEC || atomic_load(&unlogged) == 0)
		return;
	last = now;
	log_warn("%llu more failed logins (wrong password or SCRAM proof) were not logged one by "
		 "one: one per second is",
		 (unsigned long long)atomic_exchange(&unlogged, 0));
}
