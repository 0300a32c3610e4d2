/* snpctl import: checks the CSV files that describe a territory (communes,
 * practitioners and their sites, requester organisations) with the
 * project's validators and reports every invalid line; then, without
 * --dry-run and only when every line is valid, sends them to the server
 * with territory.import.
 *
 * The records go in batches, communes first, then sites, practitioners and
 * organisations (a practitioner names sites that earlier batches created),
 * each batch under the protocol's message and array limits.  Each batch is
 * one transaction on the server: a refused batch leaves the earlier ones
 * imported, and running the import again after the fix is safe (upserts).
 * A refusal names a field of the batch ("practitioners[3].sites[0]"),
 * which is traced back to the file and line it came from.  The columns are
 * documented in docs/snpctl.md.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/validate.h"
#include "clients/cli/commands.h"
#include "clients/cli/csv.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"
#include "protocol/codec.h"

static const char import_usage[] =
    "usage : snpctl import [--communes F.csv] [--practitioners F.csv]\n"
    "                      [--organisations F.csv] [--dry-run]\n"
    "\n"
    "Vérifie des fichiers CSV du territoire (séparateur , ou ;, UTF-8, première ligne =\n"
    "noms de colonnes) et signale chaque ligne invalide avec son numéro et la raison ;\n"
    "si une ligne est invalide, rien n'est importé (code de sortie 1).  Sinon, sans\n"
    "--dry-run, importe les communes, les lieux, les praticiens et les organisations dans\n"
    "le territoire du jeton (rôles coordinator et admin) : créés, mis à jour, rien\n"
    "n'est supprimé.  L'import part en lots (communes, puis lieux, praticiens,\n"
    "organisations) ; chaque lot est une transaction : si un lot est refusé, les lots\n"
    "précédents restent importés, et relancer l'import après correction est sans\n"
    "risque (ce qui est déjà importé est compté « inchangé »).  Affiche les n° des\n"
    "lieux (slots publish --site) et des organisations (token create --organisation).\n"
    "--dry-run : vérifie seulement, sans contacter le serveur.\n"
    "  communes       insee, name, postal_code (facultatif), latitude, longitude\n"
    "  practitioners  rpps, family_name, given_name, site_name, site_kind\n"
    "                 (practice|csnp|teleconsultation), address, commune_insee, latitude,\n"
    "                 longitude, phone (facultatif) — une ligne par praticien et lieu\n"
    "  organisations  kind (pharmacy|emergency|sas|professional|desk), name, finess,\n"
    "                 rpps (l'un des deux au moins), commune_insee\n"
    "Un praticien est rattaché à 20 lieux au plus.\n" CTL_COMMON_HELP;

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

/* What territory.import carries, in the order it is sent: sites and
 * organisations name communes, and practitioners name sites, of earlier
 * batches. */
enum { REC_COMMUNES, REC_SITES, REC_PRACTITIONERS, REC_ORGANISATIONS, REC_COUNT };

static const struct {
    const char *key;   /* its member in territory.import and in import_counts */
    const char *label; /* French, for the totals */
    int file;          /* the file it comes from (KIND_*) */
} records[REC_COUNT] = {
    {"communes", "communes", KIND_COMMUNES},
    {"sites", "lieux", KIND_PRACTITIONERS},
    {"practitioners", "praticiens", KIND_PRACTITIONERS},
    {"organisations", "organisations", KIND_ORGANISATIONS},
};

/* The most sites one practitioner may name (import_practitioner.sites). */
#define IMPORT_MAX_SITES 20

/* A batch's JSON stays under this many bytes: below the protocol's
 * max_message_bytes (65536), with room for a WebSocket envelope. */
