/*
 * Interval keys, gate closure and the accelerated clock (see interval.h). Everything is integer
 * arithmetic on UTC instants with floor division, so the answers are the same on every machine
 * and in every time zone.
 */
#include "common/interval.h"

#include "mgx/civil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ctl_interval_strerror(int code)
{
    switch (code) {
    case CTL_IV_OK:
        return "ok";
    case CTL_IV_E_INVAL:
        return "interval rules or time out of range";
    case CTL_IV_E_GATE_CLOSED:
        return "gate closed for that interval";
    case CTL_IV_E_TOO_FAR:
        return "interval too far ahead";
    default:
        return "unknown interval error";
    }
}

int ctl_interval_rules_check(const ctl_interval_rules *r)
{
    if (!r || r->length_s < 1 || r->length_s > CTL_INTERVAL_MAX_LEN_S || r->gate_closure_s < 0 ||
        r->gate_closure_s > CTL_INTERVAL_MAX_GATE_S || r->max_ahead < 0 ||
        r->max_ahead > CTL_INTERVAL_MAX_AHEAD)
        return CTL_IV_E_INVAL;
    return CTL_IV_OK;
}

int64_t ctl_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t ctl_interval_id(int64_t utc_s, int64_t length_s)
{
    return ctl_floor_div(utc_s, length_s);
}

int64_t ctl_interval_start(int64_t id, int64_t length_s)
{
    return id * length_s;
}

int64_t ctl_interval_end(int64_t id, int64_t length_s)
{
    return (id + 1) * length_s;
}

int64_t ctl_interval_gate(int64_t id, const ctl_interval_rules *r)
{
    return ctl_interval_start(id, r->length_s) - r->gate_closure_s;
}

int64_t ctl_interval_first_open(int64_t utc_s, const ctl_interval_rules *r)
{
    /* gate(i) > t  <=>  i * L > t + g  <=>  i > floor((t + g) / L) */
    return ctl_floor_div(utc_s + r->gate_closure_s, r->length_s) + 1;
}

int ctl_interval_admit(int64_t id, int64_t utc_s, const ctl_interval_rules *r)
{
    int64_t first = ctl_interval_first_open(utc_s, r);
    if (id < first)
        return CTL_IV_E_GATE_CLOSED;
    int64_t ahead;
    if (__builtin_sub_overflow(id, first, &ahead) || ahead > r->max_ahead)
        return CTL_IV_E_TOO_FAR;
    return CTL_IV_OK;
}

int64_t ctl_interval_due(int64_t last_cleared, int64_t first_ever, int64_t utc_s,
                         const ctl_interval_rules *r, int64_t *from, int64_t *to)
{
    int64_t last_closed = ctl_interval_first_open(utc_s, r) - 1;
    int64_t f = last_cleared == INT64_MIN ? INT64_MIN : last_cleared + 1;
    if (f < first_ever)
        f = first_ever;
    if (f == INT64_MIN) /* nothing cleared and no lower bound: only the latest closed one */
        f = last_closed;
    *from = f;
    *to = last_closed;
    return last_closed >= f ? last_closed - f + 1 : 0;
}

static int64_t clamp_ms(int64_t v)
{
    const int64_t lim = CTL_TIME_MAX_S * 1000;
    return v > lim ? lim : v < -lim ? -lim : v;
}

int64_t ctl_clock_sim_ms(const ctl_clock *c, int64_t real_ms)
{
    int64_t d;
    if (__builtin_sub_overflow(real_ms, c->real0_ms, &d) ||
        __builtin_mul_overflow(d, c->speed, &d) || __builtin_add_overflow(c->sim0_ms, d, &d))
        return (real_ms >= c->real0_ms) ? clamp_ms(INT64_MAX) : clamp_ms(INT64_MIN);
    return clamp_ms(d);
}

int64_t ctl_clock_real_ms(const ctl_clock *c, int64_t sim_ms)
{
    int64_t d;
    if (__builtin_sub_overflow(sim_ms, c->sim0_ms, &d))
        return sim_ms >= c->sim0_ms ? INT64_MAX : INT64_MIN;
    /* ceil(d / speed), so the simulated clock has reached sim_ms at the returned time */
    int64_t q = -ctl_floor_div(-d, c->speed);
    int64_t r;
    if (__builtin_add_overflow(c->real0_ms, q, &r))
        return q > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int parse_int(const char *s, int64_t *out)
{
    if (!*s || strlen(s) > 20)
        return -1;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s || (*s != '-' && (*s < '0' || *s > '9')))
        return -1;
    *out = v;
    return 0;
}

int ctl_parse_utc(const char *s, int64_t *utc_s)
{
    if (!s)
        return CTL_IV_E_INVAL;
    int64_t v;
    if (parse_int(s, &v) == 0) {
        if (v < -CTL_TIME_MAX_S || v > CTL_TIME_MAX_S)
            return CTL_IV_E_INVAL;
        *utc_s = v;
        return CTL_IV_OK;
    }
    int y, mo, d, h, mi, se, n = 0;
    if (strlen(s) != 20 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n != 20)
        return CTL_IV_E_INVAL;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mkt_days_in_month(y, mo) || h > 23 ||
        mi > 59 || se > 59 || h < 0 || mi < 0 || se < 0)
        return CTL_IV_E_INVAL;
    *utc_s = mkt_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return CTL_IV_OK;
}

int ctl_clock_parse_anchor(const char *s, ctl_clock *c)
{
    if (!s || !c)
        return CTL_IV_E_INVAL;
    const char *colon = strchr(s, ':');
    if (!colon || (size_t)(colon - s) > 20)
        return CTL_IV_E_INVAL;
    char real[24];
    memcpy(real, s, (size_t)(colon - s));
    real[colon - s] = '\0';
    int64_t r, sim;
    if (parse_int(real, &r) || r < 0 || r > CTL_TIME_MAX_S || ctl_parse_utc(colon + 1, &sim))
        return CTL_IV_E_INVAL;
    c->real0_ms = r * 1000;
    c->sim0_ms = sim * 1000;
    return CTL_IV_OK;
}
