/* client_hba.h: which authentication a client gets under auth_type = hba, and the checks of the
 * methods that need no password (peer credentials, TLS client certificate). */
#ifndef SHOAL_CLIENT_HBA_H
#define SHOAL_CLIENT_HBA_H

#include "hba.h"
#include "objects.h"

/* The method of the first auth_hba_file rule matching c (HBA_NO_MATCH if none). For
 * HBA_NO_MATCH and HBA_REJECT, msg gets PostgreSQL's wording for the refusal. */
enum hba_method client_hba_method(struct client *c, char *msg, size_t msglen);
/* Unix socket peer credentials: is the connecting OS user named like c->user? */
bool client_peer_ok(const struct client *c);
/* Did c present a TLS certificate that verified and whose common name is c->user? */
bool client_cert_ok(const struct client *c);

#endif
