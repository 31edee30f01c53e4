/* welcome.c: the welcome's AuthenticationOk and ParameterStatus messages, encoded once per pool
 * (they are the same for every client but the few values a client sets itself). */
#include "welcome.h"
#include "params.h"
#include "proto.h"

#include <stdlib.h>
#include <string.h>

/* Values a client may set that the cached block can splice in; a client setting more of the
 * server's reported parameters gets the messages formatted one by one. */
#define WELCOME_SPLICE_MAX 16

struct welcome_block {
	int n; /* items of the server list it was built from */
	/* off[0]: end of AuthenticationOk; off[i + 1]: end of item i's ParameterStatus (equal to
	 * off[i] for an item the server did not report); the bytes follow off[n]. */
	uint32_t off[];
};

static const uint8_t *block_bytes(const struct welcome_block *w)
{
	return (const uint8_t *)(w->off + w->n + 1);
}

/* The reported items, each with mine's value where mine has one. */
static void write_items(struct buf *o, const struct param_list *server,
			const struct param_list *mine)
{
	for (int i = 0; i < server->n; i++) {
		const struct param *p = &server->items[i];
		if (!p->initial)
			continue; /* not reported by the server: a value we SET for some client */
		const struct param *m = mine ? params_find_like(mine, p) : NULL;
		proto_write_param(o, p->name, m ? m->value : p->value);
	}
}

static struct welcome_block *build(const struct param_list *server)
{
	struct buf b = {0};
	size_t head = sizeof(struct welcome_block) + (size_t)(server->n + 1) * sizeof(uint32_t);
	uint32_t *off = xmalloc((size_t)(server->n + 1) * sizeof(uint32_t));
	proto_write_auth(&b, PQAUTH_OK, NULL, 0);
	off[0] = (uint32_t)b.len;
	for (int i = 0; i < server->n; i++) {
		const struct param *p = &server->items[i];
		if (p->initial)
			proto_write_param(&b, p->name, p->value);
		off[i + 1] = (uint32_t)b.len;
	}
	struct welcome_block *w = xmalloc(head + b.len);
	w->n = server->n;
	memcpy(w->off, off, (size_t)(server->n + 1) * sizeof(uint32_t));
	memcpy((uint8_t *)w + head, b.data, b.len);
	free(off);
	buf_free(&b);
	return w;
}

struct splice {
	int at;		   /* index in the server list */
	const char *value; /* the client's */
};

/* mine's values for the server's reported parameters, in the server's order; -1 when there are
 * more than WELCOME_SPLICE_MAX. */
static int find_splices(const struct param_list *server, const struct param_list *mine,
			struct splice *out)
{
	int k = 0;
	for (int i = 0; i < mine->n; i++) {
		const struct param *s = params_find_like(server, &mine->items[i]);
		if (!s || !s->initial)
			continue;
		if (k == WELCOME_SPLICE_MAX)
			return -1;
		int at = (int)(s - server->items), j = k++;
		for (; j > 0 && out[j - 1].at >= at; j--) {
			if (out[j - 1].at == at)
				return -1; /* two of mine name one item: the one-by-one way copes */
			out[j] = out[j - 1];
		}
		out[j] = (struct splice){.at = at, .value = mine->items[i].value};
	}
	return k;
}

void welcome_write(struct buf *o, struct welcome_block **cache, const struct param_list *server,
		   const struct param_list *mine)
{
	struct splice sp[WELCOME_SPLICE_MAX];
	int k = cache ? find_splices(server, mine, sp) : -1;
	if (k < 0) {
		proto_write_auth(o, PQAUTH_OK, NULL, 0);
		write_items(o, server, mine);
		return;
	}
	if (!*cache)
		*cache = build(server);
	const struct welcome_block *w = *cache;
	const uint8_t *bytes = block_bytes(w);
	uint32_t from = 0;
	for (int j = 0; j < k; j++) {
		buf_append(o, bytes + from, w->off[sp[j].at] - from);
		proto_write_param(o, server->items[sp[j].at].name, sp[j].value);
		from = w->off[sp[j].at + 1];
	}
	buf_append(o, bytes + from, w->off[w->n] - from);
}
