/* internal.h: libshoal's shared structures and the interfaces between its files. */
#ifndef SHOAL_LIB_INTERNAL_H
#define SHOAL_LIB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "shoal/pool.h"

/* The internal functions are global symbols of the static library too: give them a prefix
 * no program will use, keeping the short names in the source. */
#define now_ms		   shoal__now_ms
#define now_us		   shoal__now_us
#define deadline_ts	   shoal__deadline_ts
#define sleep_ms	   shoal__sleep_ms
#define rand_below	   shoal__rand_below
#define err_set		   shoal__err_set
#define err_set_pq	   shoal__err_set_pq
#define registry_add	   shoal__registry_add
#define registry_get	   shoal__registry_get
#define registry_remove	   shoal__registry_remove
#define pool_ref	   shoal__pool_ref
#define pool_unref	   shoal__pool_unref
#define list_push_head	   shoal__list_push_head
#define list_remove	   shoal__list_remove
#define conn_set_state	   shoal__conn_set_state
#define conn_open	   shoal__conn_open
#define conn_probe	   shoal__conn_probe
#define conn_ping	   shoal__conn_ping
#define conn_free	   shoal__conn_free
#define slot_freed_locked  shoal__slot_freed_locked
#define conn_ready_locked  shoal__conn_ready_locked
#define slot_take_locked   shoal__slot_take_locked
#define conn_forget_locked shoal__conn_forget_locked
#define slot_fill	   shoal__slot_fill
#define pool_total_locked  shoal__pool_total_locked
#define lifetime_locked	   shoal__lifetime_locked
#define acquire_at	   shoal__acquire_at
#define janitor_start	   shoal__janitor_start
#define janitor_stop	   shoal__janitor_stop

struct lpool;

/* A connection's state is the list it is on (idle or busy); opening ones are on neither. */
enum lconn_state { LC_OPENING, LC_IDLE, LC_BUSY };

struct shoal_conn {
	PGconn *pg;
	struct lpool *pool;
	struct shoal_conn *prev, *next;
	enum lconn_state state;
	int64_t created_ms;
	int64_t expires_ms; /* created + jittered lifetime; INT64_MAX if none */
	int64_t last_used_ms;
	int64_t acquired_ms;
	void *acquired_at; /* return address of the acquire call, for leak reports; like
			      acquired_ms, written under the pool lock (the janitor reads them) */
	bool leak_reported;
};

struct lconn_list {
	struct shoal_conn *head, *tail;
	int count;
};

/* A thread blocked in acquire. Release hands it a connection, or a slot to open one in. */
struct waiter {
	pthread_cond_t cv;
	struct waiter *next;
	struct shoal_conn *conn; /* handed over */
	bool slot;		 /* a free slot was reserved for it: it opens a connection */
	bool closed;		 /* the pool closed while it waited */
	void *site;		 /* where it called acquire, for leak reports */
};

struct lpool {
	pthread_mutex_t mu; /* guards everything below but refs */
	atomic_int refs;    /* registry + calls in progress + borrowed/opening connections */
	char *conninfo;
	shoal_pool_opts o;
	struct lconn_list idle; /* most recently used first */
	struct lconn_list busy;
	int opening;
	struct waiter *wait_head, *wait_tail;
	int waiting;
	bool closing;
	pthread_cond_t changed; /* janitor wake-up; close waits on it for the drain */
	pthread_t janitor;
	uint64_t rng;
	struct {
		atomic_uint_least64_t acquired, released, created, destroyed, timeouts, errors,
		    leaks;
	} ctr;
	int tick_ms; /* janitor period */
};

/* time.c */
int64_t now_ms(void);
int64_t now_us(void);
/* absolute CLOCK_MONOTONIC deadline for pthread_cond_timedwait */
void deadline_ts(int64_t deadline_ms, struct timespec *ts);
void sleep_ms(int64_t ms);
/* xorshift random in [0, n) from *state (caller serializes) */
uint64_t rand_below(uint64_t *state, uint64_t n);

/* error.c: thread-local detail; the setters return code for tail calls. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int err_set_pq(int code, const char *prefix, const char *pqmsg);

/* registry.c: handles that stay safe after close. */
int registry_add(struct lpool *p, shoal_pool **out) __attribute__((warn_unused_result));
/* The pool behind h with a reference taken, or NULL (closed, never opened). */
struct lpool *registry_get(shoal_pool *h);
/* Make h invalid for new calls and drop the registry's reference. */
void registry_remove(shoal_pool *h, struct lpool *p);
void pool_ref(struct lpool *p);
/* Drop a reference; the last one frees the pool. */
void pool_unref(struct lpool *p);

/* list.c */
void list_push_head(struct lconn_list *l, struct shoal_conn *c);
void list_remove(struct lconn_list *l, struct shoal_conn *c);
/* move c to the list of state s (LC_OPENING: on none) */
void conn_set_state(struct lpool *p, struct shoal_conn *c, enum lconn_state s);

/* conn.c: one libpq connection (no pool lock held). */
/* Open into c->pg by deadline_ms; SHOAL_ECONNECT with libpq's message on failure. */
int conn_open(struct lpool *p, struct shoal_conn *c, int64_t deadline_ms)
    __attribute__((warn_unused_result));
/* Cheap check of an idle connection, no round trip: status, then EOF or data on the socket.
 * SUSPECT: it said something unasked (worth a ping before lending it). Never blocks. */
enum probe { PROBE_ALIVE, PROBE_SUSPECT, PROBE_DEAD };
enum probe conn_probe(struct shoal_conn *c);
/* SELECT 1 round trip. */
bool conn_ping(struct shoal_conn *c);
/* Close the libpq connection and free c. */
void conn_free(struct shoal_conn *c);

/* slots.c: the pool's bookkeeping under p->mu. */
/* A connection slot freed (closed or failed to open): hand it to the first waiter if any. */
void slot_freed_locked(struct lpool *p);
/* c is ready to be lent: to the first waiter, or to the idle list. */
void conn_ready_locked(struct lpool *p, struct shoal_conn *c);
/* max_lifetime_ms less a random jitter: what conn_open() expects in c->expires_ms. */
int64_t lifetime_locked(struct lpool *p);
/* A fresh shoal_conn in LC_OPENING (counted in p->opening); NULL if out of memory. */
struct shoal_conn *slot_take_locked(struct lpool *p);
/* Forget c (freed slot); the caller frees it after unlocking. */
void conn_forget_locked(struct lpool *p, struct shoal_conn *c);
/* Open a connection in a slot already taken (c from slot_take_locked); lock not held. */
int slot_fill(struct lpool *p, struct shoal_conn *c, int64_t deadline_ms, bool mine);
/* Number of connections counted against max. */
int pool_total_locked(const struct lpool *p);

/* acquire.c: shoal_pool_acquire() recording site (a return address) for leak reports. */
int acquire_at(shoal_pool *h, int timeout_ms, shoal_conn **out, void *site);

/* janitor.c */
int janitor_start(struct lpool *p) __attribute__((warn_unused_result));
/* Called by close after closing is set: joins the thread. */
void janitor_stop(struct lpool *p);

#endif
