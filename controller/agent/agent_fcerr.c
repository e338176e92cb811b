/*
 * The home agent's forecast error (agent_fcerr.h).
 */
#include "agent/agent_fcerr.h"

#include <string.h>

static size_t slot(int64_t id)
{
    int64_t r = id % AGF_RING;
    return (size_t)(r < 0 ? r + AGF_RING : r);
}

void agf_init(agf_state *s)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < AGF_RING; i++)
        s->id[i] = INT64_MIN;
    s->last_id = INT64_MIN;
}

void agf_record(agf_state *s, int64_t interval_id, int64_t forecast_net_wh)
{
    size_t i = slot(interval_id);
    s->id[i] = interval_id;
    s->wh[i] = forecast_net_wh;
}

bool agf_observe(agf_state *s, int64_t interval_id, int64_t metered_net_wh)
{
    size_t i = slot(interval_id);
    if (s->id[i] != interval_id)
        return false;
    s->id[i] = INT64_MIN;
    int64_t e = metered_net_wh - s->wh[i];
    s->last_id = interval_id;
    s->last_forecast_wh = s->wh[i];
    s->last_metered_wh = metered_net_wh;
    s->last_abs_wh = e < 0 ? -e : e;
    s->scored++;
    s->abs_sum_wh += s->last_abs_wh;
    return true;
}

int64_t agf_mae_wh(const agf_state *s)
{
    if (s->scored == 0)
        return 0;
    return (s->abs_sum_wh + (int64_t)(s->scored / 2)) / (int64_t)s->scored;
}
