/* copy.c: a deep copy of a configuration, so that a console SET can change one key of the
 * configuration in force without reading any file again (an edited but not reloaded file must
 * not be applied by a SET). */
#include "config_int.h"
#include "current.h"
#include "hba.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void *dup_array(const void *src, int n, size_t size)
{
	if (n <= 0 || !src)
		return NULL;
	void *out = xcalloc((size_t)n, size);
	memcpy(out, src, (size_t)n * size);
	return out;
}

static void copy_db(struct db_entry *d)
{
	d->name = dup_or_null(d->name);
	d->host = dup_or_null(d->host);
	d->port_list = dup_or_null(d->port_list);
	d->weight = dup_or_null(d->weight);
	d->zone = dup_or_null(d->zone);
	d->dbname = dup_or_null(d->dbname);
	d->user = dup_or_null(d->user);
	d->password = dup_or_null(d->password);
	d->application_name = dup_or_null(d->application_name);
	d->client_encoding = dup_or_null(d->client_encoding);
	d->datestyle = dup_or_null(d->datestyle);
	d->timezone = dup_or_null(d->timezone);
	d->auth_user = dup_or_null(d->auth_user);
	d->auth_query = dup_or_null(d->auth_query);
	d->auth_dbname = dup_or_null(d->auth_dbname);
	d->connect_query = dup_or_null(d->connect_query);
}

static void copy_names(struct hba_names *nm)
{
	nm->items = dup_array(nm->items, nm->n, sizeof(*nm->items));
	for (int i = 0; i < nm->n; i++)
		nm->items[i] = xstrdup(nm->items[i]);
}

static struct hba *copy_hba(const struct hba *src)
{
	if (!src)
		return NULL;
	struct hba *h = xcalloc(1, sizeof(*h));
	h->n = src->n;
	h->rules = dup_array(src->rules, src->n, sizeof(*src->rules));
	for (int i = 0; i < h->n; i++) {
		copy_names(&h->rules[i].dbs);
		copy_names(&h->rules[i].users);
	}
	return h;
}

struct config *config_copy(const struct config *src)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	*cfg = *src;
	for (size_t i = 0; i < n_settings; i++) {
		if (settings[i].type != T_STR && settings[i].type != T_PATH)
			continue;
		char **p = (char **)((char *)cfg + settings[i].off);
		*p = dup_or_null(*p);
	}
	cfg->dbs = dup_array(src->dbs, src->ndbs, sizeof(*src->dbs));
	for (int i = 0; i < cfg->ndbs; i++)
		copy_db(&cfg->dbs[i]);
	cfg->db_index = (struct hmap){0}; /* its own, over its own names */
	db_index_build(cfg);
	cfg->users = dup_array(src->users, src->nusers, sizeof(*src->users));
	for (int i = 0; i < cfg->nusers; i++)
		cfg->users[i].name = xstrdup(cfg->users[i].name);
	cfg->peers = dup_array(src->peers, src->npeers, sizeof(*src->peers));
	for (int i = 0; i < cfg->npeers; i++)
		cfg->peers[i].host = dup_or_null(cfg->peers[i].host);
	cfg->auth = dup_array(src->auth, src->nauth, sizeof(*src->auth));
	for (int i = 0; i < cfg->nauth; i++) {
		cfg->auth[i].user = xstrdup(cfg->auth[i].user);
		cfg->auth[i].secret = xstrdup(cfg->auth[i].secret);
	}
	cfg->hba = copy_hba(src->hba);
	cfg->path = dup_or_null(src->path);
	return cfg;
}

/* The files a setting names are read again when that setting is the one changed. */
static shoal_rc reload_auth_file(struct config *cfg, char *err, size_t errlen)
{
	for (int i = 0; i < cfg->nauth; i++) {
		free(cfg->auth[i].user);
		free(cfg->auth[i].secret);
	}
	free(cfg->auth);
	cfg->auth = NULL;
	cfg->nauth = 0;
	return cfg->auth_file ? load_auth_file(cfg, err, errlen) : SHOAL_OK;
}

static shoal_rc reload_hba(struct config *cfg, char *err, size_t errlen)
{
	if (cfg->hba)
		hba_free(cfg->hba);
	free(cfg->hba);
	cfg->hba = NULL;
	return config_load_hba(cfg, err, errlen);
}

shoal_rc config_copy_set(struct config *cfg, const char *name, const char *value, char *err,
			 size_t errlen)
{
	if (config_set_value(cfg, name, value, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	if (!strcasecmp(name, "auth_file"))
		return reload_auth_file(cfg, err, errlen);
	if (!strcasecmp(name, "auth_hba_file") || !strcasecmp(name, "auth_type"))
		return reload_hba(cfg, err, errlen);
	return SHOAL_OK;
}
