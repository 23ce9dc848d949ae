/* owh_ops.h — the dispatcher's operations duties (owh_ops.c): retention
 * (pruning rounds under an advisory lock shared by every host), the warn
 * lines of disabled webhooks and exhausted deliveries, and the operator's
 * notices, drained from their own small queue and sent signed. */
#ifndef OWH_OPS_H
#define OWH_OPS_H

#include "owh_dispatch.h"

/* Once per loop turn; does its work only when it is due (cheap otherwise). */
void owh_ops_tick(loop_t *L);

/* Stops the pruning thread (at the end of the loop). */
void owh_ops_stop(loop_t *L);

/* After complete() recorded results (owh_result_t *): failed deliveries get
 * their warn line and fold into the operator's notice. */
void owh_ops_after_complete(loop_t *L, const apr_array_header_t *results);

#endif
