/* owh_outcomes.h — owns the dispatcher's second database connection, the
 * outcomes' own: complete() runs there while claim() runs on the first, so a
 * claim (routing included) never waits for the outcomes before it and the
 * outcomes never wait for a claim's round trip (two backends, two cores).
 * When it cannot connect, the outcomes ride the claims' round trips as before. */
#ifndef OWH_OUTCOMES_H
#define OWH_OUTCOMES_H

#include "owh_dispatch.h"

/* Whether outcomes go by the outcomes' connection: connects if needed (at
 * most once a second after a failure). */
int owh_outcomes_up(loop_t *L);

/* Sends L->results (when any, and none are in flight). */
void owh_outcomes_send(loop_t *L);

/* Reads the round trip in flight (block: to its end); on failure its
 * outcomes go back to L->results. */
void owh_outcomes_collect(loop_t *L, int block);

/* The connection's socket (-1: none), and whether its answer sits in libpq. */
int owh_outcomes_socket(loop_t *L);
int owh_outcomes_buffered(loop_t *L);

/* Puts outcomes a round trip carried back in L->results, to go again. */
void owh_outcomes_requeue(loop_t *L, apr_array_header_t *results, apr_pool_t *pool);

#endif
