/* fuzz_session.c: the stateful session fuzz and differential target (issue 14). One worker of the
 * real daemon runs in this thread, step by step (loop_run_once); a client is a socketpair handed
 * to client_accept, and PostgreSQL is fakepg (a tiny deterministic backend, fakepg.h) behind a
 * Unix socket the harness listens on. The input decodes into a pipeline of client messages
 * (decode_pipeline below: Parse/Bind/Describe/Execute/Close/Sync/Flush/Query/COPY, names from a
 * tiny set, sizes from 0 to megabytes, errors by statement text) that always ends with a Sync.
 *
 * Oracle: the same pipeline fed straight to a fresh fakepg gives the bytes a client connected to
 * PostgreSQL directly would read. After the login, the client must read exactly those bytes
 * through Shoal; in session mode without prepared-statement rewriting the server must also
 * receive exactly the client's bytes. A difference, the client's connection ending early, or no
 * byte moving for STALL_STEPS steps of the loop (a stall: some buffer waits on another) is an
 * abort() with a description on stderr.
 *
 * The first input byte picks the variant: pool mode (transaction, session, statement), the
 * prepared-statement cache (max_prepared_statements 200, 0 or 2: eviction), a slow client
 * that reads 1 KB per step (flow control), a second client (below) and lockstep: the client
 * sends each Sync's worth only once the previous one is answered, as a client that does not
 * pipeline (past the defects that only pipelining shows). Between inputs the client and every
 * server connection are closed, so each input starts from an empty pool.
 *
 * SHOAL_FUZZ_VERBOSE=n turns the daemon's log up (-2 by default: errors only);
 * Past the known defects (known/session), "copy in" texts become "copy out", every input runs in
 * lockstep, a simple Query always comes between two Syncs and no statement text is over 1 MB
 * (it would pin): the libFuzzer binary runs so unless SHOAL_FUZZ_ALL=1, the replay with
 * SHOAL_FUZZ_PAST_KNOWN=1. SHOAL_FUZZ_DUMP=1 prints the pipeline and what the server received
 * when an input fails. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"
#include "client.h"
#include "config.h"
#include "fakepg.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "objcache.h"
#include "worker_thread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PORT		 5432
#define MAX_PEERS	 8
#define STALL_STEPS	 3000
#define SERVER_OUT_LIMIT (256u << 10) /* fakepg stops reading above this, as PostgreSQL would */
#define MAX_PIPELINE	 (6u << 20)
#define MAX_EXPECTED	 (4u << 20)

enum { V_TRANSACTION, V_SESSION, V_STATEMENT };
static const char *const db_names[] = {"db_t", "db_s", "db_st"};
static const int ps_values[] = {200, 0, 2};

/* ---- the harness's process-wide state ------------------------------------------------------- */

struct client_side {
	int fd;
	const uint8_t *tx;
	size_t txlen, txpos;
	struct fp_bytes rx;
	size_t login_len; /* bytes up to and including the login's ReadyForQuery; 0: not yet */
	bool slow, eof;
	/* Lockstep: segment i of tx (up to seg_end[i], each ending with a Sync) is sent only once
	 * the client has read seg_out[i - 1] bytes, what PostgreSQL answers to the ones before. */
	bool lockstep;
	const size_t *seg_end, *seg_out;
	size_t nseg;
};

struct peer { /* one server connection Shoal opened, answered by fakepg */
	int fd;
	struct fakepg pg;
	size_t sent;	     /* of pg.out */
	struct fp_bytes raw; /* every byte received, for the forwarding check */
};

static struct {
	bool ready;
	char dir[64];
	int listen_fd;
	struct config cfg[3];
	struct worker w;
	struct peer peers[MAX_PEERS];
	int npeers;
	struct client_side *clients[2]; /* stepped by step() */
	int nclients;
} H;

static bool past_known; /* SHOAL_FUZZ_PAST_KNOWN */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_session: %s: %s\n", what, strerror(errno));
	abort();
}

