/* http_json.h: appending JSON to a buffer, for the health and dashboard endpoints. */
#ifndef SHOAL_HTTP_JSON_H
#define SHOAL_HTTP_JSON_H

#include "buf.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if the bytes there are not one. */
size_t utf8_seq_len(const unsigned char *p, size_t avail);
#define UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD, written for each byte that is not UTF-8 */

/* Raw text, as is. */
void json_text(struct buf *b, const char *s);
/* A string literal with JSON escapes (control bytes as \u00XX). */
void json_str(struct buf *b, const char *s);
/* "key":value pairs; comma: append a ',' after. */
void json_kv_str(struct buf *b, const char *key, const char *v, bool comma);
void json_kv_int(struct buf *b, const char *key, long long v, bool comma);
void json_kv_num(struct buf *b, const char *key, double v, bool comma);
void json_kv_bool(struct buf *b, const char *key, bool v, bool comma);

#endif
