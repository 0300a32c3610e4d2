/* The patient's confirmation (clients/cli/confirmation.c) for what the
 * end-to-end test of snpctl does not reach: a home visit, a teleconsultation,
 * a CSNP shift without a named practitioner, a site with a phone, an erased
 * identity, HTML escaping, and a request with nothing to confirm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "clients/cli/confirmation.h"

/* A booked request of `mode` at a site of `kind`, as request.get answers. */
static json_t *request(const char *mode, const char *kind, bool practitioner, bool phone)
{
    json_t *r = json_pack(
        "{s:I, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:I, s:s, s:{s:I, s:s, s:s, s:I, s:{s:I, s:s, "
        "s:s, s:s, s:s, s:s, s:s}}}}",
        "request_id", (json_int_t)12, "status", "booked", "patient", "display_name",
        "Jeanne <Dupont>", "sex", "female", "motif", "code", "ent", "booking", "booking_id",
        (json_int_t)34, "status", "booked", "slot", "slot_id", (json_int_t)5, "start",
        "2026-12-10T14:30:00+01:00", "mode", mode, "duration_min", (json_int_t)20, "site",
        "site_id", (json_int_t)3, "kind", kind, "name", "Cabinet du Port & associés", "address",
        "1 quai Surcouf", "commune_insee", "35236", "commune_name", "Redon", "postal_code",
        "35600");
    json_t *slot = json_object_get(json_object_get(r, "booking"), "slot");
    if (practitioner)
        json_object_set_new(slot, "practitioner",
                            json_pack("{s:s, s:s, s:s}", "rpps", "10999900011", "family_name",
                                      "Le Guen", "given_name", "Anne"));
    if (phone)
        json_object_set_new(json_object_get(slot, "site"), "phone", json_string("02 99 71 00 00"));
    return r;
}

/* The confirmation of `r` as text (html false) or HTML; the caller frees it. */
static char *written(const json_t *r, const json_t *territory, const char *requester, bool html)
{
    struct confirmation c;
    cr_assert(confirmation_build(&c, r, territory, requester));
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    if (html)
        confirmation_write_html(&c, out);
    else
        confirmation_write_text(&c, out);
    fclose(out);
    confirmation_free(&c);
    return buf;
}

/* `s` with every run of blanks and line breaks made one space, to look for
 * sentences wherever the text wrapped them; in place. */
static char *flat(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\n' || *r == ' ') {
            if (w > s && w[-1] != ' ')
                *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return s;
}

Test(confirmation, office_with_a_phone_says_when_where_and_whom_to_call)
{
    json_t *r = request("office", "practice", true, true);
    json_t *t = json_pack("{s:s, s:s, s:[{s:I}]}", "name", "CPTS du Pays de Redon", "kind", "cpts",
                          "sites", "site_id", (json_int_t)3);
    char *s = written(r, t, "Pharmacie du Pont", false);
    cr_expect(strstr(s, "CPTS du Pays de Redon\nCONFIRMATION DE RENDEZ-VOUS\n"), "%s", s);
    cr_expect(strstr(s, "Rendez-vous : jeudi 10 décembre 2026 à 14 h 30\n"), "%s", s);
    cr_expect(strstr(s, "Lieu : Cabinet du Port & associés\n       1 quai Surcouf, 35600 Redon\n"),
              "%s", s);
    cr_expect(strstr(s, "Téléphone : 02 99 71 00 00\n"), "%s", s);
    cr_expect(strstr(s, "Si vous ne pouvez pas venir, prévenez le cabinet au 02 99 71 00 00"), "%s",
              s);
    cr_expect(strstr(s, "Demande n° 12"), "%s", s);
    cr_expect(!strstr(s, "ORL"), "%s", s);
    flat(s);
    cr_expect(strstr(s, "pour que le créneau serve à un autre patient."), "%s", s);
    free(s);
    /* A site that is not the territory's: no heading. */
    json_object_set_new(json_array_get(json_object_get(t, "sites"), 0), "site_id",
                        json_integer(99));
    s = written(r, t, NULL, false);
    cr_expect(!strstr(s, "CPTS") && !strstr(s, "Adressé par"), "%s", s);
    free(s);
    json_decref(t);
    json_decref(r);
}

