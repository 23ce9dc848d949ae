/* owh_store_array.h — PostgreSQL text[] literals <-> APR string arrays. */
#ifndef OWH_STORE_ARRAY_H
#define OWH_STORE_ARRAY_H
#include <apr_pools.h>
#include <apr_tables.h>

/* {"a","b"} with quotes and backslashes escaped. */
const char *owh_store_array_format(const apr_array_header_t *items, apr_pool_t *p);

/* The elements of a text[] literal as PostgreSQL prints it (NULL elements
 * dropped); APR_EINVAL if it is not one. */
apr_status_t owh_store_array_parse(apr_array_header_t **pitems, const char *lit, apr_pool_t *p);
#endif