static void write_config(int i, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die(path);
	fprintf(f, "[databases]\n");
	fprintf(f, "db_t = host=%s port=%d dbname=fuzz pool_mode=transaction\n", H.dir, PORT);
	fprintf(f, "db_s = host=%s port=%d dbname=fuzz pool_mode=session\n", H.dir, PORT);
	fprintf(f, "db_st = host=%s port=%d dbname=fuzz pool_mode=statement\n", H.dir, PORT);
	fprintf(f,
		"[pgbouncer]\nlisten_addr =\nunix_socket_dir =\nauth_type = trust\n"
		"workers = 1\ndefault_pool_size = 1\nserver_tls_sslmode = disable\n"
		"log_connections = 0\nlog_disconnections = 0\nstats_period = 0\n"
		"max_prepared_statements = %d\n",
		ps_values[i]);
	fclose(f);
}

static void harness_cleanup(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", H.dir, PORT);
	unlink(path);
	rmdir(H.dir);
	/* This thread is the worker: what its caches keep goes, as at a worker thread's end. */
	objcache_drain_all();
	buf_cache_drain();
}

static void harness_init(void)
{
	char err[512], path[128];
	signal(SIGPIPE, SIG_IGN);
	buf_cache_enable(); /* this thread is the worker (both drained after each input) */
	objcache_enable();
	const char *v = getenv("SHOAL_FUZZ_VERBOSE");
	log_set_verbose(v ? atoi(v) : -2);
	if (getenv("SHOAL_FUZZ_PAST_KNOWN"))
		past_known = true;
	if (getenv("SHOAL_FUZZ_ALL"))
		past_known = false;
	snprintf(H.dir, sizeof(H.dir), "/tmp/shoal-fuzzsess-XXXXXX");
	if (!mkdtemp(H.dir))
		die("mkdtemp");
	atexit(harness_cleanup);
	H.listen_fd = net_listen_unix(H.dir, PORT, 0700, -1, 1024, err, sizeof(err));
	if (H.listen_fd < 0) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/shoal%d.ini", H.dir, i);
		write_config(i, path);
		if (config_load(&H.cfg[i], path, err, sizeof(err)) != SHOAL_OK) {
			fprintf(stderr, "fuzz_session: %s\n", err);
			abort();
		}
		unlink(path);
	}
	config_set_current(&H.cfg[0]);
	client_set_console(&admin_console);
	pool_set_acts(&session_acts);
	if (worker_init(&H.w, 0, &H.cfg[0], NULL, err, sizeof(err)) != SHOAL_OK) {
		fprintf(stderr, "fuzz_session: worker_init: %s\n", err);
		abort();
	}
	worker_set_all(&H.w, 1);
	H.ready = true;
}

/* ---- the pipeline: a small bytecode ---------------------------------------------------------- */

struct gen {
	const uint8_t *p;
	size_t n, pos;
	int mode;
	uint16_t np[4]; /* parameters declared by the last Parse of each statement name */
	bool copy;	/* a "copy in" was sent: end with CopyDone */
	bool pins; /* a statement text over message_inspect_limit: its client keeps the server */
	struct fp_bytes out;
};

static const char *const stmt_names[] = {"", "s1", "s2", "s3"};
static const char *const portal_names[] = {"", "p1", "p2"};
static const uint32_t sizes[] = {0, 1, 5, 20, 100, 1000, 8000, 20000, 100000, 1000000};
static const uint32_t pads[] = {0, 0, 0, 0, 10, 1000, 70000, 1100000};
static const uint32_t param_sizes[] = {0, 1, 3, 10, 100, 5000, 70000, 1100000};

static uint8_t next(struct gen *g)
{
	return g->pos < g->n ? g->p[g->pos++] : 0;
}

/* A statement text (fakepg.h), maybe padded past message_inspect_limit. */
static char *gen_text(struct gen *g, size_t *len)
{
	uint8_t t = next(g), a = next(g), b = next(g), pad = next(g);
	char head[64];
	bool st = g->mode == V_STATEMENT, padded = true;
	switch (t % 10) {
	case 4:
		snprintf(head, sizeof(head), "err here");
		break;
	case 5:
		snprintf(head, sizeof(head), "fail here");
		break;
	case 6:
		snprintf(head, sizeof(head), st ? "rows 1 size 1" : "begin");
		padded = st;
		break;
	case 7:
		snprintf(head, sizeof(head), st ? "rows 2 size 3" : a & 1 ? "commit" : "rollback");
		padded = st;
		break;
	case 8:
		snprintf(head, sizeof(head), "copy out %u", a % 50u);
		break;
	case 9:
		if (past_known) { /* past the known COPY FROM STDIN defects */
			snprintf(head, sizeof(head), "copy out %u", a % 50u);
			break;
		}
		snprintf(head, sizeof(head), "copy in");
		g->copy = true;
		break;
	default:
		snprintf(head, sizeof(head), "rows %u size %u", a % 40u, sizes[b % 10]);
		break;
	}
	size_t h = strlen(head), p = padded ? pads[pad % 8] : 0;
	if (past_known && p > (1u << 20)) /* a pin makes Shoal prepare statements again */
		p = 70000;
	char *s = malloc(h + (p ? p + 4 : 0) + 1);
	if (!s)
		abort();
	memcpy(s, head, h);
	g->pins |= p > (1u << 20);
	if (p) {
		memcpy(s + h, " -- ", 4);
		memset(s + h + 4, 'x', p); /* fakepg reads only the head */
		h += p + 4;
	}
	s[h] = 0;
	*len = h;
	return s;
}

