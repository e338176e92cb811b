/*
 * Property tests of reconciliation over random intervals (10^6 by default; MGX_INTERVALS and
 * MGX_SEED override, the sanitizer build runs fewer). Every invariant of docs/settlement-rules.md
 * is checked exactly on every interval:
 *   - per trade: 0 <= delivered <= contracted; money is the contract scaled by
 *     delivered/contracted, floored; paid = received + fee + rounding with rounding 0 or 1;
 *     never more than the contract;
 *   - per participant: local sold <= export and local bought <= import (0 when held); metered
 *     energy = local + grid exactly; grid money at the tariffs; held positions move no money;
 *   - a trade is cut only if its seller or its buyer is short (held or metered below contract);
 *     a short seller whose buyers are all covered delivers exactly its export, split pro rata
 *     (each share within 1 Wh of the exact fraction), and the same for buyers;
 *   - totals equal the sums over trades and over positions; the interval balances:
 *     paid = received + fees + rounding; energy sold = energy bought;
 *   - the result does not depend on the order of the meter records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgx/reconcile.h"

#ifndef MGX_PROP_INTERVALS
#define MGX_PROP_INTERVALS 1000000
#endif

#define MAXP 8
#define MAXT 14

static uint64_t next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next(s) % (uint64_t)(hi - lo + 1));
}

typedef struct {
    stl_tariffs tf;
    mkt_trade t[MAXT];
    size_t nt;
    stl_metered m[MAXP];
    size_t nm;
} interval;

static void gen(uint64_t *s, interval *iv)
{
    memset(iv, 0, sizeof *iv);
    int scale = (int)range(s, 0, 9); /* mostly small numbers, sometimes huge */
    int64_t emax = scale == 0 ? INT64_C(1000000000000) : scale < 3 ? 5 : 3000;
    int64_t pmax = scale == 0 ? 1000000 : scale == 1 ? INT64_C(1000000000000) : 400000;
    iv->tf.feed_in_uc_per_kwh = range(s, 0, pmax / 2);
    iv->tf.retail_uc_per_kwh = range(s, iv->tf.feed_in_uc_per_kwh, pmax);
    iv->tf.network_fee_uc_per_kwh = range(s, 0, 3) == 0 ? 0 : range(s, 0, pmax / 10);
    uint64_t ids[MAXP];
    int np = (int)range(s, 2, MAXP);
    for (int i = 0; i < np; i++)
        ids[i] = range(s, 0, 3) == 0 ? next(s) : (uint64_t)i * 7 + 1;
    iv->nt = (size_t)range(s, 0, MAXT);
    for (size_t k = 0; k < iv->nt; k++) {
        mkt_trade *t = &iv->t[k];
        int a = (int)range(s, 0, np - 1), b = (int)range(s, 0, np - 2);
        if (b >= a)
            b++;
        if (ids[a] == ids[b]) { /* random ids may collide: drop the trade */
            k--, iv->nt--;
            continue;
        }
        t->seller = ids[a];
        t->buyer = ids[b];
        t->energy_wh = range(s, 1, emax);
        t->price_uc_per_kwh = range(s, 0, pmax);
        if (stl_muldiv(t->energy_wh, t->price_uc_per_kwh, 1000, &t->amount_uc) ||
            stl_muldiv(t->energy_wh, iv->tf.network_fee_uc_per_kwh, 1000, &t->fee_uc) ||
            t->amount_uc > INT64_MAX / 2 || t->fee_uc > INT64_MAX / 2) {
            t->price_uc_per_kwh = 1;
            t->amount_uc = t->energy_wh / 1000;
            assert_int_equal(stl_muldiv(t->energy_wh, iv->tf.network_fee_uc_per_kwh, 1000,
                                        &t->fee_uc), 0);
        }
    }
    for (int i = 0; i < np; i++) {
        if (range(s, 0, 9) == 0)
            continue; /* missing reading */
        int dup = 0;
        for (size_t j = 0; j < iv->nm; j++)
            dup |= iv->m[j].participant == ids[i];
        if (dup)
            continue;
        stl_metered *m = &iv->m[iv->nm++];
        m->participant = ids[i];
        int64_t sold = 0, bought = 0;
        for (size_t k = 0; k < iv->nt; k++) {
            if (iv->t[k].seller == ids[i])
                sold += iv->t[k].energy_wh;
            if (iv->t[k].buyer == ids[i])
                bought += iv->t[k].energy_wh;
        }
        /* around the contract: short, exact or long */
        int mode = (int)range(s, 0, 3);
        int64_t ex = mode == 0 ? range(s, 0, sold) : mode == 1 ? sold : sold + range(s, 0, emax);
        mode = (int)range(s, 0, 3);
        int64_t im = mode == 0 ? range(s, 0, bought) : mode == 1 ? bought : bought + range(s, 0, emax);
        m->export_wh = ex > STL_METER_MAX_WH ? STL_METER_MAX_WH : ex;
        m->import_wh = im > STL_METER_MAX_WH ? STL_METER_MAX_WH : im;
        m->quality = range(s, 0, 11) == 0 ? (uint32_t)range(s, 1, 255) : 0;
    }
}

