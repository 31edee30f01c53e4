/* hba.c: auth_hba_file parsing (pg_hba.conf syntax, PgBouncer's subset) and rule matching. */
#include "hba.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HBA_MAX_FIELDS 16
#define HBA_MAX_FILE   (1024 * 1024)

struct hitem {
	char *s;
	bool quoted; /* a quoted "all" is a name, not the keyword */
};

struct hfield {
	struct hitem *it;
	int n;
};

/* ---- tokens ----------------------------------------------------------------------------- */

static void field_add(struct hfield *f, const char *s, size_t n, bool quoted)
{
	f->it = xrealloc(f->it, sizeof(*f->it) * (size_t)(f->n + 1));
	char *c = xmalloc(n + 1);
	memcpy(c, s, n);
	c[n] = '\0';
	f->it[f->n++] = (struct hitem){c, quoted};
}

static void fields_free(struct hfield *f, int n)
{
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < f[i].n; j++)
			free(f[i].it[j].s);
		free(f[i].it);
		f[i] = (struct hfield){0};
	}
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* One item at *pp: "quoted" ("" is a quote) or bare up to space, ',' or '#'. */
static const char *read_item(const char **pp, const char *end, struct hfield *f)
{
	const char *p = *pp;
	if (p >= end)
		return "syntax error"; /* a list ending in a comma */
	if (*p == '"') {
		char buf[1024];
		size_t n = 0;
		for (p++;; p++) {
			if (p >= end)
				return "unterminated quoted string";
			if (*p == '"' && !(p + 1 < end && p[1] == '"'))
				break;
			if (*p == '"')
				p++;
			if (n >= sizeof(buf) - 1)
				return "name too long";
			buf[n++] = *p;
		}
		field_add(f, buf, n, true);
		*pp = p + 1;
		return NULL;
	}
	const char *s = p;
	while (p < end && !is_space(*p) && *p != ',' && *p != '#' && *p != '"')
		p++;
	if (p == s)
		return "syntax error";
	field_add(f, s, (size_t)(p - s), false);
	*pp = p;
	return NULL;
}

/* Split a line into fields of comma-separated items. Returns the count, or -1 (*err). */
static int split_line(const char *p, const char *end, struct hfield *f, const char **err)
{
	int nf = 0;
	for (;;) {
		while (p < end && is_space(*p))
			p++;
		if (p >= end || *p == '#')
			return nf;
		if (nf == HBA_MAX_FIELDS) {
			*err = "too many fields";
			return -1;
		}
		for (;;) {
			if ((*err = read_item(&p, end, &f[nf])) != NULL) {
				nf++;
				return -1;
			}
			if (p < end && *p == ',') {
				p++;
				while (p < end && is_space(*p))
					p++;
				continue;
			}
			break;
		}
		nf++;
		if (p < end && !is_space(*p) && *p != '#') {
			*err = "syntax error";
			return -1;
		}
	}
}

/* ---- names ------------------------------------------------------------------------------ */

static void names_add(struct hba_names *nm, const char *s)
{
	nm->items = xrealloc(nm->items, sizeof(char *) * (size_t)(nm->n + 1));
	nm->items[nm->n++] = xstrdup(s);
}

static void names_free(struct hba_names *nm)
{
	for (int i = 0; i < nm->n; i++)
		free(nm->items[i]);
	free(nm->items);
	*nm = (struct hba_names){0};
}

/* @file: names separated by spaces, commas or newlines; '#' comments. */
static const char *names_from_file(struct hba_names *nm, const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (!dir)
		return "@file is not allowed here";
	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return "cannot open @file";
	char *line = NULL;
	size_t cap = 0;
	const char *err = NULL;
	while (!err && getline(&line, &cap, f) >= 0) {
		struct hfield fl[HBA_MAX_FIELDS] = {0};
		size_t n = strcspn(line, "\n");
		int nf = split_line(line, line + n, fl, &err);
		for (int i = 0; i < nf; i++)
			for (int j = 0; j < fl[i].n; j++)
				names_add(nm, fl[i].it[j].s);
		fields_free(fl, nf < 0 ? HBA_MAX_FIELDS : nf);
	}
	free(line);
	fclose(f);
	return err;
}