static void put_parse(struct gen *g, int name, const char *text, size_t tlen, uint16_t np)
{
	size_t m = fpb_begin(&g->out, 'P');
	fpb_str(&g->out, stmt_names[name]);
	fpb_put(&g->out, text, tlen + 1);
	fpb_u16(&g->out, np);
	for (unsigned i = 0; i < np; i++)
		fpb_u32(&g->out, 25);
	fpb_end(&g->out, m);
	g->np[name] = np;
}

static void op_parse(struct gen *g)
{
	int name = next(g) % 4;
	uint16_t np = next(g) % 3;
	size_t tlen;
	char *text = gen_text(g, &tlen);
	put_parse(g, name, text, tlen, np);
	free(text);
}

static void put_bind(struct gen *g, int portal, int stmt, uint16_t np, uint8_t sz)
{
	size_t m = fpb_begin(&g->out, 'B');
	fpb_str(&g->out, portal_names[portal]);
	fpb_str(&g->out, stmt_names[stmt]);
	fpb_u16(&g->out, 0);
	fpb_u16(&g->out, np);
	for (unsigned i = 0; i < np; i++) {
		uint32_t len = param_sizes[(sz + i) % 8];
		fpb_u32(&g->out, len);
		fpb_fill(&g->out, len, i);
	}
	fpb_u16(&g->out, 0);
	fpb_end(&g->out, m);
}

static void op_bind(struct gen *g)
{
	int portal = next(g) % 3, stmt = next(g) % 4;
	uint8_t c = next(g), sz = next(g);
	/* usually the count the statement declared; sometimes a wrong one (08P01) */
	uint16_t np = c < 240 ? g->np[stmt] : c % 3;
	/* large parameters only now and then, to keep inputs fast */
	put_bind(g, portal, stmt, np, sz < 250 ? sz % 5 : sz);
}

static void put_name_msg(struct gen *g, uint8_t type, uint8_t sel)
{
	size_t m = fpb_begin(&g->out, type);
	bool stmt = sel & 1;
	fpb_u8(&g->out, stmt ? 'S' : 'P');
	fpb_str(&g->out, stmt ? stmt_names[(sel >> 1) % 4] : portal_names[(sel >> 1) % 3]);
	fpb_end(&g->out, m);
}

static void put_execute(struct gen *g, int portal, uint32_t max_rows)
{
	size_t m = fpb_begin(&g->out, 'E');
	fpb_str(&g->out, portal_names[portal]);
	fpb_u32(&g->out, max_rows);
	fpb_end(&g->out, m);
}

static void put_empty(struct gen *g, uint8_t type)
{
	fpb_end(&g->out, fpb_begin(&g->out, type));
}

static void op_query(struct gen *g)
{
	if (past_known) /* never skipped after an extended-protocol error */
		put_empty(g, 'S');
	size_t tlen;
	char *text = gen_text(g, &tlen);
	size_t m = fpb_begin(&g->out, 'Q');
	fpb_put(&g->out, text, tlen + 1);
	fpb_end(&g->out, m);
	free(text);
	if (past_known) /* alone in its Sync's worth: nothing is pending when the next one goes */
		put_empty(g, 'S');
}

static void op_copy_data(struct gen *g)
{
	uint32_t len = sizes[next(g) % 10];
	size_t m = fpb_begin(&g->out, 'd');
	fpb_fill(&g->out, len, 7);
	fpb_end(&g->out, m);
}

