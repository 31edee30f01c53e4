/* entries.c: [databases] and [users] entries: parsing, lookup, adding and dropping. */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

/* ---- entries ---- */

void db_entry_clear(struct db_entry *db)
{
	free(db->host);
	free(db->port_list);
	free(db->weight);
	db->weight = NULL;
	free(db->zone);
	db->zone = NULL;
	free(db->dbname);
	free(db->user);
	free(db->password);
	free(db->application_name);
	free(db->client_encoding);
	free(db->datestyle);
	free(db->timezone);
	free(db->auth_user);
	free(db->auth_query);
	free(db->auth_dbname);
	free(db->connect_query);
	db->connect_query = NULL;
	db->host = db->port_list = db->dbname = db->user = db->password = NULL;
	db->application_name = db->client_encoding = db->datestyle = db->timezone = NULL;
	db->auth_user = db->auth_query = db->auth_dbname = NULL;
}

/* On failure out's strings are freed again (out->name, the caller's, is left alone). */
shoal_rc config_parse_db(const char *value, struct db_entry *out, char *err, size_t errlen)
{
	out->port = 5432;
	out->pool_size = out->min_pool_size = out->reserve_pool_size = -1;
	out->max_db_connections = out->max_db_client_connections = -1;
	out->pool_mode = POOL_INHERIT;
	const char *url = url_body(value);
	shoal_rc rc;
	if (url) {
		char *copy = xstrdup(url);
		rc = url_parse(out, copy, err, errlen);
		free(copy);
	} else {
		rc = kv_parse_list(&db_table, out, value, false, err, errlen);
	}
	struct host_addr hosts[SHOAL_MAX_HOSTS];
	int nhosts;
	if (rc == SHOAL_OK) /* a bad host list is refused at load time, not at first connect */
		rc = config_host_list(out, hosts, SHOAL_MAX_HOSTS, &nhosts, err, errlen);
	if (rc != SHOAL_OK)
		db_entry_clear(out);
	return rc;
}

static struct hent *index_get(const struct config *cfg, const char *name)
{
	size_t n = strlen(name);
	return hmap_get(&cfg->db_index, name, n, hash_bytes(name, n));
}

static void index_put(struct config *cfg, int i)
{
	const char *name = cfg->dbs[i].name;
	size_t n = strlen(name);
	hmap_put(&cfg->db_index, name, n, hash_bytes(name, n), (void *)(intptr_t)(i + 1));
}

void db_index_free(struct config *cfg)
{
	for (size_t b = 0; b < cfg->db_index.nb; b++)
		while (cfg->db_index.b[b])
			hmap_del(&cfg->db_index, cfg->db_index.b[b]);
	free(cfg->db_index.b);
	cfg->db_index = (struct hmap){0};
}

void db_index_build(struct config *cfg)
{
	db_index_free(cfg);
	for (int i = 0; i < cfg->ndbs; i++)
		index_put(cfg, i);
}

static const struct db_entry *find_indexed(const struct config *cfg, const char *name)
{
	struct hent *e = index_get(cfg, name);
	if (!e)
		e = index_get(cfg, "*");
	return e ? &cfg->dbs[(intptr_t)e->val - 1] : NULL;
}

/* Through the index when it covers every entry (add_db keeps it; a configuration built by hand,
 * as in the fuzzers, has none): 5,000 entries cost a login 20 us by the scan. */
const struct db_entry *config_find_db(const struct config *cfg, const char *name)
{
	if (cfg->ndbs > 0 && cfg->db_index.n == (size_t)cfg->ndbs)
		return find_indexed(cfg, name);
	const struct db_entry *fallback = NULL;
	for (int i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return &cfg->dbs[i];
		if (strcmp(cfg->dbs[i].name, "*") == 0)
			fallback = &cfg->dbs[i];
	}
	return fallback;
}

const struct user_entry *config_find_user(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nusers; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	return NULL;
}

const char *config_find_secret(const struct config *cfg, const char *user)
{
	for (int i = cfg->nauth - 1; i >= 0; i--) /* a later line wins */
		if (strcmp(cfg->auth[i].user, user) == 0)
			return cfg->auth[i].secret;
	return NULL;
}

/* A later definition of the same name replaces the earlier one, as in PgBouncer. */
shoal_rc add_db(struct config *cfg, const char *name, const char *value, char *msg, size_t n)
{
	struct db_entry e = {0};
	if (config_parse_db(value, &e, msg, n) != SHOAL_OK)
		return SHOAL_ERROR;
	if (cfg->db_index.n != (size_t)cfg->ndbs)
		db_index_build(cfg);
	struct hent *old = index_get(cfg, name);
	if (old) {
		int i = (int)(intptr_t)old->val - 1;
		db_entry_clear(&cfg->dbs[i]);
		e.name = cfg->dbs[i].name;
		cfg->dbs[i] = e;
		return SHOAL_OK;
	}
	e.name = xstrdup(name);
	cfg->dbs = xrealloc(cfg->dbs, sizeof(*cfg->dbs) * (size_t)(cfg->ndbs + 1));
	cfg->dbs[cfg->ndbs++] = e;
	index_put(cfg, cfg->ndbs - 1);
	return SHOAL_OK;
}

shoal_rc config_add_db(struct config *cfg, const char *name, const char *value, char *msg,
		       size_t n)
{
	return add_db(cfg, name, value, msg, n);
}

bool config_is_db_key(const char *key, size_t n)
{
	for (const struct kv_key *k = db_keys; k->name; k++)
		if (strlen(k->name) == n && strncasecmp(k->name, key, n) == 0)
			return true;
	for (const char *const *ig = db_ignored; *ig; ig++)
		if (strlen(*ig) == n && strncasecmp(*ig, key, n) == 0)
			return true;
	return false;
}

void config_drop_db(struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) != 0)
			continue;
		db_entry_clear(&cfg->dbs[i]);
		free(cfg->dbs[i].name);
		cfg->dbs[i] = cfg->dbs[--cfg->ndbs];
		db_index_build(cfg); /* the last entry moved */
		return;
	}
}

shoal_rc add_user(struct config *cfg, const char *name, const char *value, char *msg,
		  size_t n)
{
	struct user_entry u = {.pool_mode = POOL_INHERIT,
			       .pool_size = -1,
			       .reserve_pool_size = -1,
			       .max_user_connections = -1,
			       .max_user_client_connections = -1};
	if (kv_parse_list(&user_table, &u, value, true, msg, n) != SHOAL_OK)
		return SHOAL_ERROR;
	for (int i = 0; i < cfg->nusers; i++) {
		if (strcmp(cfg->users[i].name, name) == 0) {
			u.name = cfg->users[i].name;
			cfg->users[i] = u;
			return SHOAL_OK;
		}
	}
	u.name = xstrdup(name);
	cfg->users = xrealloc(cfg->users, sizeof(*cfg->users) * (size_t)(cfg->nusers + 1));
	cfg->users[cfg->nusers++] = u;
	return SHOAL_OK;
}
