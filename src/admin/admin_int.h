/* admin_int.h: what the admin console's files share (admin.c, admin_show.c, admin_ctl.c). */
#ifndef SHOAL_ADMIN_INT_H
#define SHOAL_ADMIN_INT_H

#include "admin.h"
#include "buf.h"

/* A command that finishes later (PAUSE, WAIT_CLOSE; RELOAD and SET, run by the main thread):
 * checked on each tick of its worker, and for RELOAD and SET as soon as the main thread's mail
 * says the job is done (AM_JOB_DONE). */
enum admin_wait_kind { AW_PAUSE, AW_WAIT_CLOSE, AW_CONTROL };
struct control_job;
struct admin_wait {
	enum admin_wait_kind kind;
	bool has_db;
	char db[64];
	struct control_job *job; /* AW_CONTROL */
	char tag[600];           /* AW_CONTROL: the CommandComplete tag on success */
};

/* MAIL_ADMIN operations (in mail->hops; the argument in mail->data). */
enum admin_mail_op { AM_KILL_DB, AM_KILL_CLIENT, AM_JOB_DONE };

/* An ErrorResponse (severity ERROR, the connection stays open). */
#define ADMIN_FAKE_PARAMS 5
extern const char *const admin_fake_params[ADMIN_FAKE_PARAMS][2]; /* admin.c */

void admin_error(struct client *c, const char *sqlstate, const char *fmt, ...) PRINTF(3, 4);
void admin_notice(struct client *c, const char *msg, const char *detail);
/* One result-set row being built: values are copied into the row's own storage. */
#define ADMIN_MAX_COLS 32
struct admin_row {
	int n;
	const char *v[ADMIN_MAX_COLS];
	char store[ADMIN_MAX_COLS][64];
};
void row_str(struct admin_row *r, const char *s); /* NULL: SQL NULL; kept by pointer */
void row_int(struct admin_row *r, long long v);
void row_u64(struct admin_row *r, uint64_t v);
void row_fmt(struct admin_row *r, const char *fmt, ...) PRINTF(2, 3);
/* RowDescription from a type string ('s' text, 'i' int4, 'q' int8, 'N' numeric, 'T' text
 * time) and names; DataRow of a built row. */
void admin_header(struct buf *b, const char *types, const char *const *names);
void admin_write_row(struct buf *b, struct admin_row *r);
/* A wall-clock time for a monotonic one, as PgBouncer's format_time_s (admin_show.c). */
void row_time(struct admin_row *r, usec_t mono);
/* SHOW CLIENTS, SERVERS, SOCKETS (admin_socks.c). */
void show_clients(struct client *c);
void show_servers(struct client *c);
void show_sockets(struct client *c);

/* SHOW what: SHOAL_OK written, SHOAL_AGAIN unknown word, SHOAL_ERROR refused (written). */
shoal_rc admin_show(struct client *c, const char *what) MUST_USE;
/* A control command (lower-case name): SHOAL_AGAIN if the name is unknown. The command writes
 * its tag or error, or sets c->admin_wait. */
shoal_rc admin_control(struct client *c, const char *cmd, const char *arg) MUST_USE;
/* DISABLE HOST / ENABLE HOST <db> <host>:<port> (admin_hosts.c), given the whole query;
 * SHOAL_AGAIN when q is not one of them. */
shoal_rc admin_hosts_command(struct client *c, const char *q) MUST_USE;
/* Is a waiting command's condition met? */
bool admin_wait_done(const struct admin_wait *aw);
const char *admin_wait_tag(const struct admin_wait *aw);
/* AW_CONTROL: wait for a job posted to the main thread; its tag on success. */
void admin_wait_job(struct client *c, struct control_job *job, const char *tag);
/* Finish a waiting command whose condition is met: its tag, or its error. Frees it. */
void admin_wait_finish(struct client *c);
void admin_wait_free(struct admin_wait *aw);
/* Every console client (admin lock held during fn). */
typedef void (*admin_client_fn)(struct client *c, void *arg);
void admin_foreach_client(admin_client_fn fn, void *arg);
int admin_client_count(void);

#endif
