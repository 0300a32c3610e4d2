#include "dispatcher/commands/message_ops.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/validate.h"
#include "dispatcher/commands/dbcall.h"
#include "dispatcher/core/token.h"
#include "sql_queries.h"

bool message_mobile_e164(const char *text, char *out, size_t size)
{
    /* The shapes every French number of the protocol accepts (the type
     * phone), then its last nine digits, which begin with 6 or 7 for a
     * mobile. */
    if (!validate_phone_fr(text))
        return false;
    char national[10];
    size_t n = 0;
    for (const char *p = text + (text[0] == '+' ? 3 : 1); *p; p++)
        if (isdigit((unsigned char)*p) && n < sizeof(national) - 1)
            national[n++] = *p;
    national[n] = '\0';
    if (n != 9 || (national[0] != '6' && national[0] != '7'))
        return false;
    return snprintf(out, size, "+33%s", national) == 12;
}

bool message_email_normal(const char *text, char *out, size_t size)
{
    size_t len = strlen(text);
    const char *at = strchr(text, '@');
    if (len > 254 || len + 1 > size || !at || at == text || at - text > 64 || strchr(at + 1, '@'))
        return false;
    for (const char *p = text; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= ' ' || ch == 0x7f || ch == '"' || ch == '<' || ch == '>' || ch == ',' ||
            ch == ';')
            return false;
    }
    const char *domain = at + 1;
    const char *dot = strrchr(domain, '.');
    if (!dot || dot == domain || dot[1] == '\0' || domain[0] == '.' || strstr(domain, ".."))
        return false;
    for (size_t i = 0; i <= len; i++)
        out[i] = text + i > at ? (char)tolower((unsigned char)text[i]) : text[i];
    return true;
}

void message_confirmation_send(struct dispatch *d, const struct caller *c, json_t *data,
                               answer_cb cb, void *arg)
{
    const char *channel = json_string_value(json_object_get(data, "channel"));
    const char *to = json_string_value(json_object_get(data, "to"));
    char address[256];
    bool sms = strcmp(channel, "sms") == 0;
    if (sms ? !message_mobile_e164(to, address, sizeof(address))
            : !message_email_normal(to, address, sizeof(address))) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD,
           sms ? "an SMS goes to a French mobile number: 06 or 07 and eight digits, or +33 6 "
                 "or +33 7 and eight digits"
               : "expected an e-mail address such as nom@exemple.fr",
           "to", NULL);
        return;
    }
    struct db_call *call = db_call_new(d, sizeof(*call), "messages", cb, arg);
    if (!call)
        return;
    char organisation[24], request[24];
    snprintf(organisation, sizeof(organisation), "%lld", (long long)c->organisation_id);
    snprintf(request, sizeof(request), "%lld",
             (long long)json_integer_value(json_object_get(data, "request_id")));
    const char *params[] = {c->territory, organisation, c->actor, token_role_name(c->role),
                            request,      channel,      address};
    db_query(d->db, sql_text[SQL_MESSAGE_CONFIRMATION], 7, params, db_call_on_json, call);
    memset(address, 0, sizeof(address));
}

void message_mt_handover(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                         void *arg)
{
    struct db_call *call = db_call_new(d, sizeof(*call), "messages", cb, arg);
    if (!call)
        return;
    char booking[24];
    snprintf(booking, sizeof(booking), "%lld",
             (long long)json_integer_value(json_object_get(data, "booking_id")));
    const char *params[] = {c->territory, c->rpps, c->actor, booking};
    db_query(d->db, sql_text[SQL_MESSAGE_HANDOVER], 4, params, db_call_on_json, call);
}

void message_list(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb, void *arg)
{
    struct db_call *call = db_call_new(d, sizeof(*call), "messages", cb, arg);
    if (!call)
        return;
    json_t *limit = json_object_get(data, "limit");
    char max[24];
    snprintf(max, sizeof(max), "%lld", limit ? (long long)json_integer_value(limit) : 100LL);
    const char *params[] = {c->territory, json_string_value(json_object_get(data, "state")), max};
    db_query(d->db, sql_text[SQL_MESSAGE_LIST], 3, params, db_call_on_json, call);
}
