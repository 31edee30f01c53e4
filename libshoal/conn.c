/* conn.c: one libpq connection: open it by a deadline, probe it cheaply, ping it, close it.
 * Called without the pool lock (conn_probe() also under it: it never blocks). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool sqlstate_class_28(const char *msg)
{
	/* "SEVERITY:  28P01: text": the severity word may be translated, the SQLSTATE is not */
	for (const char *s = strstr(msg, ":  28"); s; s = strstr(s + 1, ":  28"))
		if (strlen(s) >= 9 && s[8] == ':')
			return true;
	return false;
}

/* A failed login's code: SHOAL_EAUTH when the server refused the credentials (SQLSTATE class
 * 28: wrong password, no pg_hba.conf entry, ...) or asked for a password none was given for;
 * waiting will not make them right, so with_retry must not retry. Else SHOAL_ECONNECT. The
 * SQLSTATE is in libpq's message only with PQERRORS_VERBOSE, which conn_open sets while it
 * connects: "...failed: FATAL:  28P01: password authentication failed ...". */
static int connect_failure(PGconn *pg)
{
	const char *msg = PQerrorMessage(pg);
	bool auth = PQconnectionNeedsPassword(pg) || sqlstate_class_28(msg);
	const char *loc = strstr(msg, "\nLOCATION:"); /* the server's source line: not for users */
	char text[512];
	snprintf(text, sizeof(text), "%.*s", loc ? (int)(loc - msg) : (int)strlen(msg), msg);
	return err_set_pq(auth ? SHOAL_EAUTH : SHOAL_ECONNECT, "", text);
}

/* Drive PQconnectPoll until it succeeds, fails or deadline_ms passes. */
static int connect_poll(PGconn *pg, int64_t deadline_ms)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(pg)};
		int64_t left = deadline_ms - now_ms();
		int n;

		if (st == PGRES_POLLING_OK)
			return SHOAL_OK;
		if (st == PGRES_POLLING_FAILED)
			return connect_failure(pg);
		if (left <= 0)
			return err_set(SHOAL_ECONNECT, "connection attempt timed out");
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		n = poll(&pfd, 1, (int)(left > 1000000 ? 1000000 : left));
		if (n < 0 && errno != EINTR)
			return err_set(SHOAL_ECONNECT, "poll failed while connecting");
		if (n > 0)
			st = PQconnectPoll(pg);
	}
}

static int set_statement_timeout(struct lpool *p, PGconn *pg)
{
	char sql[64];
	int rc;

	if (p->o.statement_timeout_ms <= 0)
		return SHOAL_OK;
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d", p->o.statement_timeout_ms);
	rc = shoal_exec(pg, sql);
	return rc == SHOAL_OK ? rc
			      : err_set(SHOAL_ECONNECT, "%s failed: %s", sql, shoal_errdetail());
}

int conn_open(struct lpool *p, struct shoal_conn *c, int64_t deadline_ms)
{
	const char *keys[] = {"dbname", NULL};
	const char *vals[] = {p->conninfo, NULL};
	int64_t lifetime = c->expires_ms;
	int rc;

	c->pg = PQconnectStartParams(keys, vals, 1);
	if (!c->pg)
		return err_set(SHOAL_ENOMEM, "out of memory starting a connection");
	PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE); /* the login error's SQLSTATE */
	if (PQstatus(c->pg) == CONNECTION_BAD)
		rc = err_set_pq(SHOAL_ECONNECT, "", PQerrorMessage(c->pg));
	else
		rc = connect_poll(c->pg, deadline_ms);
	if (rc == SHOAL_OK)
		PQsetErrorVerbosity(c->pg, PQERRORS_DEFAULT);
	if (rc == SHOAL_OK)
		rc = set_statement_timeout(p, c->pg);
	if (rc != SHOAL_OK) {
		PQfinish(c->pg);
		c->pg = NULL;
		return rc;
	}
	c->created_ms = c->last_used_ms = now_ms();
	c->expires_ms = lifetime > 0 ? c->created_ms + lifetime : INT64_MAX;
	return SHOAL_OK;
}

/* An idle connection has nothing to say: readable means EOF, a FATAL error before the server
 * closes it (pg_terminate_backend, shutdown), or an asynchronous message. */
enum probe conn_probe(struct shoal_conn *c)
{
	struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
	PGnotify *note;
	int n;

	if (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return PROBE_DEAD;
	n = poll(&pfd, 1, 0);
	if (n == 0 || (n < 0 && errno == EINTR))
		return PROBE_ALIVE;
	if (n < 0 || !PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK)
		return PROBE_DEAD;
	while ((note = PQnotifies(c->pg)) != NULL)
		PQfreemem(note);
	return PROBE_SUSPECT;
}

bool conn_ping(struct shoal_conn *c)
{
	PGresult *res = PQexec(c->pg, "");
	bool ok = PQresultStatus(res) == PGRES_EMPTY_QUERY;

	PQclear(res);
	return ok && PQstatus(c->pg) == CONNECTION_OK;
}

void conn_free(struct shoal_conn *c)
{
	if (!c)
		return;
	if (c->pg)
		PQfinish(c->pg);
	free(c);
}
