/* fuzz_handoff.c: libFuzzer target for the handoff message (session/handoff_msg.c), which a new
 * process reads from whoever connects to its handoff socket. A message that decodes must encode
 * back to the same bytes. The input is copied into an exactly-sized heap buffer first. */
#include <stdlib.h>
#include <string.h>

#include "handoff_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg = malloc(size ? size : 1);
	if (!msg)
		abort();
	memcpy(msg, data, size);
	struct handoff_rec r;
	const char *why;
	if (handoff_decode(msg, size, &r, &why) == SHOAL_OK) {
		struct buf b = {0};
		if (handoff_encode(&r, &b) != SHOAL_OK || buf_avail(&b) != size ||
		    memcmp(buf_head(&b), msg, size) != 0)
			abort(); /* what decodes must encode back to itself */
		buf_free(&b);
		handoff_rec_free(&r);
	} else if (!why) {
		abort();
	}
	free(msg);
	return 0;
}
