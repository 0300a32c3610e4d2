#include "base/validate.h"

#include <math.h>
#include <stddef.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Returns the Luhn sum of `n` digit values, the rightmost one (the check
 * digit) not doubled.  The number is valid when the sum is a multiple of 10.
 */
static unsigned luhn_sum(const unsigned char *digits, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = digits[n - 1 - i];
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum;
}

bool validate_rpps(const char *s)
{
    unsigned char digits[11];

    if (s == NULL)
        return false;
    for (size_t i = 0; i < sizeof(digits); i++) {
        if (!is_digit(s[i]))
            return false;
        digits[i] = (unsigned char)(s[i] - '0');
    }
    if (s[sizeof(digits)] != '\0')
        return false;
    return luhn_sum(digits, sizeof(digits)) % 10 == 0;
}

bool validate_finess(const char *s)
{
    unsigned char digits[9];

    if (s == NULL)
        return false;
    for (size_t i = 0; i < sizeof(digits); i++) {
        char c = s[i];
        if (is_digit(c)) {
            digits[i] = (unsigned char)(c - '0');
        } else if (i == 1 && s[0] == '2' && (c == 'A' || c == 'B')) {
            /* Corsica: the letter counts as its rank (see validate.h). */
            digits[i] = (unsigned char)(c - 'A' + 1);
        } else {
            return false;
        }
    }
    if (s[sizeof(digits)] != '\0')
        return false;
    return luhn_sum(digits, sizeof(digits)) % 10 == 0;
}

bool validate_insee_commune(const char *s)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < 5; i++) {
        if (s[i] == '\0')
            return false;
    }
    if (s[5] != '\0')
        return false;

    if (s[0] == '2' && (s[1] == 'A' || s[1] == 'B')) {
        /* Corsican département: fine as it is. */
    } else if (is_digit(s[0]) && is_digit(s[1])) {
        if ((s[0] == '0' && s[1] == '0') || (s[0] == '2' && s[1] == '0'))
            return false;
    } else {
        return false;
    }
    if (!is_digit(s[2]) || !is_digit(s[3]) || !is_digit(s[4]))
        return false;
    return !(s[2] == '0' && s[3] == '0' && s[4] == '0');
}

bool validate_coordinates(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 && lon >= -180.0 &&
           lon <= 180.0;
}

struct box {
    double lat_min, lat_max, lon_min, lon_max;
};

/* Generous rectangles around the land, in degrees (WGS84). */
static const struct box france_boxes[] = {
    {41.30, 51.15, -5.25, 9.60},    /* metropolitan France and Corsica */
    {15.80, 16.55, -61.85, -60.95}, /* Guadeloupe, Marie-Galante, La Désirade */
    {14.35, 14.90, -61.25, -60.80}, /* Martinique */
    {2.10, 5.80, -54.65, -51.60},   /* French Guiana */
    {-21.40, -20.85, 55.20, 55.85}, /* La Réunion */
    {-13.05, -12.60, 44.95, 45.35}, /* Mayotte */
};

bool validate_coordinates_france(double lat, double lon)
{
    if (!validate_coordinates(lat, lon))
        return false;
    for (size_t i = 0; i < sizeof(france_boxes) / sizeof(france_boxes[0]); i++) {
        const struct box *b = &france_boxes[i];
        if (lat >= b->lat_min && lat <= b->lat_max && lon >= b->lon_min && lon <= b->lon_max)
            return true;
    }
    return false;
}

bool validate_phone_fr(const char *s)
{
    size_t ndigits = 0, want;
    const char *p;
    bool after_digit = false;
    char first = 0;

    if (s == NULL)
        return false;
    if (s[0] == '+') {
        if (s[1] != '3' || s[2] != '3')
            return false;
        p = s + 3;
        if (*p == ' ')
            p++;
        want = 9;
    } else {
        if (s[0] != '0')
            return false;
        p = s;
        want = 10;
    }

    for (; *p != '\0'; p++) {
        if (is_digit(*p)) {
            if (ndigits == 0)
                first = *p;
            else if (ndigits == 1 && want == 10 && *p == '0')
                return false; /* 00 is the international prefix */
            ndigits++;
            after_digit = true;
        } else if ((*p == ' ' || *p == '.') && after_digit && is_digit(p[1])) {
            after_digit = false;
        } else {
            return false;
        }
    }
    if (ndigits != want)
        return false;
    /* In the +33 form the first digit is the one after the dropped zero. */
    return want == 10 || first != '0';
}

bool validate_territory_id(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || is_digit(c) || (c == '-' && n > 0);
        if (!ok || n >= 63)
            return false;
    }
    return n >= 2;
}
