/* The JSON of the model's values (values.h). */
#include "dispatcher/core/values.h"

#include "base/timeutil.h"
#include "dispatcher/core/model.h"

json_t *value_time_json_in(const struct timeutil_zone *zone, int64_t utc)
{
    char buf[TIMEUTIL_RFC3339_SIZE];
    if (!zone || !timeutil_format_rfc3339(zone, utc, buf, sizeof(buf)))
        return json_null();
    return json_string(buf);
}

json_t *value_time_json(const struct territory *t, int64_t utc)
{
    return value_time_json_in(t->zone, utc);
}

json_t *value_bits_json(uint8_t bits, const char *(*name)(uint8_t))
{
    json_t *a = json_array();
    for (int i = 0; i < 8; i++)
        if (bits & (1u << i))
            json_array_append_new(a, json_string(name((uint8_t)(1u << i))));
    return a;
}

json_t *value_priority_json(uint8_t bits)
{
    json_t *a = json_array();
    if (bits & PRIORITY_ALD)
        json_array_append_new(a, json_string("ald"));
    if (bits & PRIORITY_C2S)
        json_array_append_new(a, json_string("c2s"));
    if (bits & PRIORITY_AGED_70_PLUS)
        json_array_append_new(a, json_string("aged_70_plus"));
    return a;
}
