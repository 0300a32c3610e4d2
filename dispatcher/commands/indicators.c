#include "dispatcher/commands/indicators.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "base/validate.h"
#include "dispatcher/commands/admin.h"
#include "dispatcher/commands/dbcall.h"
#include "dispatcher/db/db.h"
#include "dispatcher/commands/render.h"
#include "protocol/codec.h"
#include "sql_queries.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define CONNECT_GIVE_UP_MS              15000

/* --- reading the document --------------------------------------------------------- */

/* A string member, or "" when absent or not a string. */
static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static bool is_true(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

/* Writes a JSON number as text: integers as they are, reals with up to 15
 * significant digits (the values come rounded from SQL, so this is exact);
 * "" for null or anything else. */
static void number_text(const json_t *v, char *out, size_t n)
{
    if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, "%.15g", json_real_value(v));
    else
        snprintf(out, n, "%s", "");
}

/* --- CSV -------------------------------------------------------------------------- */

static bool render_csv(json_t *doc, struct buf *b)
{
    json_t *period = json_object_get(doc, "period");
    json_t *rows = json_object_get(doc, "indicators");
    if (!json_is_object(period) || !json_is_array(rows))
        return false;
    static const char *const header[] = {
        "territoire",     "periode_type",     "periode", "debut",   "fin",   "consolide_le",
        "code",           "version",          "section", "libelle", "unite", "ventilation",
        "modalite",       "libelle_modalite", "valeur",  "masque",  "cible", "progression_pct",
        "cible_atteinte",
    };
    buf_append(b, render_utf8_bom, strlen(render_utf8_bom));
    render_csv_row(b, header, sizeof(header) / sizeof(header[0]));
    const char *territory = str(json_object_get(doc, "territory"), "id");
    size_t i;
    json_t *r;
    json_array_foreach (rows, i, r) {
        char version[24], target[48], progress[48];
        number_text(json_object_get(r, "version"), version, sizeof(version));
        number_text(json_object_get(r, "target"), target, sizeof(target));
        number_text(json_object_get(r, "progress_pct"), progress, sizeof(progress));
        json_t *met = json_object_get(r, "target_met");
        const char *fields[] = {
            territory,
            str(period, "kind"),
            str(period, "label"),
            str(period, "from"),
            str(period, "to"),
            str(period, "consolidated_at"),
            str(r, "code"),
            version,
            str(r, "section"),
            str(r, "label"),
            str(r, "unit"),
            str(r, "breakdown"),
            str(r, "key"),
            str(r, "key_label"),
            str(r, "value_text"),
            is_true(r, "masked") ? "oui" : "non",
            target,
            progress,
            json_is_boolean(met) ? (json_is_true(met) ? "oui" : "non") : "",
        };
        render_csv_row(b, fields, sizeof(fields) / sizeof(fields[0]));
    }
    return true;
}

/* The versions of the statement's definitions ("releve" section), as
 * "code:version" separated by spaces. */