static const char *parse_names(const struct hfield *f, bool is_db, const char *dir,
			       struct hba_names *nm)
{
	for (int i = 0; i < f->n; i++) {
		const struct hitem *it = &f->it[i];
		if (it->quoted) {
			names_add(nm, it->s);
		} else if (!strcmp(it->s, "all")) {
			nm->all = true;
		} else if (is_db && !strcmp(it->s, "sameuser")) {
			nm->sameuser = true;
		} else if (is_db && !strcmp(it->s, "replication")) {
			nm->replication = true; /* a keyword, not a database of that name */
		} else if (it->s[0] == '@') {
			const char *err = names_from_file(nm, dir, it->s + 1);
			if (err)
				return err;
		} else if (it->s[0] == '+' || !strcmp(it->s, "samerole") ||
			   !strcmp(it->s, "samegroup")) {
			return "group membership (+group, samerole) is not supported";
		} else {
			names_add(nm, it->s);
		}
	}
	return NULL;
}

/* ---- addresses and methods -------------------------------------------------------------- */

static void mask_from_bits(uint8_t *mask, int bytes, long bits)
{
	memset(mask, 0, 16);
	for (int i = 0; i < bytes; i++) {
		long b = bits - 8L * i;
		mask[i] = b >= 8 ? 0xff : b <= 0 ? 0 : (uint8_t)(0xff << (8 - b));
	}
}

static int parse_ip(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, out) == 1)
		return AF_INET6;
	return 0;
}

/* The address field(s) at f[*i] (CIDR, "all", or address then mask); *i moves past them. */
static const char *parse_address(struct hba_rule *r, const struct hfield *f, int nf, int *i)
{
	if (*i >= nf || f[*i].n != 1)
		return "address expected";
	const struct hitem *it = &f[*i].it[0];
	(*i)++;
	if (!it->quoted && !strcmp(it->s, "all")) {
		r->addr_all = true;
		return NULL;
	}
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", it->s);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	r->family = parse_ip(buf, r->addr);
	if (!r->family)
		return "invalid IP address (host names, samehost and samenet are not supported)";
	int bytes = r->family == AF_INET ? 4 : 16;
	if (slash) {
		char *end;
		errno = 0;
		long bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || bits < 0 || bits > bytes * 8)
			return "invalid CIDR mask length";
		mask_from_bits(r->mask, bytes, bits);
	} else {
		if (*i >= nf || f[*i].n != 1 || parse_ip(f[*i].it[0].s, r->mask) != r->family)
			return "IP mask expected after the address";
		(*i)++;
	}
	for (int b = 0; b < bytes; b++)
		r->addr[b] &= r->mask[b];
	return NULL;
}

static const struct {
	const char *name;
	enum hba_method m;
} methods[] = {
    {"trust", HBA_TRUST},	  {"reject", HBA_REJECT},     {"md5", HBA_MD5},
    {"scram-sha-256", HBA_SCRAM}, {"password", HBA_PASSWORD}, {"peer", HBA_PEER},
    {"cert", HBA_CERT},
};

const char *hba_method_name(enum hba_method m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].m == m)
			return methods[i].name;
	return "no match";
}

/* ---- rules ------------------------------------------------------------------------------ */

static const char *parse_rule(struct hba_rule *r, const struct hfield *f, int nf, const char *dir)
{
	static const char *const types[] = {"local", "host", "hostssl", "hostnossl"};
	if (f[0].n != 1)
		return "connection type expected";
	int t = -1;
	for (int i = 0; i < 4; i++)
		if (!strcmp(f[0].it[0].s, types[i]))
			t = i;
	if (t < 0)
		return "unsupported connection type";
	r->type = (enum hba_conn_type)t;
	if (nf < 4)
		return "end-of-line before authentication method";
	const char *err = parse_names(&f[1], true, dir, &r->dbs);
	if (!err)
		err = parse_names(&f[2], false, dir, &r->users);
	if (err)
		return err;
	int i = 3;
	if (r->type != HBA_LOCAL && (err = parse_address(r, f, nf, &i)) != NULL)
		return err;
	if (i >= nf || f[i].n != 1)
		return "authentication method expected";
	for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
		if (!strcmp(f[i].it[0].s, methods[m].name))
			r->method = methods[m].m;
	if (r->method == HBA_NO_MATCH)
		return "unsupported authentication method";
	if (r->method == HBA_PEER && r->type != HBA_LOCAL)
		return "peer authentication is only supported on local sockets";
	if (i + 1 < nf)
		return "authentication options are not supported";
	return NULL;
}

static void rule_free(struct hba_rule *r)
{
	names_free(&r->dbs);
	names_free(&r->users);
}

