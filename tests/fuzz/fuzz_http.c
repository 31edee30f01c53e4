/* fuzz_http.c: libFuzzer target for the HTTP listener's request-head parser. The input is copied
 * into an exactly-sized heap buffer so that ASan catches a read one byte past it; the parsed
 * fields must be NUL-terminated within their arrays and consistent with the result. */
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	if (size)
		memcpy(copy, data, size);
	struct http_request req;
	enum http_parse_rc rc = http_parse(copy, size, &req);
	check_field(req.method, sizeof(req.method));
	check_field(req.path, sizeof(req.path));
	check_field(req.auth, sizeof(req.auth));
	if (rc == HTTP_DONE && (req.head_len == 0 || req.head_len > size || req.path[0] != '/'))
		abort();
	if (rc == HTTP_INCOMPLETE && size >= HTTP_MAX_HEAD)
		abort(); /* a head that cannot fit must be refused, not waited for */
	if (http_reason((int)rc)[0] == '\0')
		abort();
	free(copy);
	return 0;
}
