/* snpctl import: checks the CSV files that describe a territory (communes,
 * practitioners and their sites, requester organisations) with the
 * project's validators, and reports every invalid line.
 *
 * Importing itself needs a server operation that snp.v1 does not have yet:
 * without --dry-run the command says so and exits 1.  No server is
 * contacted in any case.  The columns are documented in docs/snpctl.md.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/commands.h"
#include "clients/cli/csv.h"
#include "clients/cli/table.h"
#include "dispatcher/validate.h"

static const char import_usage[] =
    "usage : snpctl import [--communes F.csv] [--practitioners F.csv]\n"
    "                      [--organisations F.csv] --dry-run\n"
    "\n"
    "Vérifie des fichiers CSV du territoire (séparateur , ou ;, UTF-8, première ligne =\n"
    "noms de colonnes) et signale chaque ligne invalide avec son numéro et la raison ;\n"
    "rien n'est importé.  Code de sortie 1 si une ligne est invalide.\n"
    "  communes       insee, name, postal_code (facultatif), latitude, longitude\n"
    "  practitioners  rpps, family_name, given_name, site_name, site_kind\n"
    "                 (practice|csnp|teleconsultation), address, commune_insee, latitude,\n"
    "                 longitude, phone (facultatif) — une ligne par praticien et lieu\n"
    "  organisations  kind (pharmacy|emergency|sas|professional|desk), name, finess,\n"
    "                 rpps (l'un des deux au moins), commune_insee\n"
    "Sans --dry-run : l'import demande une opération du serveur qui n'existe pas "
    "encore.\n" CTL_COMMON_HELP;

/* ---- column declarations ------------------------------------------------- */

enum check {
    CHECK_TEXT,   /* any non-empty text up to `max` characters */
    CHECK_INSEE,  /* validate_insee_commune */
    CHECK_POSTAL, /* five digits */
    CHECK_LAT,    /* a number in [-90, 90], paired with the longitude */
    CHECK_LON,    /* a number in [-180, 180] */
    CHECK_RPPS,   /* validate_rpps */
    CHECK_FINESS, /* validate_finess */
    CHECK_PHONE,  /* validate_phone_fr */
    CHECK_SITE_KIND,
    CHECK_ORG_KIND,
};

struct column {
    const char *name;
    enum check check;
    bool required;
    size_t max; /* characters, for CHECK_TEXT */
};

struct file_kind {
    const char *option; /* "--communes" */
    const char *label;  /* "communes" */
    const struct column *columns;
};

static const struct column commune_columns[] = {
    {"insee", CHECK_INSEE, true, 0},         {"name", CHECK_TEXT, true, 100},
    {"postal_code", CHECK_POSTAL, false, 0}, {"latitude", CHECK_LAT, true, 0},
    {"longitude", CHECK_LON, true, 0},       {NULL, 0, false, 0},
};

static const struct column practitioner_columns[] = {
    {"rpps", CHECK_RPPS, true, 0},
    {"family_name", CHECK_TEXT, true, 100},
    {"given_name", CHECK_TEXT, true, 100},
    {"site_name", CHECK_TEXT, true, 200},
    {"site_kind", CHECK_SITE_KIND, true, 0},
    {"address", CHECK_TEXT, true, 300},
    {"commune_insee", CHECK_INSEE, true, 0},
    {"latitude", CHECK_LAT, true, 0},
    {"longitude", CHECK_LON, true, 0},
    {"phone", CHECK_PHONE, false, 0},
    {NULL, 0, false, 0},
};

static const struct column organisation_columns[] = {
    {"kind", CHECK_ORG_KIND, true, 0},       {"name", CHECK_TEXT, true, 200},
    {"finess", CHECK_FINESS, false, 0},      {"rpps", CHECK_RPPS, false, 0},
    {"commune_insee", CHECK_INSEE, true, 0}, {NULL, 0, false, 0},
};

enum { KIND_COMMUNES, KIND_PRACTITIONERS, KIND_ORGANISATIONS, KIND_COUNT };

static const struct file_kind kinds[KIND_COUNT] = {
    {"--communes", "communes", commune_columns},
    {"--practitioners", "practitioners", practitioner_columns},
    {"--organisations", "organisations", organisation_columns},
};

/* ---- what has been seen, for duplicates and references ------------------- */

/* A growable list of strings with a line number each (small files: linear
 * searches are fine). */