#define IMPORT_BATCH_BYTES 60000

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
    json_t *practitioner_sites; /* RPPS -> number of sites, for IMPORT_MAX_SITES */
    json_t *report;             /* --json: the errors */

    /* Without --dry-run: the records built from the valid lines. */
    bool collect;
    json_t *items[REC_COUNT];  /* arrays of records, as territory.import takes them */
    json_t *origin[REC_COUNT]; /* the CSV line of each record; for a practitioner, an
                                  array of the line of each of its sites */
    json_t *site_index;        /* site name -> index in items[REC_SITES] */
    json_t *rpps_index;        /* RPPS -> index in items[REC_PRACTITIONERS] */
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
    /* A long value cut short may end inside a character, and jansson
     * refuses such text: the line went missing from the --json report
     * (caught by the check of fuzz/fuzz_csv).  The fields themselves are
     * valid UTF-8, so only the cut can be at fault. */
    for (size_t n = strlen(why); n > 0 && !csv_utf8_valid(why); n--)
        why[n - 1] = '\0';
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
    /* Decimal notation only: strtod() also reads "nan", "inf" and hex
     * ("0x2F"), and a NaN passes every range check; the line was accepted,
     * then its record went without a latitude (caught by the check of
     * fuzz/fuzz_csv). */
    if (buf[strspn(buf, "0123456789+-.eE")] != '\0')
        return false;
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
            if ((at = seen_find(&im->commune_keys, key)) >= 0) {
                invalid(im, file, line, NULL, NULL,
                        "praticien %s déjà rattaché au lieu « %s » ligne %ld", rpps, site,
                        im->commune_keys.lines[at]);
            } else {
                seen_add(&im->commune_keys, key, NULL, line);
                json_int_t n = ctl_int(im->practitioner_sites, rpps) + 1;
                json_object_set_new(im->practitioner_sites, rpps, json_integer(n));
                if (n > IMPORT_MAX_SITES)
                    invalid(im, file, line, "site_name", site,
                            "praticien %s rattaché à plus de %d lieux (limite du protocole)", rpps,
                            IMPORT_MAX_SITES);
            }
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

/* Sets `o.key` to the text `value`, unless it is empty (optional fields). */
static void set_text(json_t *o, const char *key, const char *value)
{
    if (*value)
        json_object_set_new(o, key, json_string(value));
}

/* Sets `o.key` to the coordinate `value`, checked already (decimal comma
 * allowed). */
static void set_coord(json_t *o, const char *key, const char *value)
{
    double d = 0;
    if (parse_coord(value, &d))
        json_object_set_new(o, key, json_real(d));
}

/* Appends `item` to the records of kind `rec`, from CSV line `line` (an
 * integer, or for a practitioner the array of its sites' lines); returns
 * its index. */
static size_t add_record(struct import *im, int rec, json_t *item, json_t *line)
{
    json_array_append_new(im->items[rec], item);
    json_array_append_new(im->origin[rec], line);
    return json_array_size(im->items[rec]) - 1;
}

/* Without --dry-run: adds what the valid line `line` describes to the
 * records.  A practitioners line gives a site (described by the first line
 * that names it: the others agree, the checks saw to it) and a
 * practitioner's link to it. */
static void collect(struct import *im, int kind, long line, char **values, const int *map)
{
    const struct column *cols = kinds[kind].columns;
    json_t *o = json_object();
    switch (kind) {
    case KIND_COMMUNES:
        set_text(o, "insee", field(values, map, cols, "insee"));
        set_text(o, "name", field(values, map, cols, "name"));
        set_text(o, "postal_code", field(values, map, cols, "postal_code"));
        set_coord(o, "latitude", field(values, map, cols, "latitude"));
        set_coord(o, "longitude", field(values, map, cols, "longitude"));
        add_record(im, REC_COMMUNES, o, json_integer(line));
        return;
    case KIND_ORGANISATIONS:
        set_text(o, "kind", field(values, map, cols, "kind"));
        set_text(o, "name", field(values, map, cols, "name"));
        set_text(o, "finess", field(values, map, cols, "finess"));
        set_text(o, "rpps", field(values, map, cols, "rpps"));
        set_text(o, "commune_insee", field(values, map, cols, "commune_insee"));
        add_record(im, REC_ORGANISATIONS, o, json_integer(line));
        return;
    }
    const char *site = field(values, map, cols, "site_name");
    const char *rpps = field(values, map, cols, "rpps");
    if (!json_object_get(im->site_index, site)) {
        set_text(o, "name", site);
        set_text(o, "kind", field(values, map, cols, "site_kind"));
        set_text(o, "address", field(values, map, cols, "address"));
        set_text(o, "commune_insee", field(values, map, cols, "commune_insee"));
        set_coord(o, "latitude", field(values, map, cols, "latitude"));
        set_coord(o, "longitude", field(values, map, cols, "longitude"));
        set_text(o, "phone", field(values, map, cols, "phone"));
        size_t at = add_record(im, REC_SITES, o, json_integer(line));
        json_object_set_new(im->site_index, site, json_integer((json_int_t)at));
    } else {
        json_decref(o);
    }
    json_t *known = json_object_get(im->rpps_index, rpps);
    if (known) {
        size_t at = (size_t)json_integer_value(known);
        json_t *p = json_array_get(im->items[REC_PRACTITIONERS], at);
        json_array_append_new(json_object_get(p, "sites"), json_string(site));
        json_array_append_new(json_array_get(im->origin[REC_PRACTITIONERS], at),
                              json_integer(line));
        return;
    }
    json_t *p = json_pack("{s:s, s:s, s:s, s:[s]}", "rpps", rpps, "family_name",
                          field(values, map, cols, "family_name"), "given_name",
                          field(values, map, cols, "given_name"), "sites", site);
    size_t at = add_record(im, REC_PRACTITIONERS, p, json_pack("[I]", (json_int_t)line));
    json_object_set_new(im->rpps_index, rpps, json_integer((json_int_t)at));
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
        long before = im->errors;
        for (int k = 0; k < ncols; k++)
            if (map[k] >= 0)
                check_field(im, path, csv.line, &cols[k], csv.fields[map[k]]);
        /* The checks across fields and lines look only at fields that are
         * valid by themselves, so that one mistake gives one message. */
        check_line(im, kind, path, csv.line, csv.fields, map);
        /* Any error stops the import: only valid lines need records. */
        if (im->collect && im->errors == before)
            collect(im, kind, csv.line, csv.fields, map);
    }
    csv_close(&csv);
    im->lines += lines;
    if (!im->report)
        printf("%s : %ld ligne%s, %ld erreur%s\n", path, lines, lines > 1 ? "s" : "",
               im->errors - errors_before, im->errors - errors_before > 1 ? "s" : "");
    return true;
}

