/* config_int.h: what the files of config/ share among themselves (not for other folders). */
#ifndef SHOAL_CONFIG_INT_H
#define SHOAL_CONFIG_INT_H

#include "config.h"
#include "config_env.h"

#include <stdio.h>

#define MSG_LEN		  256
#define MAX_INCLUDE_DEPTH 10
/* Stands in for a value too long for inih's fixed line buffer; see src_reader(). */
#define LONG_VALUE_MARK "\x1f"

struct enum_name {
	const char *name;
	int value;
};

enum setting_type {
	T_INT,
	T_OCTAL,
	T_BOOL,
	T_STR,  /* "" stays "" (listen_addr = "" means no TCP listener) */
	T_PATH, /* "" becomes NULL (unset) */
	T_ENUM,
	T_DURATION,
	T_INT64,
};

struct setting {
	const char *name;
	size_t off;
	enum setting_type type;
	const char *def; /* parsed like a file value, so defaults take the same path */
	bool reload;     /* false: a change needs a restart */
	int64_t min, max;
	const struct enum_name *names;
};

/* The settings table (settings.c). */
extern const struct setting settings[];
extern const size_t n_settings;

struct src_line {
	char *text;	  /* leading blanks stripped, so inih never sees a continuation line */
	const char *file; /* one of ini_src.files */
	int lineno;
};

struct ini_src {
	struct src_line *lines;
	int nlines;
	char **files;
	int nfiles;
	int cur;   /* lines handed to inih so far: lines[cur - 1] is the one being handled */
	bool stop; /* a handler failed: end the stream */
};

/* key=value lists (kvlist.c) */
/* K_PORTS: one port, or a comma list of them (kept whole in db_entry.port_list). */
enum kv_kind { K_STR, K_INT, K_PORT, K_PORTS, K_MODE, K_LB, K_TSA, K_DUR };

struct kv_key {
	const char *name;
	size_t off;
	enum kv_kind kind;
	bool alias; /* another name PgBouncer accepts for the same field: never printed */
};

struct kv_table {
	const char *what; /* for messages */
	const struct kv_key *keys;
	const char *const *ignored; /* PgBouncer keys accepted with a warning */
};


/* settings.c */
const struct setting *find_setting(const char *name);
extern const struct enum_name pool_mode_names[];
extern const struct enum_name auth_type_names[];
extern const struct enum_name lb_names[];
extern const struct enum_name tsa_names[];

/* values.c */
shoal_rc parse_int(const char *v, int base, int64_t lo, int64_t hi, int64_t *out, char *msg,
		   size_t n);
shoal_rc parse_enum(const struct enum_name *names, const char *v, int *out, char *msg,
		    size_t n);
void set_str(char **p, const char *v, bool empty_is_null);
shoal_rc setting_set(struct config *cfg, const struct setting *s, const char *v, char *msg,
		     size_t n);
void apply_defaults(struct config *cfg);
void format_setting(char *out, size_t n, const struct config *cfg, const struct setting *s);

/* kvlist.c */
shoal_rc kv_parse_list(const struct kv_table *t, void *obj, const char *value, bool commas,
		       char *err, size_t errlen);
shoal_rc kv_apply(const struct kv_table *t, void *obj, const char *key, const char *val,
		  char *err, size_t errlen);
extern const struct kv_table db_table;
extern const struct kv_table user_table;
extern const struct kv_key db_keys[];
extern const char *const db_ignored[];

/* url.c */
const char *url_body(const char *value);
shoal_rc url_parse(struct db_entry *db, char *s, char *err, size_t errlen);

/* entries.c */
shoal_rc add_db(struct config *cfg, const char *name, const char *value, char *msg, size_t n);
/* Rebuild cfg->db_index from cfg->dbs (after a copy); free it (config_free). */
void db_index_build(struct config *cfg);
void db_index_free(struct config *cfg);
shoal_rc add_user(struct config *cfg, const char *name, const char *value, char *msg,
		  size_t n);
void db_entry_clear(struct db_entry *db);

/* ini.c */
shoal_rc src_read(struct ini_src *src, FILE *f, const char *path, int depth, char *err,
		  size_t errlen);
void src_free(struct ini_src *src);
char *src_reader(char *str, int num, void *stream);
const char *long_value(struct src_line *l);

/* userlist.c */
shoal_rc load_auth_file(struct config *cfg, char *err, size_t errlen);

/* auth_hba_file into cfg->hba (NULL before), required by auth_type = hba (config.c). */
shoal_rc config_load_hba(struct config *cfg, char *err, size_t errlen) MUST_USE;

#endif
