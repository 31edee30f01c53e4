/* config_env.h: the twelve-factor side of the configuration, kept out of config.c: ${VAR}
 * expansion in INI values, DATABASE_URL and SHOAL_DATABASES, "did you mean" suggestions for
 * unknown names, and configuration warnings that are said once per process. */
#ifndef SHOAL_CONFIG_ENV_H
#define SHOAL_CONFIG_ENV_H

#include "config.h"

/* Expand ${VAR} and ${VAR:-default} (default also when VAR is set but empty, as in sh) in
 * value; "$${" stands for a literal "${", any other '$' is kept. *out is malloc'd, the caller
 * frees it. SHOAL_ERROR with msg on an unset VAR without a default, a bad name or a missing
 * '}' (*out is NULL then). */
shoal_rc config_expand_vars(const char *value, char **out, char *msg, size_t n) MUST_USE;

/* Edit distance (Levenshtein, case-insensitive) between a and b. */
size_t config_edit_distance(const char *a, const char *b);
/* The closest of names[0..count) to word, or NULL when none is close enough to be a typo. */
const char *config_suggest(const char *word, const char *const *names, size_t count);
/* The closest setting name of the settings table, or of extra[0..nextra) (other names Shoal
 * accepts in [pgbouncer]), or NULL. */
const char *config_suggest_setting(const char *word, const char *const *extra, size_t nextra);

/* Databases from the environment, applied after the file and the SHOAL_<NAME> overrides.
 * SHOAL_DATABASES ("name=URL-or-connstr;name=..."): each entry is added, or replaces the
 * file's entry of the same name. DATABASE_URL (only when no file is given): its database name
 * becomes an entry and "*" forwards every other database name to the same server. When either
 * is set and there is no file, the embedded "*" (local PostgreSQL) is dropped. A URL's libpq
 * client options that are not database options are handled here: sslmode raises
 * server_tls_sslmode, sslrootcert sets server_tls_ca_file ("system": the default CAs),
 * channel_binding and connect_timeout are noted and ignored. DATABASE_URL is the application's
 * too, so any other parameter that is no [databases] key (Prisma's schema=, pgbouncer=true,
 * connection_limit=, ...) is noted and ignored there; in SHOAL_DATABASES it is an error.
 * SHOAL_ERROR with err naming the variable. */
shoal_rc config_env_databases(struct config *cfg, bool have_file, char *err,
			      size_t errlen) MUST_USE;
/* In config.c: add a [databases] entry from its value (a later one of the same name replaces
 * it), and drop the entry of that name if any. */
shoal_rc config_add_db(struct config *cfg, const char *name, const char *value, char *msg,
		       size_t n) MUST_USE;
void config_drop_db(struct config *cfg, const char *name);
/* Is key[0..n) a [databases] key (or one accepted and ignored there)? */
bool config_is_db_key(const char *key, size_t n);
/* Parse one SHOAL_DATABASES-style list into cfg (what = the variable's name, for messages). */
shoal_rc config_parse_database_list(struct config *cfg, const char *list, const char *what,
				    char *err, size_t errlen) MUST_USE;
/* The entries for one DATABASE_URL-style URL: its dbname (if any) and "*". */
shoal_rc config_database_url(struct config *cfg, const char *url, const char *what, char *err,
			     size_t errlen) MUST_USE;

/* The value of environment variable var, else the contents of the file named by var_FILE
 * (one trailing newline dropped; at most 64 kB), as Docker and Kubernetes hand out secrets:
 * the secret then stays out of the process environment. NULL when neither is set. A value
 * read from a file is malloc'd into *owned (else *owned is NULL); the caller frees it.
 * SHOAL_ERROR with msg when var_FILE names a file that cannot be read. */
shoal_rc config_env_get(const char *var, const char **value, char **owned, char *msg,
			size_t n) MUST_USE;

/* Warn (once) about SHOAL_* environment variables that name no setting, with the closest one:
 * SHOAL_POOL_MOD would otherwise be ignored without a word. Only a warning, whatever
 * strict_config says: the environment is shared with other programs. */
void config_env_check_names(void);

/* A configuration warning: logged the first time this process sees this exact text, so a
 * reload does not repeat it; also kept so that config_notes_replay() can write them again once
 * the logfile is open (config_load runs before it, with stderr as the log). */
void config_note(const char *fmt, ...) PRINTF(1, 2);
/* Log every note so far again (to the logfile just opened). */
void config_notes_replay(void);
/* Forget the notes (tests). */
void config_notes_reset(void);

/* Make unknown keys and sections errors whatever strict_config says (--check). */
void config_force_strict(bool on);
bool config_strict_forced(void);

#endif
