#include "dispatcher/core/store.h"

#include <assert.h>
#include <malloc.h> /* malloc_trim (glibc) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/keysort.h"
#include "base/log.h"
#include "dispatcher/config.h"
#include "dispatcher/db/db_cols.h"
#include "protocol/snp_decl.h"
#include "sql_queries.h"

/* --- lookups ---------------------------------------------------------------------- */

struct territory *store_territory(const struct store *st, const char *id)
{
    for (size_t i = 0; i < st->nterritories; i++)
        if (strcmp(st->territories[i]->id, id) == 0)
            return st->territories[i];
    return NULL;
}

struct commune *store_commune(const struct store *st, const char *insee)
{
    return idmap_get(&st->communes, idmap_code_key(insee));
}

struct practitioner *store_practitioner(const struct store *st, const char *rpps)
{
    return idmap_get(&st->practitioners, idmap_code_key(rpps));
}

size_t store_territory_practitioners(const struct store *st, const struct territory *t,
                                     const struct practitioner **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < st->practitioners.cap; i++) {
        const struct practitioner *p = st->practitioners.buckets[i].value;
        bool here = false;
        for (size_t k = 0; p && k < p->nsites && !here; k++)
            here = p->sites[k]->territory == t;
        if (here && n++ < max)
            out[n - 1] = p;
    }
    return n;
}

/* --- settings --------------------------------------------------------------------- */

static void settings_default(struct territory_settings *s)
{
    s->hold_seconds = 180;
    s->alternatives = 3;
    s->outcome_delay_hours = 72;
    s->identity_retention_days = 90;
    s->indicator_mask_threshold = 5;
    s->indicator_consolidation_days = 7;
    s->contract_start_month = 1;
    s->audit_retention_months = CONFIG_AUDIT_RETENTION_MONTHS;
    model_weights_default(&s->weights);
    s->mt_summary = true;
    s->n_new_patient_gps = 0;
}

/* Reads number setting `s` from its object `obj` into `*out`, which keeps
 * its value when the member is absent or outside the declared bounds. */
static void read_number(json_t *obj, enum snp_setting s, double *out)
{
    json_t *v = json_object_get(obj, snp_setting_bounds(s)->member);
    if (json_is_number(v) && snp_setting_allows(s, json_number_value(v)))
        *out = json_number_value(v);
}

/* The same for integer setting `s`. */
static void read_int(json_t *obj, enum snp_setting s, int *out)
{
    json_t *v = json_object_get(obj, snp_setting_bounds(s)->member);
    if (json_is_integer(v) && snp_setting_allows(s, (double)json_integer_value(v)))
        *out = (int)json_integer_value(v);
}

bool store_parse_settings(const char *text, struct territory_settings *out)
{
    settings_default(out);
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return false;
    }
    read_int(j, SNP_SETTING_HOLD_SECONDS, &out->hold_seconds);
    read_int(j, SNP_SETTING_ALTERNATIVES, &out->alternatives);
    read_int(j, SNP_SETTING_OUTCOME_DELAY_HOURS, &out->outcome_delay_hours);
    read_int(j, SNP_SETTING_IDENTITY_RETENTION_DAYS, &out->identity_retention_days);
    read_int(j, SNP_SETTING_INDICATOR_MASK_THRESHOLD, &out->indicator_mask_threshold);
    read_int(j, SNP_SETTING_INDICATOR_CONSOLIDATION_DAYS, &out->indicator_consolidation_days);
    read_int(j, SNP_SETTING_CONTRACT_START_MONTH, &out->contract_start_month);
    read_int(j, SNP_SETTING_AUDIT_RETENTION_MONTHS, &out->audit_retention_months);
    json_t *mt = json_object_get(j, "mt_summary");
    if (json_is_boolean(mt))
        out->mt_summary = json_is_true(mt);
    json_t *gps = json_object_get(j, "new_patient_gps");
    size_t i;
    json_t *gp;
    json_array_foreach (gps, i, gp) {
        const char *rpps = json_string_value(gp);
        if (rpps && strlen(rpps) == 11 && out->n_new_patient_gps < STORE_NEW_PATIENT_GPS)
            memcpy(out->new_patient_gps[out->n_new_patient_gps++], rpps, 12);
    }
    json_t *w = json_object_get(j, "weights");
    if (json_is_object(w)) {
        read_number(w, SNP_SETTING_WEIGHTS_START_PER_HOUR, &out->weights.start_per_hour);
        read_number(w, SNP_SETTING_WEIGHTS_DISTANCE_PER_KM, &out->weights.distance_per_km);
        read_number(w, SNP_SETTING_WEIGHTS_OWN_MT_BONUS, &out->weights.own_mt_bonus);
        read_number(w, SNP_SETTING_WEIGHTS_FAIRNESS, &out->weights.fairness);
        read_number(w, SNP_SETTING_WEIGHTS_SCARCITY, &out->weights.scarcity);
    }
    json_decref(j);
    return true;
}

/* --- slots and requests ----------------------------------------------------------- */

static bool slot_before(const struct slot *a, const struct slot *b)
{
    return a->start < b->start || (a->start == b->start && a->id < b->id);
}

void store_slot_ref(struct slot *s)
{
    s->refs++;
}

void store_slot_unref(struct slot *s)
{
    if (--s->refs == 0)
        free(s);
}

void store_request_ref(struct request *r)
{
    r->refs++;
}

void store_request_unref(struct request *r)
{
    if (--r->refs == 0) {
        free(r->declined);
        free(r);
    }
}

struct slot *store_slot(const struct store *st, int64_t id)
{
    return idmap_get(&st->slots, id);
}

struct request *store_request(const struct store *st, int64_t id)
{
    return idmap_get(&st->requests, id);
}

static struct slot_brief brief_of(const struct slot *s)
{
    return (struct slot_brief){.start = s->start,
                               .release_minutes = (uint16_t)s->release_minutes,
                               .site_index = (uint32_t)s->site->index,
                               .status = (uint8_t)s->status,
                               .mode = s->mode,
                               .audience = s->audience};
}

/* Grows a territory's slots and briefs to room for one more. */
static bool grow_slots(struct territory *t)
{
    size_t cap = t->capslots ? t->capslots * 2 : 256;
    struct slot **p = realloc(t->slots, cap * sizeof(*p));
    if (!p)
        return false;
    t->slots = p;
    struct slot_brief *b = realloc(t->briefs, cap * sizeof(*b));
    if (!b)
        return false; /* t->slots is larger than needed: harmless */
    t->briefs = b;
    t->capslots = cap;
    return true;
}

/* Adds `s` to the store; `in_order`: at its place in the territory's
 * sorted slots, else at the end with its brief (the load sorts both once it
 * has them all, sort_slots). */