static void statement_versions(json_t *doc, char *out, size_t n)
{
    size_t used = 0, i;
    json_t *d;
    out[0] = '\0';
    json_array_foreach (json_object_get(doc, "definitions"), i, d) {
        if (strcmp(str(d, "section"), "releve") != 0)
            continue;
        int w = snprintf(out + used, n - used, "%s%s:%lld", used ? " " : "", str(d, "code"),
                         (long long)json_integer_value(json_object_get(d, "version")));
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
}

static bool render_statement(json_t *doc, struct buf *b)
{
    json_t *period = json_object_get(doc, "period");
    json_t *rows = json_object_get(doc, "participation");
    if (!json_is_object(period) || !json_is_array(rows))
        return false;
    static const char *const header[] = {
        "territoire",
        "periode_type",
        "periode",
        "semaines_du",
        "semaines_au",
        "consolide_le",
        "rpps",
        "nom",
        "prenom",
        "semaine_iso",
        "lundi",
        "creneaux",
        "heures",
        "regle_2h_respectee",
        "semaines_2h",
        "semaines_periode",
        "consultations_sas_48h",
        "consultations_sas_48h_plafonnees",
        "masque",
        "definitions",
    };
    char versions[256];
    statement_versions(doc, versions, sizeof(versions));
    buf_append(b, render_utf8_bom, strlen(render_utf8_bom));
    render_csv_row(b, header, sizeof(header) / sizeof(header[0]));
    const char *territory = str(json_object_get(doc, "territory"), "id");
    size_t i;
    json_t *r;
    json_array_foreach (rows, i, r) {
        char slots[24], hours[32], weeks_2h[24], weeks[24];
        number_text(json_object_get(r, "slots"), slots, sizeof(slots));
        number_text(json_object_get(r, "hours"), hours, sizeof(hours));
        number_text(json_object_get(r, "weeks_2h"), weeks_2h, sizeof(weeks_2h));
        number_text(json_object_get(r, "weeks_in_period"), weeks, sizeof(weeks));
        /* Hours keep their two decimals, whatever the JSON number lost. */
        json_t *h = json_object_get(r, "hours");
        if (json_is_number(h))
            snprintf(hours, sizeof(hours), "%.2f", json_number_value(h));
        json_t *met = json_object_get(r, "rule_2h_met");
        const char *fields[] = {
            territory,
            str(period, "kind"),
            str(period, "label"),
            str(period, "weeks_from"),
            str(period, "weeks_to"),
            str(period, "consolidated_at"),
            str(r, "rpps"),
            str(r, "family_name"),
            str(r, "given_name"),
            str(r, "iso_week"),
            str(r, "week_monday"),
            slots,
            hours,
            json_is_boolean(met) ? (json_is_true(met) ? "oui" : "non") : "",
            weeks_2h,
            weeks,
            str(r, "sas_text"),
            str(r, "capped_text"),
            is_true(r, "masked") ? "oui" : "non",
            versions,
        };
        render_csv_row(b, fields, sizeof(fields) / sizeof(fields[0]));
    }
    return true;
}

/* --- JSON ------------------------------------------------------------------------- */

static bool render_json(json_t *doc, struct buf *b)
{
    /* jansson keeps the members in the order SQL wrote them; reals need at
     * most 15 digits (they were rounded to two decimals in SQL). */
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    if (!text) {
        b->failed = true;
        return true;
    }
    buf_append(b, text, strlen(text));
    buf_append(b, "\n", 1);
    free(text);
    return true;
}

/* --- HTML ------------------------------------------------------------------------- */

static const char *unit_suffix(const char *unit)
{
    if (strcmp(unit, "percent") == 0)
        return "\xc2\xa0%";
    if (strcmp(unit, "minutes") == 0)
        return "\xc2\xa0min";
    if (strcmp(unit, "hours") == 0)
        return "\xc2\xa0h";
    return "";
}

/* A cell value with its unit, or an explanation for masked and undefined
 * values. */
static void html_value(struct buf *b, const json_t *row)
{
    const char *text = str(row, "value_text");
    if (is_true(row, "masked")) {
        buf_printf(b, "<span class=\"masked\" title=\"secret statistique\">");
        render_html_text(b, text);
        buf_printf(b, "</span>");
    } else if (!*text) {
        buf_printf(b, "<span class=\"na\" title=\"non calculable\">\xe2\x80\x94</span>");
    } else {
        render_html_number(b, text);
        render_html_text(b, unit_suffix(str(row, "unit")));
        /* Long delays also in hours and minutes, as people say them. */
        long minutes = atol(text);
        if (strcmp(str(row, "unit"), "minutes") == 0 && minutes >= 60)
            buf_printf(b, " <span class=\"code\">(%ld\xc2\xa0h\xc2\xa0%02ld)</span>", minutes / 60,
                       minutes % 60);
    }
}

static const char *const month_names[] = {
    "janvier", "février", "mars",      "avril",   "mai",      "juin",
    "juillet", "août",    "septembre", "octobre", "novembre", "décembre",
};

/* "YYYY-MM-DD..." as "DD/MM/YYYY". */
static void french_date(const char *iso, char out[11])
{
    if (strlen(iso) >= 10)
        snprintf(out, 11, "%.2s/%.2s/%.4s", iso + 8, iso + 5, iso);
    else
        snprintf(out, 11, "%s", "?");
}

/* The period's name in French: "octobre 2026", "4e trimestre 2026",
 * "année de contrat 2026". */
static void period_name(const json_t *period, char *out, size_t n)
{
    const char *kind = str(period, "kind"), *label = str(period, "label");
    if (strcmp(kind, "month") == 0 && strlen(label) == 7) {
        int m = atoi(label + 5);
        snprintf(out, n, "%s %.4s", m >= 1 && m <= 12 ? month_names[m - 1] : "?", label);
    } else if (strcmp(kind, "quarter") == 0 && strlen(label) == 7) {
        snprintf(out, n, "%s trimestre %.4s",
                 label[6] == '1'   ? "1er"
                 : label[6] == '2' ? "2e"
                 : label[6] == '3' ? "3e"
                                   : "4e",
                 label);
    } else {
        snprintf(out, n, "année de contrat %s", label);
    }
}

static const struct {
    const char *id;
    const char *title;
} sections[] = {
    {"demandes", "Demandes reçues"},
    {"reponse", "Réponse aux demandes et délais"},
    {"creneaux", "Créneaux mis à disposition"},
    {"participation", "Participation des médecins"},
    {"issues", "Issues des rendez-vous"},
    {"urgences", "Réorientations depuis les services d'urgences"},
    {"sas", "Régulation du SAS : issue des appels"},
    {"publics", "Publics prioritaires et communes de résidence"},
};

static const char html_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "color:#1d2a33;max-width:1000px;margin:2em auto;padding:0 1em;line-height:1.4}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:2px solid #2a6f97;"
    "padding-bottom:.2em;margin-top:2em}h3{font-size:1em;margin:1.2em 0 .4em}"
    ".sub{font-size:1.2em;margin-top:0}.meta{font-size:.9em;color:#445}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0;font-size:.92em}"
    "th,td{border-bottom:1px solid #dde3e8;padding:.3em .5em;text-align:left;vertical-align:top}"
    "th{background:#f1f5f8}td.num{text-align:right;white-space:nowrap}"
    ".code{color:#778;font-size:.8em}.masked{color:#778;font-style:italic}.na{color:#aab}"
    ".ok{background:#e3f1e4}.ko{background:#fbeee0}figure{margin:1em 0}"
    "figcaption{font-weight:600;margin-bottom:.3em}nav ul{columns:2;font-size:.9em}"
    "footer{margin-top:3em;font-size:.8em;color:#667}"
    "@media print{nav{display:none}section{break-inside:avoid-page}body{margin:0}}";

/* A horizontal bar chart of one breakdown, as inline SVG. */
static void html_bars(struct buf *b, json_t *cells, const char *label)
{
    double max = 0;
    size_t i, n = json_array_size(cells);
    json_t *c;
    json_array_foreach (cells, i, c) {
        json_t *v = json_object_get(c, "value");
        if (json_is_number(v) && json_number_value(v) > max)
            max = json_number_value(v);
    }
    const int label_w = 240, bar_w = 320, row_h = 22;
    buf_printf(b, "<figure><figcaption>");
    render_html_text(b, label);
    buf_printf(b,
               "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"660\" "
               "height=\"%d\" viewBox=\"0 0 660 %d\" role=\"img\" font-size=\"12\" "
               "font-family=\"sans-serif\"><title>",
               (int)n * row_h + 6, (int)n * row_h + 6);
    render_html_text(b, label);
    buf_printf(b, "</title>\n");
    json_array_foreach (cells, i, c) {
        int y = (int)i * row_h + 3;
        buf_printf(b, "<text x=\"0\" y=\"%d\">", y + 15);
        render_html_text(b, str(c, "key_label"));
        buf_printf(b, "</text>");
        json_t *v = json_object_get(c, "value");
        double w = 0;
        if (json_is_number(v) && max > 0)
            w = json_number_value(v) / max * bar_w;
        if (is_true(c, "masked")) {
            buf_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"#778\" font-style=\"italic\">", label_w,
                       y + 15);
            render_html_text(b, str(c, "value_text"));
            buf_printf(b, "%s</text>\n",
                       strcmp(str(c, "value_text"), "secret") == 0 ? " statistique"
                                                                   : " (secret statistique)");
            continue;
        }
        buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"16\" fill=\"#2a6f97\"/>",
                   label_w, y + 2, w);
        buf_printf(b, "<text x=\"%.1f\" y=\"%d\">", label_w + w + 6, y + 15);
        render_html_number(b, str(c, "value_text"));
        render_html_text(b, unit_suffix(str(c, "unit")));
        buf_printf(b, "</text>\n");
    }
    buf_printf(b, "</svg></figure>\n");
}