Test(confirmation, home_visit_and_teleconsultation_have_their_own_words)
{
    json_t *r = request("home", "practice", true, false);
    char *s = flat(written(r, NULL, "Pharmacie du Pont", false));
    cr_expect(strstr(s, "Où : à votre domicile : le médecin vient chez vous.") &&
                  strstr(s, "Soyez chez vous") && strstr(s, "À préparer pour le médecin :") &&
                  strstr(s, "Si vous ne pouvez pas être chez vous, prévenez Pharmacie du Pont"),
              "%s", s);
    cr_expect(!strstr(s, "Lieu :"), "%s", s);
    free(s);
    json_decref(r);

    r = request("teleconsultation", "teleconsultation", true, true);
    s = flat(written(r, NULL, NULL, false));
    /* No phone was left for the patient: they are told to give one. */
    cr_expect(strstr(s, "en téléconsultation : vous n'avez pas laissé") &&
                  strstr(s, "téléphone ou un ordinateur") && strstr(s, "le service au"),
              "%s", s);
    free(s);
    json_object_set_new(json_object_get(r, "patient"), "phone", json_string("06 12 34 56 78"));
    s = flat(written(r, NULL, NULL, false));
    cr_expect(strstr(s, "le médecin vous contacte à l'heure du rendez-vous au numéro de "
                        "téléphone que vous avez donné"),
              "%s", s);
    /* The patient's own number stays off the sheet. */
    cr_expect(!strstr(s, "06 12 34 56 78"), "%s", s);
    free(s);
    json_decref(r);
}

Test(confirmation, csnp_shift_without_practitioner_and_erased_identity)
{
    json_t *r = request("office", "csnp", false, false);
    json_object_del(r, "patient");
    char *s = flat(written(r, NULL, NULL, false));
    cr_expect(strstr(s, "Avec : le médecin de garde du centre (Cabinet du Port & associés)"), "%s",
              s);
    cr_expect(!strstr(s, "Patient :"), "%s", s);
    cr_expect(strstr(s, "prévenez la structure qui a pris ce rendez-vous"), "%s", s);
    free(s);
    json_decref(r);
}

Test(confirmation, html_is_escaped)
{
    json_t *r = request("office", "practice", true, true);
    char *s = written(r, NULL, "Pharmacie <du> Pont", true);
    cr_expect(strstr(s, "Jeanne &lt;Dupont&gt;") &&
                  strstr(s, "Cabinet du Port &amp; associés<br>") &&
                  strstr(s, "Pharmacie &lt;du&gt; Pont") && !strstr(s, "<Dupont>"),
              "%s", s);
    /* Phone numbers are never cut; other spaces are left alone. */
    cr_expect(strstr(s, "02&nbsp;99&nbsp;71&nbsp;00&nbsp;00") && strstr(s, "35600 Redon") &&
                  strstr(s, "1 quai"),
              "%s", s);
    cr_expect(strstr(s, "<ul>\n<li>") && strstr(s, "</li>\n</ul>\n"), "%s", s);
    free(s);
    json_decref(r);
}

Test(confirmation, nothing_to_confirm_without_a_standing_booking)
{
    json_t *r = request("office", "practice", true, false);
    json_object_set_new(json_object_get(r, "booking"), "status", json_string("cancelled"));
    struct confirmation c;
    cr_expect(!confirmation_build(&c, r, NULL, NULL));
    cr_expect_eq(c.nparts, 0);
    confirmation_free(&c);
    json_object_del(r, "booking");
    cr_expect(!confirmation_build(&c, r, NULL, NULL));
    confirmation_free(&c);
    json_decref(r);
}
