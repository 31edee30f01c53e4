/* params.h: session parameters tracked per client and per server, and the SET/RESET query that
 * makes a server's session match a client's before the client's messages reach it. */
#ifndef SHOAL_PARAMS_H
#define SHOAL_PARAMS_H

#include "buf.h"
#include "common.h"
#include "param_list.h"

void params_copy(struct param_list *dst, const struct param_list *src);
/* Case-insensitive lookup (GUC names are). NULL when absent. */
struct param *params_find(const struct param_list *pl, const char *name);
const char *params_get(const struct param_list *pl, const char *name);
/* The entry of pl with like's name (compares the stored name hashes first). */
struct param *params_find_like(const struct param_list *pl, const struct param *like);
/* Insert or overwrite a value (and, for servers at login, its initial value). */
void params_set(struct param_list *pl, const char *name, const char *value, bool initial);
/* Insert or overwrite a value that is SQL text (a tracked SET's right-hand side, e.g.
 * "a, \"B\"" for search_path): re-applied as SET name = <text>, not as a quoted literal. */
void params_set_raw(struct param_list *pl, const char *name, const char *sql);
/* Remove name if present. */
void params_remove(struct param_list *pl, const char *name);
/* Remove every value set with params_set_raw (the client ran DISCARD ALL / RESET ALL). */
void params_remove_raw(struct param_list *pl);
/* True if name is a parameter name we can put in a SET: [A-Za-z_][A-Za-z0-9_.]*. */
bool params_valid_name(const char *name);
/* Can a client's value be carried to another server with SET? (Not the read-only ones the server
 * reports, nor role/session_authorization, which change privileges and need their own commands.) */
bool params_settable(const char *name);
/* Parse the startup "options" value: "-c a=b", "-ca=b", "--a=b", separated by spaces, with
 * backslash escaping a space. Each pair goes into out. SHOAL_ERROR on anything else. */
shoal_rc params_parse_options(const char *options, struct param_list *out) MUST_USE;
/* Append to sql the statements that make the server's session match the client's: a SET for
 * each client value that differs, a RESET for each value a previous client changed that this
 * client did not set. Returns the number of statements appended. idle: the server is outside a
 * transaction block, so a list parameter (search_path, ...) can be given its text as it is, with
 * set_config(). */
int params_diff_sql(const struct param_list *client, const struct param_list *server,
		    struct buf *sql, bool idle);

/* The server's session went back to its reset values (RESET ALL, DISCARD ALL) and its reports
 * (ParameterStatus) have been read: the values it does not report are unknown again. */
void params_forget_unreported(struct param_list *server);

/* A server's parameter went back to its reset value (RESET name): its login value where the
 * server reported one, else unknown (removed). */
void params_back_to_initial(struct param_list *server, const char *name);

/* Append SET "name" = 'value' (no ';') for p, a literal value, quoted for the server's current
 * standard_conforming_strings; for a list parameter (search_path, ...) the list of its
 * elements, 'a', 'b', as PostgreSQL reads a startup value. */
void params_append_set(struct buf *sql, const struct param *p, const struct param_list *server);

/* Record in server what params_diff_sql's statements will leave there (the server's reports via
 * ParameterStatus then refine the values). */
void params_assume_applied(const struct param_list *client, struct param_list *server);

#endif