static void op_copy_end(struct gen *g)
{
	if (next(g) & 1) {
		put_empty(g, 'c');
		return;
	}
	size_t m = fpb_begin(&g->out, 'f');
	fpb_str(&g->out, "client gave up");
	fpb_end(&g->out, m);
}

/* libpq's PQexecParams: Parse, Bind, Describe portal, Execute, Sync. */
static void op_exec_params(struct gen *g)
{
	int name = next(g) % 4;
	size_t tlen;
	char *text = gen_text(g, &tlen);
	put_parse(g, name, text, tlen, 0);
	free(text);
	put_bind(g, 0, name, 0, 0);
	put_name_msg(g, 'D', 0);
	put_execute(g, 0, 0);
	put_empty(g, 'S');
}

static void decode_op(struct gen *g)
{
	uint8_t op = next(g), a;
	switch (op % 12) {
	case 0:
		op_parse(g);
		break;
	case 1:
		op_bind(g);
		break;
	case 2:
		put_name_msg(g, 'D', next(g));
		break;
	case 3:
		a = next(g);
		put_execute(g, a % 3, a & 0x80 ? (a >> 3) % 5 : 0);
		break;
	case 4:
		put_name_msg(g, 'C', next(g));
		break;
	case 5:
		put_empty(g, 'S');
		break;
	case 6:
		put_empty(g, 'H');
		break;
	case 7:
		op_query(g);
		break;
	case 8:
		op_exec_params(g);
		break;
	case 9:
		op_copy_data(g);
		break;
	case 10:
		op_copy_end(g);
		break;
	default: /* a prepared statement used again: Bind and Execute */
		a = next(g);
		put_bind(g, a % 3, (a >> 2) % 4, g->np[(a >> 2) % 4], 0);
		put_execute(g, a % 3, 0);
		break;
	}
}

static void decode_pipeline(struct gen *g)
{
	while (g->pos < g->n && g->out.len < MAX_PIPELINE)
		decode_op(g);
	if (g->copy)
		put_empty(g, 'c');
	put_empty(g, 'S');
}

/* ---- driving the loop ----------------------------------------------------------------------- */

static void peer_close(int i)
{
	close(H.peers[i].fd);
	fakepg_free(&H.peers[i].pg);
	fpb_free(&H.peers[i].raw);
	H.peers[i] = H.peers[--H.npeers];
}