/* The progress towards a target: a bar for "more is better" indicators,
 * a verdict for the others. */
static void html_progress(struct buf *b, const json_t *row)
{
    json_t *p = json_object_get(row, "progress_pct");
    json_t *met = json_object_get(row, "target_met");
    if (json_is_number(p)) {
        double pct = json_number_value(p);
        double w = pct < 0 ? 0 : pct > 100 ? 120 : pct * 1.2;
        buf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"12\" "
                   "role=\"img\"><title>progression</title><rect width=\"120\" height=\"12\" "
                   "fill=\"#e6e9ec\"/><rect width=\"%.1f\" height=\"12\" fill=\"%s\"/></svg> ",
                   w, json_is_true(met) ? "#2e7d32" : "#c77c02");
        char text[48];
        number_text(p, text, sizeof(text));
        render_html_number(b, text);
        buf_printf(b, "\xc2\xa0%%");
    } else if (json_is_boolean(met)) {
        buf_printf(b, "%s", json_is_true(met) ? "atteint" : "non atteint");
    }
}

/* The single figures of one section, then a chart per breakdown. */
static void html_section(struct buf *b, json_t *rows, const char *section)
{
    size_t i;
    json_t *r;
    bool any = false;
    json_array_foreach (rows, i, r) {
        if (strcmp(str(r, "section"), section) != 0 || *str(r, "breakdown"))
            continue;
        if (!any)
            buf_printf(b, "<table><thead><tr><th>Indicateur</th><th>Valeur</th>"
                          "<th>Objectif</th><th>Progression</th></tr></thead><tbody>\n");
        any = true;
        bool has_target = json_is_number(json_object_get(r, "target"));
        buf_printf(b, "<tr%s><td>",
                   !has_target                                         ? ""
                   : is_true(r, "target_met")                          ? " class=\"ok\""
                   : json_is_boolean(json_object_get(r, "target_met")) ? " class=\"ko\""
                                                                       : "");
        render_html_text(b, str(r, "label"));
        buf_printf(b, " <span class=\"code\">");
        render_html_text(b, str(r, "code"));
        buf_printf(b, "</span></td><td class=\"num\">");
        html_value(b, r);
        buf_printf(b, "</td><td class=\"num\">");
        if (has_target) {
            char text[48];
            number_text(json_object_get(r, "target"), text, sizeof(text));
            render_html_number(b, text);
            render_html_text(b, unit_suffix(str(r, "unit")));
        }
        buf_printf(b, "</td><td>");
        html_progress(b, r);
        buf_printf(b, "</td></tr>\n");
    }
    if (any)
        buf_printf(b, "</tbody></table>\n");
    /* Breakdown rows of one indicator are consecutive. */
    size_t n = json_array_size(rows);
    for (i = 0; i < n;) {
        r = json_array_get(rows, i);
        if (strcmp(str(r, "section"), section) != 0 || !*str(r, "breakdown")) {
            i++;
            continue;
        }
        const char *code = str(r, "code");
        json_t *cells = json_array();
        while (i < n && strcmp(str(json_array_get(rows, i), "code"), code) == 0)
            json_array_append(cells, json_array_get(rows, i++));
        html_bars(b, cells, str(r, "label"));
        json_decref(cells);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The participation statement: one line per practitioner for the period,
 * then the hours of each ISO week (green from 2 h). */
static void html_participation(struct buf *b, json_t *doc)
{
    json_t *rows = json_object_get(doc, "participation");
    size_t i, n = json_array_size(rows), nweeks = 0;
    json_t *r;
    if (n == 0) {
        buf_printf(b, "<p>Aucun créneau de médecin nommé sur ces semaines.</p>\n");
        return;
    }
    buf_printf(b, "<h3>Relevé par médecin</h3>\n<table><thead><tr><th>Médecin</th>"
                  "<th>RPPS</th><th>Semaines d'au moins 2&#8239;h</th><th>Heures ouvertes</th>"
                  "<th>Consultations SAS sous 48&#8239;h hors patientèle (plafonnées à 20 par "
                  "semaine)</th></tr></thead><tbody>\n");
    const char **weeks = calloc(n, sizeof(*weeks));
    json_array_foreach (rows, i, r) {
        if (strcmp(str(r, "iso_week"), "total") != 0) {
            if (weeks) {
                bool seen = false;
                for (size_t k = 0; k < nweeks && !seen; k++)
                    seen = strcmp(weeks[k], str(r, "iso_week")) == 0;
                if (!seen)
                    weeks[nweeks++] = str(r, "iso_week");
            }
            continue;
        }
        char weeks_2h[24], weeks_all[24], hours[32];
        number_text(json_object_get(r, "weeks_2h"), weeks_2h, sizeof(weeks_2h));
        number_text(json_object_get(r, "weeks_in_period"), weeks_all, sizeof(weeks_all));
        snprintf(hours, sizeof(hours), "%.2f", json_number_value(json_object_get(r, "hours")));
        buf_printf(b, "<tr><td>");
        render_html_text(b, str(r, "given_name"));
        buf_printf(b, " ");
        render_html_text(b, str(r, "family_name"));
        buf_printf(b, "</td><td>");
        render_html_text(b, str(r, "rpps"));
        buf_printf(b, "</td><td class=\"num\">%s / %s</td><td class=\"num\">", weeks_2h, weeks_all);
        render_html_number(b, hours);
        buf_printf(b, "\xc2\xa0h</td><td class=\"num\">");
        if (is_true(r, "masked"))
            buf_printf(b, "<span class=\"masked\">");
        render_html_text(b, str(r, "capped_text"));
        if (is_true(r, "masked"))
            buf_printf(b, "</span>");
        buf_printf(b, "</td></tr>\n");
    }
    buf_printf(b, "</tbody></table>\n");
    if (!weeks)
        return;
    qsort(weeks, nweeks, sizeof(*weeks), cmp_str);
    buf_printf(b, "<h3>Heures ouvertes par semaine ISO</h3>\n<table><thead><tr><th>Médecin</th>");
    for (size_t k = 0; k < nweeks; k++) {
        buf_printf(b, "<th>");
        render_html_text(b, strlen(weeks[k]) > 5 ? weeks[k] + 5 : weeks[k]);
        buf_printf(b, "</th>");
    }
    buf_printf(b, "</tr></thead><tbody>\n");
    for (i = 0; i < n;) {
        const char *rpps = str(json_array_get(rows, i), "rpps");
        r = json_array_get(rows, i);
        buf_printf(b, "<tr><td>");
        render_html_text(b, str(r, "family_name"));
        buf_printf(b, "</td>");
        size_t first = i;
        while (i < n && strcmp(str(json_array_get(rows, i), "rpps"), rpps) == 0)
            i++;
        for (size_t k = 0; k < nweeks; k++) {
            json_t *cell = NULL;
            for (size_t j = first; j < i && !cell; j++)
                if (strcmp(str(json_array_get(rows, j), "iso_week"), weeks[k]) == 0)
                    cell = json_array_get(rows, j);
            if (!cell) {
                buf_printf(b, "<td class=\"num ko\">0</td>");
                continue;
            }
            char hours[32];
            snprintf(hours, sizeof(hours), "%.2f",
                     json_number_value(json_object_get(cell, "hours")));
            buf_printf(b, "<td class=\"num %s\">", is_true(cell, "rule_2h_met") ? "ok" : "ko");
            render_html_number(b, hours);
            buf_printf(b, "</td>");
        }
        buf_printf(b, "</tr>\n");
    }
    buf_printf(b, "</tbody></table>\n");
    free(weeks);
}

static bool render_html(json_t *doc, struct buf *b)
{
    json_t *period = json_object_get(doc, "period");
    json_t *rows = json_object_get(doc, "indicators");
    json_t *territory = json_object_get(doc, "territory");
    if (!json_is_object(period) || !json_is_array(rows) || !json_is_object(territory))
        return false;
    char name[64], from[11], last[11], cons[11], wfrom[11], wto[11];
    period_name(period, name, sizeof(name));
    french_date(str(period, "from"), from);
    french_date(str(period, "last_day"), last);
    french_date(str(period, "consolidated_at"), cons);
    french_date(str(period, "weeks_from"), wfrom);
    french_date(str(period, "weeks_to"), wto);
    const char *cons_iso = str(period, "consolidated_at");
    long long threshold = json_integer_value(json_object_get(doc, "mask_threshold"));

    buf_printf(b, "<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                  "<title>Indicateurs SNP \xe2\x80\x94 ");
    render_html_text(b, str(territory, "name"));
    buf_printf(b, " \xe2\x80\x94 %s</title>\n<style>%s</style>\n</head>\n<body>\n<header>\n", name,
               html_style);
    buf_printf(b, "<h1>Soins non programmés : indicateurs déclarés</h1>\n<p class=\"sub\">");
    render_html_text(b, str(territory, "name"));
    buf_printf(b,
               " \xe2\x80\x94 %s</p>\n<p class=\"meta\">Période : du %s au %s inclus, heure "
               "locale (",
               name, from, last);
    render_html_text(b, str(period, "time_zone"));
    buf_printf(
        b,
        "). Demandes : celles reçues pendant la période ; créneaux : ceux qui commencent "
        "pendant la période ; participation : les semaines ISO dont le jeudi tombe dans "
        "la période (du %s au %s). Devenir des demandes et des créneaux : événements "
        "enregistrés jusqu'au %s à %.5s.</p>\n<p class=\"meta\">Secret statistique : toute "
        "case décrivant de 1 à %lld patients est masquée (« &lt;%lld »), ainsi qu'une "
        "autre case de la même ventilation (« secret ») lorsqu'une seule y est masquée. Ce rapport "
        "ne contient aucune donnée nominative.</p>\n</header>\n<nav><ul>\n",
        wfrom, wto, cons, strlen(cons_iso) >= 16 ? cons_iso + 11 : "00:00", threshold - 1,
        threshold);
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++)
        buf_printf(b, "<li><a href=\"#%s\">%s</a></li>\n", sections[s].id, sections[s].title);
    buf_printf(b, "<li><a href=\"#definitions\">Définitions</a></li>\n</ul></nav>\n");
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        buf_printf(b, "<section id=\"%s\">\n<h2>%s</h2>\n", sections[s].id, sections[s].title);
        html_section(b, rows, sections[s].id);
        if (strcmp(sections[s].id, "participation") == 0)
            html_participation(b, doc);
        buf_printf(b, "</section>\n");
    }
    buf_printf(b, "<section id=\"definitions\">\n<h2>Définitions</h2>\n<table><thead><tr>"
                  "<th>Code (version)</th><th>Indicateur</th><th>Mode de calcul</th>"
                  "</tr></thead><tbody>\n");
    size_t i;
    json_t *d;
    json_array_foreach (json_object_get(doc, "definitions"), i, d) {
        buf_printf(b, "<tr><td>");
        render_html_text(b, str(d, "code"));
        buf_printf(b, " (v%lld)</td><td>",
                   (long long)json_integer_value(json_object_get(d, "version")));
        render_html_text(b, str(d, "label"));
        buf_printf(b, "</td><td>");
        render_html_text(b, str(d, "formula"));
        buf_printf(b, "</td></tr>\n");
    }
    buf_printf(b,
               "</tbody></table>\n</section>\n<footer>Produit par snpd %s à partir du "
               "journal des événements ; chaque indicateur a une définition écrite et "
               "versionnée (docs/indicators.md).</footer>\n</body>\n</html>\n",
               SNP_VERSION);
    return true;
}

bool indicators_render(json_t *doc, enum indicators_format format, struct buf *out)
{
    if (!json_is_object(doc))
        return false;
    switch (format) {
    case INDICATORS_CSV:
        return render_csv(doc, out);
    case INDICATORS_JSON:
        return render_json(doc, out);
    case INDICATORS_HTML:
        return render_html(doc, out);
    case INDICATORS_STATEMENT:
        return render_statement(doc, out);
    }
    return false;
}

/* --- snpd indicators -------------------------------------------------------------- */

static const char usage[] =
    "usage: snpd indicators --territory ID (--month YYYY-MM | --quarter YYYY-Qn | --year YYYY)\n"
    "                       [--format csv|json|html] [--statement] [--output FILE]\n"
    "\n"
    "Extracts the declared indicators of a territory for a month, a quarter or a\n"
    "contract year (local time of the territory), masked below the territory's\n"
    "threshold, as CSV (default), JSON or an HTML report; with --statement, the\n"
    "participation statement per practitioner and ISO week (CSV).  Writes FILE\n"
    "(replaced atomically) or standard output.  Every extraction is audited.\n";

/* One extraction: one connection, one query, one document. */
struct extraction {
    struct db db;
    uv_timer_t deadline;
    const char *params[5];
    bool sent;
    json_t *doc;
    int exit_code;
};

static void extraction_closed(struct db *db)
{
    (void)db;
}

static void extraction_finish(struct extraction *x, int exit_code)
{
    x->exit_code = exit_code;
    uv_timer_stop(&x->deadline);
    if (!uv_is_closing((uv_handle_t *)&x->deadline))
        uv_close((uv_handle_t *)&x->deadline, NULL);
    db_close(&x->db, extraction_closed);
}

static void on_extracted(void *arg, enum db_status st, const PGresult *res)
{
    struct extraction *x = arg;
    if (st != DB_OK) {
        const char *msg =
            st == DB_QUERY_ERROR && res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        fprintf(stderr, "snpd: %s\n", msg ? msg : "the database became unavailable");
        extraction_finish(x, 1);
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        fprintf(stderr, "snpd: the database returned no document\n");
        extraction_finish(x, 1);
        return;
    }
    json_error_t err;
    x->doc = json_loads(PQgetvalue(res, 0, 0), JSON_REJECT_DUPLICATES, &err);
    if (!x->doc)
        fprintf(stderr, "snpd: unreadable document: %s\n", err.text);
    extraction_finish(x, x->doc ? 0 : 1);
}

static void on_extraction_ready(struct db *db, bool up)
{
    struct extraction *x = container_of(db, struct extraction, db);
    if (!up || x->sent)
        return;
    x->sent = true;
    /* Connected: the query may take as long as it needs. */
    uv_timer_stop(&x->deadline);
    db_query(db, sql_text[SQL_INDICATORS_EXPORT], 5, x->params, on_extracted, x);
}

static void on_extraction_deadline(uv_timer_t *t)
{
    struct extraction *x = container_of(t, struct extraction, deadline);
    fprintf(stderr, "snpd: cannot reach the database within %d s\n", CONNECT_GIVE_UP_MS / 1000);
    extraction_finish(x, 1);
}

/* Runs the export query and returns the document (to json_decref), or NULL
 * after saying why on standard error. */
static json_t *extract(const struct config *cfg, const char *const params[5])
{
    uv_loop_t loop;
    struct extraction x;
    memset(&x, 0, sizeof(x));
    memcpy(x.params, params, sizeof(x.params));
    x.exit_code = 1;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &x.deadline);
    if (db_init(&x.db, &loop, cfg->database, 1) != 0) {
        fprintf(stderr, "snpd: cannot set up the database connection\n");
        uv_close((uv_handle_t *)&x.deadline, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return NULL;
    }
    x.db.on_ready_change = on_extraction_ready;
    uv_timer_start(&x.deadline, on_extraction_deadline, CONNECT_GIVE_UP_MS, 0);
    if (db_is_up(&x.db))
        on_extraction_ready(&x.db, true);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_warn("indicators", "loop closed with live handles");
    if (x.exit_code != 0) {
        json_decref(x.doc);
        return NULL;
    }
    return x.doc;
}

/* Writes `len` bytes to `path` through a temporary file renamed over it,
 * so that a reader never sees half a report; "-" or NULL is standard
 * output. */
static bool write_output(const char *path, const char *data, size_t len)
{
    if (!path || strcmp(path, "-") == 0) {
        bool ok = fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0;
        if (!ok)
            fprintf(stderr, "snpd: cannot write to standard output: %s\n", strerror(errno));
        return ok;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        fprintf(stderr, "snpd: output path too long\n");
        return false;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "snpd: cannot create %s: %s\n", tmp, strerror(errno));
        return false;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "snpd: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

static bool valid_period(const char *kind, const char *p)
{
    size_t n = strlen(p);
    if (n < 4 || strspn(p, "0123456789") < 4 || (p[0] != '1' && p[0] != '2') ||
        (p[0] == '1' && p[1] != '9') || (p[0] == '2' && p[1] != '0' && p[1] != '1'))
        return false;
    if (strcmp(kind, "year") == 0)
        return n == 4;
    if (strcmp(kind, "quarter") == 0)
        return n == 7 && p[4] == '-' && p[5] == 'Q' && p[6] >= '1' && p[6] <= '4';
    return n == 7 && p[4] == '-' && strspn(p + 5, "0123456789") == 2 && atoi(p + 5) >= 1 &&
           atoi(p + 5) <= 12;
}

int indicators_command(const struct config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"territory", required_argument, NULL, 't'},
        {"month", required_argument, NULL, 'm'},
        {"quarter", required_argument, NULL, 'q'},
        {"year", required_argument, NULL, 'y'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"statement", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *territory = NULL, *kind = NULL, *period = NULL, *format = "csv";
    const char *output = NULL;
    bool statement = false;
    int c, periods = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            territory = optarg;
            break;
        case 'm':
        case 'q':
        case 'y':
            kind = c == 'm' ? "month" : c == 'q' ? "quarter" : "year";
            period = optarg;
            periods++;
            break;
        case 'f':
            format = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 's':
            statement = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "snpd: unexpected argument \"%s\"\n%s", argv[optind], usage);
        return 2;
    }
    if (!territory || !validate_territory_id(territory)) {
        fprintf(stderr, "snpd: --territory must be a territory id such as demo-redon\n");
        return 2;
    }
    if (periods != 1 || !valid_period(kind, period)) {
        fprintf(stderr, "snpd: give one period: --month 2026-10, --quarter 2026-Q4 or "
                        "--year 2026\n");
        return 2;
    }
    enum indicators_format fmt;
    if (statement) {
        if (strcmp(format, "csv") != 0) {
            fprintf(stderr, "snpd: the participation statement is written as CSV only\n");
            return 2;
        }
        fmt = INDICATORS_STATEMENT;
        format = "statement-csv";
    } else if (strcmp(format, "csv") == 0) {
        fmt = INDICATORS_CSV;
    } else if (strcmp(format, "json") == 0) {
        fmt = INDICATORS_JSON;
    } else if (strcmp(format, "html") == 0) {
        fmt = INDICATORS_HTML;
    } else {
        fprintf(stderr, "snpd: --format must be csv, json or html\n");
        return 2;
    }
    char err[256];
    if (!config_check_database(cfg, err, sizeof(err))) {
        fprintf(stderr, "snpd: %s\n", err);
        return 2;
    }
    char actor[64];
    admin_operator_actor(actor, sizeof(actor));
    const char *params[5] = {territory, kind, period, format, actor};
    json_t *doc = extract(cfg, params);
    if (!doc)
        return 1;
    struct buf out = {0};
    bool ok = indicators_render(doc, fmt, &out);
    if (!ok || out.failed) {
        fprintf(stderr, "snpd: %s\n", ok ? "out of memory" : "the document is incomplete");
        json_decref(doc);
        buf_free(&out);
        return 1;
    }
    /* Only a warning reads the clock; the output never does. */
    int64_t consolidated;
    const char *cons = str(json_object_get(doc, "period"), "consolidated_at");
    if (timeutil_parse_rfc3339(cons, &consolidated) && consolidated > timeutil_now())
        fprintf(stderr,
                "snpd: warning: this period is consolidated on %s; until then its figures may "
                "still change\n",
                cons);
    ok = write_output(output, out.data ? out.data : "", out.len);
    json_decref(doc);
    buf_free(&out);
    return ok ? 0 : 1;
}

