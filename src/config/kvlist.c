/* kvlist.c: key=value lists, the values of [databases] and [users] entries (libpq style). */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

/* ---- key=value lists: [databases] and [users] values ---- */

#define DBK(f, k)                                                                                  \
	{                                                                                          \
#f, offsetof(struct db_entry, f), k, false                                         \
	}
const struct kv_key db_keys[] = {
    DBK(host, K_STR),
    DBK(port, K_PORTS),
    DBK(load_balance_hosts, K_LB),
    DBK(target_session_attrs, K_TSA),
    DBK(read_write_split, K_INT),
    DBK(weight, K_STR),
    DBK(zone, K_STR),
    DBK(dbname, K_STR),
    DBK(user, K_STR),
    DBK(password, K_STR),
    DBK(pool_size, K_INT),
    DBK(min_pool_size, K_INT),
    DBK(reserve_pool_size, K_INT),
    DBK(max_db_connections, K_INT),
    DBK(max_db_client_connections, K_INT),
    DBK(server_lifetime, K_DUR),
    DBK(pool_mode, K_MODE),
    DBK(application_name, K_STR),
    DBK(client_encoding, K_STR),
    DBK(datestyle, K_STR),
    DBK(timezone, K_STR),
    DBK(auth_user, K_STR),
    DBK(auth_query, K_STR),
    DBK(auth_dbname, K_STR),
    DBK(connect_query, K_STR),
    /* PgBouncer's older name, still documented as an alias (1.24+). */
    {"reserve_pool", offsetof(struct db_entry, reserve_pool_size), K_INT, true},
    {NULL, 0, K_STR, false},
};
const char *const db_ignored[] = {NULL};
const struct kv_table db_table = {"database", db_keys, db_ignored};

#define USK(f, k)                                                                                  \
	{                                                                                          \
#f, offsetof(struct user_entry, f), k, false                                       \
	}
static const struct kv_key user_keys[] = {
    USK(pool_mode, K_MODE),
    USK(pool_size, K_INT),
    USK(reserve_pool_size, K_INT),
    USK(max_user_connections, K_INT),
    USK(max_user_client_connections, K_INT),
    USK(query_timeout, K_DUR),
    USK(idle_transaction_timeout, K_DUR),
    USK(client_idle_timeout, K_DUR),
    USK(transaction_timeout, K_DUR),
    {NULL, 0, K_STR, false},
};
static const char *const user_ignored[] = {NULL};
const struct kv_table user_table = {"user", user_keys, user_ignored};

/* port=5432 or port=5432,5433,...: each checked; the first is db->port, a list is kept whole
 * (p points at db_entry.port, a K_PORTS key exists only in the [databases] table). */
static shoal_rc kv_set_ports(void *p, const char *val, char *err, size_t errlen)
{
	struct db_entry *db = (struct db_entry *)((char *)p - offsetof(struct db_entry, port));
	char msg[MSG_LEN], one[16];
	int first = 0;
	for (const char *s = val;;) {
		size_t len = strcspn(s, ",");
		int64_t x = 0;
		snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) ? len : sizeof(one) - 1), s);
		if (parse_int(one, 10, 1, 65535, &x, msg, sizeof(msg)) != SHOAL_OK || len >= sizeof(one)) {
			snprintf(err, errlen, "port: %s", len >= sizeof(one) ? "invalid port" : msg);
			return SHOAL_ERROR;
		}
		if (!first)
			first = (int)x;
		if (!s[len])
			break;
		s += len + 1;
	}
	db->port = first;
	free(db->port_list);
	db->port_list = strchr(val, ',') ? xstrdup(val) : NULL;
	return SHOAL_OK;
}