static bool peers_accept(void)
{
	bool moved = false;
	for (;;) {
		int fd = accept4(H.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return moved;
		if (H.npeers == MAX_PEERS) {
			fprintf(stderr, "fuzz_session: more than %d server connections\n",
				MAX_PEERS);
			abort();
		}
		struct peer *p = &H.peers[H.npeers++];
		memset(p, 0, sizeof(*p));
		p->fd = fd;
		fakepg_init(&p->pg, false);
		moved = true;
	}
}

static bool peer_flush(struct peer *p)
{
	bool moved = false;
	while (p->sent < p->pg.out.len) {
		ssize_t n = write(p->fd, p->pg.out.p + p->sent, p->pg.out.len - p->sent);
		if (n <= 0)
			break;
		p->sent += (size_t)n;
		moved = true;
	}
	fpb_consume(&p->pg.out, p->sent);
	p->sent = 0;
	return moved;
}

/* One server connection: send what fakepg wrote; read (only while its output is small, as
 * PostgreSQL blocks in ClientWrite) and answer. Returns whether a byte moved; *gone on EOF. */
static bool peer_step(struct peer *p, bool *gone)
{
	bool moved = peer_flush(p);
	uint8_t buf[65536];
	while (p->pg.out.len <= SERVER_OUT_LIMIT && !p->pg.closed) {
		ssize_t n = read(p->fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			*gone = true;
			return true;
		}
		if (n < 0)
			break;
		fpb_put(&p->pg.in, buf, (size_t)n);
		fpb_put(&p->raw, buf, (size_t)n);
		fakepg_process(&p->pg, SERVER_OUT_LIMIT);
		moved |= peer_flush(p);
	}
	fakepg_process(&p->pg, SERVER_OUT_LIMIT);
	moved |= peer_flush(p);
	*gone = p->pg.closed && p->pg.out.len == 0;
	return moved;
}

/* How much of tx the client may have sent by now. */
static size_t client_send_limit(const struct client_side *c)
{
	if (!c->lockstep || !c->nseg)
		return c->txlen;
	size_t got = c->rx.len - c->login_len, j = 0;
	while (j + 1 < c->nseg && got >= c->seg_out[j])
		j++;
	return c->seg_end[j];
}

static bool client_step(struct client_side *c)
{
	bool moved = false;
	size_t limit = client_send_limit(c);
	while (c->txpos < limit) {
		ssize_t n = write(c->fd, c->tx + c->txpos, limit - c->txpos);
		if (n <= 0)
			break;
		c->txpos += (size_t)n;
		moved = true;
	}
	uint8_t buf[65536];
	while (!c->eof) {
		ssize_t n = read(c->fd, buf, c->slow ? 1024 : sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->eof = true;
			return true;
		}
		if (n < 0)
			break;
		fpb_put(&c->rx, buf, (size_t)n);
		moved = true;
		if (c->slow)
			break;
	}
	return moved;
}

/* One step: the worker's loop once, then the fake servers and the client. */
static bool step(void)
{
	loop_run_once(H.w.loop, 0);
	bool moved = peers_accept();
	for (int i = 0; i < H.npeers; i++) {
		bool gone = false;
		moved |= peer_step(&H.peers[i], &gone);
		if (gone)
			peer_close(i--);
	}
	for (int i = 0; i < H.nclients; i++)
		moved |= client_step(H.clients[i]);
	return moved;
}

/* Find the login's end: the first ReadyForQuery. An ErrorResponse first is a harness fault. */
static void find_login_end(struct client_side *c)
{
	size_t at = 0;
	while (c->rx.len - at >= 5) {
		uint8_t type = c->rx.p[at];
		uint32_t len = (uint32_t)c->rx.p[at + 1] << 24 | (uint32_t)c->rx.p[at + 2] << 16 |
			       (uint32_t)c->rx.p[at + 3] << 8 | c->rx.p[at + 4];
		if (c->rx.len - at - 1 < len)
			return;
		if (type == 'E') {
			fprintf(stderr, "fuzz_session: the login failed: %.*s\n", (int)len,
				(const char *)c->rx.p + at + 5);
			abort();
		}
		at += (size_t)len + 1;
		if (type == 'Z') {
			c->login_len = at;
			return;
		}
	}
}

/* SHOAL_FUZZ_DUMP: a stream's messages, one line, with the names and texts' heads. */
static void dump_stream(const char *label, const uint8_t *p, size_t n)
{
	if (!getenv("SHOAL_FUZZ_DUMP"))
		return;
	fprintf(stderr, "%s:", label);
	for (size_t at = 0; n - at >= 5;) {
		uint32_t len = (uint32_t)p[at + 1] << 24 | (uint32_t)p[at + 2] << 16 |
			       (uint32_t)p[at + 3] << 8 | p[at + 4];
		if (len < 4)
			break;
		size_t body = len - 4 < n - at - 5 ? len - 4 : n - at - 5;
		fprintf(stderr, " %c(%u)", p[at] >= 32 && p[at] < 127 ? p[at] : '?', len);
		if (strchr("PBDCEQ", p[at]) && body) { /* names and texts (NUL shown as |) */
			fprintf(stderr, "[");
			for (size_t k = 0; k < body && k < 24; k++)
				fputc(p[at + 5 + k] ? p[at + 5 + k] : '|', stderr);
			fprintf(stderr, "]");
		}
		at += (size_t)len + 1;
	}
	fprintf(stderr, "\n");
}

static void stall(const char *phase, const struct client_side *c, size_t expected)
{
	fprintf(stderr,
		"fuzz_session: STALL during %s: no byte moved in %d steps; client sent %zu/%zu, "
		"read %zu (expected %zu after a login of %zu), %d server connection(s)\n",
		phase, STALL_STEPS, c->txpos, c->txlen, c->rx.len, expected, c->login_len,
		H.npeers);
	dump_stream("client sent", c->tx, c->txlen);
	dump_stream("client read", c->rx.p + c->login_len, c->rx.len - c->login_len);
	for (int i = 0; i < H.npeers; i++)
		fprintf(stderr, "  server %d: in %zu, out %zu, txn %c, skip %d, copy %d\n", i,
			H.peers[i].pg.in.len, H.peers[i].pg.out.len, H.peers[i].pg.txn,
			H.peers[i].pg.skip, H.peers[i].pg.copy_in);
	for (int i = 0; i < H.npeers; i++) {
		const struct fp_bytes *r = &H.peers[i].raw;
		size_t start = r->len >= 4 ? (size_t)r->p[2] << 8 | r->p[3] : 0; /* < 64 KB */
		if (start <= r->len)
			dump_stream("server received", r->p + start, r->len - start);
	}
	abort();
}

static void startup_packet(struct fp_bytes *b, const char *user, const char *db)
{
	fpb_u32(b, 0);
	fpb_u32(b, 196608);
	fpb_str(b, "user");
	fpb_str(b, user);
	fpb_str(b, "database");
	fpb_str(b, db);
	fpb_u8(b, 0);
	uint32_t n = (uint32_t)b->len;
	uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	memcpy(b->p, len, 4);
}

/* An ErrorResponse's code and message, to tell Shoal's own errors apart. */
static void print_error_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && p[i];) {
		const char *v = (const char *)p + i + 1;
		size_t vl = strnlen(v, n - i - 1);
		if (p[i] == 'C' || p[i] == 'M')
			fprintf(stderr, "[%.*s]", (int)vl, v);
		i += vl + 2;
	}
}

