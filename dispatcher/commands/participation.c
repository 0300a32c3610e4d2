#include "dispatcher/commands/participation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "dispatcher/commands/dbcall.h"
#include "dispatcher/commands/render.h"
#include "dispatcher/core/token.h"
#include "sql_queries.h"

/* One participation call waiting for the database. */
struct participation_call {
    struct db_call base;
    bool html;         /* attestation: HTML, else CSV */
    char filename[96]; /* attestation: the file's name */
};

static struct participation_call *call_new(struct dispatch *d, answer_cb cb, void *arg)
{
    return db_call_new(d, sizeof(struct participation_call), "participation", cb, arg);
}

/* Starts a call about one practitioner: `rpps` of the request, or a gp's
 * own, into *rpps.  NULL after answering: invalid_field when a coordinator
 * or an admin names none, or a lack of memory. */
static struct participation_call *subject_call(struct dispatch *d, const struct caller *c,
                                               json_t *data, answer_cb cb, void *arg,
                                               const char **rpps)
{
    *rpps = json_string_value(json_object_get(data, "rpps"));
    if (!*rpps && c->role == ROLE_GP)
        *rpps = c->rpps;
    if (!*rpps) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "rpps is required of a coordinator or an admin", "rpps",
           NULL);
        return NULL;
    }
    return call_new(d, cb, arg);
}

static const char *integer_text(json_t *v, char out[24])
{
    if (!v)
        return NULL;
    snprintf(out, 24, "%lld", (long long)json_integer_value(v));
    return out;
}

/* --- participation.get ------------------------------------------------------------ */

void participation_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg)
{
    const char *rpps;
    struct participation_call *p = subject_call(d, c, data, cb, arg, &rpps);
    if (!p)
        return;
    char year[24], limit[24];
    json_t *lim = json_object_get(data, "limit");
    const char *params[] = {c->territory,
                            token_role_name(c->role),
                            c->role == ROLE_GP ? c->rpps : NULL,
                            rpps,
                            integer_text(json_object_get(data, "year"), year),
                            json_string_value(json_object_get(data, "from")),
                            json_string_value(json_object_get(data, "to")),
                            lim ? integer_text(lim, limit) : "1000"};
    db_query(d->db, sql_text[SQL_PARTICIPATION_READ], 8, params, db_call_on_json, p);
}

/* --- participation.attestation ---------------------------------------------------- */

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A JSON number with two decimals ("3.00"), as SQL rounded it. */
static void hours_text(const json_t *v, char out[32])
{
    snprintf(out, 32, "%.2f", json_number_value(v));
}

static void integer_json_text(const json_t *v, char out[24])
{
    snprintf(out, 24, "%lld", (long long)json_integer_value(v));
}

/* YYYY-MM-DD as DD/MM/YYYY; "" for anything else. */
static void french_day(const char *iso, char out[11])
{
    if (strlen(iso) < 10 || iso[4] != '-' || iso[7] != '-') {
        out[0] = '\0';
        return;
    }
    snprintf(out, 11, "%.2s/%.2s/%.4s", iso + 8, iso + 5, iso);
}

/* The rules the attestation applies, with their sources (docs/participation.md). */
static const char *const rules[] = {
    ("Supplément SNP (NGAP, article 14.1.3 ; avenant 9 à la convention médicale, 2023) : "
     "consultation réalisée dans les 48 heures suivant la demande de la régulation du SAS, "
     "par un médecin qui n'est pas le médecin traitant du patient ; au plus 20 par médecin et "
     "par semaine, comptés ici sur tous les territoires où le médecin exerce, dans l'ordre des "
     "consultations. Un rendez-vous déclaré non honoré ou annulé par le patient n'est pas compté."),
    ("Participation au SAS (rémunération annuelle des effecteurs) : être inscrit auprès du SAS ou "
     "membre d'une CPTS participante, et ouvrir au moins 2 heures par semaine de créneaux à des "
     "patients qui ne sont pas les siens. Heures = somme des durées des créneaux publiés et non "
     "retirés de la semaine ISO, y compris ceux des gardes de centre de soins non programmés "
     "dont le médecin était de garde (indicateur gp_week_slot_hours, docs/indicators.md)."),
    ("Semaines : semaines ISO 8601 de l'année (du lundi au dimanche, la semaine 1 contenant le "
     "premier jeudi de janvier), à l'heure locale de chaque territoire."),
};

static const char *const precondition_labels[][2] = {
    {"sas_registered", "Inscription auprès du SAS"},
    {"cpts_member", "Adhésion à la CPTS"},
};

