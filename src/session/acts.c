/* acts.c: the session functions through which pool/ has its decisions carried out (acts.h). */
#include "acts.h"
#include "cancel.h"
#include "client.h"
#include "server.h"

const struct pool_acts session_acts = {
	.client_close = client_close,
	.client_close_with = client_close_with,
	.server_connect = server_connect,
	.server_close = server_close,
	.server_retire = server_retire,
	.server_begin_link = server_begin_link,
	.server_send_cancel = server_send_cancel,
	.server_is_clean = server_is_clean,
	.server_free = server_free,
	.cancel_set_target = cancel_set_target,
	.client_flush = client_flush,
	.server_check_pool = server_check_pool,
};
