/* owh_sql.h — the SQL compiled in from sql/ by build/sql2c.sh: the migrations
 * (sql/NNN_name.sql: tables, indexes, data; frozen once released) and the
 * functions (sql/functions/name.sql: each defined once, re-created when its
 * text changes). Applied by src/owh_store_migrate.c. */
#ifndef OWH_SQL_H
#define OWH_SQL_H
typedef struct {
    int version;                    /* NNN of sql/NNN_name.sql */
    const char *name;               /* NNN_name */
    const char *checksum;           /* SHA-256 (hex) of the file */
    const char *const *statements;  /* NULL-terminated, one statement each */
} owh_sql_migration_t;

typedef struct {
    const char *name;               /* defines octo_webhooks.<name>(...) */
    const char *checksum;           /* SHA-256 (hex) of the file */
    const char *const *statements;
} owh_sql_function_t;

extern const owh_sql_migration_t owh_sql_migrations[];   /* ascending; ends with version 0 */
extern const owh_sql_function_t owh_sql_functions[];     /* ends with name NULL */
#endif