struct seen {
    char **keys;
    char **values; /* what must be the same on every line with this key, or NULL */
    long *lines;
    size_t n, cap;
};

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i]);
        free(s->values[i]);
    }
    free(s->keys);
    free(s->values);
    free(s->lines);
    memset(s, 0, sizeof(*s));
}

/* Returns the index of `key`, or -1. */
static long seen_find(const struct seen *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], key) == 0)
            return (long)i;
    return -1;
}

static void seen_add(struct seen *s, const char *key, const char *value, long line)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **k = realloc(s->keys, cap * sizeof(*k));
        if (k)
            s->keys = k;
        char **v = realloc(s->values, cap * sizeof(*v));
        if (v)
            s->values = v;
        long *l = realloc(s->lines, cap * sizeof(*l));
        if (l)
            s->lines = l;
        if (!k || !v || !l)
            return;
        s->cap = cap;
    }
    s->keys[s->n] = strdup(key);
    s->values[s->n] = value ? strdup(value) : NULL;
    s->lines[s->n] = line;
    s->n++;
}

struct import {
    struct ctl *c;
    const char *path[KIND_COUNT];
    bool dry_run;
    long errors, lines;
    struct seen communes;     /* INSEE codes of the communes file */
    struct seen commune_keys; /* per file: the key of a line, for duplicates */
    struct seen rpps;         /* practitioner RPPS -> "family|given" */
    struct seen sites;        /* site name -> "kind|address|insee|lat|lon|phone" */
    struct seen org_names, org_finess;
    json_t *report; /* --json: the errors */
};

/* Reports one invalid line. */
static void invalid(struct import *im, const char *file, long line, const char *column,
                    const char *value, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void invalid(struct import *im, const char *file, long line, const char *column,
                    const char *value, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    im->errors++;
    if (im->report) {
        json_t *e =
            json_pack("{s:s, s:I, s:s}", "file", file, "line", (json_int_t)line, "reason", why);
        if (column)
            json_object_set_new(e, "column", json_string(column));
        if (value)
            json_object_set_new(e, "value", json_string(value));
        json_array_append_new(im->report, e);
        return;
    }
    if (column && value)
        printf("%s:%ld: %s « %s » : %s\n", file, line, column, value, why);
    else if (column)
        printf("%s:%ld: %s : %s\n", file, line, column, why);
    else
        printf("%s:%ld: %s\n", file, line, why);
}

/* Trims blanks in place and returns `s`. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void upper(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

/* Parses a coordinate, with a decimal point or (French spreadsheets) a
 * decimal comma. */
static bool parse_coord(const char *s, double *out)
{
    char buf[64];
    if (!*s || strlen(s) >= sizeof(buf))
        return false;
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *p = buf; *p; p++)
        if (*p == ',')
            *p = '.';
    char *end;
    errno = 0;
    *out = strtod(buf, &end);
    return *end == '\0' && errno == 0 && end != buf;
}

/* Explains why `s` is not an RPPS number. */
static const char *rpps_reason(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return "RPPS invalide : 11 chiffres attendus";
    if (n != 11)
        return "RPPS invalide : 11 chiffres attendus";
    return "RPPS invalide : clé de contrôle (Luhn) fausse";
}

static const char *finess_reason(const char *s)
{
    if (strlen(s) != 9)
        return "FINESS invalide : 9 caractères attendus";
    return "FINESS invalide : clé de contrôle (Luhn) fausse ou département inconnu";
}

/* Checks one field; returns false (after reporting) when invalid.  The
 * value may be normalised in place (upper case for codes). */
