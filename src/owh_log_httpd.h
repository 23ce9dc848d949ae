/* owh_log_httpd.h — httpd glue of the log bridge (owh_log.h). */
#ifndef OWH_LOG_HTTPD_H
#define OWH_LOG_HTTPD_H
#include <httpd.h>
/* From now on the APR-only parts log to s's error log at its LogLevel. */
void owh_log_httpd_install(server_rec *s);
#endif
