/* print.c: the effective configuration in the file's own form, for shoal --check. */
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

static void print_setting(FILE *out, const struct config *cfg, const struct setting *s)
{
	char v[4096];
	format_setting(v, sizeof(v), cfg, s);
	fprintf(out, "%s = %s\n", s->name, v);
}

/* " key=value", quoted libpq-style when needed. */
static void print_kv(FILE *out, const char *key, const char *v)
{
	bool plain = *v != '\0' && *v != '\'';
	for (const char *c = v; plain && *c; c++)
		plain = !isspace((unsigned char)*c) && *c != '\\';
	fprintf(out, " %s=", key);
	if (plain) {
		fputs(v, out);
		return;
	}
	fputc('\'', out);
	for (const char *c = v; *c; c++) {
		if (*c == '\'' || *c == '\\')
			fputc('\\', out);
		fputc(*c, out);
	}
	fputc('\'', out);
}

static void print_db(FILE *out, const struct db_entry *d)
{
	fprintf(out, "%s =", d->name);
	for (const struct kv_key *k = db_keys; k->name; k++) {
		if (k->alias)
			continue;
		const void *p = (const char *)d + k->off;
		char num[16];
		const char *v = NULL;
		if (k->kind == K_STR) {
			v = *(char *const *)p;
		} else if (k->kind == K_MODE) {
			if (*(const int *)p != POOL_INHERIT)
				v = config_pool_mode_name(*(const int *)p);
		} else if (k->kind == K_PORTS && d->port_list) {
			v = d->port_list;
		} else if (k->kind == K_LB) { /* the defaults are left out, as PgBouncer prints */
			if (*(const int *)p != LB_ROUND_ROBIN)
				v = config_lb_name(*(const int *)p);
		} else if (k->kind == K_TSA) {
			if (*(const int *)p != TSA_ANY)
				v = config_tsa_name(*(const int *)p);
		} else if (k->kind == K_DUR) {
			if (*(const usec_t *)p > 0)
				snprintf(num, sizeof(num), "%gs", (double)*(const usec_t *)p / 1e6);
			v = *(const usec_t *)p > 0 ? num : NULL;
		} else if (p == &d->read_write_split) { /* off (0) is the default: left out */
			v = d->read_write_split ? "1" : NULL;
		} else if (*(const int *)p >= 0) {
			snprintf(num, sizeof(num), "%d", *(const int *)p);
			v = num;
		}
		if (v)
			print_kv(out, k->name, p == &d->password ? "****" : v);
	}
	fputc('\n', out);
}

static void print_user_timeouts(FILE *out, const struct user_entry *u)
{
	const struct {
		const char *name;
		usec_t v;
	} t[] = {{"query_timeout", u->query_timeout},
		 {"idle_transaction_timeout", u->idle_transaction_timeout},
		 {"client_idle_timeout", u->client_idle_timeout},
		 {"transaction_timeout", u->transaction_timeout}};
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (t[i].v > 0)
			fprintf(out, " %s=%gs", t[i].name, (double)t[i].v / 1e6);
}

void config_print(const struct config *cfg, FILE *out)
{
	fputs("[shoal]\n", out);
	for (size_t i = 0; i < n_settings; i++)
		print_setting(out, cfg, &settings[i]);
	fputs("\n[databases]\n", out);
	for (int i = 0; i < cfg->ndbs; i++)
		print_db(out, &cfg->dbs[i]);
	fputs("\n[users]\n", out);
	for (int i = 0; i < cfg->nusers; i++) {
		const struct user_entry *u = &cfg->users[i];
		fprintf(out, "%s =", u->name);
		if (u->pool_mode != POOL_INHERIT)
			fprintf(out, " pool_mode=%s", config_pool_mode_name(u->pool_mode));
		if (u->pool_size >= 0)
			fprintf(out, " pool_size=%d", u->pool_size);
		if (u->reserve_pool_size >= 0)
			fprintf(out, " reserve_pool_size=%d", u->reserve_pool_size);
		if (u->max_user_connections >= 0)
			fprintf(out, " max_user_connections=%d", u->max_user_connections);
		if (u->max_user_client_connections >= 0)
			fprintf(out, " max_user_client_connections=%d",
				u->max_user_client_connections);
		print_user_timeouts(out, u);
		fputc('\n', out);
	}
	if (cfg->npeers > 0)
		fputs("\n[peers]\n", out);
	for (int i = 0; i < cfg->npeers; i++)
		fprintf(out, "%d = host=%s port=%d\n", cfg->peers[i].id, cfg->peers[i].host,
			cfg->peers[i].port);
}
