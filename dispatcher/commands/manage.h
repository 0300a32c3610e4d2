/* The operations by which coordinators and admins manage their territory:
 * territory.import (communes, sites, practitioners, organisations) and
 * token.create / token.list / token.revoke, territory.settings.update,
 * call.record, push.list / push.resend.  Each is one call to an snp_*
 * function of sql/migrations/0008 (one round trip, audited there); an
 * import answers once the store holds what it committed, a revocation
 * once the token is refused by this process.  Same calling convention as
 * dispatch.h. */
#ifndef SNP_MANAGE_H
#define SNP_MANAGE_H

#include "dispatcher/commands/answer.h"
#include "dispatcher/core/dispatch.h"

void manage_territory_import(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                             void *arg);
void manage_token_create(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg);
void manage_token_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg);
void manage_token_revoke(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg);
/* territory.settings.update: the members given change (snp_settings_update,
 * audited); answers with the territory as reads_territory_get shows it,
 * once this process's memory holds the new settings. */
void manage_settings_update(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                            void *arg);

/* push.list: the territory's appointment pushes not acknowledged by the SAS
 * platform (dispatcher/jobs/outbox.h), pending or dead. */
void manage_push_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                      void *arg);

/* push.resend: a dead appointment push and the later changes of its
 * booking go back to pending (sql/migrations/0025). */
void manage_push_resend(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg);

/* Records a SAS call (call.record): one call to snp_call_record, which
 * checks that the linked request is the caller organisation's in its
 * territory (not_found otherwise, as for a missing one) and writes the
 * call.recorded event the indicators read.  A retry with the same
 * client_ref answers the first call with ANSWER_REPEAT. */
void manage_call_record(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                        void *arg);

#endif