static bool add_slot(struct store *st, struct slot *s, bool in_order)
{
    struct territory *t = s->territory;
    if ((t->nslots == t->capslots && !grow_slots(t)) || !idmap_put(&st->slots, s->id, s)) {
        store_slot_unref(s);
        return false;
    }
    /* Slots mostly arrive in start order: search from the end. */
    size_t i = t->nslots;
    while (in_order && i > 0 && slot_before(s, t->slots[i - 1]))
        i--;
    memmove(&t->slots[i + 1], &t->slots[i], (t->nslots - i) * sizeof(*t->slots));
    t->slots[i] = s;
    if (in_order)
        memmove(&t->briefs[i + 1], &t->briefs[i], (t->nslots - i) * sizeof(*t->briefs));
    t->briefs[i] = brief_of(s);
    t->nslots++;
    if (s->practitioner)
        s->practitioner->published++;
    if (s->practitioner && s->status == SLOT_BOOKED)
        s->practitioner->booked++;
    return true;
}

bool store_add_slot(struct store *st, struct slot *s)
{
    return add_slot(st, s, true);
}

/* The index of live slot `s` in its territory's slots, or t->nslots when
 * it is not there. */
static size_t slot_index(const struct territory *t, const struct slot *s)
{
    for (size_t i = model_slots_after(t->slots, t->nslots, s->start - 1);
         i < t->nslots && t->slots[i]->start == s->start; i++)
        if (t->slots[i] == s)
            return i;
    return t->nslots;
}

void store_remove_slot(struct store *st, struct slot *s)
{
    struct territory *t = s->territory;
    size_t i = slot_index(t, s);
    if (i < t->nslots) {
        size_t after = t->nslots - i - 1;
        memmove(&t->slots[i], &t->slots[i + 1], after * sizeof(*t->slots));
        memmove(&t->briefs[i], &t->briefs[i + 1], after * sizeof(*t->briefs));
        t->nslots--;
    }
    if (s->practitioner && s->practitioner->published > 0)
        s->practitioner->published--;
    if (s->practitioner && s->status == SLOT_BOOKED && s->practitioner->booked > 0)
        s->practitioner->booked--;
    idmap_del(&st->slots, s->id);
    s->gone = true;
    store_slot_unref(s);
}

void store_slot_set_status(struct slot *s, enum slot_status status)
{
    enum slot_status was = s->status;
    s->status = status;
    if (s->gone) /* counted out of its practitioner and territory already */
        return;
    if (s->practitioner && was == SLOT_BOOKED && status != SLOT_BOOKED &&
        s->practitioner->booked > 0)
        s->practitioner->booked--;
    if (s->practitioner && was != SLOT_BOOKED && status == SLOT_BOOKED)
        s->practitioner->booked++;
    struct territory *t = s->territory;
    size_t i = slot_index(t, s);
    if (i < t->nslots)
        t->briefs[i].status = (uint8_t)status & 0xf;
}

bool store_add_request(struct store *st, struct request *r)
{
    struct territory *t = r->territory;
    if (t->nopen == t->capopen) {
        size_t cap = t->capopen ? t->capopen * 2 : 64;
        struct request **p = realloc(t->open, cap * sizeof(*p));
        if (!p)
            goto fail;
        t->open = p;
        t->capopen = cap;
    }
    if (!idmap_put(&st->requests, r->id, r))
        goto fail;
    t->open[t->nopen++] = r;
    return true;
fail:
    store_request_unref(r);
    return false;
}

void store_remove_request(struct store *st, struct request *r)
{
    struct territory *t = r->territory;
    for (size_t i = 0; i < t->nopen; i++) {
        if (t->open[i] == r) {
            t->open[i] = t->open[--t->nopen];
            break;
        }
    }
    idmap_del(&st->requests, r->id);
    r->gone = true;
    store_request_unref(r);
}

/* Someone waiting for a reference reload to finish. */
struct reload_waiter {
    store_loaded_cb done;
    void *arg;
    struct reload_waiter *next;
};

/* The reference reloads of a store: at most one runs; requests made while
 * it runs are served by the next one, which starts when it ends (it may
 * have read the database before their change). */
struct store_reload {
    struct reload_waiter *current; /* served by the reload running */
    struct reload_waiter *next;    /* served by the next one */
    bool again;                    /* a next reload was asked for */
    bool cancelled;                /* store_free ran: merge nothing more */
};

/* --- freeing ---------------------------------------------------------------------- */

static void free_values(struct idmap *m, void (*fn)(void *))
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->buckets[i].value)
            fn(m->buckets[i].value);
    idmap_free(m);
}

static void free_commune(void *p)
{
    struct commune *c = p;
    free(c->name);
    free(c);
}

static void free_practitioner(void *p)
{
    struct practitioner *pr = p;
    free(pr->family_name);
    free(pr->given_name);
    free(pr->sites);
    free(pr);
}

static void free_site(void *p)
{
    struct site *s = p;
    free(s->name);
    free(s->address);
    free(s->phone);
    free(s);
}

static void free_organisation(void *p)
{
    struct organisation *o = p;
    free(o->name);
    free(o);
}

/* store_free lets go of the live slots and open requests; an operation
 * still holding one frees it when its answer comes. */
static void release_slot(void *p)
{
    struct slot *s = p;
    s->gone = true;
    store_slot_unref(s);
}

static void release_request(void *p)
{
    struct request *r = p;
    r->gone = true;
    store_request_unref(r);
}

void store_free(struct store *st)
{
    free_values(&st->slots, release_slot);
    free_values(&st->requests, release_request);
    free_values(&st->sites, free_site);
    free_values(&st->organisations, free_organisation);
    free_values(&st->practitioners, free_practitioner);
    free_values(&st->communes, free_commune);
    for (size_t i = 0; i < st->nterritories; i++) {
        struct territory *t = st->territories[i];
        free(t->name);
        free(t->neighbours);
        free(t->communes);
        free(t->sites);
        free(t->slots);
        free(t->briefs);
        free(t->open);
        free(t);
    }
    free(st->territories);
    /* A reload running ends on its own (its next database answer fails or
     * is ignored) and frees its state then. */
    struct store_reload *reload = st->reload;
    memset(st, 0, sizeof(*st));
    if (reload) {
        reload->cancelled = true;
        st->reload = reload;
    }
}

/* --- parsing database text -------------------------------------------------------- */

static bool add_audience(const char *item, void *arg)
{
    uint8_t bit;
    if (!model_audience_parse(item, &bit))
        return false;
    *(uint8_t *)arg |= bit;
    return true;
}

static bool add_mode(const char *item, void *arg)
{
    uint8_t bit;
    if (!model_mode_parse(item, &bit))
        return false;
    *(uint8_t *)arg |= bit;
    return true;
}

static bool add_motif(const char *item, void *arg)
{
    enum motif m;
    if (!model_motif_parse(item, &m))
        return false;
    *(uint16_t *)arg |= (uint16_t)(1u << m);
    return true;
}

struct id_list {
    int64_t *ids;
    size_t n;
};

static bool add_id(const char *item, void *arg)
{
    struct id_list *l = arg;
    int64_t *p = realloc(l->ids, (l->n + 1) * sizeof(*p));
    if (!p)
        return false;
    l->ids = p;
    l->ids[l->n++] = strtoll(item, NULL, 10);
    return true;
}

/* --- loading ---------------------------------------------------------------------- */

