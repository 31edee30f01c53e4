/* welcome.h: a pool's welcome (AuthenticationOk and its server's ParameterStatus messages)
 * encoded once and copied to each logging-in client as one block, the client's own values
 * spliced in. */
#ifndef SHOAL_WELCOME_H
#define SHOAL_WELCOME_H

#include "buf.h"
#include "param_list.h"

struct welcome_block; /* one allocation: free() it (pool_destroy) */

/* Append to o AuthenticationOk and a ParameterStatus for each value server reported at login
 * (initial set), in server's order, with mine's value where mine has that parameter. With
 * cache non-NULL the messages are encoded into *cache at the first call and copied after;
 * server must then not change while *cache lives (a pool's welcome set). */
void welcome_write(struct buf *o, struct welcome_block **cache, const struct param_list *server,
		   const struct param_list *mine);

#endif
