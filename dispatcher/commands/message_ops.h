/* The protocol's messages about what snpd sends to patients and
 * practitioners (issue 15 §4, docs/messages.md): request.confirmation.send,
 * booking.mt_handover and message.list.
 *
 * Each is one SQL function of sql/migrations/0026_messages.sql (checks,
 * the outbox row, the event, the audit), one round trip; the sender
 * (sender.h) delivers the rows.  The médecin traitant's summary has no
 * operation: the outcome's own transaction queues it.  Same calling
 * convention as dispatch.h: `cb` is always called exactly once.
 */
#ifndef SNP_MESSAGE_OPS_H
#define SNP_MESSAGE_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

/* request.confirmation.send: a requester's booked request, to the patient. */
void message_confirmation_send(struct dispatch *d, const struct caller *c, json_t *data,
                               answer_cb cb, void *arg);

/* booking.mt_handover: a gp refers the patient without a médecin traitant. */
void message_mt_handover(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg);

/* message.list: the territory's messages, for coordinators and admins. */
void message_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                  void *arg);

/* Writes into `out` (at least 13 bytes) the French mobile number `text` as
 * E.164 ("+33612345678"): a number validate_phone_fr accepts (the protocol's
 * phone type) whose nine digits after the 0 or +33 begin with 6 or 7.
 * False for anything else. */
bool message_mobile_e164(const char *text, char *out, size_t size);

/* Copies into `out` the e-mail address `text` with its domain in lower case,
 * when it has the shape local@domain.tld (no space or control character, a
 * local part of 1 to 64 bytes, at most 254 bytes in all); false otherwise. */
bool message_email_normal(const char *text, char *out, size_t size);

#endif