/* ---- sending -------------------------------------------------------------- */

/* One territory.import message: records `first` to `first + count - 1` of
 * kind `rec`. */
struct batch {
    int rec;
    size_t first, count;
};

/* Cuts the records into batches, in the order of `records`, each under
 * IMPORT_BATCH_BYTES of JSON and the protocol's array limit.  Returns a
 * malloc'ed array of `*n` batches, or NULL when out of memory. */
static struct batch *plan_batches(const struct import *im, size_t *n)
{
    size_t total = 0;
    for (int rec = 0; rec < REC_COUNT; rec++)
        total += json_array_size(im->items[rec]);
    struct batch *b = calloc(total ? total : 1, sizeof(*b));
    if (!b)
        return NULL;
    size_t max_items = snp_proto_limits()->max_array_items;
    *n = 0;
    for (int rec = 0; rec < REC_COUNT; rec++) {
        size_t count = json_array_size(im->items[rec]);
        for (size_t i = 0; i < count;) {
            struct batch *cur = &b[(*n)++];
            *cur = (struct batch){rec, i, 0};
            /* {"key":[...]}: the key, its quotes, the brackets and commas. */
            size_t bytes = strlen(records[rec].key) + 8;
            for (; i < count && cur->count < max_items; i++, cur->count++) {
                size_t size =
                    json_dumpb(json_array_get(im->items[rec], i), NULL, 0, JSON_COMPACT) + 1;
                if (cur->count > 0 && bytes + size > IMPORT_BATCH_BYTES)
                    break;
                bytes += size;
            }
        }
    }
    return b;
}

/* Returns the CSV column that the field `name` of a record of kind `rec`
 * came from ("kind" of a site is "site_kind"), or NULL for none. */
static const char *csv_column(int rec, const char *name)
{
    if (!name || !*name)
        return NULL;
    if (rec == REC_SITES && strcmp(name, "name") == 0)
        return "site_name";
    if (rec == REC_SITES && strcmp(name, "kind") == 0)
        return "site_kind";
    if (rec == REC_PRACTITIONERS && strncmp(name, "sites", 5) == 0)
        return "site_name";
    return name;
}

/* After the refusal of batch number `number` (`b`): says which file and line
 * the server's field ("practitioners[3].sites[0]", or with dots,
 * "practitioners.3.sites.0") came from, when it names a record of the
 * batch, else which lines the batch held. */