static bool check_field(struct import *im, const char *file, long line, const struct column *col,
                        char *v)
{
    if (!*v) {
        if (col->required) {
            invalid(im, file, line, col->name, NULL, "valeur obligatoire manquante");
            return false;
        }
        return true;
    }
    double d;
    switch (col->check) {
    case CHECK_TEXT:
        if (table_width(v) > col->max) {
            invalid(im, file, line, col->name, NULL, "texte trop long (%zu caractères au plus)",
                    col->max);
            return false;
        }
        return true;
    case CHECK_INSEE:
        upper(v);
        if (!validate_insee_commune(v)) {
            invalid(im, file, line, col->name, v,
                    "code INSEE invalide (5 chiffres, ou 2A/2B et 3 chiffres)");
            return false;
        }
        return true;
    case CHECK_POSTAL:
        if (strlen(v) != 5 || strspn(v, "0123456789") != 5) {
            invalid(im, file, line, col->name, v, "code postal invalide (5 chiffres)");
            return false;
        }
        return true;
    case CHECK_LAT:
    case CHECK_LON:
        if (!parse_coord(v, &d)) {
            invalid(im, file, line, col->name, v, "nombre attendu (ex. 47.6514)");
            return false;
        }
        if (col->check == CHECK_LAT ? (d < -90 || d > 90) : (d < -180 || d > 180)) {
            invalid(im, file, line, col->name, v, "hors des limites WGS84 (%s)",
                    col->check == CHECK_LAT ? "-90 à 90" : "-180 à 180");
            return false;
        }
        return true;
    case CHECK_RPPS:
        if (!validate_rpps(v)) {
            invalid(im, file, line, col->name, v, "%s", rpps_reason(v));
            return false;
        }
        return true;
    case CHECK_FINESS:
        upper(v);
        if (!validate_finess(v)) {
            invalid(im, file, line, col->name, v, "%s", finess_reason(v));
            return false;
        }
        return true;
    case CHECK_PHONE:
        if (!validate_phone_fr(v)) {
            invalid(im, file, line, col->name, v,
                    "téléphone invalide (02 99 71 00 00 ou +33 2 99 71 00 00)");
            return false;
        }
        return true;
    case CHECK_SITE_KIND:
        if (strcmp(v, "practice") && strcmp(v, "csnp") && strcmp(v, "teleconsultation")) {
            invalid(im, file, line, col->name, v,
                    "type de lieu inconnu (practice, csnp ou teleconsultation)");
            return false;
        }
        return true;
    case CHECK_ORG_KIND:
        if (strcmp(v, "pharmacy") && strcmp(v, "emergency") && strcmp(v, "sas") &&
            strcmp(v, "professional") && strcmp(v, "desk")) {
            invalid(im, file, line, col->name, v,
                    "type d'organisation inconnu (pharmacy, emergency, sas, professional, desk)");
            return false;
        }
        return true;
    }
    return true;
}

/* Returns the value of the column named `name` in the line, or "". */
static char *field(char **values, const int *map, const struct column *cols, const char *name)
{
    for (int i = 0; cols[i].name; i++)
        if (strcmp(cols[i].name, name) == 0)
            return map[i] >= 0 ? values[map[i]] : (char *)"";
    return (char *)"";
}

/* Checks what involves several fields of one line, or other lines: pairs of
 * coordinates in France, duplicates, references to the communes file. */
static void check_line(struct import *im, int kind, const char *file, long line, char **values,
                       const int *map)
{
    const struct column *cols = kinds[kind].columns;
    double lat, lon;
    char *la = field(values, map, cols, "latitude"), *lo = field(values, map, cols, "longitude");
    if (*la && *lo && parse_coord(la, &lat) && parse_coord(lo, &lon) &&
        validate_coordinates(lat, lon) && !validate_coordinates_france(lat, lon)) {
        bool swapped = validate_coordinates_france(lon, lat);
        invalid(im, file, line, "latitude/longitude", NULL, "coordonnées (%s, %s) hors de France%s",
                la, lo, swapped ? " : latitude et longitude inversées ?" : "");
    }
    char *insee = field(values, map, cols, kind == KIND_COMMUNES ? "insee" : "commune_insee");
    if (kind != KIND_COMMUNES && *insee && im->path[KIND_COMMUNES] &&
        validate_insee_commune(insee) && seen_find(&im->communes, insee) < 0)
        invalid(im, file, line, "commune_insee", insee, "commune absente du fichier des communes");
    char key[1024], value[2048];
    long at;
    switch (kind) {
    case KIND_COMMUNES:
        if (!validate_insee_commune(insee))
            break;
        if ((at = seen_find(&im->communes, insee)) >= 0)
            invalid(im, file, line, "insee", insee, "commune déjà décrite ligne %ld",
                    im->communes.lines[at]);
        else
            seen_add(&im->communes, insee, NULL, line);
        break;
    case KIND_PRACTITIONERS: {
        char *rpps = field(values, map, cols, "rpps"),
             *site = field(values, map, cols, "site_name");
        snprintf(value, sizeof(value), "%s|%s", field(values, map, cols, "family_name"),
                 field(values, map, cols, "given_name"));
        if (validate_rpps(rpps)) {
            if ((at = seen_find(&im->rpps, rpps)) >= 0 && im->rpps.values[at] &&
                strcmp(im->rpps.values[at], value) != 0)
                invalid(im, file, line, "rpps", rpps, "même RPPS avec un autre nom que ligne %ld",
                        im->rpps.lines[at]);
            else if (at < 0)
                seen_add(&im->rpps, rpps, value, line);
        }
        snprintf(key, sizeof(key), "%s|%s", rpps, site);
        if (validate_rpps(rpps) && *site) {
            if ((at = seen_find(&im->commune_keys, key)) >= 0)
                invalid(im, file, line, NULL, NULL,
                        "praticien %s déjà rattaché au lieu « %s » ligne %ld", rpps, site,
                        im->commune_keys.lines[at]);
            else
                seen_add(&im->commune_keys, key, NULL, line);
        }
        snprintf(value, sizeof(value), "%s|%s|%s|%s|%s|%s", field(values, map, cols, "site_kind"),
                 field(values, map, cols, "address"), insee, la, lo,
                 field(values, map, cols, "phone"));
        if (*site) {
            if ((at = seen_find(&im->sites, site)) >= 0 && strcmp(im->sites.values[at], value) != 0)
                invalid(im, file, line, "site_name", site,
                        "lieu décrit autrement que ligne %ld (type, adresse, commune, "
                        "coordonnées ou téléphone)",
                        im->sites.lines[at]);
            else if (at < 0)
                seen_add(&im->sites, site, value, line);
        }
        break;
    }
    case KIND_ORGANISATIONS: {
        char *name = field(values, map, cols, "name"), *finess = field(values, map, cols, "finess");
        if (!*finess && !*field(values, map, cols, "rpps"))
            invalid(im, file, line, "finess/rpps", NULL,
                    "une organisation a un FINESS ou le RPPS de son responsable");
        if (*name) {
            if ((at = seen_find(&im->org_names, name)) >= 0)
                invalid(im, file, line, "name", name, "organisation déjà décrite ligne %ld",
                        im->org_names.lines[at]);
            else
                seen_add(&im->org_names, name, NULL, line);
        }
        if (validate_finess(finess)) {
            if ((at = seen_find(&im->org_finess, finess)) >= 0)
                invalid(im, file, line, "finess", finess, "FINESS déjà donné ligne %ld",
                        im->org_finess.lines[at]);
            else
                seen_add(&im->org_finess, finess, NULL, line);
        }
        break;
    }
    }
}

