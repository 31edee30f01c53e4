/* http_parse.c: a strict parser for small HTTP/1.x request heads (RFC 9112 §2-§6). Lines end in
 * CRLF or a bare LF (§2.2 allows accepting LF); anything else outside the grammar, a NUL or a
 * control byte included, is a 400. Bodies are refused: Shoal's endpoints take none. */
#include "http_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct line {
	const char *p;
	size_t len;
};

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Find the end of the head: the index just past the empty line, or 0 if there is none yet. */
static size_t head_end(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < len && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Cut the next line off *p (without its CR LF); false at the end. */
static bool next_line(const char **p, const char *end, struct line *out)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl)
		return false;
	out->p = *p;
	out->len = (size_t)(nl - *p);
	if (out->len && out->p[out->len - 1] == '\r')
		out->len--;
	*p = nl + 1;
	return true;
}

static enum http_parse_rc parse_version(const char *v, size_t n, struct http_request *req)
{
	if (n == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1')) {
		req->minor = v[7] - '0';
		req->keep_alive = req->minor == 1;
		return HTTP_DONE;
	}
	if (n >= 5 && memcmp(v, "HTTP/", 5) == 0)
		return HTTP_BAD_VERSION;
	return HTTP_BAD_REQUEST;
}

/* origin-form target: '/' then visible ASCII (no controls, spaces or DEL). */
static enum http_parse_rc parse_target(const char *t, size_t n, struct http_request *req)
{
	if (n == 0 || t[0] != '/')
		return HTTP_BAD_REQUEST;
	if (n > HTTP_MAX_TARGET)
		return HTTP_URI_TOO_LONG;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return HTTP_BAD_REQUEST;
	const char *q = memchr(t, '?', n);
	size_t plen = q ? (size_t)(q - t) : n;
	memcpy(req->path, t, plen);
	req->path[plen] = '\0';
	return HTTP_DONE;
}

/* request-line = method SP request-target SP HTTP-version */
static enum http_parse_rc parse_request_line(const struct line *l, struct http_request *req)
{
	const char *sp1 = memchr(l->p, ' ', l->len);
	if (!sp1)
		return HTTP_BAD_REQUEST;
	size_t mlen = (size_t)(sp1 - l->p);
	if (mlen == 0 || mlen >= sizeof(req->method))
		return HTTP_BAD_REQUEST;
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)l->p[i]))
			return HTTP_BAD_REQUEST;
	memcpy(req->method, l->p, mlen);
	req->method[mlen] = '\0';
	const char *target = sp1 + 1, *end = l->p + l->len;
	const char *sp2 = memchr(target, ' ', (size_t)(end - target));
	if (!sp2)
		return HTTP_BAD_REQUEST;
	enum http_parse_rc rc = parse_version(sp2 + 1, (size_t)(end - sp2 - 1), req);
	if (rc != HTTP_DONE)
		return rc;
	return parse_target(target, (size_t)(sp2 - target), req);
}

static bool value_is(const char *v, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(v, word, n) == 0;
}

/* Content-Length: only "0" is accepted (no bodies); digits only. */
static enum http_parse_rc content_length(const char *v, size_t n, bool *seen)
{
	if (*seen || n == 0)
		return HTTP_BAD_REQUEST;
	*seen = true;
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return HTTP_BAD_REQUEST;
	for (size_t i = 0; i < n; i++)
		if (v[i] != '0')
			return HTTP_TOO_LARGE;
	return HTTP_DONE;
}

static enum http_parse_rc apply_header(const char *name, size_t nlen, const char *v, size_t vlen,
				       struct http_request *req, bool *cl_seen)
{
	if (value_is(name, nlen, "content-length"))
		return content_length(v, vlen, cl_seen);
	if (value_is(name, nlen, "transfer-encoding"))
		return HTTP_NOT_IMPLEMENTED;
	if (value_is(name, nlen, "connection")) {
		if (value_is(v, vlen, "close"))
			req->keep_alive = false;
		else if (value_is(v, vlen, "keep-alive"))
			req->keep_alive = true;
	} else if (value_is(name, nlen, "authorization")) {
		if (vlen >= sizeof(req->auth))
			return HTTP_HEAD_TOO_LARGE;
		memcpy(req->auth, v, vlen);
		req->auth[vlen] = '\0';
	}
	return HTTP_DONE;
}

/* field-line = field-name ":" OWS field-value OWS; no obs-fold, no controls but HTAB. */
static enum http_parse_rc parse_header(const struct line *l, struct http_request *req,
				       bool *cl_seen)
{
	const char *colon = memchr(l->p, ':', l->len);
	if (!colon || colon == l->p)
		return HTTP_BAD_REQUEST;
	size_t nlen = (size_t)(colon - l->p);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)l->p[i]))
			return HTTP_BAD_REQUEST;
	const char *v = colon + 1, *end = l->p + l->len;
	for (const char *c = v; c < end; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return HTTP_BAD_REQUEST;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return apply_header(l->p, nlen, v, (size_t)(end - v), req, cl_seen);
}

enum http_parse_rc http_parse(const uint8_t *p, size_t len, struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	size_t scan = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	if (memchr(p, '\0', scan))
		return HTTP_BAD_REQUEST;
	size_t end = head_end(p, scan);
	if (!end)
		return len >= HTTP_MAX_HEAD ? HTTP_HEAD_TOO_LARGE : HTTP_INCOMPLETE;
	const char *cur = (const char *)p, *stop = (const char *)p + end;
	struct line l;
	if (!next_line(&cur, stop, &l))
		return HTTP_BAD_REQUEST;
	enum http_parse_rc rc = parse_request_line(&l, req);
	int nheaders = 0;
	bool cl_seen = false;
	while (rc == HTTP_DONE && next_line(&cur, stop, &l) && l.len > 0) {
		if (++nheaders > HTTP_MAX_HEADERS)
			return HTTP_HEAD_TOO_LARGE;
		if (l.p[0] == ' ' || l.p[0] == '\t')
			return HTTP_BAD_REQUEST; /* obs-fold (RFC 9112 §5.2) */
		rc = parse_header(&l, req, &cl_seen);
	}
	req->head_len = end;
	return rc;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}
