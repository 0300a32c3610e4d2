/*
 * Validation of the identifiers and values that enter snpd from outside:
 * national identifiers of professionals and establishments, commune codes,
 * coordinates, phone numbers and territory ids.
 *
 * Every function is pure: it reads its arguments, allocates nothing, keeps no
 * state and may be called from any thread.  A NULL string is never valid.
 * Strings must match exactly: no surrounding blanks, no lower-case letters
 * where upper case is expected.  Callers normalise user input (trim, upper
 * case) before validating it, so that what is stored is what was checked.
 */
#ifndef SNP_VALIDATE_H
#define SNP_VALIDATE_H

#include <stdbool.h>

#define VALIDATE_MUST_CHECK __attribute__((warn_unused_result))

/*
 * Returns true when `s` is an RPPS number: exactly 11 ASCII digits whose last
 * digit is the Luhn check digit of the ten before it (equivalently, the Luhn
 * sum of all 11 digits is a multiple of 10).  RPPS numbers handed out so far
 * start with "10", but that prefix is not required here.
 */
VALIDATE_MUST_CHECK bool validate_rpps(const char *s);

/*
 * Returns true when `s` is a FINESS number (an establishment or legal entity
 * of the national health and social establishment register): exactly 9
 * characters, the first two being the département ("01" to "95", "97"/"98"
 * for overseas, or "2A"/"2B" for Corsica; any two digits are accepted), the
 * next seven digits, the last one a Luhn check digit over all nine characters.
 *
 * For Corsica the letter is replaced by its rank in the alphabet before the
 * Luhn sum is taken: "2A" counts as "21" and "2B" as "22".  This rule is an
 * informed guess, not taken from the official specification, which could not
 * be consulted when this was written: it is the simplest substitution
 * consistent with the few Corsican FINESS numbers the author recalled from
 * public listings (2A0000014, 2B0000012, neither re-checked), whereas the
 * common guess "2A"/"2B" -> "20" is not.  Treat Corsican keys as best effort
 * until checked against the ANS documentation.  The rule for all-digit
 * numbers (plain Luhn over the nine digits) holds for every published number
 * recalled, e.g. 750712184 (AP-HP) and 350005179 (CHU de Rennes).
 */
VALIDATE_MUST_CHECK bool validate_finess(const char *s);

/*
 * Returns true when `s` is a current INSEE commune code: 5 characters, either
 * 5 digits or "2A"/"2B" followed by 3 digits.  Codes starting with "00" or
 * "20" (Corsica before 1976) and codes whose last three characters are "000"
 * are refused: no current commune has one.  Existence of the commune is not
 * checked; the commune table does that.
 */
VALIDATE_MUST_CHECK bool validate_insee_commune(const char *s);

/*
 * Returns true when (`lat`, `lon`) are finite WGS84 degrees with latitude in
 * [-90, 90] and longitude in [-180, 180].
 */
VALIDATE_MUST_CHECK bool validate_coordinates(double lat, double lon);

/*
 * Returns true when (`lat`, `lon`) are valid coordinates that fall in one of
 * the bounding boxes of metropolitan France (Corsica included), Guadeloupe,
 * Martinique, French Guiana, La Réunion or Mayotte.  The boxes are rectangles
 * slightly larger than the land: they also accept points at sea and a strip
 * of the neighbouring countries.  This guards against swapped or mistyped
 * coordinates, not against every point outside France.
 */
VALIDATE_MUST_CHECK bool validate_coordinates_france(double lat, double lon);

/*
 * Returns true when `s` is a French phone number written either nationally,
 * as 10 digits starting with "0" and then a non-zero digit ("0299123456"),
 * or internationally as "+33" followed by the 9 digits without the leading
 * zero ("+33299123456").  A single space or dot may separate any two digits,
 * and a single space may follow "+33" ("02 99 12 34 56", "02.99.12.34.56",
 * "+33 2 99 12 34 56").  Short numbers (15, 116117), the "0033" prefix and
 * the "+33 (0)" form are refused.
 */
VALIDATE_MUST_CHECK bool validate_phone_fr(const char *s);

/*
 * Returns true when `s` is a territory id: 2 to 63 characters, lower-case
 * ASCII letters, digits and hyphens, not starting with a hyphen, i.e. the
 * regular expression ^[a-z0-9][a-z0-9-]{1,62}$ that the database also checks.
 */
VALIDATE_MUST_CHECK bool validate_territory_id(const char *s);

#endif