/* Checks one file; returns false when it could not be read at all. */
static bool check_file(struct import *im, int kind)
{
    const char *path = im->path[kind];
    const struct column *cols = kinds[kind].columns;
    struct csv csv;
    if (csv_open(&csv, path) != 0) {
        ctl_error("%s %s : %s", kinds[kind].option, path, strerror(errno));
        return false;
    }
    int ncols = 0;
    while (cols[ncols].name)
        ncols++;
    int map[16];
    for (int i = 0; i < ncols; i++)
        map[i] = -1;
    seen_free(&im->commune_keys);
    const char *why;
    int r;
    long errors_before = im->errors, lines = 0;
    size_t header_fields = 0;
    /* The header names the columns, in any order. */
    while ((r = csv_next(&csv, &why)) < 0)
        invalid(im, path, csv.line, NULL, NULL, "%s", why);
    if (r == 0) {
        invalid(im, path, 1, NULL, NULL,
                "fichier vide : la première ligne doit nommer les "
                "colonnes");
        csv_close(&csv);
        return true;
    }
    header_fields = csv.nfields;
    bool header_ok = true;
    for (size_t i = 0; i < csv.nfields; i++) {
        char *name = trim(csv.fields[i]);
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        int k;
        for (k = 0; k < ncols; k++)
            if (strcmp(cols[k].name, name) == 0)
                break;
        if (k == ncols) {
            char expected[512] = "";
            for (int j = 0; j < ncols; j++) {
                strncat(expected, cols[j].name, sizeof(expected) - strlen(expected) - 1);
                if (j + 1 < ncols)
                    strncat(expected, ", ", sizeof(expected) - strlen(expected) - 1);
            }
            invalid(im, path, csv.line, name, NULL, "colonne inconnue (colonnes : %s)", expected);
            header_ok = false;
        } else if (map[k] >= 0) {
            invalid(im, path, csv.line, name, NULL, "colonne en double");
            header_ok = false;
        } else {
            map[k] = (int)i;
        }
    }
    for (int k = 0; k < ncols; k++)
        if (cols[k].required && map[k] < 0) {
            invalid(im, path, csv.line, cols[k].name, NULL, "colonne obligatoire absente");
            header_ok = false;
        }
    if (!header_ok) {
        /* Lines cannot be read without their columns. */
        csv_close(&csv);
        return true;
    }
    for (;;) {
        r = csv_next(&csv, &why);
        if (r == 0)
            break;
        lines++;
        if (r < 0) {
            invalid(im, path, csv.line, NULL, NULL, "%s", why);
            continue;
        }
        if (csv.nfields != header_fields) {
            if (csv.nfields > header_fields)
                invalid(im, path, csv.line, NULL, NULL,
                        "%zu champs au lieu de %zu (séparateur « %c » dans une valeur sans "
                        "guillemets ?)",
                        csv.nfields, header_fields, csv.sep);
            else
                invalid(im, path, csv.line, NULL, NULL,
                        "%zu champs au lieu de %zu (ligne "
                        "incomplète)",
                        csv.nfields, header_fields);
            continue;
        }
        for (int k = 0; k < ncols; k++)
            if (map[k] >= 0)
                csv.fields[map[k]] = trim(csv.fields[map[k]]);
        for (int k = 0; k < ncols; k++)
            if (map[k] >= 0)
                check_field(im, path, csv.line, &cols[k], csv.fields[map[k]]);
        /* The checks across fields and lines look only at fields that are
         * valid by themselves, so that one mistake gives one message. */
        check_line(im, kind, path, csv.line, csv.fields, map);
    }
    csv_close(&csv);
    im->lines += lines;
    if (!im->report)
        printf("%s : %ld ligne%s, %ld erreur%s\n", path, lines, lines > 1 ? "s" : "",
               im->errors - errors_before, im->errors - errors_before > 1 ? "s" : "");
    return true;
}