static const char *precondition_label(const char *kind)
{
    for (size_t i = 0; i < sizeof(precondition_labels) / sizeof(precondition_labels[0]); i++)
        if (strcmp(kind, precondition_labels[i][0]) == 0)
            return precondition_labels[i][1];
    return kind;
}

static const char attestation_style[] =
    "@page{size:A4;margin:15mm}"
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "color:#1d2a33;max-width:180mm;margin:1em auto;line-height:1.35;font-size:10.5pt}"
    "h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.4em;"
    "border-bottom:1px solid #2a6f97}table{border-collapse:collapse;width:100%;font-size:.92em}"
    "th,td{border-bottom:1px solid #dde3e8;padding:.2em .4em;text-align:left}"
    "th{background:#f1f5f8}td.num,th.num{text-align:right}tfoot td{font-weight:600}"
    ".ko{color:#8a4b00}footer{margin-top:2em;font-size:.85em;color:#556}"
    "@media print{body{margin:0;max-width:none}tr{break-inside:avoid}}";

static void html_cell(struct buf *b, const char *cls, const char *text, bool number)
{
    buf_printf(b, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    if (number)
        render_html_number(b, text);
    else
        render_html_text(b, text);
    buf_append(b, "</td>", 5);
}

static bool render_html(json_t *doc, struct buf *b)
{
    json_t *who = json_object_get(doc, "practitioner");
    json_t *weeks = json_object_get(doc, "weeks");
    json_t *totals = json_object_get(doc, "totals");
    json_t *pre = json_object_get(doc, "preconditions");
    if (!json_is_object(who) || !json_is_array(weeks) || !json_is_object(totals) ||
        !json_is_array(pre))
        return false;
    char year[24], cap[24], n[32], day[11];
    integer_json_text(json_object_get(doc, "year"), year);
    integer_json_text(json_object_get(doc, "weekly_cap"), cap);
    buf_printf(b, "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">"
                  "<title>Attestation de participation ");
    render_html_text(b, year);
    buf_printf(b, "</title><style>%s</style></head><body>\n", attestation_style);
    buf_printf(b, "<h1>Attestation de participation aux soins non programmés — année ");
    render_html_text(b, year);
    buf_printf(b, "</h1>\n<p>Médecin : <strong>Dr ");
    render_html_text(b, str(who, "given_name"));
    buf_append(b, " ", 1);
    render_html_text(b, str(who, "family_name"));
    buf_printf(b, "</strong>, RPPS <strong>");
    render_html_text(b, str(doc, "rpps"));
    buf_printf(b, "</strong><br>Période : semaines ISO du ");
    french_day(str(doc, "from"), day);
    render_html_text(b, day);
    buf_printf(b, " au ");
    french_day(str(doc, "to"), day);
    render_html_text(b, day);
    buf_printf(b, " (chaque semaine dont le jeudi tombe dans l'année)</p>\n");

    buf_printf(b, "<h2>Condition préalable</h2>\n");
    if (json_array_size(pre) == 0)
        buf_printf(b, "<p class=\"ko\">Aucune inscription au SAS ni adhésion à une CPTS "
                      "enregistrée.</p>\n");
    else
        buf_printf(b, "<ul>\n");
    size_t i;
    json_t *row;
    json_array_foreach (pre, i, row) {
        buf_printf(b, "<li>");
        render_html_text(b, precondition_label(str(row, "kind")));
        buf_printf(b, " (territoire ");
        render_html_text(b, str(row, "territory"));
        buf_printf(b, ") : du ");
        french_day(str(row, "valid_from"), day);
        render_html_text(b, day);
        if (json_object_get(row, "valid_to")) {
            buf_printf(b, " au ");
            french_day(str(row, "valid_to"), day);
            render_html_text(b, day);
        } else {
            buf_printf(b, ", sans date de fin");
        }
        buf_printf(b, "</li>\n");
    }
    if (json_array_size(pre) > 0)
        buf_printf(b, "</ul>\n");

    buf_printf(b, "<h2>Par semaine</h2>\n<table><thead><tr><th>Semaine</th><th>Lundi</th>"
                  "<th class=\"num\">Heures ouvertes hors patientèle</th><th>2 h atteintes</th>"
                  "<th class=\"num\">Consultations éligibles</th>"
                  "<th class=\"num\">Suppléments retenus (sur ");
    render_html_text(b, cap);
    buf_printf(b, ")</th></tr></thead><tbody>\n");
    json_array_foreach (weeks, i, row) {
        buf_printf(b, "<tr>");
        html_cell(b, NULL, str(row, "iso_week"), false);
        french_day(str(row, "monday"), day);
        html_cell(b, NULL, day, false);
        hours_text(json_object_get(row, "hours"), n);
        html_cell(b, "num", n, true);
        bool ok = json_is_true(json_object_get(row, "open_2h"));
        html_cell(b, ok ? NULL : "ko", ok ? "oui" : "non", false);
        integer_json_text(json_object_get(row, "eligible"), n);
        html_cell(b, "num", n, true);
        integer_json_text(json_object_get(row, "supplements"), n);
        html_cell(b, "num", n, true);
        buf_printf(b, "</tr>\n");
    }
    buf_printf(b, "</tbody><tfoot><tr><td colspan=\"2\">Total (");
    integer_json_text(json_object_get(totals, "weeks"), n);
    render_html_text(b, n);
    buf_printf(b, " semaines)</td>");
    hours_text(json_object_get(totals, "hours"), n);
    html_cell(b, "num", n, true);
    integer_json_text(json_object_get(totals, "weeks_open_2h"), n);
    buf_printf(b, "<td>");
    render_html_text(b, n);
    buf_printf(b, " semaines</td>");
    integer_json_text(json_object_get(totals, "eligible"), n);
    html_cell(b, "num", n, true);
    integer_json_text(json_object_get(totals, "supplements"), n);
    html_cell(b, "num", n, true);
    buf_printf(b, "</tr></tfoot></table>\n<h2>Règles appliquées et sources</h2>\n<ol>\n");
    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        buf_printf(b, "<li>");
        render_html_text(b, rules[r]);
        buf_printf(b, "</li>\n");
    }
    buf_printf(b, "</ol>\n<footer>Document généré le ");
    const char *at = str(doc, "generated_at");
    french_day(at, day);
    render_html_text(b, day);
    if (strlen(at) >= 16) {
        buf_printf(b, " à %.2sh%.2s", at + 11, at + 14);
    }
    buf_printf(b, " par le service de répartition des soins non programmés (snpd), à partir des "
                  "créneaux publiés et des rendez-vous enregistrés ; il ne contient aucune donnée "
                  "de patient.</footer>\n</body></html>\n");
    return true;
}