static shoal_rc kv_set_field(const struct kv_key *k, void *p, const char *val, char *err,
			     size_t errlen)
{
	char msg[MSG_LEN];
	int64_t x = 0;
	shoal_rc rc;
	if (k->kind == K_STR) {
		set_str(p, val, true);
		return SHOAL_OK;
	}
	if (k->kind == K_PORTS)
		return kv_set_ports(p, val, err, errlen);
	if (k->kind == K_DUR) { /* seconds, as the global timeouts (units allowed); 0: unset */
		if (config_parse_duration(val, p) == SHOAL_OK)
			return SHOAL_OK;
		snprintf(err, errlen, "%s: invalid duration \"%s\"", k->name, val);
		return SHOAL_ERROR;
	}
	if (k->kind == K_MODE)
		rc = parse_enum(pool_mode_names, val, p, msg, sizeof(msg));
	else if (k->kind == K_LB)
		rc = parse_enum(lb_names, val, p, msg, sizeof(msg));
	else if (k->kind == K_TSA)
		rc = parse_enum(tsa_names, val, p, msg, sizeof(msg));
	else
		rc = parse_int(val, 10, k->kind == K_PORT ? 1 : 0,
			       k->kind == K_PORT ? 65535 : INT_MAX, &x, msg, sizeof(msg));
	if (rc != SHOAL_OK) {
		snprintf(err, errlen, "%s: %s", k->name, msg);
		return SHOAL_ERROR;
	}
	if (k->kind == K_INT || k->kind == K_PORT)
		*(int *)p = (int)x;
	return SHOAL_OK;
}

/* Append " (did you mean ...?)" to err when a key of t is a likely typo of key. */
static void kv_suggest(const struct kv_table *t, const char *key, char *err, size_t errlen)
{
	const char *names[32];
	size_t n = 0;
	for (const struct kv_key *k = t->keys; k->name && n < ARRAY_LEN(names); k++)
		names[n++] = k->name;
	const char *best = config_suggest(key, names, n);
	size_t len = strlen(err);
	if (best && len < errlen)
		snprintf(err + len, errlen - len, " (did you mean \"%s\"?)", best);
}

shoal_rc kv_apply(const struct kv_table *t, void *obj, const char *key, const char *val,
		  char *err, size_t errlen)
{
	for (const struct kv_key *k = t->keys; k->name; k++)
		if (strcasecmp(k->name, key) == 0)
			return kv_set_field(k, (char *)obj + k->off, val, err, errlen);
	for (const char *const *ig = t->ignored; *ig; ig++) {
		if (strcasecmp(*ig, key) == 0) {
			config_note("%s option \"%s\" is accepted for PgBouncer compatibility and "
				    "has no effect in Shoal", t->what, key);
			return SHOAL_OK;
		}
	}
	snprintf(err, errlen, "unknown %s option \"%s\"", t->what, key);
	kv_suggest(t, key, err, errlen);
	return SHOAL_ERROR;
}

/* Unquote one libpq value in place: '...' with \' and \\, or a bare word (backslash escapes the
 * next character). Stops after the closing quote or separator. */
static shoal_rc kv_value(char **pp, bool commas, char **val, char *err, size_t errlen)
{
	char *p = *pp, *out = p;
	bool quoted = *p == '\'';
	*val = out;
	if (quoted)
		p++;
	for (;;) {
		if (!*p) {
			if (!quoted)
				break;
			snprintf(err, errlen, "unterminated quoted string");
			return SHOAL_ERROR;
		}
		if (quoted ? *p == '\'' : (isspace((unsigned char)*p) || (commas && *p == ','))) {
			p++;
			break;
		}
		if (*p == '\\' && p[1])
			p++;
		*out++ = *p++;
	}
	*out = '\0';
	*pp = p;
	return SHOAL_OK;
}

/* The next key=value pair of a libpq-style list, split in place. SHOAL_AGAIN at the end. */
static shoal_rc kv_next(char **pp, bool commas, char **key, char **val, char *err, size_t errlen)
{
	char *p = *pp;
	while (isspace((unsigned char)*p) || (commas && *p == ','))
		p++;
	if (!*p)
		return SHOAL_AGAIN;
	*key = p;
	while (*p && *p != '=' && !isspace((unsigned char)*p))
		p++;
	char *kend = p;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '=') {
		snprintf(err, errlen, "missing \"=\" after \"%.*s\"", (int)(kend - *key), *key);
		return SHOAL_ERROR;
	}
	p++;
	*kend = '\0';
	while (isspace((unsigned char)*p))
		p++;
	shoal_rc rc = kv_value(&p, commas, val, err, errlen);
	*pp = p;
	return rc;
}

shoal_rc kv_parse_list(const struct kv_table *t, void *obj, const char *value, bool commas,
		       char *err, size_t errlen)
{
	char *copy = xstrdup(value), *p = copy, *key, *val;
	shoal_rc rc;
	while ((rc = kv_next(&p, commas, &key, &val, err, errlen)) == SHOAL_OK)
		if ((rc = kv_apply(t, obj, key, val, err, errlen)) != SHOAL_OK)
			break;
	free(copy);
	return rc == SHOAL_AGAIN ? SHOAL_OK : rc;
}