/* The loading steps, run one query after the other. */
enum load_step {
    LOAD_TERRITORIES,
    LOAD_NEIGHBOURS,
    LOAD_COMMUNES,
    LOAD_PRACTITIONERS,
    LOAD_SITES,
    LOAD_ORGANISATIONS,
    LOAD_SLOTS,
    LOAD_REQUESTS,
    LOAD_DONE
};

static const enum sql_id load_queries[LOAD_DONE] = {
    SQL_LOAD_TERRITORIES, SQL_LOAD_NEIGHBOURS,    SQL_LOAD_COMMUNES,   SQL_LOAD_PRACTITIONERS,
    SQL_LOAD_SITES,       SQL_LOAD_ORGANISATIONS, SQL_LOAD_SLOTS_PAGE, SQL_LOAD_REQUESTS,
};

/* The live slots are read in up to LOAD_RANGES ranges of ids, each of at
 * least LOAD_RANGE_PAGES pages' worth of ids, each page by page, with up to
 * LOAD_PAGES_IN_FLIGHT pages asked for at once (see "the live slots, page by
 * page" below). */
#define LOAD_RANGES          16
#define LOAD_RANGE_PAGES     4
#define LOAD_PAGES_IN_FLIGHT 2

struct loader;

/* One range of slot ids, (after, last], read by keyset pages. */
struct load_range {
    struct loader *l;
    int64_t after; /* the last id read, or the range's lower bound */
    int64_t last;  /* the range's last id */
};

/* A load in progress: the whole store at start-up, or the reference data
 * (territories to organisations) merged into a live store. */
struct loader {
    struct store *st;
    struct db *db;
    enum load_step step;
    enum load_step last; /* LOAD_DONE, or LOAD_SLOTS for a reference reload */
    store_loaded_cb done;
    void *arg;
    /* The live slots, read page by page in ranges of ids (LOAD_SLOTS, see
     * load_slots_fill). */
    size_t batch; /* rows per page */
    struct load_range ranges[LOAD_RANGES];
    int nranges;
    int next_range;  /* the first range not started */
    int ranges_done; /* ranges whose last page has been read */
    int in_flight;   /* pages asked for that have not answered */
    size_t pages;    /* pages answered */
    int depth;       /* calls of on_slots_page running (db_query may answer at once) */
    bool failed;     /* a page failed: the load ends once none is in flight */
};

static bool push_ptr(void ***arr, size_t *n, void *p)
{
    void **a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (!a)
        return false;
    a[(*n)++] = p;
    *arr = a;
    return true;
}

/* Replaces *field with a copy of `value` unless equal; false when memory is
 * short (the field is then unchanged). */
static bool set_text(char **field, const char *value)
{
    if (*field && strcmp(*field, value) == 0)
        return true;
    char *copy = strdup(value);
    if (!copy)
        return false;
    free(*field);
    *field = copy;
    return true;
}

/* The columns of load_territories.sql. */
enum territory_col {
    COL_TERRITORY_ID,
    COL_TERRITORY_NAME,
    COL_TERRITORY_KIND,
    COL_TERRITORY_TIME_ZONE,
    COL_TERRITORY_SETTINGS,
    COL_TERRITORY_FINESS,
    TERRITORY_NCOLS
};
static const char *const territory_names[TERRITORY_NCOLS] = {
    [COL_TERRITORY_ID] = "id",
    [COL_TERRITORY_NAME] = "name",
    [COL_TERRITORY_KIND] = "kind",
    [COL_TERRITORY_TIME_ZONE] = "time_zone",
    [COL_TERRITORY_SETTINGS] = "settings",
    [COL_TERRITORY_FINESS] = "finess",
};

static bool load_territories(struct store *st, const PGresult *res)
{
    int c[TERRITORY_NCOLS];
    if (!db_cols_resolve(res, territory_names, TERRITORY_NCOLS, c, sql_name[SQL_LOAD_TERRITORIES]))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        struct territory *t = store_territory(st, PQgetvalue(res, i, c[COL_TERRITORY_ID]));
        bool added = t == NULL;
        if (added) {
            t = calloc(1, sizeof(*t));
            if (!t)
                return false;
            snprintf(t->id, sizeof(t->id), "%s", PQgetvalue(res, i, c[COL_TERRITORY_ID]));
        }
        t->is_sas = strcmp(PQgetvalue(res, i, c[COL_TERRITORY_KIND]), "sas") == 0;
        const char *zone = PQgetvalue(res, i, c[COL_TERRITORY_TIME_ZONE]);
        t->zone = timeutil_zone_find(zone);
        if (!t->zone) {
            log_warn("store", "territory %s: unknown time zone %s, using Europe/Paris", t->id,
                     zone);
            t->zone = timeutil_zone_find("Europe/Paris");
        }
        if (!store_parse_settings(PQgetvalue(res, i, c[COL_TERRITORY_SETTINGS]), &t->settings))
            log_warn("store", "territory %s: malformed settings, using defaults", t->id);
        snprintf(t->finess, sizeof(t->finess), "%s", PQgetvalue(res, i, c[COL_TERRITORY_FINESS]));
        bool ok = set_text(&t->name, PQgetvalue(res, i, c[COL_TERRITORY_NAME]));
        if (added && (!ok || !push_ptr((void ***)&st->territories, &st->nterritories, t))) {
            free(t->name);
            free(t);
            return false;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* Whether `p` is among the `n` pointers of `arr`. */
static bool has_ptr(void *const *arr, size_t n, const void *p)
{
    for (size_t i = 0; i < n; i++)
        if (arr[i] == p)
            return true;
    return false;
}

/* The columns of load_neighbours.sql. */
enum neighbour_col { COL_NEIGHBOUR_TERRITORY, COL_NEIGHBOUR_ID, NEIGHBOUR_NCOLS };
static const char *const neighbour_names[NEIGHBOUR_NCOLS] = {
    [COL_NEIGHBOUR_TERRITORY] = "territory_id",
    [COL_NEIGHBOUR_ID] = "neighbour_id",
};

static bool load_neighbours(struct store *st, const PGresult *res)
{
    int c[NEIGHBOUR_NCOLS];
    if (!db_cols_resolve(res, neighbour_names, NEIGHBOUR_NCOLS, c, sql_name[SQL_LOAD_NEIGHBOURS]))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        struct territory *t = store_territory(st, PQgetvalue(res, i, c[COL_NEIGHBOUR_TERRITORY]));
        struct territory *n = store_territory(st, PQgetvalue(res, i, c[COL_NEIGHBOUR_ID]));
        if (t && n && !has_ptr((void *const *)t->neighbours, t->nneighbours, n) &&
            !push_ptr((void ***)&t->neighbours, &t->nneighbours, n))
            return false;
    }
    return true;
}

/* The columns of load_communes.sql. */
enum commune_col {
    COL_COMMUNE_INSEE,
    COL_COMMUNE_NAME,
    COL_COMMUNE_LAT,
    COL_COMMUNE_LON,
    COL_COMMUNE_TERRITORY,
    COL_COMMUNE_POSTAL_CODE,
    COMMUNE_NCOLS
};
static const char *const commune_names[COMMUNE_NCOLS] = {
    [COL_COMMUNE_INSEE] = "insee",
    [COL_COMMUNE_NAME] = "name",
    [COL_COMMUNE_LAT] = "latitude",
    [COL_COMMUNE_LON] = "longitude",
    [COL_COMMUNE_TERRITORY] = "territory_id",
    [COL_COMMUNE_POSTAL_CODE] = "postal_code",
};

static bool load_communes(struct store *st, const PGresult *res)
{
    int col[COMMUNE_NCOLS];
    if (!db_cols_resolve(res, commune_names, COMMUNE_NCOLS, col, sql_name[SQL_LOAD_COMMUNES]))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *insee = PQgetvalue(res, i, col[COL_COMMUNE_INSEE]);
        const char *name = PQgetvalue(res, i, col[COL_COMMUNE_NAME]);
        struct commune *c = store_commune(st, insee);
        if (!c) {
            c = calloc(1, sizeof(*c));
            if (!c)
                return false;
            snprintf(c->insee, sizeof(c->insee), "%s", insee);
            if (!set_text(&c->name, name) || !idmap_put(&st->communes, idmap_code_key(insee), c)) {
                free_commune(c);
                return false;
            }
        } else if (!set_text(&c->name, name)) {
            return false;
        }
        c->lat = atof(PQgetvalue(res, i, col[COL_COMMUNE_LAT]));
        c->lon = atof(PQgetvalue(res, i, col[COL_COMMUNE_LON]));
        snprintf(c->postal_code, sizeof(c->postal_code), "%s",
                 PQgetvalue(res, i, col[COL_COMMUNE_POSTAL_CODE]));
        struct territory *t = store_territory(st, PQgetvalue(res, i, col[COL_COMMUNE_TERRITORY]));
        if (t && !has_ptr((void *const *)t->communes, t->ncommunes, c) &&
            !push_ptr((void ***)&t->communes, &t->ncommunes, c))
            return false;
    }
    return true;
}

