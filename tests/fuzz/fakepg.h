/* fakepg.h: a tiny deterministic PostgreSQL backend over byte buffers, for fuzz_session: the
 * same emulator answers Shoal's server connections and, as the oracle, the client's pipeline
 * directly. No I/O: bytes in, bytes out.
 *
 * Statement texts drive the answers (only their start is read; the rest may be padding):
 *   "rows N size M"  a result of N rows of one M-byte text column (N*M capped at 4 MB)
 *   "err..."         a syntax error at Parse (42601), or at once for a simple Query
 *   "fail..."        an error at Execute (22012)
 *   "begin" "commit" "rollback"   transaction control (status T / E / I)
 *   "copy out N"     CopyOutResponse, N CopyData rows, CopyDone
 *   "copy in"        CopyInResponse, then the client's CopyData until CopyDone / CopyFail
 *   ""               EmptyQueryResponse
 *   anything else    CommandComplete with the first word upper-cased (SET, DISCARD, ...)
 * As PostgreSQL: named statements live until closed (a second Parse of a name is 42P05), portals
 * until the transaction ends, an error in the extended protocol skips messages until Sync, Sync
 * and Flush are ignored in COPY FROM STDIN, stray CopyData/CopyDone/CopyFail are ignored. Error
 * messages never contain a statement or portal name, since Shoal may rename statements. */
#ifndef SHOAL_FAKEPG_H
#define SHOAL_FAKEPG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fp_bytes {
	uint8_t *p;
	size_t len, cap;
};

void fpb_put(struct fp_bytes *b, const void *p, size_t n);
/* Append n bytes (uninitialised) and return where they start. */
uint8_t *fpb_grow(struct fp_bytes *b, size_t n);
/* Append n letters, a pattern that depends on seed. */
void fpb_fill(struct fp_bytes *b, size_t n, uint32_t seed);
void fpb_u8(struct fp_bytes *b, uint8_t v);
void fpb_u16(struct fp_bytes *b, uint16_t v);
void fpb_u32(struct fp_bytes *b, uint32_t v);
void fpb_str(struct fp_bytes *b, const char *s);
/* Drop the first n bytes. */
void fpb_consume(struct fp_bytes *b, size_t n);
void fpb_free(struct fp_bytes *b);
/* A message: type byte, then a length placeholder that fpb_end fills. Returns its offset. */
size_t fpb_begin(struct fp_bytes *b, uint8_t type);
void fpb_end(struct fp_bytes *b, size_t start);

struct fp_stmt;
struct fp_portal;

struct fakepg {
	struct fp_bytes in, out;
	bool started;  /* the startup packet was answered (the oracle starts so) */
	bool closed;   /* Terminate received, or a protocol violation: PostgreSQL would close */
	char txn;      /* 'I', 'T' or 'E' */
	bool skip;     /* an error in the extended protocol: ignore messages until Sync */
	bool copy_in;  /* in COPY FROM STDIN */
	bool copy_ext; /* ... started by Execute (else by a simple Query) */
	uint32_t copy_rows;
	struct fp_stmt *stmts;
	struct fp_portal *portals;
	uint64_t messages; /* frontend messages handled after the startup */
};

void fakepg_init(struct fakepg *f, bool started);
void fakepg_free(struct fakepg *f);
/* Handle the complete messages in f->in, appending the answers to f->out, and stop early once
 * f->out holds more than out_limit bytes (as PostgreSQL stops reading while it cannot write). */
void fakepg_process(struct fakepg *f, size_t out_limit);

#endif