static const stl_position *find(const stl_position *p, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].participant == id)
            return &p[i];
    return NULL;
}

static int short_seller(const stl_position *p)
{
    if (!p)
        fail_msg("a trade's seller has no position");
    return !p || p->status != STL_POS_GOOD || p->export_wh < p->contracted_sold_wh;
}

static int short_buyer(const stl_position *p)
{
    if (!p)
        fail_msg("a trade's buyer has no position");
    return !p || p->status != STL_POS_GOOD || p->import_wh < p->contracted_bought_wh;
}

/* d is within 1 Wh above floor(c * cap / sum) */
static void check_share(int64_t d, int64_t c, int64_t cap, int64_t sum)
{
    int64_t f = (int64_t)((__int128)c * cap / sum);
    assert_true(d == f || d == f + 1);
}

typedef struct {
    uint64_t n, overflow, cut, held, rounding;
} stats;

static void check(const interval *iv, const stl_reconciler *r, stats *st)
{
    size_t nt, np;
    const stl_settled_trade *s = stl_reconciled_trades(r, &nt);
    const stl_position *p = stl_reconciled_positions(r, &np);
    const stl_totals *tot = stl_reconciled_totals(r);
    assert_int_equal(nt, iv->nt);
    __int128 paid = 0, recv = 0, fees = 0, rnd = 0, deliv = 0, contr = 0;
    for (size_t k = 0; k < nt; k++) {
        const stl_settled_trade *t = &s[k];
        const mkt_trade *in = &iv->t[k];
        assert_true(t->seller == in->seller && t->buyer == in->buyer);
        assert_int_equal(t->contracted_wh, in->energy_wh);
        assert_true(t->delivered_wh >= 0 && t->delivered_wh <= t->contracted_wh);
        __int128 c = t->contracted_wh, d = t->delivered_wh;
        assert_true(t->received_uc == (int64_t)((__int128)in->amount_uc * d / c));
        assert_true(t->fee_uc == (int64_t)((__int128)in->fee_uc * d / c));
        assert_true(t->paid_uc == (int64_t)(((__int128)in->amount_uc + in->fee_uc) * d / c));
        assert_true(t->paid_uc == t->received_uc + t->fee_uc + t->rounding_uc);
        assert_true(t->rounding_uc == 0 || t->rounding_uc == 1);
        assert_true(t->received_uc <= in->amount_uc && t->fee_uc <= in->fee_uc);
        assert_true(t->paid_uc <= in->amount_uc + in->fee_uc);
        const stl_position *ps = find(p, np, t->seller), *pb = find(p, np, t->buyer);
        assert_non_null(ps);
        assert_non_null(pb);
        if (t->delivered_wh < t->contracted_wh) {
            assert_true(short_seller(ps) || short_buyer(pb));
            st->cut++;
        }
        paid += t->paid_uc, recv += t->received_uc, fees += t->fee_uc, rnd += t->rounding_uc;
        deliv += t->delivered_wh, contr += t->contracted_wh;
        st->rounding += (uint64_t)t->rounding_uc;
    }
    assert_true(paid == tot->paid_uc && recv == tot->received_uc && fees == tot->fees_uc);
    assert_true(rnd == tot->rounding_uc && deliv == tot->delivered_wh &&
                contr == tot->contracted_wh);
    assert_true(tot->paid_uc == tot->received_uc + tot->fees_uc + tot->rounding_uc);

    /* positions: one per participant seen, ascending */
    __int128 sold = 0, bought = 0, gb = 0, gs = 0, gp = 0, gr = 0, lp = 0, lr = 0, fp = 0;
    uint32_t held = 0;
    for (size_t i = 0; i < np; i++) {
        const stl_position *x = &p[i];
        if (i)
            assert_true(p[i - 1].participant < x->participant);
        const stl_metered *m = NULL;
        for (size_t j = 0; j < iv->nm; j++)
            if (iv->m[j].participant == x->participant)
                m = &iv->m[j];
        int64_t csold = 0, cbought = 0, dsold = 0, dbought = 0, rec = 0, pay = 0, fee = 0;
        for (size_t k = 0; k < nt; k++) {
            if (s[k].seller == x->participant)
                csold += s[k].contracted_wh, dsold += s[k].delivered_wh, rec += s[k].received_uc;
            if (s[k].buyer == x->participant)
                cbought += s[k].contracted_wh, dbought += s[k].delivered_wh,
                    pay += s[k].paid_uc, fee += s[k].fee_uc;
        }
        assert_true(m || csold || cbought);
        assert_int_equal(x->contracted_sold_wh, csold);
        assert_int_equal(x->contracted_bought_wh, cbought);
        assert_int_equal(x->local_sold_wh, dsold);
        assert_int_equal(x->local_bought_wh, dbought);
        assert_int_equal(x->local_received_uc, rec);
        assert_int_equal(x->local_paid_uc, pay);
        assert_int_equal(x->fee_paid_uc, fee);
        if (!m)
            assert_int_equal(x->status, STL_POS_MISSING);
        else
            assert_int_equal(x->status, m->quality ? STL_POS_FLAGGED : STL_POS_GOOD);
        if (x->status != STL_POS_GOOD) {
            held++;
            assert_true((dsold | dbought | x->grid_bought_wh | x->grid_sold_wh |
                         x->grid_paid_uc | x->grid_received_uc | rec | pay) == 0);
        } else {
            assert_true(dsold <= m->export_wh && dbought <= m->import_wh);
            assert_int_equal(x->export_wh, dsold + x->grid_sold_wh);
            assert_int_equal(x->import_wh, dbought + x->grid_bought_wh);
            assert_true(x->grid_sold_wh >= 0 && x->grid_bought_wh >= 0);
            assert_true(x->grid_paid_uc ==
                        (int64_t)((__int128)x->grid_bought_wh * iv->tf.retail_uc_per_kwh / 1000));
            assert_true(x->grid_received_uc ==
                        (int64_t)((__int128)x->grid_sold_wh * iv->tf.feed_in_uc_per_kwh / 1000));
            gb += x->grid_bought_wh, gs += x->grid_sold_wh;
            gp += x->grid_paid_uc, gr += x->grid_received_uc;
        }
        sold += dsold, bought += dbought, lp += pay, lr += rec, fp += fee;

        /* pro rata: a short seller whose buyers are all covered delivers its whole export */
        if (x->status == STL_POS_GOOD && x->export_wh < csold) {
            int covered = 1;
            for (size_t k = 0; k < nt; k++)
                if (s[k].seller == x->participant)
                    covered &= !short_buyer(find(p, np, s[k].buyer));
            if (covered) {
                assert_int_equal(dsold, x->export_wh);
                for (size_t k = 0; k < nt; k++)
                    if (s[k].seller == x->participant)
                        check_share(s[k].delivered_wh, s[k].contracted_wh, x->export_wh, csold);
            }
        }
        if (x->status == STL_POS_GOOD && x->import_wh < cbought) {
            int covered = 1;
            for (size_t k = 0; k < nt; k++)
                if (s[k].buyer == x->participant)
                    covered &= !short_seller(find(p, np, s[k].seller));
            if (covered) {
                assert_int_equal(dbought, x->import_wh);
                for (size_t k = 0; k < nt; k++)
                    if (s[k].buyer == x->participant)
                        check_share(s[k].delivered_wh, s[k].contracted_wh, x->import_wh, cbought);
            }
        }
    }
    assert_true(sold == bought && sold == tot->delivered_wh);
    assert_true(gb == tot->grid_bought_wh && gs == tot->grid_sold_wh);
    assert_true(gp == tot->grid_paid_uc && gr == tot->grid_received_uc);
    assert_true(lp == tot->paid_uc && lr == tot->received_uc && fp == tot->fees_uc);
    assert_int_equal(held, tot->n_held);
    assert_int_equal(np, tot->n_positions);
    /* the community identity: participants' outflows = inflows + fees + rounding + grid net */
    assert_true(lp + gp == lr + gr + tot->fees_uc + tot->rounding_uc + (gp - gr));
    st->held += held;
}