static const char *const csv_header[] = {
    "rpps",        "nom",       "prenom",      "annee",
    "semaine_iso", "lundi",     "creneaux",    "heures_ouvertes",
    "deux_heures", "eligibles", "supplements", "plafond_hebdomadaire"};
enum { CSV_COLUMNS = sizeof(csv_header) / sizeof(csv_header[0]) };

/* One CSV row: `counts` is a week or the totals, `week`, `monday`, `slots`
 * and `open_2h` the texts of those columns. */
static void csv_line(struct buf *b, json_t *doc, const json_t *counts, const char *week,
                     const char *monday, const char *slots, const char *open_2h)
{
    json_t *who = json_object_get(doc, "practitioner");
    char year[24], cap[24], hours[32], eligible[24], supplements[24];
    integer_json_text(json_object_get(doc, "year"), year);
    integer_json_text(json_object_get(doc, "weekly_cap"), cap);
    hours_text(json_object_get(counts, "hours"), hours);
    integer_json_text(json_object_get(counts, "eligible"), eligible);
    integer_json_text(json_object_get(counts, "supplements"), supplements);
    const char *fields[CSV_COLUMNS] = {str(doc, "rpps"),
                                       str(who, "family_name"),
                                       str(who, "given_name"),
                                       year,
                                       week,
                                       monday,
                                       slots,
                                       hours,
                                       open_2h,
                                       eligible,
                                       supplements,
                                       cap};
    render_csv_row(b, fields, CSV_COLUMNS);
}

static bool render_csv(json_t *doc, struct buf *b)
{
    json_t *weeks = json_object_get(doc, "weeks");
    json_t *totals = json_object_get(doc, "totals");
    if (!json_is_object(json_object_get(doc, "practitioner")) || !json_is_array(weeks) ||
        !json_is_object(totals))
        return false;
    buf_append(b, render_utf8_bom, strlen(render_utf8_bom));
    render_csv_row(b, csv_header, CSV_COLUMNS);
    char slots[24];
    size_t i;
    json_t *row;
    json_array_foreach (weeks, i, row) {
        integer_json_text(json_object_get(row, "slots"), slots);
        csv_line(b, doc, row, str(row, "iso_week"), str(row, "monday"), slots,
                 json_is_true(json_object_get(row, "open_2h")) ? "oui" : "non");
    }
    /* The totals: the "deux_heures" column counts the weeks reaching 2 h. */
    char weeks_2h[24];
    integer_json_text(json_object_get(totals, "weeks_open_2h"), weeks_2h);
    csv_line(b, doc, totals, "total", "", "", weeks_2h);
    return true;
}

