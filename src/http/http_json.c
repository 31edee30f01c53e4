/* http_json.c: JSON output helpers. */
#include "http_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
	static const struct {
		unsigned char lo, hi, mask;
		size_t n;
		uint32_t min; /* smallest code point of this length: anything below is overlong */
	} leads[] = {{0xC2, 0xDF, 0x1F, 2, 0x80},
		     {0xE0, 0xEF, 0x0F, 3, 0x800},
		     {0xF0, 0xF4, 0x07, 4, 0x10000}};
	if (p[0] < 0x80)
		return 1;
	for (size_t k = 0; k < ARRAY_LEN(leads); k++) {
		if (p[0] < leads[k].lo || p[0] > leads[k].hi)
			continue;
		size_t n = leads[k].n;
		if (avail < n)
			return 0;
		uint32_t cp = p[0] & leads[k].mask;
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3F);
		}
		bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
		return cp < leads[k].min || surrogate || cp > 0x10FFFF ? 0 : n;
	}
	return 0;
}

void json_text(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void json_str(struct buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	while (left > 0) {
		char esc[8];
		size_t n = utf8_seq_len(p, left);
		if (n == 0) {
			json_text(b, UTF8_REPLACEMENT);
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			buf_append(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			buf_append(b, esc, 6);
		} else {
			buf_append(b, p, n);
		}
		p += n;
		left -= n;
	}
	buf_append(b, "\"", 1);
}

static void key(struct buf *b, const char *k)
{
	json_str(b, k);
	buf_append(b, ":", 1);
}

void json_kv_str(struct buf *b, const char *k, const char *v, bool comma)
{
	key(b, k);
	json_str(b, v ? v : "");
	if (comma)
		buf_append(b, ",", 1);
}

void json_kv_int(struct buf *b, const char *k, long long v, bool comma)
{
	char n[32];
	key(b, k);
	snprintf(n, sizeof(n), "%lld%s", v, comma ? "," : "");
	json_text(b, n);
}

void json_kv_num(struct buf *b, const char *k, double v, bool comma)
{
	char n[48];
	key(b, k);
	snprintf(n, sizeof(n), "%.3f%s", isfinite(v) ? v : 0.0, comma ? "," : "");
	json_text(b, n);
}

void json_kv_bool(struct buf *b, const char *k, bool v, bool comma)
{
	key(b, k);
	json_text(b, v ? "true" : "false");
	if (comma)
		buf_append(b, ",", 1);
}