/* --- indicators.get --------------------------------------------------------------- */

/* One read of the indicators waiting for the database: indicators.get, or
 * indicators.export when `exporting`. */
struct indicators_read {
    struct db_call call; /* first: the shared context (dbcall.h) */
    bool exporting;
    enum indicators_format format;
    char filename[128];
};

/* The answer of indicators.export: `doc` rendered in the read's format, cut
 * into parts of at most max_string_bytes that end on a character boundary.
 * Returns NULL after setting *err and *message. */
static json_t *export_answer(struct indicators_read *r, json_t *doc, enum snp_proto_code *err,
                             const char **message)
{
    struct buf out = {0};
    if (!indicators_render(doc, r->format, &out) || out.failed) {
        buf_free(&out);
        *err = SNP_PROTO_E_INTERNAL;
        log_error("indicators", "an export could not be rendered");
        return NULL;
    }
    json_t *parts = render_parts(out.data, out.len);
    buf_free(&out);
    if (!parts) {
        *err = SNP_PROTO_E_INVALID_FIELD;
        *message = "this extraction is too large for one answer; ask the operator for it "
                   "(snpd indicators)";
        return NULL;
    }
    static const char *const types[] = {
        [INDICATORS_CSV] = "text/csv; charset=utf-8",
        [INDICATORS_JSON] = "application/json",
        [INDICATORS_HTML] = "text/html; charset=utf-8",
        [INDICATORS_STATEMENT] = "text/csv; charset=utf-8",
    };
    return json_pack("{s:s, s:s, s:s, s:o}", "filename", r->filename, "content_type",
                     types[r->format], "consolidated_at",
                     str(json_object_get(doc, "period"), "consolidated_at"), "parts", parts);
}

