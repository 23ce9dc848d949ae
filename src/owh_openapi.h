/* owh_openapi.h — the OpenAPI 3.1 document of the API (openapi/openapi.json),
 * compiled in by build/file2c.sh and served at {Location}/openapi.json. */
#ifndef OWH_OPENAPI_H
#define OWH_OPENAPI_H
#include <stddef.h>
extern const char owh_openapi_json[];
extern const size_t owh_openapi_json_len;
#endif
