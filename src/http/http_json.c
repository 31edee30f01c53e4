/* http_json.c: JSON output helpers. */
#include "http_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void json_text(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void json_str(struct buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			buf_append(b, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			buf_append(b, esc, 6);
		} else {
			buf_append(b, p, 1);
		}
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
