/* pqpipe.c: libpq's pipeline mode against Shoal (tests/integration/test_pipeline.py).
 *
 *   pqpipe CONNINFO N named|unnamed
 *
 * Prepares one statement (named) or none (unnamed: PQsendQueryParams), then sends N executions
 * in non-blocking pipeline mode while reading results, with one Sync at the end, as an
 * application streaming a batch would. Prints "ok N" when every result came back in order with
 * the right value; anything else exits 1 with the reason. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

static int fail(PGconn *conn, const char *what)
{
	fprintf(stderr, "%s: %s\n", what, PQerrorMessage(conn));
	return 1;
}

/* One result of the pipeline: execution i's row, or the end of the batch. */
static int take(PGconn *conn, long *got, int *synced)
{
	PGresult *r;
	while (!PQisBusy(conn) && (r = PQgetResult(conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			*synced = 1;
		} else if (st == PGRES_TUPLES_OK) {
			if (PQntuples(r) != 1 || atol(PQgetvalue(r, 0, 0)) != *got + 1) {
				fprintf(stderr, "result %ld: wrong value %s\n", *got,
					PQntuples(r) ? PQgetvalue(r, 0, 0) : "(none)");
				PQclear(r);
				return -1;
			}
			(*got)++;
		} else {
			fprintf(stderr, "result %ld: %s", *got, PQresultErrorMessage(r));
			PQclear(r);
			return -1;
		}
		PQclear(r);
		if (*synced)
			return 0;
		r = PQgetResult(conn); /* the NULL that ends each query's results */
		if (r)
			PQclear(r);
	}
	return 0;
}

static int wait_io(PGconn *conn, int want_write)
{
	fd_set rd, wr;
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_SET(PQsocket(conn), &rd);
	if (want_write)
		FD_SET(PQsocket(conn), &wr);
	struct timeval tv = {.tv_sec = 60};
	int n = select(PQsocket(conn) + 1, &rd, &wr, NULL, &tv);
	return n > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return fprintf(stderr, "usage: pqpipe CONNINFO N named|unnamed\n"), 2;
	long n = atol(argv[2]), sent = 0, got = 0;
	int named = strcmp(argv[3], "named") == 0, synced = 0;
	PGconn *conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
		return fail(conn, "connect");
	const char *sql = "select $1::bigint + 1";
	if (named) {
		PGresult *r = PQprepare(conn, "s1", sql, 1, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			return fail(conn, "prepare");
		PQclear(r);
	}
	if (PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1)
		return fail(conn, "pipeline mode");
	char val[32];
	const char *params[1] = {val};
	while (!synced) {
		for (int k = 0; k < 64 && sent < n; k++, sent++) {
			snprintf(val, sizeof(val), "%ld", sent);
			int ok = named ? PQsendQueryPrepared(conn, "s1", 1, params, NULL, NULL, 0)
				       : PQsendQueryParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
			if (!ok)
				return fail(conn, "send");
			if (sent + 1 == n && PQpipelineSync(conn) != 1)
				return fail(conn, "sync");
		}
		int pending = PQflush(conn);
		if (pending < 0)
			return fail(conn, "flush");
		if ((pending || sent == n) && wait_io(conn, pending) != 0)
			return fprintf(stderr, "stalled: %ld sent, %ld results\n", sent, got), 1;
		if (!PQconsumeInput(conn))
			return fail(conn, "read");
		if (take(conn, &got, &synced) != 0)
			return 1;
	}
	if (got != n)
		return fprintf(stderr, "%ld results for %ld executions\n", got, n), 1;
	printf("ok %ld\n", got);
	PQfinish(conn);
	return 0;
}