/* The first difference, with the message types around it in both streams. */
static void report_difference(const uint8_t *got, size_t ngot, const uint8_t *want, size_t nwant,
			      const char *what)
{
	size_t i = 0;
	while (i < ngot && i < nwant && got[i] == want[i])
		i++;
	fprintf(stderr,
		"fuzz_session: MISMATCH (%s): got %zu bytes, expected %zu; first difference "
		"at byte %zu\n",
		what, ngot, nwant, i);
	for (int k = 0; k < 2; k++) {
		const uint8_t *p = k ? want : got;
		size_t n = k ? nwant : ngot, at = 0;
		fprintf(stderr, "  %s:", k ? "expected" : "got     ");
		while (n - at >= 5) {
			uint32_t len = (uint32_t)p[at + 1] << 24 | (uint32_t)p[at + 2] << 16 |
				       (uint32_t)p[at + 3] << 8 | p[at + 4];
			if (at + 200 > i && at < i + 200)
				fprintf(stderr, " %s%c(%u)", at <= i && i < at + len + 1 ? "*" : "",
					p[at] >= 32 && p[at] < 127 ? p[at] : '?', len);
			if (at + 200 > i && at < i + 200 && p[at] == 'E' && n - at > len)
				print_error_text(p + at + 5, len - 4);
			if (len < 4)
				break;
			at += (size_t)len + 1;
		}
		fprintf(stderr, "\n");
	}
	abort();
}

/* ReadyForQuery messages in a stream of backend messages. */
static size_t count_rfq(const uint8_t *p, size_t n)
{
	size_t count = 0;
	for (size_t at = 0; n - at >= 5;) {
		uint32_t len = (uint32_t)p[at + 1] << 24 | (uint32_t)p[at + 2] << 16 |
			       (uint32_t)p[at + 3] << 8 | p[at + 4];
		if (len < 4 || n - at - 1 < len)
			break;
		count += p[at] == 'Z';
		at += (size_t)len + 1;
	}
	return count;
}

static size_t rfq_count(const struct client_side *c)
{
	return count_rfq(c->rx.p + c->login_len, c->rx.len - c->login_len);
}

/* Whether what c read so far can still become want: a prefix of it, and not all of its
 * ReadyForQuery messages yet. */
static bool still_coming(const struct client_side *c, const struct fp_bytes *want)
{
	const uint8_t *got = c->rx.p + c->login_len;
	size_t n = c->rx.len - c->login_len;
	if (n > want->len || (n && memcmp(got, want->p, n) != 0))
		return false;
	return rfq_count(c) < count_rfq(want->p, want->len);
}

/* Step until c has logged in (want NULL), or has read want's length. No byte moving for
 * STALL_STEPS steps is a stall, unless what the client read already differs (the comparison
 * reports it). */
static void run_until(struct client_side *c, const char *phase, const struct fp_bytes *want)
{
	int idle = 0;
	for (;;) {
		if (!want) {
			find_login_end(c);
			if (c->login_len)
				return;
		} else if (c->txpos == c->txlen && c->rx.len - c->login_len >= want->len) {
			return;
		}
		if (c->eof)
			return; /* the comparison reports it */
		if (step()) {
			idle = 0;
		} else if (++idle >= STALL_STEPS) {
			if (want && !still_coming(c, want))
				return;
			stall(phase, c, want ? want->len : 0);
		}
	}
}

