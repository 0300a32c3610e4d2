/* The read operations of the protocol that need the database (they show
 * patient fields, which snpd does not keep in memory, and audit each read
 * in the same round trip), plus the territory's view.  Reads only: the
 * writes of dispatcher/commands/ are in manage.c and the modules named for
 * their concept.
 * Same calling convention as dispatch.h. */
#ifndef SNP_READS_H
#define SNP_READS_H

#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

void reads_request_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg);
void reads_request_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg);
void reads_booking_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg);
/* call.list: the calls the caller's SAS organisation recorded in its
 * territory, newest first (no patient field: nothing to audit). */
void reads_call_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                     void *arg);
void reads_slip_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                    void *arg);
void reads_territory_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg);

#endif
