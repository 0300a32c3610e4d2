#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/validate.h"

/* RPPS numbers of the demo territory, checksums computed independently. */
static const char *const good_rpps[] = {
    "10999900011", "10999900029", "10999900037", "10999900045",
    "10999900102", "10999900144", "10000000009",
};

Test(validate, rpps_accepts_valid_numbers)
{
    for (size_t i = 0; i < sizeof(good_rpps) / sizeof(good_rpps[0]); i++)
        cr_expect(validate_rpps(good_rpps[i]), "%s should be valid", good_rpps[i]);
}

Test(validate, rpps_single_digit_change_breaks_luhn)
{
    char buf[12];
    for (size_t pos = 0; pos < 11; pos++) {
        for (char d = '0'; d <= '9'; d++) {
            memcpy(buf, "10999900011", sizeof(buf));
            if (buf[pos] == d)
                continue;
            buf[pos] = d;
            cr_expect_not(validate_rpps(buf), "%s should be refused", buf);
        }
    }
}

Test(validate, rpps_adjacent_swap_is_detected)
{
    /* Luhn catches swaps of adjacent digits except 09 <-> 90. */
    cr_expect_not(validate_rpps("10999900101")); /* ...011 -> ...101 */
    cr_expect_not(validate_rpps("01999900011"));
}

Test(validate, rpps_refuses_bad_shapes)
{
    cr_expect_not(validate_rpps(NULL));
    cr_expect_not(validate_rpps(""));
    cr_expect_not(validate_rpps("1099990001"));   /* 10 digits */
    cr_expect_not(validate_rpps("109999000110")); /* 12 digits */
    cr_expect_not(validate_rpps("1099990001a"));
    cr_expect_not(validate_rpps(" 10999900011"));
    cr_expect_not(validate_rpps("10999900011 "));
    cr_expect_not(validate_rpps("10 999900011"));
    cr_expect_not(validate_rpps("810999900011")); /* the SAS platform's prefixed form */
}

Test(validate, finess_accepts_valid_numbers)
{
    /* Large public establishments (legal entities) and the demo's numbers. */
    cr_expect(validate_finess("750712184")); /* AP-HP */
    cr_expect(validate_finess("350005179")); /* CHU de Rennes */
    cr_expect(validate_finess("440000289")); /* CHU de Nantes */
    cr_expect(validate_finess("350990016"));
    cr_expect(validate_finess("560990012"));
    cr_expect(validate_finess("970990016")); /* overseas départements start with 97 */
}

Test(validate, finess_single_digit_change_breaks_luhn)
{
    char buf[10];
    for (size_t pos = 0; pos < 9; pos++) {
        for (char d = '0'; d <= '9'; d++) {
            memcpy(buf, "350005179", sizeof(buf));
            if (buf[pos] == d)
                continue;
            buf[pos] = d;
            cr_expect_not(validate_finess(buf), "%s should be refused", buf);
        }
    }
}

Test(validate, finess_corsica)
{
    /* Key computed with 2A counting as 21 and 2B as 22 (see validate.h). */
    cr_expect(validate_finess("2A0099016"));
    cr_expect(validate_finess("2B0099014"));
    cr_expect(validate_finess("2A0000014"));
    cr_expect(validate_finess("2B0000012"));
    cr_expect_not(validate_finess("2A0099014"));
    cr_expect_not(validate_finess("2B0099016"));
    /* The same digits with the pre-1976 "20" are a different number. */
    cr_expect_not(validate_finess("200099016"));
    /* Letters only in second position, only after 2, only upper case. */
    cr_expect_not(validate_finess("2a0099016"));
    cr_expect_not(validate_finess("3A0099016"));
    cr_expect_not(validate_finess("A20099016"));
    cr_expect_not(validate_finess("2C0099016"));
    cr_expect_not(validate_finess("2A0A99016"));
}

Test(validate, finess_refuses_bad_shapes)
{
    cr_expect_not(validate_finess(NULL));
    cr_expect_not(validate_finess(""));
    cr_expect_not(validate_finess("35000517"));
    cr_expect_not(validate_finess("3500051790"));
    cr_expect_not(validate_finess("35000517 "));
    cr_expect_not(validate_finess("1350005179")); /* the SAS platform's prefixed form */
}

Test(validate, insee_commune)
{
    cr_expect(validate_insee_commune("35236")); /* Redon */
    cr_expect(validate_insee_commune("44185")); /* Saint-Nicolas-de-Redon */
    cr_expect(validate_insee_commune("56001")); /* Allaire */
    cr_expect(validate_insee_commune("2A004")); /* Ajaccio */
    cr_expect(validate_insee_commune("2B033")); /* Bastia */
    cr_expect(validate_insee_commune("97411")); /* Saint-Denis, La Réunion */
    cr_expect(validate_insee_commune("75056"));

    cr_expect_not(validate_insee_commune(NULL));
    cr_expect_not(validate_insee_commune(""));
    cr_expect_not(validate_insee_commune("3523"));
    cr_expect_not(validate_insee_commune("352360"));
    cr_expect_not(validate_insee_commune("2a004"));
    cr_expect_not(validate_insee_commune("2C004"));
    cr_expect_not(validate_insee_commune("2A0B4"));
    cr_expect_not(validate_insee_commune("20004")); /* Corsica before 1976 */
    cr_expect_not(validate_insee_commune("00123"));
    cr_expect_not(validate_insee_commune("35000"));
    cr_expect_not(validate_insee_commune("3523 "));
    cr_expect_not(validate_insee_commune("A5236"));
}

