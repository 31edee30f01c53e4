/* client.c: client connections: accept, events, the one path by which a client dies. Login is
 * client_login.c, routing after login client_route.c. */
#include "client.h"
#include "client_int.h"
#include "cancel.h"
#include "client_admit.h"
#include "client_budget.h"
#include "client_sasl.h"
#include "door.h"
#include "error_stats.h"
#include "handoff.h"
#include "log.h"
#include "net.h"
#include "objcache.h"
#include "params.h"
#include "pool.h"
#include "proto.h"
#include "server.h"
#include "txn.h"
#include "worker.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static atomic_uint_fast64_t next_client_id = 1;
static __thread struct objcache client_cache; /* freed clients, for this worker's next ones */
static atomic_int total_clients;

static void client_event(struct loop_fd *lfd, uint32_t events);
static void client_read(struct client *c);

int client_count(void)
{
	return atomic_load(&total_clients);
}

/* inherited: fd comes from a listening socket that has the tcp_* options (listen.c), which
 * an accepted socket inherits: no setsockopt here. */
static struct client *client_new(struct worker *w, int fd, const struct sockaddr_storage *addr,
				 bool inherited)
{
	struct client *c = objcache_take(&client_cache, sizeof(*c));
	c->c.w = w;
	c->c.loop = w->loop;
	c->c.lfd.fd = fd;
	c->c.lfd.cb = client_event;
	c->id = atomic_fetch_add(&next_client_id, 1);
	list_init(&c->node);
	c->app_name = "";
	c->params.fixed = (char *)(void *)c->params_fixed;
	c->params.fixed_len = sizeof(c->params_fixed);
	c->login.fixed = (char *)(void *)c->login_fixed;
	c->login.fixed_len = sizeof(c->login_fixed);
	c->connect_time = c->last_activity = shoal_clock(); /* this loop pass's clock */
	net_addr_info(fd, addr, c->addr, sizeof(c->addr), &c->port, c->local_addr,
		      sizeof(c->local_addr), &c->local_port);
	c->unix_peer = addr->ss_family == AF_UNIX;
	/* "C-<id> <peer>", peer as net_peer_name gives it, from the text just formatted */
	_Static_assert(sizeof(c->c.name) >= 2 + 20 + 1 + sizeof(c->addr) + 8, "room for a name");
	char *o = c->c.name;
	memcpy(o, "C-", 2);
	o = u64_put(o + 2, c->id);
	*o++ = ' ';
	net_peer_text(addr->ss_family, c->addr, c->port, o);
	c->is_unix = addr->ss_family == AF_UNIX;
	if (addr->ss_family != AF_UNIX && !inherited)
		client_tcp_opts(fd);
	atomic_fetch_add(&total_clients, 1);
	w->n_clients++;
	client_set_state(c, CL_LOGIN);
	if (loop_add(w->loop, &c->c.lfd, EPOLLIN) != SHOAL_OK) {
		client_close(c, NULL, "epoll registration failed");
		return NULL;
	}
	log_debug("%s connected", c->c.name);
	return c;
}

struct net_tcp_opts client_tcp_opts_of(const struct config *cfg)
{
	return (struct net_tcp_opts){.keepalive = cfg->tcp_keepalive,
				     .keepcnt = cfg->tcp_keepcnt,
				     .keepidle = cfg->tcp_keepidle,
				     .keepintvl = cfg->tcp_keepintvl,
				     .user_timeout = cfg->tcp_user_timeout};
}

void client_tcp_opts(int fd)
{
	struct net_tcp_opts o = client_tcp_opts_of(config_current());
	net_set_tcp_opts(fd, &o);
}

struct client *client_accept(struct worker *w, int fd, const struct sockaddr_storage *addr)
{
	bool room = door_room(w);
	struct client *c = client_new(w, fd, addr, true);
	if (!c)
		return NULL;
	door_login_begin(c);
	if (!room) {
		door_refuse(c);
		return NULL;
	}
	return c;
}

struct client *client_accept_handed(struct worker *w, int fd, const struct sockaddr_storage *addr)
{
	struct client *c = client_new(w, fd, addr, false);
	if (c)
		c->c.lfd.shared = true; /* the old process may hold the socket a moment longer */
	return c;
}

void client_accept_internal(struct worker *w, int fd)
{
	struct sockaddr_storage addr = {.ss_family = AF_UNIX};
	struct client *c = client_new(w, fd, &addr, false);
	if (!c)
		return;
	c->internal = true;
	atomic_fetch_sub(&total_clients, 1); /* probes never take a slot of max_client_conn */
	snprintf(c->c.name, sizeof(c->c.name), "C-%llu health-probe", (unsigned long long)c->id);
}

void client_name_set(char **name, char inline_buf[CLIENT_NAME_INLINE], const char *v)
{
	if (*name != inline_buf)
		free(*name);
	*name = NULL;
	if (!v)
		return;
	size_t len = strlen(v);
	if (len >= CLIENT_NAME_INLINE) {
		*name = xstrdup(v);
		return;
	}
	memcpy(inline_buf, v, len + 1);
	*name = inline_buf;
}

void client_app_name_set(struct client *c)
{
	const char *app = params_get(&c->login, "application_name");
	c->app_name = app ? app : "";
}

void client_free(struct client *c)
{
	params_free(&c->params);
	params_free(&c->login);
	client_sasl_end(c);
	if (c->aq_secret)
		explicit_bzero(c->aq_secret, strlen(c->aq_secret));
	free(c->aq_secret);
	txn_client_free(c);
	client_split_forget(c);
	client_name_set(&c->user, c->user_buf, NULL);
	client_name_set(&c->dbname, c->dbname_buf, NULL);
	free(c->repl);
	objcache_give(&client_cache, c, sizeof(*c));
}