static void client_drop(struct client_side *c)
{
	close(c->fd);
	for (int i = 0; i < H.nclients; i++)
		if (H.clients[i] == c)
			H.clients[i--] = H.clients[--H.nclients];
	fpb_free(&c->rx);
}

/* Close the clients, then every server connection; Shoal must let go of both. */
static void settle(void)
{
	while (H.nclients)
		client_drop(H.clients[0]);
	for (int i = 0; i < 200 && H.w.n_clients > 0; i++)
		step();
	for (int i = 0; i < 20; i++)
		step();
	while (H.npeers)
		peer_close(H.npeers - 1);
	for (int i = 0; i < 20; i++)
		step();
	if (H.w.n_clients != 0) {
		fprintf(stderr, "fuzz_session: a client was not let go after it closed\n");
		abort();
	}
}

static void check_forwarding(const struct gen *g)
{
	if (H.npeers != 1)
		return;
	const struct peer *p = &H.peers[0];
	if (p->raw.len < 4)
		return;
	uint32_t startup = (uint32_t)p->raw.p[0] << 24 | (uint32_t)p->raw.p[1] << 16 |
			   (uint32_t)p->raw.p[2] << 8 | p->raw.p[3];
	if (startup > p->raw.len)
		return;
	const uint8_t *got = p->raw.p + startup;
	size_t ngot = p->raw.len - startup;
	if (ngot != g->out.len || memcmp(got, g->out.p, ngot) != 0)
		report_difference(got, ngot, g->out.p, g->out.len, "bytes the server received");
}

/* A client of the pool: connected, logged in, registered for step(). */
static void client_open(struct client_side *c, int mode, int ps, bool slow)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	struct sockaddr_storage addr = {.ss_family = AF_UNIX};
	if (!client_accept(&H.w, sv[1], &addr))
		abort();
	char user[16];
	snprintf(user, sizeof(user), "ps%d", ps_values[ps]);
	struct fp_bytes start = {0};
	startup_packet(&start, user, db_names[mode]);
	memset(c, 0, sizeof(*c));
	c->fd = sv[0];
	c->tx = start.p;
	c->txlen = start.len;
	c->slow = slow;
	H.clients[H.nclients++] = c;
	run_until(c, "login", NULL);
	if (!c->login_len)
		report_difference(c->rx.p, c->rx.len, NULL, 0, "the login did not finish");
	fpb_free(&start);
	c->tx = NULL;
	c->txlen = c->txpos = 0;
}

/* Run until c has read what it expects, a little more, and compare. */
static void client_check(struct client_side *c, const struct fp_bytes *want, const char *what)
{
	run_until(c, what, want);
	for (int i = 0; i < 20; i++) /* anything more would be a difference too */
		step();
	const uint8_t *got = c->rx.p + c->login_len;
	size_t ngot = c->rx.len - c->login_len;
	if (ngot != want->len || memcmp(got, want->p, ngot) != 0) {
		dump_stream("client sent", c->tx, c->txlen);
		for (int i = 0; i < H.npeers; i++) {
			const struct fp_bytes *r = &H.peers[i].raw;
			size_t start = r->len >= 4 ? (size_t)r->p[2] << 8 | r->p[3] : 0;
			if (start <= r->len)
				dump_stream("server received", r->p + start, r->len - start);
		}
		report_difference(got, ngot, want->p, want->len, what);
	}
}

/* Segments of a pipeline, each ending after a Sync (the last one at its end). */
struct segments {
	size_t *end, *out; /* byte offsets in the pipeline; bytes of the answer after it */
	size_t n;
};