static void on_indicators_read(void *arg, enum db_status st, const PGresult *res)
{
    struct indicators_read *r = arg;
    if (st == DB_QUERY_ERROR && strcmp(db_sqlstate(res), "22023") == 0) {
        /* A period or format the SQL refused: the field is this operation's. */
        const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *field = r->exporting ? (message ? "format" : "period") : "month";
        db_call_finish(&r->call, SNP_PROTO_E_INVALID_FIELD, message, field, NULL);
        return;
    }
    json_t *doc = db_call_result(&r->call, st, res);
    if (!doc)
        return; /* answered */
    if (!r->exporting) {
        db_call_finish(&r->call, SNP_PROTO_OK, NULL, NULL, doc);
        return;
    }
    enum snp_proto_code err = SNP_PROTO_OK;
    const char *message = NULL;
    json_t *result = export_answer(r, doc, &err, &message);
    json_decref(doc);
    db_call_finish(&r->call, err, message, err == SNP_PROTO_E_INVALID_FIELD ? "format" : NULL,
                   result);
}

/* A read of the indicators counted in flight; NULL after answering `cb`
 * when memory is lacking. */
static struct indicators_read *read_start(struct dispatch *d, answer_cb cb, void *arg)
{
    return db_call_new(d, sizeof(struct indicators_read), "indicators", cb, arg);
}