static int on_import(void *state, int id, const char *arg)
{
    struct import *im = state;
    if (id >= 1 && id <= KIND_COUNT)
        im->path[id - 1] = arg;
    else if (id == 10)
        im->dry_run = true;
    else
        return ctl_usage_error(im->c, "option inattendue");
    return CTL_OK;
}

int cmd_import(struct ctl *c, int argc, char **argv)
{
    c->usage = import_usage;
    static const struct option options[] = {
        {"communes", required_argument, NULL, 1 + KIND_COMMUNES},
        {"practitioners", required_argument, NULL, 1 + KIND_PRACTITIONERS},
        {"organisations", required_argument, NULL, 1 + KIND_ORGANISATIONS},
        {"organizations", required_argument, NULL, 1 + KIND_ORGANISATIONS},
        {"dry-run", no_argument, NULL, 10},
        CTL_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    struct import im;
    memset(&im, 0, sizeof(im));
    im.c = c;
    int first;
    int rc = cmd_parse(c, argc, argv, options, on_import, &im, &first);
    if (rc != CTL_OK)
        return rc < 0 ? CTL_OK : rc;
    if (first < argc)
        return ctl_usage_error(c, "argument inattendu : %s", argv[first]);
    if (!im.path[0] && !im.path[1] && !im.path[2])
        return ctl_usage_error(c, "donnez au moins un fichier : --communes, --practitioners "
                                  "ou --organisations");
    if (!im.dry_run) {
        ctl_error("l'import dans le serveur demande une opération que le protocole snp.v1 "
                  "n'offre pas encore : rien n'a été importé.  Vérifiez les fichiers avec "
                  "--dry-run.");
        return CTL_REFUSED;
    }
    if (c->json)
        im.report = json_array();
    rc = CTL_OK;
    /* Communes first: the other files refer to them. */
    for (int k = 0; k < KIND_COUNT && rc == CTL_OK; k++)
        if (im.path[k] && !check_file(&im, k))
            rc = CTL_USAGE;
    if (rc == CTL_OK) {
        if (im.report) {
            json_t *r = json_pack("{s:b, s:I, s:I, s:o}", "valid", im.errors == 0, "lines",
                                  (json_int_t)im.lines, "errors", (json_int_t)im.errors, "invalid",
                                  im.report);
            im.report = NULL;
            ctl_print_json(r);
            json_decref(r);
        } else if (im.errors == 0) {
            printf("Fichiers valides.  Rien n'a été importé (--dry-run).\n");
        } else {
            printf("%ld erreur%s : corrigez les fichiers.  Rien n'a été importé.\n", im.errors,
                   im.errors > 1 ? "s" : "");
        }
        rc = im.errors ? CTL_REFUSED : CTL_OK;
    }
    json_decref(im.report);
    seen_free(&im.communes);
    seen_free(&im.commune_keys);
    seen_free(&im.rpps);
    seen_free(&im.sites);
    seen_free(&im.org_names);
    seen_free(&im.org_finess);
    return rc;
}
