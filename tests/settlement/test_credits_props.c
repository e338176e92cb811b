/*
 * Property tests of the credit lifecycle (mgx/credits.h) over random intervals (10^6 by
 * default; MGX_INTERVALS and MGX_SEED override, the sanitizer build runs fewer). Each interval
 * has 1..8 homes with random statuses (good, flagged, missing, estimated, held), tiers and
 * minimum tier, and random trades; half the intervals deliver as reconciliation would (a good
 * seller never delivers beyond its export), half deliver anything (a seller below the tier or
 * short). Every conservation invariant is checked exactly, against sums this file computes
 * itself:
 *   - minted == export for good homes at or above the minimum tier, 0 for every other home;
 *     sum minted == verified export;
 *   - no transfer beyond a balance: each trade moves min(delivered, seller's minted left), the
 *     seller's running balance never goes negative, out <= minted; in == out summed;
 *     a seller at or above the tier delivering within its export moves every delivered Wh;
 *   - retired <= held (minted + in - out) and <= import; a good home retires exactly
 *     min(import, held) (every matchable Wh is matched); others retire nothing;
 *   - per trade retired <= moved, and own + per-trade retired == retired;
 *   - sum of kept (balances) == minted - retired; every record passes stl_credit_valid;
 *   - the totals equal the sums; leaving out the moves array gives the same records.
 * And the true-up (stl_credit_trueup): about a third of the held positions with export
 * (flagged, estimated, held) are resolved as good 1..20 intervals later, with the minimum tier
 * of the interval that carries the true-up; across the whole run, exactly:
 *   - every true-up record is valid, marked as a true-up, names the original position's log
 *     index, tier and status, mints its export at or above the minimum tier (else 0) and moves,
 *     retires nothing: kept == minted;
 *   - a position mints at most once: a resolved position minted nothing when it was settled;
 *   - sum minted (intervals + true-ups) == verified export including the resolved positions,
 *     and sum kept == sum minted - sum retired;
 *   - a good or missing position, or a log index beyond 32 bits, is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgx/credits.h"

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
    stl_position p[MAXP];
    size_t np;
    stl_settled_trade t[MAXT];
    size_t nt;
    uint8_t min_tier;
    int lawful; /* deliveries as reconciliation makes them */
} interval;

static const stl_pos_status STATUSES[] = {STL_POS_GOOD,    STL_POS_GOOD,    STL_POS_GOOD,
                                          STL_POS_FLAGGED, STL_POS_MISSING, STL_POS_ESTIMATED,
                                          STL_POS_HELD};

static void gen(uint64_t *s, interval *iv)
{
    memset(iv, 0, sizeof *iv);
    iv->np = (size_t)range(s, 1, MAXP);
    iv->min_tier = (uint8_t)range(s, 0, STL_TIER_MAX);
    iv->lawful = (int)range(s, 0, 1);
    int64_t big = range(s, 0, 9) == 0 ? INT64_C(1000000000000) : 5000;
    uint64_t id = (uint64_t)range(s, 0, 3);
    int64_t left[MAXP];
    for (size_t i = 0; i < iv->np; i++) {
        stl_position *p = &iv->p[i];
        p->participant = id;
        id += (uint64_t)range(s, 1, 1000);
        p->status = STATUSES[range(s, 0, 6)];
        p->tier = (uint8_t)range(s, 0, STL_TIER_MAX);
        p->import_wh = range(s, 0, 3) == 0 ? 0 : range(s, 0, big);
        p->export_wh = range(s, 0, 2) == 0 ? 0 : range(s, 0, big);
        if (p->status == STL_POS_MISSING)
            p->import_wh = p->export_wh = 0;
        left[i] = p->export_wh;
    }
    if (iv->np < 2)
        return;
    iv->nt = (size_t)range(s, 0, MAXT);
    for (size_t k = 0; k < iv->nt; k++) {
        size_t a = (size_t)range(s, 0, (int64_t)iv->np - 1), b;
        do
            b = (size_t)range(s, 0, (int64_t)iv->np - 1);
        while (b == a);
        stl_settled_trade *t = &iv->t[k];
        t->seller = iv->p[a].participant;
        t->buyer = iv->p[b].participant;
        t->contracted_wh = range(s, 1, big);
        t->delivered_wh = range(s, 0, t->contracted_wh);
        if (iv->lawful) {
            int ok = iv->p[a].status == STL_POS_GOOD && iv->p[b].status == STL_POS_GOOD;
            if (!ok)
                t->delivered_wh = 0;
            if (t->delivered_wh > left[a])
                t->delivered_wh = left[a];
            left[a] -= t->delivered_wh;
        }
    }
}

