/* The edge of the dispatch core's operations: each function takes the
 * validated data of its protocol message, decodes it into the operation's
 * argument struct (dispatch.h) and calls the core, which never reads the
 * message's JSON.  An instant the declaration's type lets through but the
 * calendar refuses is answered here (invalid_field), as the core did.
 * Same calling convention as dispatch.h: `cb` is always called once. */
#ifndef SNP_CALLS_H
#define SNP_CALLS_H

#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

void calls_slot_publish(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg);
void calls_slot_withdraw(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg);
void calls_slot_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                     void *arg);
/* request.create; a new request's answer gets back the patient, motif,
 * constraints and source as the requester gave them. */
void calls_request_create(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg);
void calls_offer_accept(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg);
void calls_offer_decline(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg);
/* request.cancel and booking.cancel refuse the reason patient_refused,
 * which slip.refuse records (request.cancel takes it from an emergency
 * department). */
void calls_request_cancel(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg);
/* slip.refuse is request.cancel with a fixed reason: a refused redirection
 * ends the request (the patient stays with the emergency department) and
 * the slot goes back to the pool. */
void calls_slip_refuse(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg);
void calls_booking_cancel(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg);
void calls_outcome_report(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg);
void calls_capacity_query(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                          void *arg);

#endif
