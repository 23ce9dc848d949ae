/* owh_log.h — log tags. Every log line we write starts with a unique
 * "OWHnnnnn: " tag (like httpd's APLOGNO) so operators can grep for it.
 * Never log secrets, tokens or header values. */
#ifndef OWH_LOG_H
#define OWH_LOG_H
#define OWHLOGNO(n) "OWH" #n ": "
#endif
