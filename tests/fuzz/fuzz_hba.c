/* fuzz_hba.c: libFuzzer target for auth_hba_file parsing (pg_hba.conf syntax) and matching: the
 * input is parsed as a whole file (no @file reads), and on success a few connections are matched
 * against the rules. The text is copied into an exactly-sized heap buffer first. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "hba.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	struct hba h;
	char err[256];
	if (hba_parse(text, size, NULL, &h, err, sizeof(err)) == SHOAL_OK) {
		struct sockaddr_storage v4 = {0}, v6 = {0};
		struct sockaddr_in *a4 = (struct sockaddr_in *)&v4;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&v6;
		a4->sin_family = AF_INET;
		inet_pton(AF_INET, "10.1.2.3", &a4->sin_addr);
		a6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::1", &a6->sin6_addr);
		int line;
		for (int tls = 0; tls < 2; tls++) {
			sink += hba_match(&h, false, tls, &v4, "db", "user", &line);
			sink += hba_match(&h, false, tls, &v6, "user", "user", &line);
			if (line < 0 || line > (int)size + 1)
				abort();
		}
		sink += hba_match(&h, true, false, NULL, "all", "all", &line);
		hba_free(&h);
	} else if (!err[0] || h.n != 0) {
		abort();
	}
	free(text);
	return 0;
}
