/* owh_auth.h — who is calling: a bearer token (SHA-256 looked up in the
 * store) or r->user set by another Apache auth module, mapped to a connection
 * and its abilities. */
#ifndef OWH_AUTH_H
#define OWH_AUTH_H

#include <httpd.h>
#include "owh_store.h"

typedef enum { OWH_ABILITY_READ = 0, OWH_ABILITY_WRITE = 1 } owh_ability_e;

typedef struct owh_caller_t {
    const char *connection;
    apr_array_header_t *abilities;  /* const char *; NULL = all (remote-user mode) */
} owh_caller_t;

/* Outcome of authentication; the handler maps these to OCTO errors. */
typedef enum {
    OWH_AUTH_OK = 0,
    OWH_AUTH_MISSING,       /* 401 UNAUTHORIZED */
    OWH_AUTH_INVALID,       /* 403 FORBIDDEN: unknown, revoked or malformed */
    OWH_AUTH_NO_ABILITY,    /* 403 FORBIDDEN: the token lacks the ability */
    OWH_AUTH_UNAVAILABLE    /* 503: the store could not be asked */
} owh_auth_result_e;

/* 1 if the request carries credentials of the configured kind, checked
 * before a database connection is taken. */
int owh_auth_present(request_rec *r, int remote_user_mode);

/* Authenticates r and checks it may use `need`. db may be NULL in
 * remote-user mode. */
owh_auth_result_e owh_auth_check(request_rec *r, int remote_user_mode, owh_db_t *db,
                                 owh_ability_e need, const char *family, owh_caller_t *caller);

#endif
