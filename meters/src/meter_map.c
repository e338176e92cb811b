/*
 * Register maps: which block reads fetch a map's fields, and the decoding of those blocks into
 * a poll's values. Shared by the Eastron profiles and the maps users define in config.
 */
#include "mgx/meter_map.h"
#include "mgx/meter_error.h"

#include <stdlib.h>
#include <string.h>

static const mtr_field *field_at(const mtr_map *m, int i)
{
    const mtr_field *f[4] = {&m->power, &m->import, &m->export, &m->soc};
    return f[i];
}

static int cmp_field(const void *a, const void *b)
{
    const mtr_field *x = *(const mtr_field *const *)a, *y = *(const mtr_field *const *)b;
    if (x->fc != y->fc)
        return x->fc < y->fc ? -1 : 1;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int mtr_map_plan(const mtr_map *map, mtr_plan *plan)
{
    const mtr_field *sorted[4];
    size_t n = 0;
    unsigned max = map->max_regs >= 2 && map->max_regs <= MTR_READ_MAX ? map->max_regs
                                                                          : MTR_READ_MAX;
    plan->n = 0;
    if (!map->power.present)
        return MTR_E_INVAL;
    for (int i = 0; i < 4; i++) {
        const mtr_field *f = field_at(map, i);
        if (!f->present)
            continue;
        if ((unsigned)f->addr + mtr_reg_words(f->type) > 65536u || (f->fc != 3 && f->fc != 4))
            return MTR_E_RANGE;
        sorted[n++] = f;
    }
    qsort(sorted, n, sizeof sorted[0], cmp_field);
    for (size_t i = 0; i < n; i++) {
        const mtr_field *f = sorted[i];
        unsigned end = (unsigned)f->addr + mtr_reg_words(f->type);
        mtr_block *b = plan->n ? &plan->b[plan->n - 1] : NULL;
        if (b && b->fc == f->fc && end - b->addr <= max) {
            if (end > (unsigned)b->addr + b->count)
                b->count = (uint16_t)(end - b->addr);
            continue;
        }
        if (plan->n == MTR_PLAN_MAX)
            return MTR_E_RANGE;
        plan->b[plan->n++] = (mtr_block){f->fc, f->addr, (uint16_t)(end - f->addr)};
    }
    return MTR_OK;
}

/* Decodes f from whichever planned block holds it. */
static uint32_t decode(const mtr_field *f, const mtr_plan *plan, const uint16_t *const *blocks,
                       int64_t *out, int64_t *wrap, int64_t *tick)
{
    for (size_t i = 0; i < plan->n; i++) {
        const mtr_block *b = &plan->b[i];
        if (b->fc == f->fc && f->addr >= b->addr &&
            (unsigned)f->addr + mtr_reg_words(f->type) <= (unsigned)b->addr + b->count)
            return mtr_field_decode(f, blocks[i], b->addr, b->count, out, wrap, tick);
    }
    *out = 0;
    return MTR_Q_COMM;
}

static void decode_counter(const mtr_field *f, const mtr_plan *plan,
                           const uint16_t *const *blocks, int64_t *wh, uint32_t *q, int64_t *wrap,
                           int64_t *tick)
{
    *wh = 0;
    *q = 0;
    *wrap = 0;
    *tick = 1;
    if (f->present)
        *q = decode(f, plan, blocks, wh, wrap, tick);
}

void mtr_map_decode(const mtr_map *map, const mtr_plan *plan, const uint16_t *const *blocks,
                    mtr_values *v)
{
    memset(v, 0, sizeof *v);
    v->power_q = decode(&map->power, plan, blocks, &v->power_w, NULL, NULL);
    if (map->export_positive)
        v->power_w = -v->power_w;
    decode_counter(&map->import, plan, blocks, &v->import_wh, &v->import_q, &v->import_wrap_wh,
                   &v->import_tick_wh);
    decode_counter(&map->export, plan, blocks, &v->export_wh, &v->export_q, &v->export_wrap_wh,
                   &v->export_tick_wh);
    if (map->soc.present) {
        /* the scale gives percent; permille keeps one more digit: scale x 10 */
        mtr_field f = map->soc;
        int64_t permille = 0;
        if (f.scale.exp10 < MTR_SCALE_EXP_MAX)
            f.scale.exp10++;
        v->has_soc = 1;
        v->soc_q = decode(&f, plan, blocks, &permille, NULL, NULL);
        if (!v->soc_q && (permille < 0 || permille > 1000))
            v->soc_q = MTR_Q_RANGE;
        v->soc_permille = v->soc_q ? -1 : (int32_t)permille;
    }
}