/* The columns of load_practitioners.sql. */
enum practitioner_col {
    COL_PRACTITIONER_RPPS,
    COL_PRACTITIONER_FAMILY_NAME,
    COL_PRACTITIONER_GIVEN_NAME,
    COL_PRACTITIONER_SPECIALTY,
    PRACTITIONER_NCOLS
};
static const char *const practitioner_names[PRACTITIONER_NCOLS] = {
    [COL_PRACTITIONER_RPPS] = "rpps",
    [COL_PRACTITIONER_FAMILY_NAME] = "family_name",
    [COL_PRACTITIONER_GIVEN_NAME] = "given_name",
    [COL_PRACTITIONER_SPECIALTY] = "specialty",
};

static bool load_practitioners(struct store *st, const PGresult *res)
{
    int c[PRACTITIONER_NCOLS];
    if (!db_cols_resolve(res, practitioner_names, PRACTITIONER_NCOLS, c,
                         sql_name[SQL_LOAD_PRACTITIONERS]))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *rpps = PQgetvalue(res, i, c[COL_PRACTITIONER_RPPS]);
        const char *family_name = PQgetvalue(res, i, c[COL_PRACTITIONER_FAMILY_NAME]);
        const char *given_name = PQgetvalue(res, i, c[COL_PRACTITIONER_GIVEN_NAME]);
        const char *specialty = PQgetvalue(res, i, c[COL_PRACTITIONER_SPECIALTY]);
        struct practitioner *p = store_practitioner(st, rpps);
        if (p) {
            if (!set_text(&p->family_name, family_name) || !set_text(&p->given_name, given_name))
                return false;
            snprintf(p->specialty, sizeof(p->specialty), "%s", specialty);
            continue;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
            return false;
        snprintf(p->rpps, sizeof(p->rpps), "%s", rpps);
        snprintf(p->specialty, sizeof(p->specialty), "%s", specialty);
        if (!set_text(&p->family_name, family_name) || !set_text(&p->given_name, given_name) ||
            !idmap_put(&st->practitioners, idmap_code_key(p->rpps), p)) {
            free_practitioner(p);
            return false;
        }
    }
    return true;
}

/* The columns of load_sites.sql. */
enum site_col {
    COL_SITE_ID,
    COL_SITE_TERRITORY,
    COL_SITE_KIND,
    COL_SITE_NAME,
    COL_SITE_ADDRESS,
    COL_SITE_COMMUNE,
    COL_SITE_LAT,
    COL_SITE_LON,
    COL_SITE_PHONE,
    COL_SITE_RPPS_LIST,
    SITE_NCOLS
};
static const char *const site_names[SITE_NCOLS] = {
    [COL_SITE_ID] = "id",           [COL_SITE_TERRITORY] = "territory_id",
    [COL_SITE_KIND] = "kind",       [COL_SITE_NAME] = "name",
    [COL_SITE_ADDRESS] = "address", [COL_SITE_COMMUNE] = "commune_insee",
    [COL_SITE_LAT] = "latitude",    [COL_SITE_LON] = "longitude",
    [COL_SITE_PHONE] = "phone",     [COL_SITE_RPPS_LIST] = "rpps_list",
};

/* Copies row `i` of load_sites.sql, of columns `c`, into `s` (new or already
 * known: slots keep pointing at their site while it is updated in place). */
static bool site_from_row(struct site *s, const PGresult *res, int i, const int *c)
{
    if (!model_site_kind_parse(PQgetvalue(res, i, c[COL_SITE_KIND]), &s->kind))
        s->kind = SITE_PRACTICE;
    snprintf(s->commune, sizeof(s->commune), "%s", PQgetvalue(res, i, c[COL_SITE_COMMUNE]));
    s->lat = atof(PQgetvalue(res, i, c[COL_SITE_LAT]));
    s->lon = atof(PQgetvalue(res, i, c[COL_SITE_LON]));
    return set_text(&s->name, PQgetvalue(res, i, c[COL_SITE_NAME])) &&
           set_text(&s->address, PQgetvalue(res, i, c[COL_SITE_ADDRESS])) &&
           set_text(&s->phone, PQgetvalue(res, i, c[COL_SITE_PHONE]));
}

/* Adds `s` to the sites of each practitioner in `rpps_list` (rpps_list of
 * load_sites.sql, comma-separated RPPS).  A link already known is kept, and
 * none is removed: like the rest of a reload, this only adds. */
