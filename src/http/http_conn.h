/* http_conn.h: one HTTP connection of the listener thread and the response it is sending. */
#ifndef SHOAL_HTTP_CONN_H
#define SHOAL_HTTP_CONN_H

#include "buf.h"
#include "http_parse.h"
#include "list.h"
#include "loop.h"

#define HTTP_CONN_TIMEOUT (5 * USEC_PER_SEC) /* to take the response, slow clients too */

struct http_response {
	int status;
	const char *content_type;
	struct buf body;
	const char *extra_headers; /* e.g. "WWW-Authenticate: Bearer\r\n", or NULL */
};

struct http_conn {
	struct loop_fd lfd;
	struct list node;
	uint8_t in[HTTP_MAX_HEAD];
	size_t inlen;
	struct buf out;
	usec_t deadline;
	struct http_request req;
	bool parked;	 /* waiting for the health probe round to end */
	bool responding; /* the request is read; writing out */
	bool lingering;	 /* response sent, write side shut: draining until the client closes */
	bool closed;
	char peer[80];
};

/* Fill resp for req (routes.c). resp->body is empty on entry; the caller frees it. */
void http_route(const struct http_request *req, struct http_response *resp);

#endif
