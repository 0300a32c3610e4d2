/* confirmation: the patient's confirmation of a booked request.  See
 * confirmation.h. */
#include "clients/cli/confirmation.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/ctl.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"

/* What the patient should have at hand, whatever the mode. */
static const char *const to_bring[] = {
    "votre carte Vitale (ou votre attestation de droits)",
    "vos ordonnances et la liste de vos traitements en cours (ou les boîtes de médicaments)",
    "le carnet de santé, pour un enfant",
    "vos résultats d'examens récents (prises de sang, radiographies)",
    "une pièce d'identité",
};

/* By mode: the advice before the list, the list's heading, what "coming"
 * means in the cancellation sentence. */
struct mode_words {
    const char *mode, *advice, *heading, *come;
};

static const struct mode_words mode_words[] = {
    {"office", "Présentez-vous quelques minutes avant l'heure.", "À apporter", "venir"},
    {"home",
     "Soyez chez vous à l'heure prévue et gardez votre téléphone près de vous : le médecin peut "
     "appeler avant de venir, ou arriver un peu plus tard.",
     "À préparer pour le médecin", "être chez vous"},
    {"teleconsultation",
     "Prévoyez un téléphone ou un ordinateur (avec caméra si possible), chargé, dans un endroit "
     "calme, quelques minutes avant l'heure.",
     "À garder sous la main", "être disponible"},
};

static const struct mode_words *words_of(const char *mode)
{
    for (size_t i = 0; i < sizeof(mode_words) / sizeof(mode_words[0]); i++)
        if (mode && strcmp(mode, mode_words[i].mode) == 0)
            return &mode_words[i];
    return &mode_words[0];
}

/* Whom to tell, by kind of site. */
static const char *who_of(const char *site_kind)
{
    if (site_kind && strcmp(site_kind, "csnp") == 0)
        return "le centre";
    if (site_kind && strcmp(site_kind, "teleconsultation") == 0)
        return "le service";
    return "le cabinet";
}