Test(validate, coordinates)
{
    cr_expect(validate_coordinates(47.651, -2.084));
    cr_expect(validate_coordinates(90.0, 180.0));
    cr_expect(validate_coordinates(-90.0, -180.0));
    cr_expect(validate_coordinates(0.0, 0.0));
    cr_expect_not(validate_coordinates(90.0001, 0.0));
    cr_expect_not(validate_coordinates(-90.0001, 0.0));
    cr_expect_not(validate_coordinates(0.0, 180.0001));
    cr_expect_not(validate_coordinates(0.0, -180.0001));
    cr_expect_not(validate_coordinates(NAN, 0.0));
    cr_expect_not(validate_coordinates(0.0, NAN));
    cr_expect_not(validate_coordinates(INFINITY, 0.0));
    cr_expect_not(validate_coordinates(0.0, -INFINITY));
}

Test(validate, coordinates_france)
{
    cr_expect(validate_coordinates_france(47.6514, -2.0848));  /* Redon */
    cr_expect(validate_coordinates_france(48.8566, 2.3522));   /* Paris */
    cr_expect(validate_coordinates_france(51.0700, 2.5200));   /* Bray-Dunes */
    cr_expect(validate_coordinates_france(48.4600, -5.0900));  /* Ouessant */
    cr_expect(validate_coordinates_france(48.9700, 8.2300));   /* Lauterbourg */
    cr_expect(validate_coordinates_france(41.3900, 9.1600));   /* Bonifacio */
    cr_expect(validate_coordinates_france(16.2411, -61.5331)); /* Pointe-à-Pitre */
    cr_expect(validate_coordinates_france(14.6161, -61.0588)); /* Fort-de-France */
    cr_expect(validate_coordinates_france(4.9372, -52.3260));  /* Cayenne */
    cr_expect(validate_coordinates_france(-20.8789, 55.4481)); /* Saint-Denis */
    cr_expect(validate_coordinates_france(-12.7806, 45.2278)); /* Mamoudzou */

    /* Swapped latitude and longitude, a common mistake, lands outside. */
    cr_expect_not(validate_coordinates_france(-2.0848, 47.6514));
    cr_expect_not(validate_coordinates_france(40.4168, -3.7038)); /* Madrid */
    cr_expect_not(validate_coordinates_france(51.5072, -0.1276)); /* London */
    cr_expect_not(validate_coordinates_france(0.0, 0.0));
    cr_expect_not(validate_coordinates_france(NAN, -2.0));
    cr_expect_not(validate_coordinates_france(47.6, INFINITY));
}

Test(validate, phone_fr_accepts)
{
    cr_expect(validate_phone_fr("0299123456"));
    cr_expect(validate_phone_fr("02 99 12 34 56"));
    cr_expect(validate_phone_fr("02.99.12.34.56"));
    cr_expect(validate_phone_fr("06 12 34 56 78"));
    cr_expect(validate_phone_fr("0912345678"));
    cr_expect(validate_phone_fr("+33299123456"));
    cr_expect(validate_phone_fr("+33 2 99 12 34 56"));
    cr_expect(validate_phone_fr("+33 299123456"));
    cr_expect(validate_phone_fr("+336.12.34.56.78"));
}

Test(validate, phone_fr_refuses)
{
    cr_expect_not(validate_phone_fr(NULL));
    cr_expect_not(validate_phone_fr(""));
    cr_expect_not(validate_phone_fr("15"));
    cr_expect_not(validate_phone_fr("116117"));
    cr_expect_not(validate_phone_fr("029912345"));   /* 9 digits */
    cr_expect_not(validate_phone_fr("02991234567")); /* 11 digits */
    cr_expect_not(validate_phone_fr("2991234567"));  /* no leading 0 */
    cr_expect_not(validate_phone_fr("0099123456"));  /* international prefix */
    cr_expect_not(validate_phone_fr("0033299123456"));
    cr_expect_not(validate_phone_fr("+330299123456")); /* zero kept after +33 */
    cr_expect_not(validate_phone_fr("+33 (0)2 99 12 34 56"));
    cr_expect_not(validate_phone_fr("+32299123456"));
    cr_expect_not(validate_phone_fr("+3329912345"));
    cr_expect_not(validate_phone_fr("02  99 12 34 56")); /* double separator */
    cr_expect_not(validate_phone_fr(" 0299123456"));
    cr_expect_not(validate_phone_fr("0299123456 "));
    cr_expect_not(validate_phone_fr("02-99-12-34-56"));
    cr_expect_not(validate_phone_fr("02 99 12 34 5x"));
    cr_expect_not(validate_phone_fr("+33  299123456"));
}

Test(validate, territory_id)
{
    cr_expect(validate_territory_id("demo-redon"));
    cr_expect(validate_territory_id("demo-sas-35"));
    cr_expect(validate_territory_id("ab"));
    cr_expect(validate_territory_id("0a"));
    cr_expect(validate_territory_id("a-"));

    char longest[64];
    memset(longest, 'a', 63);
    longest[63] = '\0';
    cr_expect(validate_territory_id(longest));
    char too_long[65];
    memset(too_long, 'a', 64);
    too_long[64] = '\0';
    cr_expect_not(validate_territory_id(too_long));

    cr_expect_not(validate_territory_id(NULL));
    cr_expect_not(validate_territory_id(""));
    cr_expect_not(validate_territory_id("a"));
    cr_expect_not(validate_territory_id("-redon"));
    cr_expect_not(validate_territory_id("Redon"));
    cr_expect_not(validate_territory_id("demo_redon"));
    cr_expect_not(validate_territory_id("demo redon"));
    cr_expect_not(validate_territory_id("démo"));
}