bool participation_render(json_t *doc, bool html, struct buf *out)
{
    return html ? render_html(doc, out) : render_csv(doc, out);
}

static void on_attestation(void *arg, enum db_status st, const PGresult *res)
{
    struct participation_call *p = arg;
    json_t *doc = db_call_result(&p->base, st, res);
    if (!doc)
        return;
    struct buf out = {0};
    bool ok = participation_render(doc, p->html, &out) && !out.failed;
    json_decref(doc);
    json_t *parts = ok ? render_parts(out.data, out.len) : NULL;
    buf_free(&out);
    if (!parts) {
        log_error("participation", "an attestation could not be rendered");
        db_call_finish(&p->base, SNP_PROTO_E_INTERNAL, "the attestation could not be rendered",
                       NULL, NULL);
        return;
    }
    db_call_finish(&p->base, SNP_PROTO_OK, NULL, NULL,
                   json_pack("{s:s, s:s, s:o}", "filename", p->filename, "content_type",
                             p->html ? "text/html; charset=utf-8" : "text/csv; charset=utf-8",
                             "parts", parts));
}

void participation_attestation(struct dispatch *d, const struct caller *c, json_t *data,
                               answer_cb cb, void *arg)
{
    const char *rpps;
    struct participation_call *p = subject_call(d, c, data, cb, arg, &rpps);
    if (!p)
        return;
    /* The codec has checked format against its enumeration and year's range. */
    const char *format = json_string_value(json_object_get(data, "format"));
    p->html = strcmp(format, "html") == 0;
    char year[24];
    integer_text(json_object_get(data, "year"), year);
    snprintf(p->filename, sizeof(p->filename), "attestation-participation-%s-%s.%s", rpps, year,
             p->html ? "html" : "csv");
    const char *params[] = {c->territory, token_role_name(c->role),
                            c->actor,     c->role == ROLE_GP ? c->rpps : NULL,
                            rpps,         year,
                            format};
    db_query(d->db, sql_text[SQL_PARTICIPATION_ATTESTATION], 7, params, on_attestation, p);
}

/* --- preconditions ---------------------------------------------------------------- */

static void on_precondition_set(void *arg, enum db_status st, const PGresult *res)
{
    struct participation_call *p = arg;
    json_t *j = db_call_result(&p->base, st, res);
    if (!j)
        return;
    bool created = json_is_true(json_object_get(j, "created"));
    json_t *view = json_incref(json_object_get(j, "precondition"));
    json_decref(j);
    if (!view) {
        db_call_finish(&p->base, SNP_PROTO_E_INTERNAL, "unreadable answer from the database", NULL,
                       NULL);
        return;
    }
    db_call_finish(&p->base, SNP_PROTO_OK, created ? NULL : ANSWER_REPEAT, NULL, view);
}

void participation_precondition_set(struct dispatch *d, const struct caller *c, json_t *data,
                                    answer_cb cb, void *arg)
{
    struct participation_call *p = call_new(d, cb, arg);
    if (!p)
        return;
    const char *params[] = {c->territory,
                            c->actor,
                            token_role_name(c->role),
                            json_string_value(json_object_get(data, "rpps")),
                            json_string_value(json_object_get(data, "kind")),
                            json_string_value(json_object_get(data, "valid_from")),
                            json_string_value(json_object_get(data, "valid_to"))};
    db_query(d->db, sql_text[SQL_PRECONDITION_SET], 7, params, on_precondition_set, p);
}

void participation_precondition_list(struct dispatch *d, const struct caller *c, json_t *data,
                                     answer_cb cb, void *arg)
{
    const char *rpps = json_string_value(json_object_get(data, "rpps"));
    bool own = c->role == ROLE_GP;
    if (own && rpps && strcmp(rpps, c->rpps) != 0) {
        cb(arg, SNP_PROTO_E_FORBIDDEN, "a GP reads only their own preconditions", "rpps", NULL);
        return;
    }
    struct participation_call *p = call_new(d, cb, arg);
    if (!p)
        return;
    const char *params[] = {c->territory, own ? "true" : "false", own ? c->rpps : rpps};
    db_query(d->db, sql_text[SQL_PRECONDITION_LIST], 3, params, db_call_on_json, p);
}