static void locate_refusal(const struct import *im, const struct batch *b, size_t number)
{
    const char *field = ctl_str(im->c->last_error, "field");
    const char *file = im->path[records[b->rec].file];
    /* The path with dots only, "practitioners.3.sites.0" (zero-filled: the
     * copy is always terminated). */
    char path[256] = {0};
    for (size_t k = 0, n = 0; field && field[k] && n + 1 < sizeof(path); k++)
        if (field[k] != ']')
            path[n++] = field[k] == '[' ? '.' : field[k];
    size_t klen = strlen(records[b->rec].key);
    if (strncmp(path, records[b->rec].key, klen) == 0 && path[klen] == '.' &&
        isdigit((unsigned char)path[klen + 1])) {
        char *end;
        unsigned long i = strtoul(path + klen + 1, &end, 10);
        const char *rest = *end == '.' ? end + 1 : NULL;
        json_t *line = i < b->count ? json_array_get(im->origin[b->rec], b->first + i) : NULL;
        if (json_is_array(line)) {
            /* A practitioner: "sites.J" is the line that linked site J. */
            unsigned long j = 0;
            if (rest && strncmp(rest, "sites.", 6) == 0)
                j = strtoul(rest + 6, NULL, 10);
            line = json_array_get(line, j) ? json_array_get(line, j) : json_array_get(line, 0);
        }
        if (line) {
            const char *column = csv_column(b->rec, rest);
            fprintf(stderr, "snpctl: en cause : %s:%lld%s%s (champ %s du lot %zu)\n", file,
                    (long long)json_integer_value(line), column ? ", colonne " : "",
                    column ? column : "", field, number);
            return;
        }
    }
    json_t *first = json_array_get(im->origin[b->rec], b->first);
    json_t *last = json_array_get(im->origin[b->rec], b->first + b->count - 1);
    fprintf(stderr, "snpctl: en cause : le lot %zu, %s de %s (lignes %lld à %lld)\n", number,
            records[b->rec].label, file,
            (long long)json_integer_value(json_is_array(first) ? json_array_get(first, 0) : first),
            (long long)json_integer_value(json_is_array(last) ? json_array_get(last, 0) : last));
}

/* Adds the answer of one batch to `totals`. */
static void add_answer(json_t *totals, const json_t *answer)
{
    static const char *const counts[] = {"created", "updated", "unchanged"};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        json_t *to = json_object_get(totals, counts[k]);
        const json_t *from = json_object_get(answer, counts[k]);
        for (int rec = 0; rec < REC_COUNT; rec++)
            json_object_set_new(
                to, records[rec].key,
                json_integer(ctl_int(to, records[rec].key) + ctl_int(from, records[rec].key)));
    }
    json_array_extend(json_object_get(totals, "sites"), json_object_get(answer, "sites"));
    json_array_extend(json_object_get(totals, "organisations"),
                      json_object_get(answer, "organisations"));
    json_object_set_new(totals, "batches", json_integer(ctl_int(totals, "batches") + 1));
}

/* Returns the totals of an import that sent nothing yet: {created, updated,
 * unchanged} of every kind at 0, no sites, no organisations, 0 batches. */
static json_t *new_totals(void)
{
    json_t *zero = json_object();
    for (int rec = 0; rec < REC_COUNT; rec++)
        json_object_set_new(zero, records[rec].key, json_integer(0));
    return json_pack("{s:o, s:o, s:o, s:[], s:[], s:i}", "created", json_deep_copy(zero), "updated",
                     json_deep_copy(zero), "unchanged", zero, "sites", "organisations", "batches",
                     0);
}

/* Prints what an import did, for people. */
static void print_totals(const json_t *totals)
{
    json_int_t batches = ctl_int(totals, "batches");
    printf("Import terminé : %lld lot%s envoyé%s.\n", (long long)batches, batches > 1 ? "s" : "",
           batches > 1 ? "s" : "");
    static const char *const heads[] = {"", "Créés", "Mis à jour", "Inchangés"};
    static const char *const counts[] = {"created", "updated", "unchanged"};
    struct table t;
    table_init(&t, 4, heads);
    for (size_t k = 1; k < 4; k++)
        table_align_right(&t, k);
    for (int rec = 0; rec < REC_COUNT; rec++) {
        char n[3][24];
        for (size_t k = 0; k < 3; k++)
            snprintf(n[k], sizeof(n[k]), "%lld",
                     (long long)ctl_int(json_object_get(totals, counts[k]), records[rec].key));
        const char *row[] = {records[rec].label, n[0], n[1], n[2]};
        table_add(&t, row);
    }
    table_print(&t, stdout, 2);
    table_free(&t);

    size_t i;
    json_t *v;
    const json_t *orgs = json_object_get(totals, "organisations");
    if (json_array_size(orgs) > 0) {
        static const char *const oheads[] = {"N°", "Type", "Nom"};
        table_init(&t, 3, oheads);
        table_align_right(&t, 0);
        json_array_foreach (orgs, i, v) {
            char id[24];
            snprintf(id, sizeof(id), "%lld", (long long)ctl_int(v, "organisation_id"));
            char kind[64];
            snprintf(kind, sizeof(kind), "%s (%s)", labels_get(LABELS_ROLE, ctl_str(v, "kind")),
                     ctl_str(v, "kind"));
            const char *row[] = {id, kind, ctl_str(v, "name")};
            table_add(&t, row);
        }
        printf("Organisations (snpctl token create --role TYPE --organisation N°) :\n");
        table_print(&t, stdout, 2);
        table_free(&t);
    }
    const json_t *sites = json_object_get(totals, "sites");
    if (json_array_size(sites) > 0) {
        static const char *const sheads[] = {"N°", "Lieu"};
        table_init(&t, 2, sheads);
        table_align_right(&t, 0);
        json_array_foreach (sites, i, v) {
            char id[24];
            snprintf(id, sizeof(id), "%lld", (long long)ctl_int(v, "site_id"));
            const char *row[] = {id, ctl_str(v, "name")};
            table_add(&t, row);
        }
        printf("Lieux (snpctl slots publish --site N°) :\n");
        table_print(&t, stdout, 2);
        table_free(&t);
    }
}

