/* error.c: result codes, their texts, the per-thread detail, and classifying libpq results. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char detail[512];

static const char *const texts[] = {
    [SHOAL_OK] = "success",
    [SHOAL_EINVAL] = "invalid argument or configuration",
    [SHOAL_ENOMEM] = "out of memory",
    [SHOAL_ECLOSED] = "pool is closed",
    [SHOAL_ETIMEDOUT] = "timed out waiting for a connection from the pool",
    [SHOAL_ECONNECT] = "could not connect to PostgreSQL",
    [SHOAL_ECONNLOST] = "connection to PostgreSQL lost",
    [SHOAL_ESERIALIZE] = "serialization failure or deadlock",
    [SHOAL_ESQL] = "statement failed",
    [SHOAL_EDRAIN] = "connections still borrowed when the pool closed",
    [SHOAL_EFAIL] = "callback failed",
    [SHOAL_EAUTH] = "PostgreSQL refused the login",
};

const char *shoal_strerror(int code)
{
	if (code < 0 || (size_t)code >= sizeof(texts) / sizeof(texts[0]))
		return "unknown libshoal error code";
	return texts[code];
}

const char *shoal_errdetail(void)
{
	return detail;
}

int err_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return code;
}

/* libpq's messages end in a newline and may span lines (with tab indents): make them one line. */
int err_set_pq(int code, const char *prefix, const char *pqmsg)
{
	char raw[sizeof(detail)];
	size_t n = 0;

	snprintf(raw, sizeof(raw), "%s%s", prefix, pqmsg ? pqmsg : "");
	for (const char *s = raw; *s; s++) {
		bool space = *s == '\n' || *s == '\t' || *s == ' ';

		if (space && (n == 0 || detail[n - 1] == ' '))
			continue;
		detail[n++] = space ? ' ' : *s;
	}
	while (n > 0 && detail[n - 1] == ' ')
		n--;
	detail[n] = '\0';
	return code;
}

static int classify_sqlstate(const char *st)
{
	if (!st)
		return SHOAL_ESQL;
	if (!strcmp(st, "40001") || !strcmp(st, "40P01"))
		return SHOAL_ESERIALIZE;
	/* class 08 (connection exception) and the shutdown/termination ones of class 57P */
	if (!strncmp(st, "08", 2) || !strcmp(st, "57P01") || !strcmp(st, "57P02") ||
	    !strcmp(st, "57P03"))
		return SHOAL_ECONNLOST;
	return SHOAL_ESQL;
}

int shoal_check(PGconn *conn, const PGresult *res)
{
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int code;

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY ||
	    s == PGRES_SINGLE_TUPLE || s == PGRES_COPY_IN || s == PGRES_COPY_OUT)
		return SHOAL_OK;
	if (!conn || PQstatus(conn) == CONNECTION_BAD)
		code = SHOAL_ECONNLOST;
	else
		code = classify_sqlstate(res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
	if (res && *PQresultErrorMessage(res))
		return err_set_pq(code, "", PQresultErrorMessage(res));
	return err_set_pq(code, "", conn ? PQerrorMessage(conn) : "no connection");
}

int shoal_exec(PGconn *conn, const char *sql)
{
	PGresult *res;
	int rc;

	if (!conn || !sql)
		return err_set(SHOAL_EINVAL, "shoal_exec: NULL argument");
	res = PQexec(conn, sql);
	rc = shoal_check(conn, res);
	PQclear(res);
	return rc;
}
