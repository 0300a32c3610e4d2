/* The rota of the CSNP shifts (issue 15, section 1): the protocol's
 * shift.list and shift.assign.
 *
 * The shifts, their assignment and the hand-over of slots and bookings to
 * the practitioner on duty are the SQL functions of
 * sql/migrations/0022_csnp_rota.sql, one round trip per call.  The memory of
 * every snpd process follows through the database's notifications
 * (dispatch.c, dispatch_on_db_notify: a slot's new practitioner, and the
 * practitioner's booking.created push).  Same calling convention as
 * dispatch.h: `cb` is always called exactly once.
 */
#ifndef SNP_ROTA_H
#define SNP_ROTA_H

#include <jansson.h>

#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

/* shift.list: a coordinator's or an admin's territory shifts, a gp's own. */
void rota_shift_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                     void *arg);

/* shift.assign: names (or removes) the practitioner on duty; ANSWER_REPEAT
 * when nothing changed. */
void rota_shift_assign(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg);

#endif
