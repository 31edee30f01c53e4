/* fuzz_client.c: libFuzzer target for the bytes a client sends: the startup packet, then the
 * message stream (headers, size caps, bodies read with pq_reader), plus the error/parameter
 * parsers. Every piece is copied into an exactly-sized heap buffer first, so that ASan catches a
 * read one byte past what the parser was given, not just past the whole input. */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static uint8_t *copy_exact(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

/* Touch what a parser returned: the string must be NUL-terminated inside [base, base + n). */
static void touch_str(const char *s, const uint8_t *base, size_t n)
{
	if (!s)
		return;
	if ((const uint8_t *)s < base || (const uint8_t *)s >= base + n)
		abort();
	size_t len = strlen(s);
	if ((const uint8_t *)s + len >= base + n)
		abort();
	sink += len;
}

/* A NORMAL startup packet must be rebuilt byte for byte from what the parser extracted. */
static void check_startup_round_trip(const struct startup_msg *m, const uint8_t *pkt, size_t n)
{
	struct buf b = {0};
	proto_begin(&b, 0);
	proto_put_u32(&b, m->code);
	for (int i = 0; i < m->nparams; i++) {
		proto_put_str(&b, m->params[i].name);
		proto_put_str(&b, m->params[i].value);
	}
	proto_put_u8(&b, 0);
	proto_finish(&b);
	if (buf_avail(&b) != n || memcmp(buf_head(&b), pkt, n) != 0)
		abort();
	buf_free(&b);
}

/* The first packet, as the daemon would read it: its declared length, capped. */
static size_t fuzz_startup(const uint8_t *data, size_t size)
{
	size_t len = size;
	if (size >= 4) {
		size_t declared = ((size_t)data[0] << 24) | ((size_t)data[1] << 16) |
				  ((size_t)data[2] << 8) | data[3];
		len = declared < 4 ? 4 : declared;
		if (len > PQ_MAX_STARTUP)
			len = PQ_MAX_STARTUP;
		if (len > size)
			len = size;
	}
	uint8_t *pkt = copy_exact(data, len);
	struct startup_msg m;
	proto_parse_startup(pkt, len, &m);
	if ((m.kind == STARTUP_INVALID) != (m.error != NULL) || m.nparams > PQ_MAX_STARTUP_PARAMS)
		abort();
	for (int i = 0; i < m.nparams; i++) {
		touch_str(m.params[i].name, pkt, len);
		touch_str(m.params[i].value, pkt, len);
	}
	if (m.kind == STARTUP_NORMAL)
		check_startup_round_trip(&m, pkt, len);
	/* A CancelRequest's key (4 to 256 bytes since protocol 3.2) ends where the packet does;
	 * anything else carries no key. */
	if (m.kind == STARTUP_CANCEL) {
		if (!m.cancel_key || m.cancel_key_len < PQ_CANCEL_KEY_MIN ||
		    m.cancel_key_len > PQ_CANCEL_KEY_MAX ||
		    m.cancel_key + m.cancel_key_len != pkt + len)
			abort();
		sink += m.cancel_key[0] + m.cancel_key[m.cancel_key_len - 1];
		struct buf b = {0}; /* and is written back byte for byte */
		proto_write_cancel(&b, m.cancel_pid, m.cancel_key, m.cancel_key_len);
		if (buf_avail(&b) != len || memcmp(buf_head(&b), pkt, len) != 0)
			abort();
		buf_free(&b);
	} else if (m.cancel_key || m.cancel_key_len) {
		abort();
	}
	free(pkt);
	return len;
}

static void fuzz_error_and_param(const uint8_t *body, size_t n)
{
	struct pq_error e;
	if (proto_parse_error(body, n, &e) == SHOAL_OK) {
		touch_str(e.severity, body, n);
		touch_str(e.severity_nl, body, n);
		touch_str(e.sqlstate, body, n);
		touch_str(e.message, body, n);
		touch_str(e.detail, body, n);
	}
	const char *name, *value;
	if (proto_parse_param(body, n, &name, &value) != SHOAL_OK)
		return;
	struct buf b = {0};
	proto_write_param(&b, name, value);
	if (buf_avail(&b) != n + 5 || memcmp(buf_head(&b) + 5, body, n) != 0)
		abort();
	buf_free(&b);
}

/* PasswordMessage, SASLInitialResponse or SASLResponse: the body does not say which. */
static void fuzz_password(const uint8_t *body, size_t n)
{
	struct pq_reader r;
	pqr_init(&r, body, n);
	touch_str(pqr_cstr(&r), body, n);
	uint32_t dlen = pqr_u32(&r);
	const uint8_t *d = dlen == 0xffffffffu ? NULL : pqr_bytes(&r, dlen);
	if (d && dlen)
		sink += d[0] + d[dlen - 1];
	pqr_init(&r, body, n);
	const uint8_t *all = pqr_bytes(&r, n);
	if (all && n)
		sink += all[n - 1];
}

/* Parse and Bind walk counts and lengths taken from the body. */
static void fuzz_extended(uint8_t type, const uint8_t *body, size_t n)
{
	struct pq_reader r;
	pqr_init(&r, body, n);
	touch_str(pqr_cstr(&r), body, n);
	touch_str(pqr_cstr(&r), body, n);
	uint16_t count = pqr_u16(&r);
	for (unsigned i = 0; i < count && !r.err; i++)
		sink += type == PQMSG_PARSE ? pqr_u32(&r) : pqr_u16(&r);
	if (type != PQMSG_BIND)
		return;
	count = pqr_u16(&r);
	for (unsigned i = 0; i < count && !r.err; i++) {
		uint32_t len = pqr_u32(&r);
		if (len != 0xffffffffu && pqr_bytes(&r, len) && len)
			sink += body[r.pos - 1];
	}
	count = pqr_u16(&r);
	for (unsigned i = 0; i < count && !r.err; i++)
		sink += pqr_u16(&r);
	sink += pqr_u8(&r); /* past the end: must fail cleanly */
}

static void fuzz_body(uint8_t type, const uint8_t *body, size_t n)
{
	struct pq_reader r;
	switch (type) {
	case PQMSG_QUERY:
		pqr_init(&r, body, n);
		touch_str(pqr_cstr(&r), body, n);
		sink += r.pos == n;
		break;
	case PQMSG_PASSWORD:
		fuzz_password(body, n);
		break;
	case PQMSG_PARSE:
	case PQMSG_BIND:
		fuzz_extended(type, body, n);
		break;
	default:
		break;
	}
	fuzz_error_and_param(body, n);
}

/* After login: header, cap check, then the body, until the bytes run out or the stream would be
 * closed (unknown type, length over the cap). */
static void fuzz_stream(const uint8_t *p, size_t n)
{
	struct pq_header h;
	while (proto_header(p, n, &h) == SHOAL_OK) {
		uint32_t cap = proto_client_msg_cap(h.type);
		if (cap == 0 || h.len > cap || (size_t)h.len + 1 > n)
			return;
		uint8_t *body = copy_exact(p + PQ_HEADER_LEN, h.len - 4);
		fuzz_body(h.type, body, h.len - 4);
		free(body);
		p += (size_t)h.len + 1;
		n -= (size_t)h.len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t used = fuzz_startup(data, size);
	fuzz_stream(data + used, size - used);
	uint8_t *whole = copy_exact(data, size);
	fuzz_error_and_param(whole, size);
	free(whole);
	return 0;
}