/* What PostgreSQL answers to the pipeline, segment by segment. */
static void answer_directly(const struct fp_bytes *pipeline, struct fakepg *direct,
			    struct segments *seg)
{
	fakepg_init(direct, true);
	memset(seg, 0, sizeof(*seg));
	size_t cap = 16, from = 0;
	seg->end = malloc(cap * sizeof(size_t));
	seg->out = malloc(cap * sizeof(size_t));
	if (!seg->end || !seg->out)
		abort();
	for (size_t at = 0; at < pipeline->len;) {
		const uint8_t *p = pipeline->p + at;
		size_t len =
		    1 + ((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4]);
		at += len;
		if (p[0] != 'S' && at < pipeline->len)
			continue;
		if (seg->n == cap) {
			cap *= 2;
			seg->end = realloc(seg->end, cap * sizeof(size_t));
			seg->out = realloc(seg->out, cap * sizeof(size_t));
			if (!seg->end || !seg->out)
				abort();
		}
		fpb_put(&direct->in, pipeline->p + from, at - from);
		fakepg_process(direct, SIZE_MAX);
		seg->end[seg->n] = at;
		seg->out[seg->n++] = direct->out.len;
		from = at;
	}
}

static void segments_free(struct segments *seg)
{
	free(seg->end);
	free(seg->out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Called by libFuzzer only (not by replay.c): a fuzzing run, the CI's smoke run included, goes
 * past the known defects unless SHOAL_FUZZ_ALL is set; the replay of the corpus does not. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	past_known = true;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!H.ready)
		harness_init();
	if (size < 1)
		return 0;
	int mode = data[0] % 3, ps = (data[0] / 3) % 3;
	bool slow = (data[0] / 9) % 2;
	/* A client that sends the next Sync's worth only once the previous one is answered, as a
	 * client that does not pipeline: past the defects only pipelining shows. */
	bool lockstep = (data[0] / 36) % 2 || past_known;
	/* A second client with one query, waiting for the pool's only server: a server released
	 * before the first client's pipeline is answered would run it in the middle. */
	bool second = mode != V_SESSION && (data[0] / 18) % 2;
	struct gen g = {.p = data, .n = size, .pos = 1, .mode = mode};
	decode_pipeline(&g);
	struct fakepg direct, direct2;
	struct segments seg, seg2;
	answer_directly(&g.out, &direct, &seg);
	if (direct.out.len > MAX_EXPECTED) { /* too slow to be worth it */
		segments_free(&seg);
		fakepg_free(&direct);
		fpb_free(&g.out);
		return 0;
	}
	/* The second client's query runs in a named statement: a simple Query (or a Parse of the
	 * unnamed statement) would destroy the first client's unnamed statement on the server,
	 * which Shoal does not keep without max_prepared_statements (transaction pooling). */
	struct gen g2 = {.mode = mode};
	size_t m = fpb_begin(&g2.out, 'P');
	fpb_str(&g2.out, "c2");
	fpb_str(&g2.out, "rows 2 size 3");
	fpb_u16(&g2.out, 0);
	fpb_end(&g2.out, m);
	m = fpb_begin(&g2.out, 'B');
	fpb_str(&g2.out, "");
	fpb_str(&g2.out, "c2");
	fpb_u32(&g2.out, 0);
	fpb_u16(&g2.out, 0);
	fpb_end(&g2.out, m);
	m = fpb_begin(&g2.out, 'E');
	fpb_str(&g2.out, "");
	fpb_u32(&g2.out, 0);
	fpb_end(&g2.out, m);
	put_empty(&g2, 'S');
	answer_directly(&g2.out, &direct2, &seg2);

	config_set_current(&H.cfg[ps]);
	struct client_side c, c2;
	client_open(&c, mode, ps, slow);
	if (second)
		client_open(&c2, mode, ps, false);
	c.lockstep = lockstep;
	c.seg_end = seg.end;
	c.seg_out = seg.out;
	c.nseg = seg.n;
	c.tx = g.out.p;
	c.txlen = g.out.len;
	if (second) {
		c2.tx = g2.out.p;
		c2.txlen = g2.out.len;
	}
	client_check(&c, &direct.out, "the pipeline");
	if (mode == V_SESSION)
		check_forwarding(&g);
	if (second) {
		/* Done with a transaction and not pinned, the first client must have let the server
		 * go; otherwise it holds it until it leaves. */
		if (g.pins || direct.txn != 'I' || direct.copy_in)
			client_drop(&c);
		client_check(&c2, &direct2.out, "the second client's query");
	}
	settle();
	segments_free(&seg);
	segments_free(&seg2);
	fakepg_free(&direct);
	fakepg_free(&direct2);
	fpb_free(&g.out);
	fpb_free(&g2.out);
	/* What the caches keep goes after each input: libFuzzer counts it as leaked otherwise. */
	objcache_drain_all();
	buf_cache_drain();
	return 0;
}
