/* client_hba.c: auth_hba_file lookup for a client, peer and certificate authentication. */
#include "client_hba.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void peer_host(const struct client *c, struct sockaddr_storage *ss, char *out, size_t n)
{
	socklen_t len = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	snprintf(out, n, "[local]");
	if (c->is_unix || getpeername(c->c.lfd.fd, (struct sockaddr *)ss, &len) != 0)
		return;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)n);
}

enum hba_method client_hba_method(struct client *c, char *msg, size_t msglen)
{
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN + 8];
	int line = 0;
	peer_host(c, &ss, host, sizeof(host));
	bool tls = c->c.tls != NULL;
	bool physical = c->repl && strcmp(c->repl, "true") == 0;
	enum hba_method m = hba_match(config_current()->hba, c->is_unix, tls, &ss,
				      physical ? NULL : c->dbname, c->user, &line);
	if ((m == HBA_NO_MATCH || m == HBA_REJECT) && physical) /* PostgreSQL's wording */
		snprintf(msg, msglen, "%s replication connection %s host \"%s\", user \"%s\", %s",
			 m == HBA_REJECT ? "pg_hba.conf rejects" : "no pg_hba.conf entry for",
			 m == HBA_REJECT ? "for" : "from", host, c->user,
			 tls ? "SSL encryption" : "no encryption");
	else if (m == HBA_NO_MATCH || m == HBA_REJECT)
		snprintf(msg, msglen, "%s for host \"%s\", user \"%s\", database \"%s\", %s",
			 m == HBA_REJECT ? "pg_hba.conf rejects connection"
					 : "no pg_hba.conf entry",
			 host, c->user, c->dbname, tls ? "SSL encryption" : "no encryption");
	log_debug("%s: auth_hba_file line %d: %s", c->c.name, line, hba_method_name(m));
	return m;
}

bool client_peer_ok(const struct client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (!c->is_unix || getsockopt(c->c.lfd.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	struct passwd pw, *res = NULL;
	char buf[1024];
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	return strcmp(res->pw_name, c->user) == 0;
}

bool client_cert_ok(const struct client *c)
{
	char cn[256];
	return tls_peer_cn(&c->c, cn, sizeof(cn)) && strcmp(cn, c->user) == 0;
}
