/* client_limits.h: logged-in clients counted per database name and per login user, for
 * max_db_client_connections and max_user_client_connections (PgBouncer 1.24+) and the
 * current_client_connections columns of SHOW DATABASES / SHOW USERS. Any thread may call. */
#ifndef SHOAL_CLIENT_LIMITS_H
#define SHOAL_CLIENT_LIMITS_H

#include "common.h"

enum climit_refusal {
	CLIMIT_OK,
	CLIMIT_DB_FULL,	  /* max_db_client_connections */
	CLIMIT_USER_FULL, /* max_user_client_connections */
};

/* Counts one more client of database db logged in as user, unless that would pass db_max or
 * user_max (0: no limit); then nothing is counted and the refusal says which limit. An exempt
 * client (an admin user on the console) is counted and never refused. */
enum climit_refusal climit_admit(const char *db, int db_max, const char *user, int user_max,
				 bool exempt);
/* Undoes one climit_admit that returned CLIMIT_OK. */
void climit_release(const char *db, const char *user);
/* Clients counted now for a database name / a user name (0 if never seen). */
int climit_db_clients(const char *db);
int climit_user_clients(const char *user);
/* Calls fn for each user name with clients counted now (the name lives until exit). */
void climit_foreach_user(void (*fn)(const char *user, void *arg), void *arg);
void climit_free_all(void);

#endif