static size_t idx(const interval *iv, uint64_t id)
{
    for (size_t i = 0; i < iv->np; i++)
        if (iv->p[i].participant == id)
            return i;
    fail_msg("no position %llu", (unsigned long long)id);
    return 0;
}

static void check(const interval *iv)
{
    stl_credit c[MAXP], c2[MAXP];
    stl_credit_move mv[MAXT];
    stl_credit_totals tot, tot2;
    assert_int_equal(stl_credits_compute(iv->p, iv->np, iv->t, iv->nt, iv->min_tier, c, mv, &tot),
                     STL_OK);
    int64_t verified = 0, minted = 0, in = 0, out = 0, retired = 0, kept = 0, moved = 0;
    int64_t balance[MAXP], got_in[MAXP] = {0}, got_out[MAXP] = {0}, trade_ret[MAXP] = {0};
    for (size_t i = 0; i < iv->np; i++) {
        const stl_position *p = &iv->p[i];
        int eligible = p->status == STL_POS_GOOD && p->tier >= iv->min_tier;
        assert_int_equal(c[i].participant, p->participant);
        assert_int_equal(c[i].minted_wh, eligible ? p->export_wh : 0);
        assert_int_equal(c[i].source_seq, iv->nt + i);
        assert_int_equal(c[i].tier, p->tier);
        assert_int_equal(c[i].status, p->status);
        if (eligible)
            verified += p->export_wh;
        balance[i] = c[i].minted_wh;
    }
    for (size_t k = 0; k < iv->nt; k++) {
        size_t a = idx(iv, iv->t[k].seller), b = idx(iv, iv->t[k].buyer);
        int64_t want = iv->t[k].delivered_wh < balance[a] ? iv->t[k].delivered_wh : balance[a];
        assert_int_equal(mv[k].wh, want);
        assert_true(mv[k].wh >= 0 && mv[k].wh <= balance[a]); /* never beyond a balance */
        balance[a] -= mv[k].wh;
        got_out[a] += mv[k].wh;
        got_in[b] += mv[k].wh;
        moved += mv[k].wh;
        assert_true(mv[k].retired_wh >= 0 && mv[k].retired_wh <= mv[k].wh);
        trade_ret[b] += mv[k].retired_wh;
        const stl_position *s = &iv->p[a];
        if (iv->lawful && s->status == STL_POS_GOOD && s->tier >= iv->min_tier)
            assert_int_equal(mv[k].wh, iv->t[k].delivered_wh); /* credits follow the energy */
    }
    for (size_t i = 0; i < iv->np; i++) {
        const stl_credit *x = &c[i];
        const stl_position *p = &iv->p[i];
        assert_true(stl_credit_valid(x));
        assert_int_equal(x->in_wh, got_in[i]);
        assert_int_equal(x->out_wh, got_out[i]);
        assert_true(x->out_wh <= x->minted_wh);
        int64_t held = x->minted_wh + x->in_wh - x->out_wh;
        assert_true(x->retired_wh <= held);
        if (p->status == STL_POS_GOOD) {
            assert_true(x->retired_wh <= p->import_wh);
            assert_int_equal(x->retired_wh, p->import_wh < held ? p->import_wh : held);
            int64_t own_left = x->minted_wh - x->out_wh;
            int64_t own = p->import_wh < own_left ? p->import_wh : own_left;
            assert_int_equal(own + trade_ret[i], x->retired_wh);
        } else {
            assert_int_equal(x->retired_wh, 0);
        }
        assert_int_equal(x->kept_wh, held - x->retired_wh);
        assert_true(x->kept_wh >= 0);
        minted += x->minted_wh;
        in += x->in_wh;
        out += x->out_wh;
        retired += x->retired_wh;
        kept += x->kept_wh;
    }
    assert_int_equal(minted, verified);
    assert_int_equal(in, out);
    assert_int_equal(in, moved);
    assert_int_equal(kept, minted - retired);
    assert_int_equal(tot.verified_export_wh, verified);
    assert_int_equal(tot.minted_wh, minted);
    assert_int_equal(tot.transferred_wh, moved);
    assert_int_equal(tot.retired_wh, retired);
    assert_int_equal(tot.kept_wh, kept);
    /* the same records without the per-trade attribution */
    assert_int_equal(
        stl_credits_compute(iv->p, iv->np, iv->t, iv->nt, iv->min_tier, c2, NULL, &tot2), STL_OK);
    assert_memory_equal(c, c2, iv->np * sizeof c[0]);
    assert_memory_equal(&tot, &tot2, sizeof tot);
}

