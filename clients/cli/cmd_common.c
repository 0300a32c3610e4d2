/* What the snpctl commands share beyond ctl: option parsing and the short
 * descriptions of slots and patients.  See commands.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "clients/cli/commands.h"
#include "clients/cli/labels.h"

int cmd_parse(struct ctl *c, int argc, char **argv, const struct option *options,
              int (*on_option)(void *state, int id, const char *arg), void *state,
              int *first_operand)
{
    int ch;
    opterr = 0;
    /* 0 makes glibc start over with a fresh argument vector. */
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (ch == 'h') {
            fputs(c->usage, stdout);
            return -1;
        }
        if (ch == ':')
            return ctl_usage_error(c, "l'option %s attend une valeur", argv[optind - 1]);
        if (ch == '?')
            return ctl_usage_error(c, "option inconnue : %s", argv[optind - 1]);
        if (ctl_common_option(c, ch, optarg))
            continue;
        int rc = on_option ? on_option(state, ch, optarg) : CTL_USAGE;
        if (rc != CTL_OK)
            return rc;
    }
    *first_operand = optind;
    return CTL_OK;
}

int cmd_subcommand(struct ctl *c, int argc, char **argv, const char *usage, const char *expected,
                   const char **sub)
{
    c->usage = usage;
    *sub = argc >= 2 ? argv[1] : NULL;
    if (!*sub)
        return ctl_usage_error(c, "%s : sous-commande manquante%s%s%s", argv[0],
                               expected ? " (" : "", expected ? expected : "", expected ? ")" : "");
    if (strcmp(*sub, "--help") == 0 || strcmp(*sub, "-h") == 0) {
        fputs(usage, stdout);
        return -1;
    }
    return CTL_OK;
}

int cmd_today(struct ctl *c, struct timearg *day)
{
    json_t *t;
    int rc = ctl_territory(c, &t);
    if (rc != CTL_OK)
        return rc;
    struct tm today;
    if (!timeutil_to_local(c->zone, timeutil_now(), &today))
        return CTL_UNAVAILABLE;
    day->has_date = true;
    day->year = today.tm_year + 1900;
    day->mon = today.tm_mon + 1;
    day->mday = today.tm_mday;
    return CTL_OK;
}

void cmd_slot_place(const json_t *slot, bool with_practitioner, char *buf, size_t n)
{
    const json_t *pr = json_object_get(slot, "practitioner");
    const json_t *site = json_object_get(slot, "site");
    char who[256] = "";
    if (pr && with_practitioner)
        snprintf(who, sizeof(who), "Dr %s %s, ", ctl_str(pr, "given_name"),
                 ctl_str(pr, "family_name"));
    const char *name = ctl_str(site, "name");
    const char *commune = ctl_str(site, "commune_name");
    snprintf(buf, n, "%s%s%s%s", who, name ? name : "?", commune ? ", " : "",
             commune ? commune : "");
}

void cmd_patient(const json_t *patient, char *buf, size_t n)
{
    if (!patient) {
        snprintf(buf, n, "(identité effacée)");
        return;
    }
    const char *name = ctl_str(patient, "display_name");
    if (!name)
        name = ctl_str(patient, "initials");
    char born[16] = "";
    const char *bd = ctl_str(patient, "birth_date");
    if (bd)
        snprintf(born, sizeof(born), "%.4s", bd);
    else if (json_object_get(patient, "birth_year"))
        snprintf(born, sizeof(born), "%lld", (long long)ctl_int(patient, "birth_year"));
    snprintf(buf, n, "%s, %s, %s", name ? name : "?",
             labels_get(LABELS_SEX, ctl_str(patient, "sex")), born[0] ? born : "?");
}

void cmd_message_progress(const json_t *message, char *buf, size_t n)
{
    const char *state = ctl_str(message, "state");
    const char *channel = labels_get(LABELS_MESSAGE_CHANNEL, ctl_str(message, "channel"));
    if (state && strcmp(state, "sent") == 0)
        snprintf(buf, n, " : envoi fait par %s", channel);
    else if (state && strcmp(state, "dead") == 0)
        snprintf(buf, n, " : envoi abandonné (%s)", channel);
    else
        snprintf(buf, n, " en attente d'envoi par %s", channel);
}

json_t *cmd_one_value(struct ctl *c, const char *option, const char *value, enum labels_kind kind)
{
    const char *const *values;
    size_t n = labels_values(kind, &values);
    json_t *list = ctl_list_arg(c, option, value, values, n);
    if (!list)
        return NULL;
    json_t *v = NULL;
    if (json_array_size(list) == 1)
        v = json_incref(json_array_get(list, 0));
    else
        ctl_usage_error(c, "%s : une seule valeur", option);
    json_decref(list);
    return v;
}

bool cmd_put_value(struct ctl *c, json_t *data, const char *key, const char *option,
                   const char *value, enum labels_kind kind)
{
    if (!value)
        return true;
    json_t *v = cmd_one_value(c, option, value, kind);
    if (!v)
        return false;
    json_object_set_new(data, key, v);
    return true;
}

int cmd_send(struct ctl *c, const char *message, json_t *data, json_t **answer)
{
    json_t *r = NULL;
    int rc = ctl_call(c, message, data, &r, NULL, NULL);
    json_decref(data);
    *answer = NULL;
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(r);
        json_decref(r);
    } else {
        *answer = r;
    }
    return CTL_OK;
}

/* Writes `len` bytes of `data` to `path` through a temporary file renamed
 * over it, so that a reader never sees half a file; or to standard output
 * when `path` is NULL.  Returns false after saying why. */
static bool write_file(const char *path, const char *data, size_t len)
{
    if (!path)
        return fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    bool ok = fp && fwrite(data, 1, len, fp) == len;
    ok = fp && fclose(fp) == 0 && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        ctl_error("impossible d'écrire %s : %s", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

bool cmd_write_parts(const json_t *answer, const char *path, size_t *len)
{
    struct buf text = {0};
    size_t i;
    json_t *part;
    json_array_foreach (json_object_get(answer, "parts"), i, part)
        buf_append(&text, json_string_value(part), json_string_length(part));
    bool ok = !text.failed && write_file(path, text.data ? text.data : "", text.len);
    *len = text.len;
    buf_free(&text);
    return ok;
}
