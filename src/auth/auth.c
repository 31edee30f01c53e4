/* auth.c: md5 and cleartext password checks, constant time. */
#include "auth.h"
#include "scram_server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

void auth_md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[36])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	EVP_DigestUpdate(ctx, a, alen);
	EVP_DigestUpdate(ctx, b, blen);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(out, "md5", 3);
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 3 + 2 * i, 3, "%02x", md[i]);
}

bool auth_secret_is_md5(const char *secret)
{
	if (strncmp(secret, "md5", 3) != 0 || strlen(secret) != 35)
		return false;
	for (int i = 3; i < 35; i++)
		if (!strchr("0123456789abcdef", secret[i]))
			return false;
	return true;
}

bool auth_secret_is_scram(const char *secret)
{
	return strncmp(secret, "SCRAM-SHA-256$", 14) == 0;
}

/* The md5 of password+user, as PostgreSQL stores it ("md5" + 32 hex). */
static void stored_md5(const char *secret, const char *user, char out[36])
{
	if (auth_secret_is_md5(secret)) {
		memcpy(out, secret, 36);
		return;
	}
	auth_md5_hex(secret, strlen(secret), user, strlen(user), out);
}

void auth_md5_response(const char *secret, const char *user, const uint8_t salt[4], char out[36])
{
	char stored[36];
	stored_md5(secret, user, stored);
	auth_md5_hex(stored + 3, 32, salt, 4, out);
}

bool auth_check_md5(const char *secret, const char *user, const uint8_t salt[4],
		    const char *answer)
{
	char expect[36];
	if (!secret || auth_secret_is_scram(secret) || strlen(answer) != 35)
		return false;
	auth_md5_response(secret, user, salt, expect);
	return CRYPTO_memcmp(expect, answer, 35) == 0;
}

bool auth_check_plain(const char *secret, const char *user, const char *password)
{
	if (!secret)
		return false;
	if (auth_secret_is_scram(secret))
		return scram_check_password(secret, password);
	if (auth_secret_is_md5(secret)) {
		char got[36];
		auth_md5_hex(password, strlen(password), user, strlen(user), got);
		return CRYPTO_memcmp(got, secret, 35) == 0;
	}
	size_t n = strlen(secret);
	/* Compare hashes so that the time does not depend on where the strings differ. */
	char a[36], b[36];
	auth_md5_hex(secret, n, user, strlen(user), a);
	auth_md5_hex(password, strlen(password), user, strlen(user), b);
	return CRYPTO_memcmp(a, b, 35) == 0;
}

shoal_rc auth_random(void *out, size_t n)
{
	return RAND_bytes(out, (int)n) == 1 ? SHOAL_OK : SHOAL_ERROR;
}