/* Sends the records, batch after batch, and prints what was done.  Stops at
 * the first batch that fails, saying where it came from and what stays
 * imported.  Returns CTL_OK or the exit code of the failed call. */
static int send_records(struct import *im)
{
    size_t n = 0;
    struct batch *batches = plan_batches(im, &n);
    if (!batches) {
        ctl_error("mémoire insuffisante");
        return CTL_UNAVAILABLE;
    }
    json_t *totals = new_totals();
    int rc = CTL_OK;
    for (size_t k = 0; k < n && rc == CTL_OK; k++) {
        const struct batch *b = &batches[k];
        json_t *part = json_array();
        for (size_t i = 0; i < b->count; i++)
            json_array_append(part, json_array_get(im->items[b->rec], b->first + i));
        json_t *data = json_pack("{s:o}", records[b->rec].key, part), *answer;
        rc = ctl_call(im->c, "territory.import", data, &answer, NULL, NULL);
        json_decref(data);
        if (rc == CTL_OK) {
            add_answer(totals, answer);
            json_decref(answer);
            continue;
        }
        if (im->c->last_error)
            locate_refusal(im, b, k + 1);
        /* Without an answer, the batch may have been committed all the same. */
        bool unsure = rc == CTL_UNAVAILABLE && !im->c->last_error;
        if (k == 0 && !unsure)
            ctl_error("rien n'a été importé.");
        else if (k == 0)
            ctl_error("le premier lot (sur %zu) est peut-être importé.", n);
        else if (k == 1)
            ctl_error("le premier lot (sur %zu) est importé%s.", n,
                      unsure ? ", le deuxième peut-être" : "");
        else
            ctl_error("les %zu premiers lots (sur %zu) sont importés%s.", k, n,
                      unsure ? ", le suivant peut-être" : "");
        if (k > 0 || unsure)
            ctl_error("chaque lot est une transaction : relancer l'import après correction est "
                      "sans risque, ce qui est déjà importé sera compté inchangé.");
    }
    if (rc == CTL_OK) {
        if (im->c->json)
            ctl_print_json(totals);
        else if (n == 0)
            printf("Aucune ligne à importer.\n");
        else
            print_totals(totals);
    }
    json_decref(totals);
    free(batches);
    return rc;
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
    if (c->json)
        im.report = json_array();
    im.practitioner_sites = json_object();
    im.collect = !im.dry_run;
    for (int rec = 0; rec < REC_COUNT && im.collect; rec++) {
        im.items[rec] = json_array();
        im.origin[rec] = json_array();
    }
    im.site_index = json_object();
    im.rpps_index = json_object();
    rc = CTL_OK;
    /* Communes first: the other files refer to them. */
    for (int k = 0; k < KIND_COUNT && rc == CTL_OK; k++)
        if (im.path[k] && !check_file(&im, k))
            rc = CTL_USAGE;
    if (rc == CTL_OK && (im.dry_run || im.errors > 0)) {
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
    } else if (rc == CTL_OK) {
        rc = send_records(&im);
    }
    json_decref(im.report);
    json_decref(im.practitioner_sites);
    for (int rec = 0; rec < REC_COUNT; rec++) {
        json_decref(im.items[rec]);
        json_decref(im.origin[rec]);
    }
    json_decref(im.site_index);
    json_decref(im.rpps_index);
    seen_free(&im.communes);
    seen_free(&im.commune_keys);
    seen_free(&im.rpps);
    seen_free(&im.sites);
    seen_free(&im.org_names);
    seen_free(&im.org_finess);
    return rc;
}
