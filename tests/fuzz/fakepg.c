/* fakepg.c: the tiny deterministic PostgreSQL backend of fuzz_session (see fakepg.h). */
#include "fakepg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FP_MAX_RESULT (4u << 20) /* rows * size of one result */
#define FP_TYPE_TEXT  25

enum plan_kind {
	P_ROWS,
	P_ERR,
	P_FAIL,
	P_BEGIN,
	P_COMMIT,
	P_ROLLBACK,
	P_COPY_OUT,
	P_COPY_IN,
	P_EMPTY,
	P_OTHER
};

struct plan {
	enum plan_kind kind;
	uint32_t rows, size;
	char tag[16]; /* P_OTHER: the CommandComplete tag */
};

struct fp_stmt {
	struct fp_stmt *next;
	char *name;
	struct plan plan;
	uint16_t nparams;
};

struct fp_portal {
	struct fp_portal *next;
	char *name;
	struct plan plan;
	uint32_t pos; /* rows sent so far */
};

/* ---- byte buffers ------------------------------------------------------------------------ */

uint8_t *fpb_grow(struct fp_bytes *b, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	b->len += n;
	return b->p + b->len - n;
}

void fpb_put(struct fp_bytes *b, const void *p, size_t n)
{
	uint8_t *d = fpb_grow(b, n);
	if (n)
		memcpy(d, p, n);
}

void fpb_fill(struct fp_bytes *b, size_t n, uint32_t seed)
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";
	uint8_t *p = fpb_grow(b, n);
	for (size_t k = 0; k < n;) {
		size_t off = (seed + k) % 26, chunk = n - k < 26 ? n - k : 26;
		memcpy(p + k, letters + off, chunk);
		k += chunk;
	}
}

void fpb_u8(struct fp_bytes *b, uint8_t v)
{
	fpb_put(b, &v, 1);
}

void fpb_u16(struct fp_bytes *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	fpb_put(b, x, 2);
}

void fpb_u32(struct fp_bytes *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	fpb_put(b, x, 4);
}

void fpb_str(struct fp_bytes *b, const char *s)
{
	fpb_put(b, s, strlen(s) + 1);
}

