/* config_hosts.c: a database entry's host list, libpq style (host=a,b,c port=5432[,5433,...]),
 * with Shoal's weight= and zone= per host. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* The next comma-separated element of *pp, spaces trimmed, copied into out; false when it is
 * empty or too long. */
static bool next_elem(const char **pp, char *out, size_t outlen)
{
	const char *s = *pp;
	size_t len = strcspn(s, ",");
	const char *e = s + len;
	*pp = *e ? e + 1 : e;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == s || (size_t)(e - s) >= outlen)
		return false;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return true;
}

static int count_elems(const char *s)
{
	int n = 1;
	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* weight=: one weight for every host, or one per host, each 1..1000. */
static shoal_rc weights(const struct db_entry *db, struct host_addr *out, int nh, char *err,
			size_t errlen)
{
	int nw = db->weight ? count_elems(db->weight) : 0;
	if (nw > 1 && nw != nh) {
		snprintf(err, errlen,
			 "weight: %d weights for %d hosts (give one weight, or one per host)", nw,
			 nh);
		return SHOAL_ERROR;
	}
	const char *w = db->weight;
	int all = 1;
	for (int i = 0; i < nh; i++) {
		char one[16], *end;
		if (nw > 1 || (nw == 1 && i == 0)) {
			long x = next_elem(&w, one, sizeof(one)) ? strtol(one, &end, 10) : 0;
			if (x < 1 || x > 1000 || *end) {
				snprintf(err, errlen, "weight: element %d of \"%s\" is not 1..1000",
					 i + 1, db->weight);
				return SHOAL_ERROR;
			}
			all = (int)x;
		}
		out[i].weight = all;
	}
	return SHOAL_OK;
}

/* zone=: one zone for every host, or one per host, each [A-Za-z0-9_.-]+ of under 32. */
static shoal_rc zones(const struct db_entry *db, struct host_addr *out, int nh, char *err,
		      size_t errlen)
{
	int nz = db->zone ? count_elems(db->zone) : 0;
	if (nz > 1 && nz != nh) {
		snprintf(err, errlen,
			 "zone: %d zones for %d hosts (give one zone, or one per host)", nz, nh);
		return SHOAL_ERROR;
	}
	const char *z = db->zone;
	for (int i = 0; i < nh; i++) {
		if (nz == 0) {
			out[i].zone[0] = '\0';
			continue;
		}
		if (nz == 1 && i > 0) {
			memcpy(out[i].zone, out[0].zone, sizeof(out[i].zone));
			continue;
		}
		bool ok = next_elem(&z, out[i].zone, sizeof(out[i].zone));
		for (const char *c = out[i].zone; ok && *c; c++)
			ok = isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.';
		if (!ok) {
			snprintf(err, errlen,
				 "zone: element %d of \"%s\" is not a zone name (letters, digits, "
				 "_ - ., under 32)",
				 i + 1, db->zone);
			return SHOAL_ERROR;
		}
	}
	return SHOAL_OK;
}

shoal_rc config_host_list(const struct db_entry *db, struct host_addr *out, int max, int *n,
			  char *err, size_t errlen)
{
	*n = 0;
	if (!db->host)
		return SHOAL_OK;
	int nh = count_elems(db->host);
	int np = db->port_list ? count_elems(db->port_list) : 1;
	if (nh > max) {
		snprintf(err, errlen, "host: more than %d hosts", max);
		return SHOAL_ERROR;
	}
	if (np != 1 && np != nh) {
		snprintf(err, errlen,
			 "port: %d ports for %d hosts (give one port, or one per host)", np, nh);
		return SHOAL_ERROR;
	}
	const char *h = db->host, *p = db->port_list;
	for (int i = 0; i < nh; i++) {
		if (!next_elem(&h, out[i].host, sizeof(out[i].host))) {
			snprintf(err, errlen, "host: empty or too long element %d in \"%s\"", i + 1,
				 db->host);
			return SHOAL_ERROR;
		}
		out[i].port = db->port > 0 ? db->port : 5432;
		if (np > 1) {
			char one[16];
			if (!next_elem(&p, one, sizeof(one))) {
				snprintf(err, errlen, "port: empty element %d", i + 1);
				return SHOAL_ERROR;
			}
			out[i].port = atoi(one); /* checked by the port= parser */
		}
	}
	*n = nh;
	if (weights(db, out, nh, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	return zones(db, out, nh, err, errlen);
}