static bool link_practitioners(const struct store *st, struct site *s, const char *rpps_list)
{
    const char *p = rpps_list;
    while (*p) {
        size_t n = strcspn(p, ",");
        char rpps[12];
        if (n < sizeof(rpps)) {
            memcpy(rpps, p, n);
            rpps[n] = '\0';
            struct practitioner *pr = store_practitioner(st, rpps);
            if (pr && !has_ptr((void *const *)pr->sites, pr->nsites, s) &&
                !push_ptr((void ***)&pr->sites, &pr->nsites, s))
                return false;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

static bool load_sites(struct store *st, const PGresult *res)
{
    int c[SITE_NCOLS];
    if (!db_cols_resolve(res, site_names, SITE_NCOLS, c, sql_name[SQL_LOAD_SITES]))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = strtoll(PQgetvalue(res, i, c[COL_SITE_ID]), NULL, 10);
        const char *rpps_list = PQgetvalue(res, i, c[COL_SITE_RPPS_LIST]);
        struct site *s = idmap_get(&st->sites, id);
        if (s) {
            if (!site_from_row(s, res, i, c) || !link_practitioners(st, s, rpps_list))
                return false;
            continue;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
            return false;
        s->id = id;
        s->territory = store_territory(st, PQgetvalue(res, i, c[COL_SITE_TERRITORY]));
        bool known = s->territory != NULL;
        if (!known || !site_from_row(s, res, i, c) || !idmap_put(&st->sites, s->id, s)) {
            free_site(s);
            if (known)
                return false;
            continue;
        }
        s->index = st->site_count++;
        /* Ids only grow: appending keeps the territory's list by id. */
        if (!push_ptr((void ***)&s->territory->sites, &s->territory->nsites, s) ||
            !link_practitioners(st, s, rpps_list))
            return false;
    }
    return true;
}

/* The territory and practitioner of the caller's previous row, or NULL:
 * each is looked up by name only when it changes from one row to the next,
 * not for every one of a million rows (a practitioner's slots come
 * together, by id). */
struct row_cache {
    struct territory *territory;
    struct site *site;
    struct practitioner *practitioner;
};

static const char *const slot_names[STORE_SLOT_NCOLS] = {
    [STORE_SLOT_ID] = "id",
    [STORE_SLOT_TERRITORY] = "territory_id",
    [STORE_SLOT_SITE] = "site_id",
    [STORE_SLOT_RPPS] = "rpps",
    [STORE_SLOT_STARTS_AT] = "starts_at_epoch",
    [STORE_SLOT_DURATION] = "duration_min",
    [STORE_SLOT_MODE] = "mode",
    [STORE_SLOT_AUDIENCE] = "audience",
    [STORE_SLOT_MOTIFS] = "motifs",
    [STORE_SLOT_MIN_AGE] = "min_age",
    [STORE_SLOT_MAX_AGE] = "max_age",
    [STORE_SLOT_RELEASE_MINUTES] = "release_minutes",
    [STORE_SLOT_STATUS] = "status",
    [STORE_SLOT_HELD_FOR] = "held_for",
    [STORE_SLOT_HOLD_EXPIRES_AT] = "hold_expires_at_epoch",
};

bool store_slot_cols(const PGresult *res, const char *query, struct store_slot_cols *cols)
{
    const char *names[STORE_SLOT_NCOLS];
    memcpy(names, slot_names, sizeof(names));
    cols->audience_bits = PQfnumber(res, "audience_bits") >= 0;
    if (cols->audience_bits)
        names[STORE_SLOT_AUDIENCE] = "audience_bits";
    return db_cols_resolve(res, names, STORE_SLOT_NCOLS, cols->at, query);
}

/* Reads the audiences of row `i` into `s`: the stored bits (the model's own,
 * migration 0031) or the names. */
static bool slot_audience_from_row(struct slot *s, const PGresult *res, int i,
                                   const struct store_slot_cols *cols)
{
    int col = cols->at[STORE_SLOT_AUDIENCE];
    if (!cols->audience_bits)
        return db_col_each_text(res, i, col, add_audience, &s->audience);
    int64_t bits = db_col_int(res, i, col, 0);
    if (bits <= 0 || bits > AUD_ALL)
        return false;
    s->audience = (uint8_t)bits;
    return true;
}

/* store_slot_from_cols, with the lookups of the previous row in `last`. */
static struct slot *slot_from_row(const struct store *st, const PGresult *res, int i,
                                  const struct store_slot_cols *cols, struct row_cache *last)
{
    const int *c = cols->at;
    struct slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->refs = 1;
    s->id = db_col_int(res, i, c[STORE_SLOT_ID], 0);
    const char *territory = PQgetvalue(res, i, c[STORE_SLOT_TERRITORY]);
    if (last->territory && strcmp(last->territory->id, territory) == 0)
        s->territory = last->territory;
    else
        s->territory = last->territory = store_territory(st, territory);
    int64_t site = db_col_int(res, i, c[STORE_SLOT_SITE], 0);
    if (last->site && last->site->id == site)
        s->site = last->site;
    else
        s->site = last->site = idmap_get(&st->sites, site);
    const char *rpps = PQgetvalue(res, i, c[STORE_SLOT_RPPS]);
    if (!*rpps)
        s->practitioner = NULL;
    else if (last->practitioner && strcmp(last->practitioner->rpps, rpps) == 0)
        s->practitioner = last->practitioner;
    else
        s->practitioner = last->practitioner = store_practitioner(st, rpps);
    s->start = db_col_epoch(res, i, c[STORE_SLOT_STARTS_AT], 0);
    s->duration_min = (int)db_col_int(res, i, c[STORE_SLOT_DURATION], 0);
    bool ok = s->territory && s->site &&
              model_mode_parse(PQgetvalue(res, i, c[STORE_SLOT_MODE]), &s->mode) &&
              slot_audience_from_row(s, res, i, cols) &&
              db_col_each_text(res, i, c[STORE_SLOT_MOTIFS], add_motif, &s->motifs) &&
              model_slot_status_parse(PQgetvalue(res, i, c[STORE_SLOT_STATUS]), &s->status);
    s->min_age = (int8_t)db_col_int(res, i, c[STORE_SLOT_MIN_AGE], -1);
    s->max_age = (int8_t)db_col_int(res, i, c[STORE_SLOT_MAX_AGE], -1);
    s->release_minutes = (int)db_col_int(res, i, c[STORE_SLOT_RELEASE_MINUTES], 0);
    s->held_for = db_col_int(res, i, c[STORE_SLOT_HELD_FOR], 0);
    s->hold_expires_at = db_col_epoch(res, i, c[STORE_SLOT_HOLD_EXPIRES_AT], 0);
    if (!ok) {
        log_warn("store", "slot %lld skipped: inconsistent row", (long long)s->id);
        store_slot_unref(s);
        return NULL;
    }
    return s;
}

struct slot *store_slot_from_cols(const struct store *st, const PGresult *res, int i,
                                  const struct store_slot_cols *cols)
{
    struct row_cache none = {0};
    return slot_from_row(st, res, i, cols, &none);
}

/* The columns of load_organisations.sql. */
enum organisation_col {
    COL_ORGANISATION_ID,
    COL_ORGANISATION_KIND,
    COL_ORGANISATION_NAME,
    COL_ORGANISATION_FINESS,
    COL_ORGANISATION_COMMUNE,
    ORGANISATION_NCOLS
};
static const char *const organisation_names[ORGANISATION_NCOLS] = {
    [COL_ORGANISATION_ID] = "id",
    [COL_ORGANISATION_KIND] = "kind",
    [COL_ORGANISATION_NAME] = "name",
    [COL_ORGANISATION_FINESS] = "finess",
    [COL_ORGANISATION_COMMUNE] = "commune_insee",
};

static bool load_organisations(struct store *st, const PGresult *res)
{
    int c[ORGANISATION_NCOLS];
    if (!db_cols_resolve(res, organisation_names, ORGANISATION_NCOLS, c,
                         sql_name[SQL_LOAD_ORGANISATIONS]))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = strtoll(PQgetvalue(res, i, c[COL_ORGANISATION_ID]), NULL, 10);
        struct organisation *o = idmap_get(&st->organisations, id);
        bool added = o == NULL;
        if (added) {
            o = calloc(1, sizeof(*o));
            if (!o)
                return false;
            o->id = id;
        }
        snprintf(o->kind, sizeof(o->kind), "%s", PQgetvalue(res, i, c[COL_ORGANISATION_KIND]));
        snprintf(o->finess, sizeof(o->finess), "%s",
                 PQgetvalue(res, i, c[COL_ORGANISATION_FINESS]));
        snprintf(o->commune, sizeof(o->commune), "%s",
                 PQgetvalue(res, i, c[COL_ORGANISATION_COMMUNE]));
        bool ok = set_text(&o->name, PQgetvalue(res, i, c[COL_ORGANISATION_NAME]));
        if (added && (!ok || !idmap_put(&st->organisations, o->id, o))) {
            free_organisation(o);
            return false;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* Adds the slots of one page of load_slots_page.sql, of columns `cols`, to
 * the store, in the order they come (by id); store_load sorts each
 * territory's once it has them all. */
static bool load_slots_page(struct store *st, const PGresult *res,
                            const struct store_slot_cols *cols)
{
    struct row_cache last = {0};
    if (!idmap_reserve(&st->slots, (size_t)PQntuples(res)))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        struct slot *s = slot_from_row(st, res, i, cols, &last);
        if (s && !add_slot(st, s, false))
            return false;
    }
    return true;
}

/* The room of n sort records holds n slot pointers and their n briefs. */
_Static_assert(sizeof(struct slot *) + sizeof(struct slot_brief) <= sizeof(struct keysort_rec),
               "a sort record's room holds a slot's pointer and brief");

/* Sorts each territory's slots, with their briefs, by start, then id
 * (store.h), once the load has them all in the order the pages came.  A
 * radix sort of records of the two keys (base/keysort.h): the keys are read
 * from the slots in the order they were built, which is close to their
 * order in memory, and the sort then moves 24-byte records, not pointers
 * compared by reading two slots each time (qsort did that: ~90 ms of the
 * start-up's serial end at a million slots, bench/README.md).  Slots and
 * briefs are then gathered in order into the scratch records' room and
 * copied back.  Returns false when memory is short. */
static bool sort_slots(struct store *st)
{
    for (size_t k = 0; k < st->nterritories; k++) {
        struct territory *t = st->territories[k];
        size_t n = t->nslots;
        if (n < 2)
            continue;
        struct keysort_rec *recs = malloc(n * sizeof(*recs));
        void *room = malloc(n * sizeof(struct keysort_rec));
        if (!recs || !room) {
            free(recs);
            free(room);
            return false;
        }
        for (size_t i = 0; i < n; i++)
            recs[i] = (struct keysort_rec){
                .major = t->slots[i]->start, .minor = t->slots[i]->id, .index = i};
        keysort(recs, room, n);
        struct slot **slots = room;
        struct slot_brief *briefs = (struct slot_brief *)(slots + n);
        for (size_t i = 0; i < n; i++) {
            slots[i] = t->slots[recs[i].index];
            briefs[i] = t->briefs[recs[i].index];
        }
        memcpy(t->slots, slots, n * sizeof(*slots));
        memcpy(t->briefs, briefs, n * sizeof(*briefs));
        free(recs);
        free(room);
    }
#ifndef NDEBUG
    for (size_t k = 0; k < st->nterritories; k++) {
        const struct territory *t = st->territories[k];
        for (size_t i = 0; i < t->nslots; i++) {
            assert(i == 0 || slot_before(t->slots[i - 1], t->slots[i]));
            assert(t->briefs[i].start == t->slots[i]->start &&
                   t->briefs[i].status == t->slots[i]->status);
        }
    }
#endif
    return true;
}

static const char *const request_names[STORE_REQUEST_NCOLS] = {
    [STORE_REQUEST_ID] = "id",
    [STORE_REQUEST_TERRITORY] = "territory_id",
    [STORE_REQUEST_ORGANISATION] = "organisation_id",
    [STORE_REQUEST_KIND] = "requester_kind",
    [STORE_REQUEST_MOTIF] = "motif",
    [STORE_REQUEST_URGENCY] = "urgency",
    [STORE_REQUEST_AGE] = "patient_age",
    [STORE_REQUEST_CREATED_AT] = "created_at_epoch",
    [STORE_REQUEST_DEADLINE] = "deadline_epoch",
    [STORE_REQUEST_MODES] = "modes",
    [STORE_REQUEST_MAX_DISTANCE] = "max_distance_km",
    [STORE_REQUEST_LAT] = "latitude",
    [STORE_REQUEST_LON] = "longitude",
    [STORE_REQUEST_MT_RPPS] = "mt_rpps",
    [STORE_REQUEST_STATUS] = "status",
    [STORE_REQUEST_DECLINED] = "declined_slots",
    [STORE_REQUEST_HELD_SLOT] = "held_slot",
    [STORE_REQUEST_HOLD_EXPIRES_AT] = "hold_expires_at_epoch",
    [STORE_REQUEST_CLIENT_REF] = "client_ref",
    [STORE_REQUEST_PRIORITY_GROUPS] = "priority_groups",
};

bool store_request_cols(const PGresult *res, const char *query, struct store_request_cols *cols)
{
    return db_cols_resolve(res, request_names, STORE_REQUEST_NCOLS, cols->at, query);
}

struct request *store_request_from_cols(const struct store *st, const PGresult *res, int i,
                                        const struct store_request_cols *cols)
{
    const int *c = cols->at;
    struct request *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->refs = 1;
    r->id = strtoll(PQgetvalue(res, i, c[STORE_REQUEST_ID]), NULL, 10);
    r->territory = store_territory(st, PQgetvalue(res, i, c[STORE_REQUEST_TERRITORY]));
    r->organisation_id = strtoll(PQgetvalue(res, i, c[STORE_REQUEST_ORGANISATION]), NULL, 10);
    r->age = atoi(PQgetvalue(res, i, c[STORE_REQUEST_AGE]));
    r->created_at = strtoll(PQgetvalue(res, i, c[STORE_REQUEST_CREATED_AT]), NULL, 10);
    r->deadline = strtoll(PQgetvalue(res, i, c[STORE_REQUEST_DEADLINE]), NULL, 10);
    r->max_distance_km = atof(PQgetvalue(res, i, c[STORE_REQUEST_MAX_DISTANCE]));
    r->lat = atof(PQgetvalue(res, i, c[STORE_REQUEST_LAT]));
    r->lon = atof(PQgetvalue(res, i, c[STORE_REQUEST_LON]));
    snprintf(r->mt_rpps, sizeof(r->mt_rpps), "%s", PQgetvalue(res, i, c[STORE_REQUEST_MT_RPPS]));
    r->held_slot = strtoll(PQgetvalue(res, i, c[STORE_REQUEST_HELD_SLOT]), NULL, 10);
    r->hold_expires_at = strtoll(PQgetvalue(res, i, c[STORE_REQUEST_HOLD_EXPIRES_AT]), NULL, 10);
    snprintf(r->client_ref, sizeof(r->client_ref), "%s",
             PQgetvalue(res, i, c[STORE_REQUEST_CLIENT_REF]));
    const char *pg = PQgetvalue(res, i, c[STORE_REQUEST_PRIORITY_GROUPS]);
    r->priority_groups =
        (uint8_t)((strstr(pg, "ald") ? PRIORITY_ALD : 0) | (strstr(pg, "c2s") ? PRIORITY_C2S : 0) |
                  (strstr(pg, "aged_70_plus") ? PRIORITY_AGED_70_PLUS : 0));
    struct id_list declined = {0};
    bool ok = r->territory &&
              model_audience_parse(PQgetvalue(res, i, c[STORE_REQUEST_KIND]), &r->kind) &&
              model_motif_parse(PQgetvalue(res, i, c[STORE_REQUEST_MOTIF]), &r->motif) &&
              model_urgency_parse(PQgetvalue(res, i, c[STORE_REQUEST_URGENCY]), &r->urgency) &&
              db_col_each_text(res, i, c[STORE_REQUEST_MODES], add_mode, &r->modes) &&
              model_request_status_parse(PQgetvalue(res, i, c[STORE_REQUEST_STATUS]), &r->status) &&
              db_col_each_text(res, i, c[STORE_REQUEST_DECLINED], add_id, &declined);
    r->declined = declined.ids;
    r->ndeclined = declined.n;
    if (!ok) {
        log_warn("store", "request %lld skipped: inconsistent row", (long long)r->id);
        store_request_unref(r);
        return NULL;
    }
    return r;
}

static bool load_requests(struct store *st, const PGresult *res)
{
    struct store_request_cols cols;
    if (!store_request_cols(res, sql_name[SQL_LOAD_REQUESTS], &cols))
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        struct request *r = store_request_from_cols(st, res, i, &cols);
        if (r && !store_add_request(st, r))
            return false;
    }
    return true;
}

static void on_load_result(void *arg, enum db_status status, const PGresult *res);
static void load_slots_start(struct loader *l);
static void reload_start(struct store *st, struct db *db);
static void on_reloaded(struct store *st, bool ok, void *arg);

static void load_next(struct loader *l)
{
    if (l->step == l->last) {
        if (l->last == LOAD_DONE) {
            size_t nslots = 0, nreq = 0;
            for (size_t i = 0; i < l->st->nterritories; i++) {
                nslots += l->st->territories[i]->nslots;
                nreq += l->st->territories[i]->nopen;
            }
            log_info("store",
                     "loaded %zu territories, %zu live slots in %zu pages over %d id ranges, "
                     "%zu open requests",
                     l->st->nterritories, nslots, l->pages, l->nranges, nreq);
            /* The slots' result (hundreds of megabytes for a million slots)
             * is freed, but in pieces among the slots made from it: glibc
             * keeps those pages unless asked to give them back. */
            malloc_trim(0);
        }
        l->done(l->st, true, l->arg);
        free(l);
        return;
    }
    if (l->step == LOAD_SLOTS) {
        load_slots_start(l);
        return;
    }
    db_query(l->db, sql_text[load_queries[l->step]], 0, NULL, on_load_result, l);
}

/* Ends a load that failed (the reason is logged already).  A failed
 * start-up leaves an empty store; a failed reload leaves what it merged so
 * far, every piece of which is consistent. */
static void load_failed(struct loader *l)
{
    if (l->last == LOAD_DONE)
        store_free(l->st);
    l->done(l->st, false, l->arg);
    free(l);
}

/* --- the live slots, page by page --------------------------------------------------- *
 *
 * A million live slots in one result held hundreds of megabytes of text in
 * libpq while the slots were built from it, and snpd parsed nothing until
 * PostgreSQL had sent the last row (bench/README.md §9).  So they are read in
 * pages of `batch` rows by id (load_slots_page.sql).  PostgreSQL's part of a
 * page (reading and writing out the rows) costs more than snpd's (building
 * the slots), so two pages are in flight at once, on two connections of the
 * pool: the ids, from the lowest to the highest slot id (slot_id_bounds.sql),
 * are cut into ranges (a single one when they would fill few pages), each
 * read by keyset pages; when a page answers, the next page of its range is
 * asked for before its slots are built, and a range read to its end gives
 * its place to the next range.  Ranges where few slots are live cost a
 * short page each.  The loader lives until every page asked for has
 * answered.
 *
 * Pages read the database at different moments, as the steps of the load
 * already did: a change committed meanwhile by another process, including a
 * slot created above the highest id, is announced, kept, and applied once
 * the store is ready (dispatch_sync.c, "announcements heard while the store
 * loads").  A slot made live again behind the pages (its id already passed)
 * is announced the same way. */

static void on_slots_page(void *arg, enum db_status status, const PGresult *res);

/* Asks for the next page of range `r`. */
static void load_range_next(struct load_range *r)
{
    struct loader *l = r->l;
    char after[24], limit[24], last[24];
    snprintf(after, sizeof(after), "%lld", (long long)r->after);
    snprintf(limit, sizeof(limit), "%zu", l->batch);
    snprintf(last, sizeof(last), "%lld", (long long)r->last);
    const char *params[] = {after, limit, last};
    l->in_flight++;
    db_query_binary(l->db, sql_text[SQL_LOAD_SLOTS_PAGE], 3, params, on_slots_page, r);
}

/* Starts ranges until LOAD_PAGES_IN_FLIGHT pages are in flight or every
 * range has started. */
static void load_slots_fill(struct loader *l)
{
    while (!l->failed && l->in_flight < LOAD_PAGES_IN_FLIGHT && l->next_range < l->nranges)
        load_range_next(&l->ranges[l->next_range++]);
}

/* Called once no page is in flight and nothing runs below: ends the step. */
static void load_slots_settled(struct loader *l)
{
    if (l->failed) {
        load_failed(l);
        return;
    }
    if (!sort_slots(l->st)) {
        log_error("store", "loading the slots failed: out of memory");
        load_failed(l);
        return;
    }
    l->step++;
    load_next(l);
}

static void on_slots_page(void *arg, enum db_status status, const PGresult *res)
{
    struct load_range *r = arg;
    struct loader *l = r->l;
    struct store_slot_cols cols;
    l->in_flight--;
    l->pages++;
    l->depth++;
    if (status != DB_OK) {
        if (!l->failed)
            log_error("store", "loading the slots failed: %s",
                      res ? PQresultErrorMessage(res) : "database unavailable");
        l->failed = true;
    } else if (!l->failed && !store_slot_cols(res, sql_name[SQL_LOAD_SLOTS_PAGE], &cols)) {
        l->failed = true; /* logged */
    } else if (!l->failed) {
        int n = PQntuples(res);
        if (n > 0 && (size_t)n == l->batch) {
            r->after = db_col_int(res, n - 1, cols.at[STORE_SLOT_ID], 0);
            load_range_next(r); /* may answer (fail) at once, before this returns */
        } else {
            l->ranges_done++;
            load_slots_fill(l);
        }
        if (!load_slots_page(l->st, res, &cols)) {
            log_error("store", "loading the slots failed: out of memory");
            l->failed = true;
        }
    }
    if (--l->depth > 0 || l->in_flight > 0)
        return;
    load_slots_settled(l);
}

/* The lowest and highest slot ids: cuts them into ranges and starts them. */
static void on_slot_bounds(void *arg, enum db_status status, const PGresult *res)
{
    struct loader *l = arg;
    enum { BOUND_LOW, BOUND_HIGH, BOUND_NCOLS };
    static const char *const bound_names[BOUND_NCOLS] = {
        [BOUND_LOW] = "low", [BOUND_HIGH] = "high"};
    int c[BOUND_NCOLS];
    if (status != DB_OK || PQntuples(res) != 1) {
        log_error("store", "loading the slots failed: %s",
                  res ? PQresultErrorMessage(res) : "database unavailable");
        l->failed = true;
    } else if (!db_cols_resolve(res, bound_names, BOUND_NCOLS, c, sql_name[SQL_SLOT_ID_BOUNDS])) {
        l->failed = true; /* logged */
    }
    if (l->failed) {
        load_slots_settled(l);
        return;
    }
    int64_t low = strtoll(PQgetvalue(res, 0, c[BOUND_LOW]), NULL, 10);
    int64_t high = strtoll(PQgetvalue(res, 0, c[BOUND_HIGH]), NULL, 10);
    if (high >= low && high > 0) {
        /* Ids are positive (bigserial), so high - low + 1 cannot overflow. */
        uint64_t span = (uint64_t)(high - low) + 1;
        uint64_t fit = span / (LOAD_RANGE_PAGES * (uint64_t)l->batch);
        int n = fit < 1 ? 1 : fit > LOAD_RANGES ? LOAD_RANGES : (int)fit;
        int64_t from = low - 1;
        for (int k = 0; k < n; k++) {
            int64_t to =
                k == n - 1 ? high : low - 1 + (int64_t)(span / (uint64_t)n * (uint64_t)(k + 1));
            l->ranges[k] = (struct load_range){.l = l, .after = from, .last = to};
            from = to;
        }
        l->nranges = n;
    }
    if (l->nranges == 0) {
        load_slots_settled(l);
        return;
    }
    l->depth++;
    load_slots_fill(l);
    if (--l->depth > 0 || l->in_flight > 0)
        return;
    load_slots_settled(l);
}

/* Starts reading the live slots (the step LOAD_SLOTS). */
static void load_slots_start(struct loader *l)
{
    db_query(l->db, sql_text[SQL_SLOT_ID_BOUNDS], 0, NULL, on_slot_bounds, l);
}

static void on_load_result(void *arg, enum db_status status, const PGresult *res)
{
    struct loader *l = arg;
    bool ok = status == DB_OK && !(l->last != LOAD_DONE && l->st->reload->cancelled);
    if (ok) {
        switch (l->step) {
        case LOAD_TERRITORIES:
            ok = load_territories(l->st, res);
            break;
        case LOAD_NEIGHBOURS:
            ok = load_neighbours(l->st, res);
            break;
        case LOAD_COMMUNES:
            ok = load_communes(l->st, res);
            break;
        case LOAD_PRACTITIONERS:
            ok = load_practitioners(l->st, res);
            break;
        case LOAD_SITES:
            ok = load_sites(l->st, res);
            break;
        case LOAD_ORGANISATIONS:
            ok = load_organisations(l->st, res);
            break;
        case LOAD_SLOTS: /* on_slots_page */
            break;
        case LOAD_REQUESTS:
            ok = load_requests(l->st, res);
            break;
        case LOAD_DONE:
            break;
        }
    }
    if (!ok) {
        log_error("store", "loading step %d failed: %s", (int)l->step,
                  res ? PQresultErrorMessage(res) : "database unavailable");
        load_failed(l);
        return;
    }
    l->step++;
    load_next(l);
}

static struct loader *loader_new(struct store *st, struct db *db, enum load_step last,
                                 store_loaded_cb done, void *arg)
{
    struct loader *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->st = st;
    l->db = db;
    l->last = last;
    l->done = done;
    l->arg = arg;
    return l;
}

void store_load(struct store *st, struct db *db, size_t batch, store_loaded_cb done, void *arg)
{
    store_free(st);
    struct loader *l = loader_new(st, db, LOAD_DONE, done, arg);
    if (!l) {
        done(st, false, arg);
        return;
    }
    l->batch = batch > 0 ? batch : STORE_LOAD_BATCH;
    load_next(l);
}

/* --- reference reloads ------------------------------------------------------------ */

static void waiters_call(struct reload_waiter *w, struct store *st, bool ok)
{
    while (w) {
        struct reload_waiter *next = w->next;
        if (w->done)
            w->done(st, ok, w->arg);
        free(w);
        w = next;
    }
}

/* Starts a reload for the waiters of r->next; st->reload exists exactly
 * while a reload runs. */
static void reload_start(struct store *st, struct db *db)
{
    struct store_reload *r = st->reload;
    r->again = false;
    r->current = r->next;
    r->next = NULL;
    struct loader *l = loader_new(st, db, LOAD_SLOTS, on_reloaded, db);
    if (!l) {
        on_reloaded(st, false, db);
        return;
    }
    load_next(l);
}

static void on_reloaded(struct store *st, bool ok, void *arg)
{
    struct store_reload *r = st->reload;
    struct reload_waiter *served = r->current;
    r->current = NULL;
    st->reference_stale = !ok && !r->cancelled;
    if (ok)
        log_info("store", "reference data reloaded");
    if (ok && r->again) {
        reload_start(st, arg);
    } else {
        /* A failure fails those who wait for the next reload too: the
         * database is unreachable or snpd is closing. */
        if (!ok) {
            waiters_call(r->next, st, false);
            r->next = NULL;
        }
        free(r);
        st->reload = NULL;
    }
    waiters_call(served, st, ok);
}

void store_reload_reference(struct store *st, struct db *db, store_loaded_cb done, void *arg)
{
    struct reload_waiter *w = calloc(1, sizeof(*w));
    bool running = st->reload != NULL;
    if (!w || (!running && !(st->reload = calloc(1, sizeof(*st->reload))))) {
        free(w);
        if (done)
            done(st, false, arg);
        return;
    }
    struct store_reload *r = st->reload;
    w->done = done;
    w->arg = arg;
    w->next = r->next;
    r->next = w;
    r->again = true;
    if (!running)
        reload_start(st, db);
}