void fpb_consume(struct fp_bytes *b, size_t n)
{
	if (n == 0)
		return;
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

void fpb_free(struct fp_bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

size_t fpb_begin(struct fp_bytes *b, uint8_t type)
{
	fpb_u8(b, type);
	size_t start = b->len;
	fpb_u32(b, 0);
	return start;
}

void fpb_end(struct fp_bytes *b, size_t start)
{
	uint32_t n = (uint32_t)(b->len - start);
	b->p[start] = (uint8_t)(n >> 24);
	b->p[start + 1] = (uint8_t)(n >> 16);
	b->p[start + 2] = (uint8_t)(n >> 8);
	b->p[start + 3] = (uint8_t)n;
}

/* ---- a message's body ---------------------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n, pos;
	bool err;
};

static const char *rd_str(struct rd *r)
{
	const uint8_t *z = r->pos < r->n ? memchr(r->p + r->pos, 0, r->n - r->pos) : NULL;
	if (!z) {
		r->err = true;
		return "";
	}
	const char *s = (const char *)r->p + r->pos;
	r->pos = (size_t)(z - r->p) + 1;
	return s;
}

static uint32_t rd_u32(struct rd *r)
{
	if (r->n - r->pos < 4) {
		r->err = true;
		r->pos = r->n;
		return 0;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += 4;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd_u16(struct rd *r)
{
	if (r->n - r->pos < 2) {
		r->err = true;
		r->pos = r->n;
		return 0;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += 2;
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint8_t rd_u8(struct rd *r)
{
	if (r->pos >= r->n) {
		r->err = true;
		return 0;
	}
	return r->p[r->pos++];
}

static void rd_skip(struct rd *r, size_t n)
{
	if (r->n - r->pos < n) {
		r->err = true;
		r->pos = r->n;
	} else {
		r->pos += n;
	}
}

/* ---- statement texts ----------------------------------------------------------------------- */

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static struct plan plan_of(const char *text)
{
	struct plan p = {.kind = P_OTHER};
	unsigned a = 0, b = 0;
	if (sscanf(text, "rows %u size %u", &a, &b) == 2) {
		p.kind = P_ROWS;
		p.size = b > FP_MAX_RESULT ? FP_MAX_RESULT : b;
		p.rows = p.size && a > FP_MAX_RESULT / p.size ? FP_MAX_RESULT / p.size : a;
		if (p.rows > 100000)
			p.rows = 100000;
	} else if (starts(text, "err")) {
		p.kind = P_ERR;
	} else if (starts(text, "fail")) {
		p.kind = P_FAIL;
	} else if (!strcmp(text, "begin")) {
		p.kind = P_BEGIN;
	} else if (!strcmp(text, "commit")) {
		p.kind = P_COMMIT;
	} else if (!strcmp(text, "rollback")) {
		p.kind = P_ROLLBACK;
	} else if (sscanf(text, "copy out %u", &a) == 1) {
		p.kind = P_COPY_OUT;
		p.rows = a > 10000 ? 10000 : a;
	} else if (starts(text, "copy in")) {
		p.kind = P_COPY_IN;
	} else if (!*text) {
		p.kind = P_EMPTY;
	} else {
		size_t i = 0;
		for (; text[i] && text[i] != ' ' && text[i] != ';' && i < sizeof(p.tag) - 1; i++)
			p.tag[i] =
			    (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
	}
	return p;
}

static bool returns_rows(const struct plan *p)
{
	return p->kind == P_ROWS;
}

/* ---- answers ------------------------------------------------------------------------------- */

static void send_error_at(struct fakepg *f, const char *severity, const char *code,
			  const char *msg)
{
	size_t m = fpb_begin(&f->out, 'E');
	fpb_u8(&f->out, 'S');
	fpb_str(&f->out, severity);
	fpb_u8(&f->out, 'V');
	fpb_str(&f->out, severity);
	fpb_u8(&f->out, 'C');
	fpb_str(&f->out, code);
	fpb_u8(&f->out, 'M');
	fpb_str(&f->out, msg);
	fpb_u8(&f->out, 0);
	fpb_end(&f->out, m);
	if (f->txn == 'T')
		f->txn = 'E';
}

static void send_error(struct fakepg *f, const char *code, const char *msg)
{
	send_error_at(f, "ERROR", code, msg);
}

static void send_notice(struct fakepg *f, const char *code, const char *msg)
{
	size_t m = fpb_begin(&f->out, 'N');
	fpb_u8(&f->out, 'S');
	fpb_str(&f->out, "WARNING");
	fpb_u8(&f->out, 'C');
	fpb_str(&f->out, code);
	fpb_u8(&f->out, 'M');
	fpb_str(&f->out, msg);
	fpb_u8(&f->out, 0);
	fpb_end(&f->out, m);
}

static void send_empty(struct fakepg *f, uint8_t type)
{
	fpb_end(&f->out, fpb_begin(&f->out, type));
}

static void send_complete(struct fakepg *f, const char *tag)
{
	size_t m = fpb_begin(&f->out, 'C');
	fpb_str(&f->out, tag);
	fpb_end(&f->out, m);
}

static void send_rfq(struct fakepg *f)
{
	size_t m = fpb_begin(&f->out, 'Z');
	fpb_u8(&f->out, (uint8_t)f->txn);
	fpb_end(&f->out, m);
}

static void send_row_description(struct fakepg *f)
{
	size_t m = fpb_begin(&f->out, 'T');
	fpb_u16(&f->out, 1);
	fpb_str(&f->out, "c");
	fpb_u32(&f->out, 0);
	fpb_u16(&f->out, 0);
	fpb_u32(&f->out, FP_TYPE_TEXT);
	fpb_u16(&f->out, 0xffff);
	fpb_u32(&f->out, 0xffffffffu);
	fpb_u16(&f->out, 0);
	fpb_end(&f->out, m);
}

static void send_describe(struct fakepg *f, const struct plan *p)
{
	if (returns_rows(p))
		send_row_description(f);
	else
		send_empty(f, 'n'); /* NoData */
}

static void send_rows(struct fakepg *f, uint32_t from, uint32_t to, uint32_t size)
{
	for (uint32_t i = from; i < to; i++) {
		size_t m = fpb_begin(&f->out, 'D');
		fpb_u16(&f->out, 1);
		fpb_u32(&f->out, size);
		fpb_fill(&f->out, size, i);
		fpb_end(&f->out, m);
	}
}

static void send_copy_response(struct fakepg *f, uint8_t type)
{
	size_t m = fpb_begin(&f->out, type);
	fpb_u8(&f->out, 0);
	fpb_u16(&f->out, 1);
	fpb_u16(&f->out, 0);
	fpb_end(&f->out, m);
}

static void send_copy_out(struct fakepg *f, uint32_t rows)
{
	send_copy_response(f, 'H');
	for (uint32_t i = 0; i < rows; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "%u\n", i);
		size_t m = fpb_begin(&f->out, 'd');
		fpb_put(&f->out, line, (size_t)n);
		fpb_end(&f->out, m);
	}
	send_empty(f, 'c');
	char tag[32];
	snprintf(tag, sizeof(tag), "COPY %u", rows);
	send_complete(f, tag);
}

/* ---- statements and portals ---------------------------------------------------------------- */

static struct fp_stmt **find_stmt(struct fakepg *f, const char *name)
{
	struct fp_stmt **s = &f->stmts;
	while (*s && strcmp((*s)->name, name) != 0)
		s = &(*s)->next;
	return s;
}

static struct fp_portal **find_portal(struct fakepg *f, const char *name)
{
	struct fp_portal **p = &f->portals;
	while (*p && strcmp((*p)->name, name) != 0)
		p = &(*p)->next;
	return p;
}

static void drop_stmt(struct fakepg *f, const char *name)
{
	struct fp_stmt **s = find_stmt(f, name), *x = *s;
	if (!x)
		return;
	*s = x->next;
	free(x->name);
	free(x);
}

static void drop_portal(struct fakepg *f, const char *name)
{
	struct fp_portal **p = find_portal(f, name), *x = *p;
	if (!x)
		return;
	*p = x->next;
	free(x->name);
	free(x);
}

static void drop_portals(struct fakepg *f)
{
	while (f->portals)
		drop_portal(f, f->portals->name);
}

static char *dup_str(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

/* The transaction ends at Sync or after a simple Query, unless a block is open. */
static void end_of_command(struct fakepg *f)
{
	if (f->txn == 'I')
		drop_portals(f);
}

/* An aborted transaction block accepts only its end. */
static bool aborted(struct fakepg *f, const struct plan *p)
{
	if (f->txn != 'E' || p->kind == P_COMMIT || p->kind == P_ROLLBACK)
		return false;
	send_error(
	    f, "25P02",
	    "current transaction is aborted, commands ignored until end of transaction block");
	return true;
}

/* Run a plan up to max_rows rows (0: all) from *pos. Returns false on an error. */
static bool run_plan(struct fakepg *f, const struct plan *p, uint32_t *pos, uint32_t max_rows,
		     bool simple)
{
	char tag[48];
	switch (p->kind) {
	case P_ROWS: {
		uint32_t end = p->rows;
		bool suspend = max_rows && p->rows - *pos > max_rows;
		if (suspend)
			end = *pos + max_rows;
		if (simple)
			send_row_description(f);
		send_rows(f, *pos, end, p->size);
		uint32_t n = end - *pos;
		*pos = end;
		if (suspend) {
			send_empty(f, 's'); /* PortalSuspended */
			return true;
		}
		snprintf(tag, sizeof(tag), "SELECT %u", n);
		send_complete(f, tag);
		return true;
	}
	case P_ERR:
		send_error(f, "42601", "syntax error at or near \"err\"");
		return false;
	case P_FAIL:
		send_error(f, "22012", "division by zero");
		return false;
	case P_BEGIN:
		if (f->txn != 'I')
			send_notice(f, "25001", "there is already a transaction in progress");
		f->txn = 'T';
		send_complete(f, "BEGIN");
		return true;
	case P_COMMIT:
	case P_ROLLBACK:
		if (f->txn == 'I')
			send_notice(f, "25P01", "there is no transaction in progress");
		send_complete(f, p->kind == P_COMMIT && f->txn != 'E' ? "COMMIT" : "ROLLBACK");
		f->txn = 'I';
		return true;
	case P_COPY_OUT:
		send_copy_out(f, p->rows);
		return true;
	case P_COPY_IN:
		send_copy_response(f, 'G');
		f->copy_in = true;
		f->copy_ext = !simple;
		f->copy_rows = 0;
		return true;
	case P_EMPTY:
		send_empty(f, 'I');
		return true;
	case P_OTHER:
		send_complete(f, p->tag);
		return true;
	}
	return true;
}

/* ---- frontend messages --------------------------------------------------------------------- */

static void on_parse(struct fakepg *f, struct rd *r)
{
	const char *name = rd_str(r);
	struct plan p = plan_of(rd_str(r));
	uint16_t n = rd_u16(r);
	rd_skip(r, 4u * n);
	if (!*name) /* PostgreSQL drops the unnamed statement first, even if this Parse fails */
		drop_stmt(f, "");
	if (aborted(f, &p))
		return;
	if (p.kind == P_ERR) {
		run_plan(f, &p, &(uint32_t){0}, 0, false);
		return;
	}
	if (*name && *find_stmt(f, name)) {
		send_error(f, "42P05", "prepared statement already exists");
		return;
	}
	drop_stmt(f, name);
	struct fp_stmt *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->name = dup_str(name);
	s->plan = p;
	s->nparams = n;
	s->next = f->stmts;
	f->stmts = s;
	send_empty(f, '1');
}

static void on_bind(struct fakepg *f, struct rd *r)
{
	const char *portal = rd_str(r);
	const char *stmt = rd_str(r);
	uint16_t nfmt = rd_u16(r);
	rd_skip(r, 2u * nfmt);
	uint16_t nparams = rd_u16(r);
	for (unsigned i = 0; i < nparams && !r->err; i++) {
		uint32_t len = rd_u32(r);
		if (len != 0xffffffffu)
			rd_skip(r, len);
	}
	struct fp_stmt *s = *find_stmt(f, stmt);
	if (!s) {
		send_error(f, "26000", "prepared statement does not exist");
		return;
	}
	if (aborted(f, &s->plan))
		return;
	if (nparams != s->nparams) {
		send_error(f, "08P01", "bind message supplies the wrong number of parameters");
		return;
	}
	if (*portal && *find_portal(f, portal)) {
		send_error(f, "42P03", "cursor already exists");
		return;
	}
	drop_portal(f, portal);
	struct fp_portal *p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->name = dup_str(portal);
	p->plan = s->plan;
	p->next = f->portals;
	f->portals = p;
	send_empty(f, '2');
}

static void on_describe(struct fakepg *f, struct rd *r)
{
	uint8_t what = rd_u8(r);
	const char *name = rd_str(r);
	/* In an aborted transaction block, PostgreSQL describes only what returns no rows. */
	static const struct plan rows = {.kind = P_ROWS};
	if (what == 'S') {
		struct fp_stmt *s = *find_stmt(f, name);
		if (!s) {
			send_error(f, "26000", "prepared statement does not exist");
			return;
		}
		if (returns_rows(&s->plan) && aborted(f, &rows))
			return;
		size_t m = fpb_begin(&f->out, 't');
		fpb_u16(&f->out, s->nparams);
		for (unsigned i = 0; i < s->nparams; i++)
			fpb_u32(&f->out, FP_TYPE_TEXT);
		fpb_end(&f->out, m);
		send_describe(f, &s->plan);
		return;
	}
	struct fp_portal *p = *find_portal(f, name);
	if (!p) {
		send_error(f, "34000", "portal does not exist");
		return;
	}
	if (returns_rows(&p->plan) && aborted(f, &rows))
		return;
	send_describe(f, &p->plan);
}

static void on_execute(struct fakepg *f, struct rd *r)
{
	const char *name = rd_str(r);
	uint32_t max_rows = rd_u32(r);
	struct fp_portal *p = *find_portal(f, name);
	if (!p) {
		send_error(f, "34000", "portal does not exist");
		return;
	}
	if (aborted(f, &p->plan))
		return;
	if (!run_plan(f, &p->plan, &p->pos, max_rows, false))
		f->skip = true;
}

static void on_close(struct fakepg *f, struct rd *r)
{
	uint8_t what = rd_u8(r);
	const char *name = rd_str(r);
	if (what == 'S')
		drop_stmt(f, name);
	else
		drop_portal(f, name);
	send_empty(f, '3');
}

static void on_query(struct fakepg *f, struct rd *r)
{
	struct plan p = plan_of(rd_str(r));
	drop_stmt(f, "");
	drop_portal(f, "");
	if (!aborted(f, &p)) {
		uint32_t pos = 0;
		run_plan(f, &p, &pos, 0, true);
		if (f->copy_in)
			return; /* ReadyForQuery after CopyDone or CopyFail */
	}
	end_of_command(f);
	send_rfq(f);
}

/* In COPY FROM STDIN: data, its end, its failure; Sync and Flush are ignored; anything else
 * fails the COPY and, as in PostgreSQL 15 (which raised the error between the message's type
 * byte and its body), closes the connection. */
static void on_copy_message(struct fakepg *f, uint8_t type)
{
	char tag[32];
	switch (type) {
	case 'd':
		f->copy_rows++;
		return;
	case 'H':
	case 'S':
		return;
	case 'c':
		f->copy_in = false;
		snprintf(tag, sizeof(tag), "COPY %u", f->copy_rows);
		send_complete(f, tag);
		break;
	case 'f':
		f->copy_in = false;
		send_error(f, "57014", "COPY from stdin failed");
		break;
	default: /* PostgreSQL has read the type byte but not the body: it cannot resync */
		f->copy_in = false;
		send_error(f, "08P01", "unexpected message type during COPY from stdin");
		send_error_at(f, "FATAL", "08P01",
			      "terminating connection because protocol synchronization was lost");
		f->closed = true;
		return;
	}
	if (f->copy_ext) {
		f->skip = type != 'c';
	} else {
		end_of_command(f);
		send_rfq(f);
	}
}

static void on_message(struct fakepg *f, uint8_t type, struct rd *r)
{
	f->messages++;
	if (f->copy_in) {
		on_copy_message(f, type);
		return;
	}
	if (type == 'S') {
		f->skip = false;
		end_of_command(f);
		send_rfq(f);
		return;
	}
	if (f->skip)
		return;
	switch (type) {
	case 'P':
		on_parse(f, r);
		break;
	case 'B':
		on_bind(f, r);
		break;
	case 'D':
		on_describe(f, r);
		break;
	case 'E':
		on_execute(f, r);
		break;
	case 'C':
		on_close(f, r);
		break;
	case 'Q':
		on_query(f, r);
		break;
	case 'H':
		break;
	case 'd':
	case 'c':
	case 'f':
		break; /* outside COPY: ignored, as PostgreSQL does */
	case 'X':
		f->closed = true;
		break;
	default:
		send_error(f, "08P01", "invalid frontend message type");
		f->closed = true;
		break;
	}
}

/* ---- startup ------------------------------------------------------------------------------- */

static void send_param(struct fakepg *f, const char *name, const char *value)
{
	size_t m = fpb_begin(&f->out, 'S');
	fpb_str(&f->out, name);
	fpb_str(&f->out, value);
	fpb_end(&f->out, m);
}

static void on_startup(struct fakepg *f, uint32_t code)
{
	if (code == 80877103u || code == 80877104u) { /* SSLRequest, GSSENCRequest */
		fpb_u8(&f->out, 'N');
		return;
	}
	size_t m = fpb_begin(&f->out, 'R');
	fpb_u32(&f->out, 0);
	fpb_end(&f->out, m);
	static const char *const params[][2] = {
	    {"server_version", "16.0"},  {"server_encoding", "UTF8"},
	    {"client_encoding", "UTF8"}, {"DateStyle", "ISO, MDY"},
	    {"standard_conforming_strings", "on"}, {"integer_datetimes", "on"},
	};
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		send_param(f, params[i][0], params[i][1]);
	m = fpb_begin(&f->out, 'K');
	fpb_u32(&f->out, 4242);
	fpb_u32(&f->out, 0x5eed);
	fpb_end(&f->out, m);
	f->started = true;
	send_rfq(f);
}

void fakepg_init(struct fakepg *f, bool started)
{
	memset(f, 0, sizeof(*f));
	f->started = started;
	f->txn = 'I';
}

void fakepg_free(struct fakepg *f)
{
	while (f->stmts)
		drop_stmt(f, f->stmts->name);
	drop_portals(f);
	fpb_free(&f->in);
	fpb_free(&f->out);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void fakepg_process(struct fakepg *f, size_t out_limit)
{
	size_t at = 0;
	while (f->in.len > at && !f->closed && f->out.len <= out_limit) {
		const uint8_t *p = f->in.p + at;
		size_t avail = f->in.len - at;
		if (!f->started) {
			if (avail < 8 || avail < be32(p))
				break;
			uint32_t len = be32(p);
			on_startup(f, be32(p + 4));
			at += len < 8 ? 8 : len;
			continue;
		}
		if (avail < 5)
			break;
		uint32_t len = be32(p + 1);
		if (len < 4) {
			f->closed = true;
			break;
		}
		if (avail - 1 < len)
			break;
		struct rd r = {.p = p + 5, .n = len - 4};
		size_t before = f->out.len;
		bool extended = strchr("PBDEC", p[0]) != NULL && !f->copy_in;
		on_message(f, p[0], &r);
		/* An ErrorResponse answering an extended-protocol message starts the skip. */
		if (extended && f->out.len > before && f->out.p[before] == 'E')
			f->skip = true;
		at += (size_t)len + 1;
	}
	fpb_consume(&f->in, at);
}
