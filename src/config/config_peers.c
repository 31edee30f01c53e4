/* config_peers.c: the [peers] section (PgBouncer's format) and its lookups. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "host=... port=... [pool_size=...]": host required, port 6432 by default. pool_size (how many
 * forwarding connections PgBouncer may keep open to a peer) is accepted and ignored: Shoal opens
 * one connection per forwarded cancel. */
static shoal_rc parse_peer(const char *value, struct peer_entry *p, char *msg, size_t n)
{
	char buf[1024];
	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf)) {
		snprintf(msg, n, "peer definition too long");
		return SHOAL_ERROR;
	}
	p->port = 6432;
	char *save = NULL;
	for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || eq[1] == '\0') {
			snprintf(msg, n, "expected key=value, got \"%s\"", tok);
			return SHOAL_ERROR;
		}
		*eq = '\0';
		const char *v = eq + 1;
		if (strcmp(tok, "host") == 0) {
			free(p->host);
			p->host = xstrdup(v);
		} else if (strcmp(tok, "port") == 0) {
			char *end;
			long port = strtol(v, &end, 10);
			if (*end || port < 1 || port > 65535) {
				snprintf(msg, n, "invalid port \"%s\"", v);
				return SHOAL_ERROR;
			}
			p->port = (int)port;
		} else if (strcmp(tok, "pool_size") != 0) {
			snprintf(msg, n, "unknown peer parameter \"%s\"", tok);
			return SHOAL_ERROR;
		}
	}
	if (!p->host) {
		snprintf(msg, n, "a peer needs host=");
		return SHOAL_ERROR;
	}
	return SHOAL_OK;
}

shoal_rc config_add_peer(struct config *cfg, const char *name, const char *value, char *msg,
			 size_t n)
{
	char *end;
	long id = strtol(name, &end, 10);
	if (*end || end == name || id < 1 || id > 16383) {
		snprintf(msg, n, "peer id must be a number from 1 to 16383");
		return SHOAL_ERROR;
	}
	struct peer_entry p = {(int)id, NULL, 0};
	if (parse_peer(value, &p, msg, n) != SHOAL_OK) {
		free(p.host);
		return SHOAL_ERROR;
	}
	for (int i = 0; i < cfg->npeers; i++) {
		if (cfg->peers[i].id == p.id) {
			free(cfg->peers[i].host);
			cfg->peers[i] = p;
			return SHOAL_OK;
		}
	}
	cfg->peers = xrealloc(cfg->peers, sizeof(*cfg->peers) * (size_t)(cfg->npeers + 1));
	cfg->peers[cfg->npeers++] = p;
	return SHOAL_OK;
}

const struct peer_entry *config_find_peer(const struct config *cfg, int id)
{
	for (int i = 0; i < cfg->npeers; i++)
		if (cfg->peers[i].id == id)
			return &cfg->peers[i];
	return NULL;
}

void config_free_peers(struct config *cfg)
{
	for (int i = 0; i < cfg->npeers; i++)
		free(cfg->peers[i].host);
	free(cfg->peers);
	cfg->peers = NULL;
	cfg->npeers = 0;
}