static void add(struct confirmation *c, enum confirmation_kind kind, const char *label,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Appends a part whose text is formatted from `fmt`. */
static void add(struct confirmation *c, enum confirmation_kind kind, const char *label,
                const char *fmt, ...)
{
    if (c->nparts == CONFIRMATION_MAX_PARTS) {
        c->failed = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        c->failed = true;
        return;
    }
    c->parts[c->nparts++] = (struct confirmation_part){kind, label, text};
}

/* Whether the booked site is one of `territory`'s own, so that its name may
 * head the sheet: its sites list holds the site (protocol 1.2.0); without
 * the list, a CPTS is taken to be. */
static bool own_site(const json_t *territory, const json_t *site)
{
    if (!territory)
        return false;
    const json_t *sites = json_object_get(territory, "sites");
    if (!json_is_array(sites))
        return ctl_str(territory, "kind") && strcmp(ctl_str(territory, "kind"), "cpts") == 0;
    size_t i;
    const json_t *s;
    json_array_foreach (sites, i, s)
        if (ctl_int(s, "site_id") == ctl_int(site, "site_id"))
            return true;
    return false;
}

/* Writes "1 quai Surcouf, 35600 Redon" into `buf`: the commune is added
 * unless the address names it. */
static void site_address(const json_t *site, char *buf, size_t n)
{
    const char *address = ctl_str(site, "address"), *commune = ctl_str(site, "commune_name");
    const char *pc = ctl_str(site, "postal_code");
    if (!address)
        address = "";
    if (commune && !strstr(address, commune))
        snprintf(buf, n, "%s, %s%s%s", address, pc ? pc : "", pc ? " " : "", commune);
    else
        snprintf(buf, n, "%s", address);
}

bool confirmation_build(struct confirmation *c, const json_t *request, const json_t *territory,
                        const char *requester)
{
    memset(c, 0, sizeof(*c));
    const json_t *booking = json_object_get(request, "booking");
    const char *status = ctl_str(booking, "status");
    const json_t *slot = json_object_get(booking, "slot");
    const json_t *site = json_object_get(slot, "site");
    if (!status || strcmp(status, "booked") != 0 || !site)
        return false;
    const char *mode = ctl_str(slot, "mode");
    const struct mode_words *w = words_of(mode);
    const char *phone = ctl_str(site, "phone"), *site_name = ctl_str(site, "name");
    const char *who = who_of(ctl_str(site, "kind"));
    const json_t *patient = json_object_get(request, "patient");
    const char *name = ctl_str(patient, "display_name");
    if (!name)
        name = ctl_str(patient, "initials");
    char when[80], address[400];
    labels_when_long(ctl_str(slot, "start"), when, sizeof(when));
    site_address(site, address, sizeof(address));

    if (own_site(territory, site))
        add(c, CONFIRMATION_HEADER, NULL, "%s", ctl_str(territory, "name"));
    add(c, CONFIRMATION_TITLE, NULL, "Confirmation de rendez-vous");
    if (name)
        add(c, CONFIRMATION_FIELD, "Patient", "%s", name);
    add(c, CONFIRMATION_FIELD, "Rendez-vous", "%s", when);
    const json_t *pr = json_object_get(slot, "practitioner");
    if (pr)
        add(c, CONFIRMATION_FIELD, "Avec", "Dr %s %s", ctl_str(pr, "given_name"),
            ctl_str(pr, "family_name"));
    else
        add(c, CONFIRMATION_FIELD, "Avec", "le médecin de garde du centre (%s)", site_name);
    if (mode && strcmp(mode, "home") == 0) {
        add(c, CONFIRMATION_FIELD, "Où", "à votre domicile : le médecin vient chez vous.");
        add(c, CONFIRMATION_FIELD, "Cabinet", "%s, %s", site_name, address);
    } else if (mode && strcmp(mode, "teleconsultation") == 0) {
        if (patient && !ctl_str(patient, "phone"))
            add(c, CONFIRMATION_FIELD, "Comment",
                "en téléconsultation : vous n'avez pas laissé de numéro de téléphone : appelez "
                "%s%s%s avant l'heure du rendez-vous pour le donner.",
                who, phone ? " au " : "", phone ? phone : "");
        else
            add(c, CONFIRMATION_FIELD, "Comment",
                "en téléconsultation : le médecin vous contacte à l'heure du rendez-vous au "
                "numéro de téléphone que vous avez donné, par un appel ou par un lien vidéo.");
        add(c, CONFIRMATION_FIELD, "Service", "%s", site_name);
    } else {
        add(c, CONFIRMATION_FIELD, "Lieu", "%s\n%s", site_name, address);
    }
    if (phone)
        add(c, CONFIRMATION_FIELD, "Téléphone", "%s", phone);
    add(c, CONFIRMATION_NOTE, NULL, "%s", w->advice);
    add(c, CONFIRMATION_HEADING, NULL, "%s", w->heading);
    for (size_t i = 0; i < sizeof(to_bring) / sizeof(to_bring[0]); i++)
        add(c, CONFIRMATION_ITEM, NULL, "%s", to_bring[i]);
    if (phone)
        add(c, CONFIRMATION_CANCEL, NULL,
            "Si vous ne pouvez pas %s, prévenez %s au %s, pour que le créneau serve à un autre "
            "patient.",
            w->come, who, phone);
    else
        add(c, CONFIRMATION_CANCEL, NULL,
            "Si vous ne pouvez pas %s, prévenez %s, pour que le créneau serve à un autre patient.",
            w->come, requester ? requester : "la structure qui a pris ce rendez-vous");
    if (requester)
        add(c, CONFIRMATION_FIELD, "Adressé par", "%s", requester);
    add(c, CONFIRMATION_FOOTER, NULL, "Demande n° %lld · rendez-vous n° %lld",
        (long long)ctl_int(request, "request_id"), (long long)ctl_int(booking, "booking_id"));
    return !c->failed;
}

void confirmation_write_text(const struct confirmation *c, FILE *out)
{
    const size_t width = 72;
    for (size_t i = 0; i < c->nparts; i++) {
        const struct confirmation_part *p = &c->parts[i];
        char first[128], next[128];
        switch (p->kind) {
        case CONFIRMATION_HEADER:
            table_wrap(out, p->text, width, "", "");
            break;
        case CONFIRMATION_TITLE:
            /* Capitals for the title; the text is ASCII but for its accents,
             * which stay as they are. */
            for (const char *s = p->text; *s; s++)
                fputc(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s, out);
            fputs("\n\n", out);
            break;
        case CONFIRMATION_FIELD:
            snprintf(first, sizeof(first), "%s : ", p->label);
            /* The lines after the first (the place's address, a long
             * sentence) are aligned under the text, past the label. */
            snprintf(next, sizeof(next), "%*s", (int)table_width(first), "");
            table_wrap(out, p->text, width, first, next);
            break;
        case CONFIRMATION_NOTE:
        case CONFIRMATION_CANCEL:
        case CONFIRMATION_FOOTER:
            fputc('\n', out);
            table_wrap(out, p->text, width, "", "");
            break;
        case CONFIRMATION_HEADING:
            fprintf(out, "\n%s :\n", p->text);
            break;
        case CONFIRMATION_ITEM:
            table_wrap(out, p->text, width, "  - ", "    ");
            break;
        }
    }
}

/* Writes `s` to `out` with the characters HTML gives a meaning escaped, and
 * line breaks as <br>.  A space between two digits becomes a no-break space,
 * so that a phone number is never cut at the end of a line. */
static void write_escaped(FILE *out, const char *s)
{
    for (const char *start = s; *s; s++) {
        switch (*s) {
        case ' ':
            if (s > start && isdigit((unsigned char)s[-1]) && isdigit((unsigned char)s[1]))
                fputs("&nbsp;", out);
            else
                fputc(' ', out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\n':
            fputs("<br>", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

/* The page's style: the look of the web client's confirmation
 * (clients/web/style.css), inline since the file travels alone. */
static const char html_head[] =
    "<!doctype html>\n"
    "<html lang=\"fr\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<title>Confirmation de rendez-vous</title>\n"
    "<style>\n"
    "@page { margin: 12mm; }\n"
    "body { font-family: system-ui, \"DejaVu Sans\", \"Liberation Sans\", Arial, sans-serif;\n"
    "       font-size: 11pt; line-height: 1.45; color: #000; margin: 0; }\n"
    "article { max-width: 125mm; margin: 12mm auto; }\n"
    "@media print { article { margin: 0; } }\n"
    ".header { margin: 0; }\n"
    "h1 { font-size: 1.3rem; margin: 2px 0 10px; }\n"
    "h2 { font-size: 1.05rem; margin: 12px 0 4px; }\n"
    "p { margin: 6px 0; }\n"
    "ul { margin: 0; padding-left: 1.3em; }\n"
    ".cancel { border-top: 1px solid #888; padding-top: 8px; margin-top: 12px; }\n"
    ".footer { font-size: 0.875rem; }\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<article>\n";

void confirmation_write_html(const struct confirmation *c, FILE *out)
{
    fputs(html_head, out);
    bool in_list = false;
    for (size_t i = 0; i < c->nparts; i++) {
        const struct confirmation_part *p = &c->parts[i];
        if (in_list && p->kind != CONFIRMATION_ITEM) {
            fputs("</ul>\n", out);
            in_list = false;
        }
        switch (p->kind) {
        case CONFIRMATION_HEADER:
            fputs("<p class=\"header\">", out);
            break;
        case CONFIRMATION_TITLE:
            fputs("<h1>", out);
            break;
        case CONFIRMATION_FIELD:
            fputs("<p><strong>", out);
            write_escaped(out, p->label);
            fputs(" :</strong> ", out);
            break;
        case CONFIRMATION_NOTE:
            fputs("<p>", out);
            break;
        case CONFIRMATION_HEADING:
            fputs("<h2>", out);
            break;
        case CONFIRMATION_ITEM:
            if (!in_list)
                fputs("<ul>\n", out);
            in_list = true;
            fputs("<li>", out);
            break;
        case CONFIRMATION_CANCEL:
            fputs("<p class=\"cancel\">", out);
            break;
        case CONFIRMATION_FOOTER:
            fputs("<p class=\"footer\">", out);
            break;
        }
        write_escaped(out, p->text);
        fputs(p->kind == CONFIRMATION_TITLE     ? "</h1>\n"
              : p->kind == CONFIRMATION_HEADING ? "</h2>\n"
              : p->kind == CONFIRMATION_ITEM    ? "</li>\n"
                                                : "</p>\n",
              out);
    }
    if (in_list)
        fputs("</ul>\n", out);
    fputs("</article>\n</body>\n</html>\n", out);
}

void confirmation_free(struct confirmation *c)
{
    for (size_t i = 0; i < c->nparts; i++)
        free(c->parts[i].text);
    memset(c, 0, sizeof(*c));
}