void hba_free(struct hba *h)
{
	for (int i = 0; i < h->n; i++)
		rule_free(&h->rules[i]);
	free(h->rules);
	h->rules = NULL;
	h->n = 0;
}

shoal_rc hba_parse(const char *text, size_t len, const char *dir, struct hba *out, char *err,
		   size_t errlen)
{
	memset(out, 0, sizeof(*out));
	const char *p = text, *end = text + len;
	for (int line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct hfield f[HBA_MAX_FIELDS] = {0};
		const char *why = NULL;
		int nf = memchr(p, '\0', (size_t)(eol - p)) ? (why = "NUL byte", -1)
							    : split_line(p, eol, f, &why);
		if (nf > 0) {
			struct hba_rule r = {.line = line};
			why = parse_rule(&r, f, nf, dir);
			if (why) {
				rule_free(&r);
			} else {
				out->rules = xrealloc(out->rules, sizeof(r) * (size_t)(out->n + 1));
				out->rules[out->n++] = r;
			}
		}
		fields_free(f, HBA_MAX_FIELDS);
		if (why) {
			snprintf(err, errlen, "line %d: %s", line, why);
			hba_free(out);
			return SHOAL_ERROR;
		}
		p = eol + (nl ? 1 : 0);
	}
	return SHOAL_OK;
}

shoal_rc hba_load(const char *path, struct hba *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "auth_hba_file \"%s\": %s", path, strerror(errno));
		return SHOAL_ERROR;
	}
	char *text = xmalloc(HBA_MAX_FILE);
	size_t n = fread(text, 1, HBA_MAX_FILE, f);
	bool too_big = n == HBA_MAX_FILE;
	fclose(f);
	char dir[PATH_MAX], msg[256] = "";
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	shoal_rc rc = too_big ? SHOAL_ERROR : hba_parse(text, n, dir, out, msg, sizeof(msg));
	if (rc != SHOAL_OK)
		snprintf(err, errlen, "auth_hba_file \"%s\": %s", path,
			 too_big ? "too large" : msg);
	free(text);
	return rc;
}

/* ---- matching --------------------------------------------------------------------------- */

static bool names_match(const struct hba_names *nm, const char *name, const char *user)
{
	if (!name) /* physical replication */
		return nm->replication;
	if (nm->all || (nm->sameuser && strcmp(name, user) == 0))
		return true;
	for (int i = 0; i < nm->n; i++)
		if (strcmp(nm->items[i], name) == 0)
			return true;
	return false;
}

/* The client's address as (family, bytes); IPv4-mapped IPv6 counts as IPv4. */
static int client_ip(const struct sockaddr_storage *ss, uint8_t out[16])
{
	if (ss->ss_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return AF_INET;
	}
	if (ss->ss_family != AF_INET6)
		return 0;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		memcpy(out, a->s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(out, a->s6_addr, 16);
	return AF_INET6;
}

static bool addr_match(const struct hba_rule *r, int fam, const uint8_t ip[16])
{
	if (r->addr_all)
		return true;
	if (fam != r->family)
		return false;
	int bytes = fam == AF_INET ? 4 : 16;
	for (int i = 0; i < bytes; i++)
		if ((ip[i] & r->mask[i]) != r->addr[i])
			return false;
	return true;
}

static bool type_match(enum hba_conn_type t, bool is_unix, bool tls)
{
	switch (t) {
	case HBA_LOCAL:
		return is_unix;
	case HBA_HOST:
		return !is_unix;
	case HBA_HOSTSSL:
		return !is_unix && tls;
	case HBA_HOSTNOSSL:
		return !is_unix && !tls;
	}
	return false;
}

enum hba_method hba_match(const struct hba *h, bool is_unix, bool tls,
			  const struct sockaddr_storage *addr, const char *db, const char *user,
			  int *line)
{
	uint8_t ip[16] = {0};
	int fam = is_unix || !addr ? 0 : client_ip(addr, ip);
	*line = 0;
	for (int i = 0; h && i < h->n; i++) {
		const struct hba_rule *r = &h->rules[i];
		if (!type_match(r->type, is_unix, tls) || !names_match(&r->dbs, db, user) ||
		    !names_match(&r->users, user, user))
			continue;
		if (r->type != HBA_LOCAL && !addr_match(r, fam, ip))
			continue;
		*line = r->line;
		return r->method;
	}
	return HBA_NO_MATCH;
}
