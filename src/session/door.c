/* door.c: the front door's budgets: logins in progress, logged-in clients, the console's slots. */
#include "door.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "worker.h"

#include <stdatomic.h>

/* A connection logging in for less than this is not closed to make room: a burst of real
 * clients finishes its logins in milliseconds, a slow one is what the budget is against. */
#define DOOR_SLOW_USEC USEC_PER_SEC
/* A full budget's episode is over once nothing was refused or dropped for this long. */
#define DOOR_QUIET_USEC USEC_PER_SEC

static atomic_int logging_in;
/* Logged-in clients holding a slot of max_client_conn (the console's included). */
static atomic_int members;
/* The current episode of a full login budget: one line when it starts, one when it ends. */
static atomic_bool full;
static _Atomic usec_t full_last;
static atomic_uint_fast64_t n_dropped, n_refused;
/* Connections closed by client_startup_timeout since the last line saying how many. */
static atomic_uint_fast64_t n_timed_out;
static _Atomic usec_t timed_out_logged;

static const char reason_full[] = "too many clients logging in (max_login_clients)";
static const char reason_timeout[] = "client_startup_timeout";

int door_logging_in(void)
{
	return atomic_load(&logging_in);
}

void door_login_begin(struct client *c)
{
	if (c->in_door)
		return;
	c->in_door = true;
	c->c.w->n_login++;
	atomic_fetch_add(&logging_in, 1);
}

void door_login_end(struct client *c)
{
	if (!c->in_door)
		return;
	c->in_door = false;
	c->c.w->n_login--;
	atomic_fetch_sub(&logging_in, 1);
}

static void door_full_note(const struct config *cfg)
{
	atomic_store(&full_last, shoal_now());
	if (atomic_exchange(&full, true))
		return;
	log_warn("max_login_clients (%d) reached: connections logging in for over a second are "
		 "dropped, new ones refused while none is; one line when it ends",
		 cfg->max_login_clients);
}

/* The oldest client of w still logging in, if it has been for over DOOR_SLOW_USEC. The login
 * list is in order of arrival: its first non-internal entry is the oldest. */
static struct client *door_oldest_slow(struct worker *w, usec_t now)
{
	struct list *it;
	for (it = w->login_clients.next; it != &w->login_clients; it = it->next) {
		struct client *c = container_of(it, struct client, node);
		if (c->c.dead || !c->in_door)
			continue;
		return now - c->connect_time > DOOR_SLOW_USEC ? c : NULL;
	}
	return NULL;
}

/* Each worker has its share of the budget, so that the one a connection lands on can always
 * make room among its own (connections are spread evenly: round-robin, or SO_REUSEPORT). */
bool door_room(struct worker *w)
{
	const struct config *cfg = config_current();
	int n = worker_count() > 0 ? worker_count() : 1;
	if (cfg->max_login_clients <= 0 || w->n_login < (cfg->max_login_clients + n - 1) / n)
		return true;
	door_full_note(cfg);
	struct client *old = door_oldest_slow(w, shoal_now());
	if (!old)
		return false;
	atomic_fetch_add(&n_dropped, 1);
	client_close(old, "53300", reason_full);
	return true;
}

void door_refuse(struct client *c)
{
	atomic_fetch_add(&n_refused, 1);
	client_close(c, "53300", reason_full);
}

static int door_limit(bool console)
{
	const struct config *cfg = config_current();
	return cfg->max_client_conn + (console ? cfg->admin_reserved_conn : 0);
}

bool door_fits(bool console)
{
	return atomic_load(&members) + 1 <= door_limit(console);
}

bool door_join(struct client *c, bool console)
{
	if (atomic_fetch_add(&members, 1) + 1 > door_limit(console)) {
		atomic_fetch_sub(&members, 1);
		return false;
	}
	c->member = true;
	return true;
}

void door_leave(struct client *c)
{
	if (!c->member)
		return;
	c->member = false;
	atomic_fetch_sub(&members, 1);
}

bool door_quiet(const struct client *c, const char *reason)
{
	return c->quiet_close || (!c->user && (reason == reason_full || reason == reason_timeout));
}

void door_tick(struct worker *w, usec_t now, bool (*started)(const struct client *))
{
	usec_t t = config_current()->client_startup_timeout;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &w->login_clients)
	{
		struct client *c = container_of(it, struct client, node);
		if (t > 0 && !c->c.dead && !c->internal && !started(c) &&
		    now - c->connect_time >= t) {
			atomic_fetch_add(&n_timed_out, 1);
			client_close(c, "08P01", reason_timeout);
		}
	}
	if (w->id == 0 && atomic_load(&n_timed_out) > 0 &&
	    now - atomic_load(&timed_out_logged) >= DOOR_QUIET_USEC) {
		atomic_store(&timed_out_logged, now);
		log_info("client_startup_timeout: closed %llu connections that sent no startup "
			 "packet in time",
			 (unsigned long long)atomic_exchange(&n_timed_out, 0));
	}
	if (w->id != 0 || !atomic_load(&full) || now - atomic_load(&full_last) < DOOR_QUIET_USEC)
		return;
	atomic_store(&full, false);
	log_info("max_login_clients: no longer reached; %llu connections dropped, %llu refused",
		 (unsigned long long)atomic_exchange(&n_dropped, 0),
		 (unsigned long long)atomic_exchange(&n_refused, 0));
}
