/* http_parse.h: the request-head parser of the HTTP listener. Pure code over (ptr, len), no I/O
 * and no globals: the fuzz target. Shoal serves only small GET requests (health, metrics,
 * dashboard), so the parser accepts a request head of at most HTTP_MAX_HEAD bytes and no body. */
#ifndef SHOAL_HTTP_PARSE_H
#define SHOAL_HTTP_PARSE_H

#include "common.h"

#define HTTP_MAX_HEAD	 8192 /* request line + headers + the empty line */
#define HTTP_MAX_HEADERS 32
#define HTTP_MAX_TARGET	 255

/* Each result other than HTTP_INCOMPLETE and HTTP_DONE is the status code to answer with. */
enum http_parse_rc {
	HTTP_INCOMPLETE = 0,	    /* no empty line yet: read more */
	HTTP_DONE = 1,		    /* a complete, valid head: req is filled */
	HTTP_BAD_REQUEST = 400,	    /* malformed request line or header */
	HTTP_TOO_LARGE = 413,	    /* a request body was announced */
	HTTP_URI_TOO_LONG = 414,    /* request target longer than HTTP_MAX_TARGET */
	HTTP_HEAD_TOO_LARGE = 431,  /* head over HTTP_MAX_HEAD bytes or HTTP_MAX_HEADERS headers */
	HTTP_NOT_IMPLEMENTED = 501, /* Transfer-Encoding */
	HTTP_BAD_VERSION = 505,	    /* not HTTP/1.0 or HTTP/1.1 */
};

struct http_request {
	char method[8];			/* e.g. "GET" */
	char path[HTTP_MAX_TARGET + 1]; /* the target up to '?' */
	char auth[256];			/* the Authorization header's value, or "" */
	size_t head_len;		/* bytes of the head, empty line included */
	int minor;			/* HTTP/1.minor */
	bool keep_alive;		/* HTTP/1.1 without "Connection: close", or 1.0 with
					   "Connection: keep-alive" */
};

/* Parse the request head at the start of p[0..len). */
enum http_parse_rc http_parse(const uint8_t *p, size_t len, struct http_request *req);

/* The reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);

#endif