/* A held position waiting for its resolution. */
typedef struct {
    stl_position p;
    uint64_t log_index;
    long due;             /* the interval whose block carries the true-up */
    int64_t minted_then;  /* what its own interval minted to it (must be 0) */
} pending;

#define MAXPEND 4096

typedef struct {
    pending q[MAXPEND];
    size_t n;
    int64_t verified;   /* verified export, the resolved positions' included (this file's sums) */
    int64_t minted;     /* minted by the records: the intervals' and the true-ups' */
    int64_t retired, kept;
    long trueups, trueup_wh_zero;
} ledger_model;

/* The true-up of q->p carried by an interval whose minimum tier is min_tier. */
static void trueup(ledger_model *m, const pending *q, uint8_t min_tier)
{
    stl_credit c;
    assert_int_equal(q->minted_then, 0); /* a position mints once */
    assert_int_equal(stl_credit_trueup(&q->p, q->log_index, min_tier, &c), STL_OK);
    assert_true(stl_credit_valid(&c));
    assert_true(stl_credit_is_trueup(&c));
    assert_int_equal(c.participant, q->p.participant);
    assert_int_equal(c.source_seq, q->log_index);
    assert_int_equal(c.status, q->p.status);
    assert_int_equal(c.tier, q->p.tier);
    assert_int_equal(c.min_tier, min_tier);
    int64_t want = q->p.tier >= min_tier ? q->p.export_wh : 0;
    assert_int_equal(c.minted_wh, want);
    assert_int_equal(c.in_wh, 0);
    assert_int_equal(c.out_wh, 0);
    assert_int_equal(c.retired_wh, 0);
    assert_int_equal(c.kept_wh, c.minted_wh);
    m->verified += want;
    m->minted += c.minted_wh;
    m->retired += c.retired_wh;
    m->kept += c.kept_wh;
    m->trueups++;
    m->trueup_wh_zero += c.minted_wh == 0;
}

/* Queues a third of iv's held positions with export for a resolution, and adds the interval's
 * own records to the model; log_index is the interval's first transaction. */