shoal_rc client_flush(struct client *c)
{
	if (c->c.dead)
		return SHOAL_ERROR;
	if (conn_flush(&c->c) == SHOAL_ERROR) {
		client_close(c, NULL, errno ? strerror(errno) : "send failed");
		return SHOAL_ERROR;
	}
	buf_shed(&c->c.out);
	return SHOAL_OK;
}

/* A linked server outlives its client only if it is between transactions. */
static void client_let_go_of_server(struct client *c)
{
	struct server *s = c->server;
	if (!s)
		return;
	pool_unlink(c, s);
	cancel_set_target(c, NULL);
	bool clean = s->state == SV_ACTIVE && server_is_clean(s) && c->c.fwd_left == 0;
	if (s->pool->repl)
		server_close(s, "replication client disconnected"); /* never reused */
	else if (!clean)
		server_close(s, s->state == SV_SETUP ? "client left during setup"
						     : "client disconnected inside a transaction");
	else if (c->pin_reason)
		server_begin_reset_with(s, "DISCARD ALL"); /* whatever it left on its server */
	else if (pool_mode_of(s->pool) == POOL_SESSION || c->owns_server ||
		 config_current()->server_reset_query_always)
		server_begin_reset(s);
	else
		pool_server_ready(s);
}

static void client_close_common(struct client *c, const char *reason)
{
	struct worker *w = c->c.w;
	bool quiet = !reason || strcmp(reason, "client closed the connection") == 0 ||
		     !config_current()->log_disconnections || door_quiet(c, reason);
	door_leave(c);
	enum log_level lvl = quiet ? LOG_DEBUG : LOG_INFO;
	if (log_enabled(lvl))
		log_msg(lvl, "%s closing because: %s", c->c.name, reason ? reason : "done");
	if (buf_avail(&c->c.out) > 0 && conn_flush(&c->c) != SHOAL_OK)
		log_debug("%s: could not send the last bytes", c->c.name);
	c->c.dead = true; /* before the server is let go: nothing may route to this client */
	door_login_end(c);
	client_let_go_of_server(c);
	client_admit_release(c);
	if (c->ops)
		c->ops->gone(c);
	else
		pool_client_gone(c);
	cancel_unregister(c);
	conn_close(&c->c);
	client_budget_forget(c);
	list_append(&w->dead_clients, &c->node);
	if (!c->internal)
		atomic_fetch_sub(&total_clients, 1);
	w->n_clients--;
}

void client_close(struct client *c, const char *sqlstate, const char *msg)
{
	if (c->c.dead)
		return;
	struct server *s = c->server;
	if (s && s->state == SV_ACTIVE && s->c.fwd_left > 0)
		sqlstate = NULL; /* a server message is half forwarded: no error inside it */
	if (sqlstate) {
		c->c.paused = false;
		error_stats_count(sqlstate, ERR_FROM_POOLER);
		proto_write_error(&c->c.out, "FATAL", sqlstate, msg);
	}
	client_close_common(c, msg);
}

void client_close_with(struct client *c, const uint8_t *errmsg, size_t len, const char *reason)
{
	if (c->c.dead)
		return;
	struct pq_error e; /* a server's refusal of the login, passed on: count its SQLSTATE */
	if (len > PQ_HEADER_LEN && errmsg[0] == PQMSG_ERROR &&
	    proto_parse_error(errmsg + PQ_HEADER_LEN, len - PQ_HEADER_LEN, &e) == SHOAL_OK)
		error_stats_count(e.sqlstate, ERR_FROM_SERVER);
	buf_append(&c->c.out, errmsg, len);
	client_close_common(c, reason);
}

static void client_event(struct loop_fd *lfd, uint32_t events)
{
	struct client *c = container_of(lfd, struct client, c.lfd);
	if (c->c.dead)
		return;
	if ((events & EPOLLOUT) && client_flush(c) != SHOAL_OK)
		return;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !conn_hold(&c->c, events))
		client_read(c);
	if (!c->c.dead && c->server)
		server_link_settle(c->server);
	if (!c->c.dead)
		client_budget_account(c);
}

/* The socket is readable (or failed): take what arrived and act on it. */
static void client_read(struct client *c)
{
	shoal_rc rc = conn_read(&c->c);
	if (rc == SHOAL_ERROR) {
		client_close(c, NULL, errno ? strerror(errno) : "client closed the connection");
		return;
	}
	if (rc == SHOAL_OK) {
		c->last_activity = shoal_clock();
		client_process(c);
		if (!c->c.dead)
			buf_shed(&c->c.in); /* between requests a client holds no buffers */
	}
}

void client_process(struct client *c)
{
	while (!c->c.dead && c->state == CL_LOGIN) {
		if (client_login_step(c) != SHOAL_OK)
			return;
	}
	if (c->c.dead || buf_avail(&c->c.in) == 0)
		return;
	if (c->ops)
		c->ops->input(c);
	else if (c->state == CL_IDLE)
		client_idle_input(c);
	else if (c->state == CL_LINKED && c->server && c->server->state == SV_ACTIVE)
		client_route(c);
}

void client_resume(struct client *c)
{
	if (c->c.dead)
		return;
	if (c->state == CL_IDLE && handoff_wants(c)) {
		conn_pause(&c->c, true); /* moved at the tick; its next request waits for it */
		return;
	}
	if (c->state == CL_IDLE || c->state == CL_LINKED)
		conn_pause(&c->c, false);
	client_process(c);
}