static void random_intervals(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(20261122), n = MGX_PROP_INTERVALS;
    const char *env = getenv("MGX_SEED");
    if (env && *env)
        seed = strtoull(env, NULL, 0);
    env = getenv("MGX_INTERVALS");
    if (env && *env)
        n = strtoull(env, NULL, 0);
    printf("test_reconcile_props: seed %llu (MGX_SEED), %llu intervals (MGX_INTERVALS)\n",
           (unsigned long long)seed, (unsigned long long)n);
    stl_reconciler *r = stl_reconciler_new(MAXT, MAXP), *r2 = stl_reconciler_new(MAXT, MAXP);
    assert_non_null(r);
    assert_non_null(r2);
    uint64_t rng = seed;
    stats st = {0};
    interval iv;
    for (uint64_t i = 0; i < n; i++) {
        gen(&rng, &iv);
        int rc = stl_reconcile(r, &iv.tf, iv.t, iv.nt, iv.m, iv.nm, NULL);
        if (rc == STL_E_OVERFLOW) { /* huge grid amounts; must leave an empty result */
            st.overflow++;
            assert_int_equal(stl_reconciled_totals(r)->n_positions, 0);
            continue;
        }
        if (rc != STL_OK)
            fail_msg("interval %llu: %s", (unsigned long long)i, stl_strerror(rc));
        check(&iv, r, &st);
        st.n++;
        if (i % 16 == 0 && iv.nm > 1) { /* metamorphic: meter order does not matter */
            interval sh = iv;
            for (size_t k = sh.nm - 1; k > 0; k--) {
                size_t j = (size_t)(next(&rng) % (k + 1));
                stl_metered tmp = sh.m[k];
                sh.m[k] = sh.m[j];
                sh.m[j] = tmp;
            }
            assert_int_equal(stl_reconcile(r2, &sh.tf, sh.t, sh.nt, sh.m, sh.nm, NULL), STL_OK);
            size_t a, b;
            const stl_settled_trade *t1 = stl_reconciled_trades(r, &a), *t2 = stl_reconciled_trades(r2, &b);
            assert_int_equal(a, b);
            if (a)
                assert_memory_equal(t1, t2, a * sizeof *t1);
            const stl_position *p1 = stl_reconciled_positions(r, &a), *p2 = stl_reconciled_positions(r2, &b);
            assert_int_equal(a, b);
            assert_memory_equal(p1, p2, a * sizeof *p1);
        }
    }
    printf("intervals checked %llu (overflow rejected %llu); cut trades %llu, held positions "
           "%llu, rounding uc %llu\n",
           (unsigned long long)st.n, (unsigned long long)st.overflow, (unsigned long long)st.cut,
           (unsigned long long)st.held, (unsigned long long)st.rounding);
    /* the generator must reach the interesting cases */
    if (n >= 10000) {
        assert_true(st.n >= n * 9 / 10);
        assert_true(st.cut > n / 4);
        assert_true(st.held > n / 10);
        assert_true(st.rounding > n / 100);
    }
    stl_reconciler_free(r);
    stl_reconciler_free(r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_intervals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