static void settle_model(ledger_model *m, uint64_t *s, const interval *iv, long at,
                         uint64_t log_index)
{
    stl_credit c[MAXP];
    assert_int_equal(stl_credits_compute(iv->p, iv->np, iv->t, iv->nt, iv->min_tier, c, NULL, NULL),
                     STL_OK);
    for (size_t i = 0; i < iv->np; i++) {
        const stl_position *p = &iv->p[i];
        if (p->status == STL_POS_GOOD && p->tier >= iv->min_tier)
            m->verified += p->export_wh;
        m->minted += c[i].minted_wh;
        m->retired += c[i].retired_wh;
        m->kept += c[i].kept_wh;
        stl_credit x;
        if (p->status == STL_POS_GOOD || p->status == STL_POS_MISSING) {
            assert_int_equal(stl_credit_trueup(p, log_index, 0, &x), STL_E_INVAL);
            continue;
        }
        if (p->export_wh == 0 || range(s, 0, 2) != 0 || m->n == MAXPEND)
            continue;
        pending *q = &m->q[m->n++];
        q->p = *p;
        q->log_index = log_index + iv->nt + i; /* the position's place in the log */
        q->due = at + range(s, 1, 20);
        q->minted_then = c[i].minted_wh;
    }
}

/* The true-ups due by interval `at`, carried by a block with min_tier. */
static void resolve_due(ledger_model *m, long at, uint8_t min_tier)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->q[i].due <= at)
            trueup(m, &m->q[i], min_tier);
        else
            m->q[k++] = m->q[i];
    }
    m->n = k;
}

static void test_random_intervals(void **state)
{
    (void)state;
    const char *e = getenv("MGX_INTERVALS"), *sd = getenv("MGX_SEED");
    long n = e ? atol(e) : MGX_PROP_INTERVALS;
    uint64_t s = sd ? strtoull(sd, NULL, 0) : UINT64_C(0x13C4ED175);
    interval iv;
    long lawful = 0, minted_any = 0;
    ledger_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    uint64_t log_index = 0;
    for (long i = 0; i < n; i++) {
        gen(&s, &iv);
        check(&iv);
        resolve_due(m, i, iv.min_tier); /* earlier held positions resolved by now */
        settle_model(m, &s, &iv, i, log_index);
        log_index += iv.nt + iv.np;
        lawful += iv.lawful;
        for (size_t k = 0; k < iv.np; k++)
            if (iv.p[k].status == STL_POS_GOOD && iv.p[k].tier >= iv.min_tier &&
                iv.p[k].export_wh > 0) {
                minted_any++;
                break;
            }
    }
    resolve_due(m, n + 20, 0); /* the rest, resolved after the last interval */
    assert_int_equal(m->n, 0);
    assert_int_equal(m->minted, m->verified);
    assert_int_equal(m->kept, m->minted - m->retired);
    /* a log index beyond 32 bits cannot be named */
    stl_position held = {.participant = 7, .status = STL_POS_HELD, .export_wh = 5};
    stl_credit x;
    assert_int_equal(stl_credit_trueup(&held, UINT64_C(1) << 32, 0, &x), STL_E_INVAL);
    assert_int_equal(stl_credit_trueup(&held, UINT32_MAX, 0, &x), STL_OK);
    printf("credits: %ld random intervals (%ld as reconciled, %ld minting), every invariant "
           "exact; %ld held positions resolved later (%ld below the tier minting 0), minted "
           "%lld Wh in all = verified export with the resolved\n",
           n, lawful, minted_any, m->trueups, m->trueup_wh_zero, (long long)m->minted);
    free(m);
}

