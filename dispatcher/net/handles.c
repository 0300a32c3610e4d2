#include "dispatcher/net/handles.h"

static char own_tag;

void handle_mark_own(uv_handle_t *h)
{
    h->data = &own_tag;
}

static void count_foreign(uv_handle_t *h, void *arg)
{
    int *n = arg;
    if (h->data != &own_tag)
        (*n)++;
}

int handle_count_foreign(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, count_foreign, &n);
    return n;
}
