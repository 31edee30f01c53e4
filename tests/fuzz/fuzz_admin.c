/* fuzz_admin.c: libFuzzer target for the admin console's query parsers (admin_parse,
 * admin_parse_host). The input becomes one NUL-terminated query in an exactly-sized heap buffer, as
 * a Query message body. */
#include <stdlib.h>
#include <string.h>

#include "admin_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
	if (strnlen(s, cap) >= cap)
		abort(); /* every field must stay NUL-terminated inside its array */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q = malloc(size + 1);
	if (!q)
		abort();
	memcpy(q, data, size);
	q[size] = '\0';
	struct admin_query aq;
	admin_parse(q, &aq);
	check_str(aq.cmd, sizeof(aq.cmd));
	check_str(aq.arg, sizeof(aq.arg));
	check_str(aq.key, sizeof(aq.key));
	check_str(aq.value, sizeof(aq.value));
	if (aq.kind == AQ_INVALID && (aq.cmd[0] || aq.arg[0] || aq.key[0] || aq.value[0]))
		abort(); /* an invalid query leaves nothing half-parsed behind */
	struct admin_host_cmd h;
	admin_parse_host(q, &h);
	check_str(h.db, sizeof(h.db));
	check_str(h.host, sizeof(h.host));
	if (h.kind == AH_OK ? (!h.db[0] || !h.host[0] || h.port < 1 || h.port > 65535)
			    : (h.db[0] || h.host[0] || h.port))
		abort(); /* a host command is whole, or leaves nothing behind */
	free(q);
	return 0;
}