/* Known answers worked by hand (docs/credits.md, "Worked example"). */
static void test_worked_example(void **state)
{
    (void)state;
    /* home 1: good, tier 1, exports 700, imports 50; home 2: good tier 0 (below the minimum 1),
     * exports 400; home 3: good, imports 900; home 4: held, exports 300 */
    stl_position p[4];
    memset(p, 0, sizeof p);
    p[0] = (stl_position){
        .participant = 1, .status = STL_POS_GOOD, .tier = 1, .import_wh = 50, .export_wh = 700};
    p[1] = (stl_position){.participant = 2, .status = STL_POS_GOOD, .tier = 0, .export_wh = 400};
    p[2] = (stl_position){.participant = 3, .status = STL_POS_GOOD, .tier = 2, .import_wh = 900};
    p[3] = (stl_position){.participant = 4, .status = STL_POS_HELD, .tier = 2, .export_wh = 300};
    stl_settled_trade t[2];
    memset(t, 0, sizeof t);
    t[0] = (stl_settled_trade){.seller = 1, .buyer = 3, .contracted_wh = 600, .delivered_wh = 600};
    t[1] = (stl_settled_trade){.seller = 2, .buyer = 3, .contracted_wh = 200, .delivered_wh = 200};
    stl_credit c[4];
    stl_credit_move mv[2];
    stl_credit_totals tot;
    assert_int_equal(stl_credits_compute(p, 4, t, 2, 1, c, mv, &tot), STL_OK);
    /* home 1 mints 700, sells 600, retires 50 of its 100 against its import, keeps 50 */
    assert_int_equal(c[0].minted_wh, 700);
    assert_int_equal(c[0].out_wh, 600);
    assert_int_equal(c[0].retired_wh, 50);
    assert_int_equal(c[0].kept_wh, 50);
    /* home 2 is below the minimum tier: its 200 Wh reach home 3 without credits */
    assert_int_equal(c[1].minted_wh, 0);
    assert_int_equal(mv[1].wh, 0);
    /* home 3 receives 600 and retires all of them (import 900) */
    assert_int_equal(c[2].in_wh, 600);
    assert_int_equal(c[2].retired_wh, 600);
    assert_int_equal(mv[0].retired_wh, 600);
    assert_int_equal(c[3].minted_wh, 0); /* held */
    assert_int_equal(c[2].source_seq, 4);
    assert_int_equal(tot.minted_wh, 700);
    assert_int_equal(tot.retired_wh, 650);
    assert_int_equal(tot.kept_wh, 50);
    /* True-up (docs/credits.md, "True-up"): this block starts at log index 100, so home 4's
     * position (seq 2 trades + index 3 = 5) is log index 105. The coordinator resolves it as
     * good; a later block with minimum tier 1 carries its true-up: 300 Wh minted, kept, nothing
     * moved or retired (its import was carried to its next good interval). Minted in all: 700 +
     * 300 = 1000 = the export of homes 1 and 4, both at tier >= 1; home 2 (tier 0) never. */
    stl_credit tu;
    assert_int_equal(stl_credit_trueup(&p[3], 105, 1, &tu), STL_OK);
    assert_true(stl_credit_is_trueup(&tu));
    assert_int_equal(tu.participant, 4);
    assert_int_equal(tu.status, STL_POS_HELD);
    assert_int_equal(tu.tier, 2);
    assert_int_equal(tu.source_seq, 105);
    assert_int_equal(tu.minted_wh, 300);
    assert_int_equal(tu.kept_wh, 300);
    assert_int_equal(tu.in_wh + tu.out_wh + tu.retired_wh, 0);
    assert_int_equal(tot.minted_wh + tu.minted_wh, 1000);
    /* held at tier 0 below a minimum of 1: resolving it mints nothing */
    stl_position low = p[3];
    low.tier = 0;
    assert_int_equal(stl_credit_trueup(&low, 105, 1, &tu), STL_OK);
    assert_int_equal(tu.minted_wh, 0);
    /* a good position minted already; a missing one has no reading */
    assert_int_equal(stl_credit_trueup(&p[0], 101, 1, &tu), STL_E_INVAL);
    low.status = STL_POS_MISSING;
    assert_int_equal(stl_credit_trueup(&low, 105, 1, &tu), STL_E_INVAL);
    /* bad input: a trade naming nobody */
    t[1].buyer = 99;
    assert_int_equal(stl_credits_compute(p, 4, t, 2, 1, c, mv, &tot), STL_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_random_intervals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
