/* owh_status.h — the operator's views (owh_status.c): SetHandler
 * octo-webhooks-metrics (Prometheus text format 0.0.4), SetHandler
 * octo-webhooks-status (the same facts as JSON, with each dispatcher) and a
 * section in mod_status. Access control is Apache's own, per <Location>. */
#ifndef OWH_STATUS_H
#define OWH_STATUS_H

#include <httpd.h>

#define OWH_METRICS_HANDLER "octo-webhooks-metrics"
#define OWH_STATUS_HANDLER  "octo-webhooks-status"

int owh_status_handle(request_rec *r);
int owh_status_hook(request_rec *r, int flags);

#endif
