/* auth.h: password checks for client logins (trust, plain, md5 against auth_file secrets) and
 * the password answers Shoal gives servers (cleartext, md5). SCRAM is in scram.h. */
#ifndef SHOAL_AUTH_H
#define SHOAL_AUTH_H

#include "common.h"

/* out = "md5" + hex(md5(a || b)); out must hold 36 bytes. */
void auth_md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[36]);
/* Answer to an md5 challenge from a secret that is plaintext or "md5<hex>". out: 36 bytes. */
void auth_md5_response(const char *secret, const char *user, const uint8_t salt[4], char out[36]);
/* Does a client's md5 answer match the stored secret? Constant-time comparison. A NULL or
 * SCRAM secret never matches. */
bool auth_check_md5(const char *secret, const char *user, const uint8_t salt[4],
		    const char *answer);
/* Does a cleartext password match the stored secret (plaintext, md5 or SCRAM)? */
bool auth_check_plain(const char *secret, const char *user, const char *password);
bool auth_secret_is_md5(const char *secret);
bool auth_secret_is_scram(const char *secret);
/* Fill n random bytes from OpenSSL's CSPRNG; SHOAL_ERROR if it fails. */
shoal_rc auth_random(void *out, size_t n) MUST_USE;

#endif
