/* fuzz_scram.c: libFuzzer target for the SCRAM bytes a client controls: the SASLInitialResponse
 * body and client-first-message, the client-final-message (after a valid first round, with and
 * without channel binding), and the stored-secret and base64 parsers. The first byte picks what
 * the rest is fed to; every piece is copied into an exactly-sized heap buffer first. */
#include <stdlib.h>
#include <string.h>

#include "scram_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

/* RFC 7677's "pencil" secret: a real stored secret, so that proofs are really checked. */
static const char secret[] = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
			     "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
			     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
static const uint8_t cb_data[32] = {1, 2, 3};

static uint8_t *copy_exact(const uint8_t *p, size_t n, bool nul)
{
	uint8_t *c = malloc(n + (nul ? 1 : 0) + 1);
	if (!c)
		abort();
	memcpy(c, p, n);
	if (nul)
		c[n] = 0;
	return c;
}

static void fuzz_initial(const uint8_t *d, size_t n, bool tls)
{
	const char *mech, *err = NULL;
	const uint8_t *msg;
	size_t mlen;
	char out[512];
	uint8_t *body = copy_exact(d, n, false);
	if (scram_parse_initial_response(body, n, &mech, &msg, &mlen) == SHOAL_OK) {
		struct scram_server ss;
		scram_server_init(&ss, "user", secret, tls ? cb_data : NULL, tls ? 32 : 0);
		shoal_rc rc = scram_server_first(&ss, mech, msg, mlen, out, sizeof(out), &err);
		if ((rc == SHOAL_ERROR) != (err != NULL))
			abort();
		if (rc == SHOAL_OK)
			sink += strlen(out);
		scram_server_free(&ss);
	}
	free(body);
}

static void fuzz_final(const uint8_t *d, size_t n, bool tls)
{
	static const char first[] = "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
	static const char first_plus[] = "p=tls-server-end-point,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
	const char *err = NULL;
	char out[512];
	struct scram_server ss;
	scram_server_init(&ss, "user", secret, tls ? cb_data : NULL, tls ? 32 : 0);
	const char *f = tls ? first_plus : first;
	if (scram_server_first_nonce(&ss, tls ? SCRAM_MECH_PLUS : SCRAM_MECH, (const uint8_t *)f,
				     strlen(f), "3rfcNHYJY1ZVvWVs7j", out, sizeof(out),
				     &err) != SHOAL_OK)
		abort();
	uint8_t *msg = copy_exact(d, n, false);
	shoal_rc rc = scram_server_final(&ss, msg, n, out, sizeof(out), &err);
	if (rc == SHOAL_OK && ss.authenticated)
		sink += strlen(out);
	scram_server_free(&ss);
	free(msg);
}

static void fuzz_secret(const uint8_t *d, size_t n)
{
	uint8_t *s = copy_exact(d, n, true);
	struct scram_secret sec;
	if (scram_parse_secret((const char *)s, &sec) == SHOAL_OK &&
	    (sec.saltlen <= 0 || sec.saltlen > SCRAM_MAX_SALT || sec.iterations <= 0))
		abort();
	uint8_t out[64];
	int m = scram_b64_decode((const char *)s, n, out, sizeof(out));
	if (m > (int)sizeof(out))
		abort();
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	switch (mode % 3) {
	case 0:
		fuzz_initial(data, size, mode & 4);
		break;
	case 1:
		fuzz_final(data, size, mode & 4);
		break;
	default:
		fuzz_secret(data, size);
		break;
	}
	return 0;
}
