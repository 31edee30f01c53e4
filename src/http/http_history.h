/* http_history.h: the dashboard's last 15 minutes, kept in the HTTP thread so that a reloaded
 * page starts with its charts full. Every HISTORY_STEP a sample per pool (and for all pools
 * together) is taken from pool_view: transactions and queries per second, query p50/p99 and
 * transaction p99 latency over the step (from the histograms' deltas), servers, waiting
 * clients, the oldest wait, server login failures and client errors per second. */
#ifndef SHOAL_HTTP_HISTORY_H
#define SHOAL_HTTP_HISTORY_H

#include "buf.h"
#include "common.h"

#define HISTORY_STEP   (2 * USEC_PER_SEC)
#define HISTORY_POINTS 450 /* 15 minutes of 2 s steps */
#define HISTORY_POOLS  64  /* pools kept apart; the total covers every pool */

/* Take a sample if HISTORY_STEP has passed since the last one (the HTTP thread's tick). */
void history_tick(usec_t now);
/* {"step_s":2,"fields":[...],"total":[[...],...],"pools":[{database,user,points}],
 *  "errors":[{sqlstate,pooler,server}]} */
void history_json(struct buf *b);
/* Free everything (the listener is stopping). */
void history_free(void);

#endif
