/* owh_sql.h — the schema migrations compiled in from sql/NNN_name.sql by build/sql2c.sh. */
#ifndef OWH_SQL_H
#define OWH_SQL_H
typedef struct {
    int version;                    /* NNN of sql/NNN_name.sql */
    const char *name;
    const char *const *statements;  /* NULL-terminated, one statement each */
} owh_sql_migration_t;
extern const owh_sql_migration_t owh_sql_migrations[];   /* ends with version 0 */
#endif