void indicators_get(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                    void *arg)
{
    const char *month = json_string_value(json_object_get(data, "month"));
    if (!month || !valid_period("month", month)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD, "month must be YYYY-MM", "month", NULL);
        return;
    }
    struct indicators_read *r = read_start(d, cb, arg);
    if (!r)
        return;
    const char *params[] = {c->territory, month, c->actor, token_role_name(c->role)};
    db_query(d->db, sql_text[SQL_INDICATORS_GET], 4, params, on_indicators_read, r);
}

/* --- indicators.export ------------------------------------------------------------ */

void indicators_export(struct dispatch *d, const struct caller *c, json_t *data, answer_cb cb,
                       void *arg)
{
    const char *kind = json_string_value(json_object_get(data, "period_kind"));
    const char *period = json_string_value(json_object_get(data, "period"));
    const char *format = json_string_value(json_object_get(data, "format"));
    if (!kind || !period || !format || !valid_period(kind, period)) {
        cb(arg, SNP_PROTO_E_INVALID_FIELD,
           "period must be YYYY-MM for a month, YYYY-Qn for a quarter, YYYY for a year", "period",
           NULL);
        return;
    }
    struct indicators_read *r = read_start(d, cb, arg);
    if (!r)
        return;
    r->exporting = true;
    /* The codec has checked format against its enumeration. */
    bool statement = strcmp(format, "statement") == 0;
    r->format = statement                     ? INDICATORS_STATEMENT
                : strcmp(format, "html") == 0 ? INDICATORS_HTML
                : strcmp(format, "json") == 0 ? INDICATORS_JSON
                                              : INDICATORS_CSV;
    snprintf(r->filename, sizeof(r->filename), "%s-%s-%s.%s",
             statement ? "releve-participation" : "indicateurs", c->territory, period,
             statement ? "csv" : format);
    /* The audit names the format as snpd indicators does. */
    const char *params[] = {c->territory, kind,
                            period,       statement ? "statement-csv" : format,
                            c->actor,     token_role_name(c->role)};
    db_query(d->db, sql_text[SQL_INDICATORS_EXPORT_READ], 6, params, on_indicators_read, r);
}
