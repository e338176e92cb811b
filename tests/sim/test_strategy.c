/*
 * The checked pricing API (mgx/strategy.h) against the rules as the simulator runs them
 * (sim_pricing_* on a GSL taus2 stream): the same trader state, tariffs and generator seed must
 * give bit-for-bit the same prices and the same learnt ZIP margins, which also shows the
 * library's own taus2 draws what GSL's does; plus known answers worked out by hand and the
 * parameter checks.
 */
#include "mgx/strategy.h"

#include <gsl/gsl_rng.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* feed-in 0.08, retail 0.30, fee 0.02 per kWh (uc = 1e-6): band [80000, 280000], spread 200000 */
static const mkt_params TARIFFS = {MKT_PAY_AS_CLEAR, 80000, 300000, 20000, 0};

static sim_strategy_params params(sim_agent_kind kind)
{
    sim_strategy_params p = sim_strategy_defaults();
    p.kind = kind;
    return p;
}

static gsl_rng *rng(uint64_t seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    assert_non_null(r);
    gsl_rng_set(r, (unsigned long)seed);
    return r;
}

/* A GSL generator as the rules' random source, the way engine.c passes a home's stream. */
static double draw_uniform(void *r)
{
    return gsl_rng_uniform(r);
}

static unsigned long draw_uniform_int(void *r, unsigned long n)
{
    return gsl_rng_uniform_int(r, n);
}

static sim_random gsl_source(gsl_rng *r)
{
    return (sim_random){draw_uniform, draw_uniform_int, r};
}

/* The simulator's trader for the same parameters, set up the way engine.c does it. */
static sim_trader sim_side_agent(const sim_strategy_params *p, uint64_t seed)
{
    /* engine.c: {group.agent, group.markup, group.zip_beta, group.zip_momentum} */
    sim_strategy_params sp = {p->kind, p->markup, p->zip_beta, p->zip_momentum};
    sim_trader a;
    gsl_rng *r = rng(seed);
    sim_random src = gsl_source(r);
    sim_pricing_init(&a, &sp, &src);
    gsl_rng_free(r);
    return a;
}

static void test_known_answers(void **state)
{
    (void)state;
    sim_trader t;
    int64_t p = 0;
    /* truthful: a seller asks the feed-in tariff, a buyer bids retail less the fee */
    assert_int_equal(sim_trader_init(&t, &(sim_strategy_params){SIM_AGENT_TRUTHFUL, 0.1, 0.3,
                                                                0.05},
                                     1),
                     SIM_STRAT_OK);
    assert_int_equal(sim_trader_price(&t, MKT_SELL, &TARIFFS, 1, &p), 0);
    assert_int_equal(p, 80000);
    assert_int_equal(sim_trader_price(&t, MKT_BUY, &TARIFFS, 1, &p), 0);
    assert_int_equal(p, 280000); /* 300000 - 20000 */
    /* markup 0.25 of the 200000 spread = 50000: ask 80000 + 50000, bid 280000 - 50000 */
    sim_strategy_params mp = params(SIM_AGENT_MARKUP);
    mp.markup = 0.25;
    assert_int_equal(sim_trader_init(&t, &mp, 1), 0);
    assert_int_equal(sim_trader_price(&t, MKT_SELL, &TARIFFS, 9, &p), 0);
    assert_int_equal(p, 130000);
    assert_int_equal(sim_trader_price(&t, MKT_BUY, &TARIFFS, 9, &p), 0);
    assert_int_equal(p, 230000);
    /* a fee that eats the whole spread: retail 110000 - fee 20000 < feed-in 100000, so the band
     * collapses to [100000, 100000] and both sides price at the feed-in tariff */
    mkt_params tight = {MKT_PAY_AS_CLEAR, 100000, 110000, 20000, 0};
    assert_int_equal(sim_trader_price(&t, MKT_BUY, &tight, 9, &p), 0);
    assert_int_equal(p, 100000);
    assert_int_equal(sim_trader_price(&t, MKT_SELL, &tight, 9, &p), 0);
    assert_int_equal(p, 100000);

    /* orders: surplus 1500 Wh -> sell 1500 Wh; deficit 700 Wh -> buy 700 Wh; 0 -> no order */
    assert_int_equal(sim_trader_init(&t, &(sim_strategy_params){SIM_AGENT_TRUTHFUL, 0.1, 0.3,
                                                                0.05},
                                     1),
                     0);
    mkt_side side;
    mkt_step step;
    assert_int_equal(sim_trader_order(&t, 1500, &TARIFFS, 3, &side, &step), 1);
    assert_int_equal(side, MKT_SELL);
    assert_int_equal(step.energy_wh, 1500);
    assert_int_equal(step.price_uc_per_kwh, 80000);
    assert_int_equal(sim_trader_order(&t, -700, &TARIFFS, 3, &side, &step), 1);
    assert_int_equal(side, MKT_BUY);
    assert_int_equal(step.energy_wh, 700);
    /* truthful bids R - fee = 280000 as a trade price, R = 300000 all-in */
    assert_int_equal(step.price_uc_per_kwh, 300000);
    assert_int_equal(sim_trader_order(&t, 0, &TARIFFS, 3, &side, &step), 0);
    assert_int_equal(sim_trader_order(&t, MKT_ENERGY_MAX_WH + 1, &TARIFFS, 3, &side, &step),
                     SIM_STRAT_E_ENERGY);
}

/* Every kind, both sides, many seeds and tariff sets: the wrapper's price equals the
 * simulator's strategy function on an identically seeded generator. */
static void test_prices_equal_the_simulators(void **state)
{
    (void)state;
    const mkt_params tariffs[] = {
        TARIFFS,
        {MKT_PAY_AS_BID, 0, 1000000, 0, 0},
        {MKT_PAY_AS_CLEAR, 55000, 55000, 0, 0},      /* no spread */
        {MKT_PAY_AS_CLEAR, 100000, 110000, 20000, 0}, /* fee above the spread */
        {MKT_PAY_AS_CLEAR, 1, 999999999, 12345, 0},
    };
    for (int kind = SIM_AGENT_TRUTHFUL; kind <= SIM_AGENT_ZIP; kind++) {
        sim_strategy_params p = params((sim_agent_kind)kind);
        p.markup = 0.37;
        for (uint64_t seed = 1; seed <= 300; seed++) {
            sim_trader t;
            assert_int_equal(sim_trader_init(&t, &p, seed), 0);
            sim_trader a = sim_side_agent(&p, seed);
            assert_memory_equal(&t.margin, &a.margin, sizeof a.margin);
            for (size_t k = 0; k < sizeof tariffs / sizeof tariffs[0]; k++) {
                const mkt_params *tp = &tariffs[k];
                sim_band band = sim_band_from(tp->feed_in_uc_per_kwh, tp->retail_uc_per_kwh,
                                              tp->network_fee_uc_per_kwh);
                for (int side = MKT_BUY; side <= MKT_SELL; side++) {
                    int64_t mine = -1;
                    uint64_t draw_seed = seed * 1000003u + k;
                    assert_int_equal(
                        sim_trader_price(&t, (mkt_side)side, tp, draw_seed, &mine), 0);
                    gsl_rng *r = rng(draw_seed);
                    sim_random src = gsl_source(r);
                    int64_t theirs = sim_pricing_price(&a, (mkt_side)side, &band, &src);
                    gsl_rng_free(r);
                    assert_int_equal(mine, theirs);
                    assert_true(mine >= band.lo && mine <= band.hi);
                }
            }
        }
    }
}

/* ZIP learns: a run of observations through the wrapper follows the simulator's agent exactly
 * (bit-identical doubles), and the direction of each step is the one Cliff's rule gives. */
static void test_zip_learning_equals_the_simulators(void **state)
{
    (void)state;
    sim_strategy_params p = params(SIM_AGENT_ZIP);
    p.zip_beta = 0.4;
    p.zip_momentum = 0.2;
    sim_band band = sim_band_from(TARIFFS.feed_in_uc_per_kwh, TARIFFS.retail_uc_per_kwh,
                                  TARIFFS.network_fee_uc_per_kwh);
    for (uint64_t seed = 1; seed <= 50; seed++) {
        sim_trader t;
        assert_int_equal(sim_trader_init(&t, &p, seed), 0);
        sim_trader a = sim_side_agent(&p, seed);
        gsl_rng *script = rng(seed + 77); /* the market's answers */
        for (int round = 0; round < 200; round++) {
            mkt_side side = gsl_rng_uniform_int(script, 2) ? MKT_SELL : MKT_BUY;
            int traded = (int)gsl_rng_uniform_int(script, 2);
            int64_t market = gsl_rng_uniform_int(script, 5) == 0
                                 ? -1
                                 : 80000 + (int64_t)gsl_rng_uniform_int(script, 200001);
            uint64_t s = seed * 7919u + (uint64_t)round;
            int64_t my_price;
            assert_int_equal(sim_trader_price(&t, side, &TARIFFS, s, &my_price), 0);
            /* observe takes the order's price as sent: a buyer's is all-in, fee included */
            int64_t sent = side == MKT_BUY ? my_price + TARIFFS.network_fee_uc_per_kwh : my_price;
            assert_int_equal(sim_trader_observe(&t, side, sent, traded, market, &TARIFFS, s + 1),
                             0);
            gsl_rng *r = rng(s + 1);
            sim_random src = gsl_source(r);
            sim_pricing_observe(&a, side, my_price, traded, market, &band, &src);
            gsl_rng_free(r);
            assert_memory_equal(&t.margin, &a.margin, sizeof a.margin);
            assert_memory_equal(&t.last_change, &a.last_change, sizeof a.last_change);
            assert_true(t.margin >= 0.0 && t.margin <= 1.0);
        }
        gsl_rng_free(script);
    }
    /* Without momentum: missing the market lowers the margin; trading below what the market
     * paid raises it. Seller margin 0.5 = ask 180000. */
    p.zip_momentum = 0.0;
    sim_trader t = {p, 0.5, 0.0};
    assert_int_equal(sim_trader_observe(&t, MKT_SELL, 180000, 0, 150000, &TARIFFS, 5), 0);
    assert_true(t.margin < 0.5);
    t = (sim_trader){p, 0.5, 0.0};
    /* market paid 240000: q = (240000 - 80000) / 200000 = 0.8 > 0.5 */
    assert_int_equal(sim_trader_observe(&t, MKT_SELL, 180000, 1, 240000, &TARIFFS, 5), 0);
    assert_true(t.margin > 0.5);
    /* the other strategies learn nothing */
    sim_trader m = {params(SIM_AGENT_MARKUP), 0.0, 0.0};
    assert_int_equal(sim_trader_observe(&m, MKT_SELL, 100000, 0, 90000, &TARIFFS, 5), 0);
    assert_true(m.margin == 0.0 && m.last_change == 0.0);
}

/* ZI-C covers its whole band: over many seeds the draws reach both ends and stay inside. */
static void test_zic_spans_the_band(void **state)
{
    (void)state;
    sim_trader t;
    assert_int_equal(sim_trader_init(&t, &(sim_strategy_params){SIM_AGENT_ZIC, 0.1, 0.3, 0.05},
                                     1),
                     0);
    mkt_params small = {MKT_PAY_AS_CLEAR, 10, 20, 0, 0}; /* 11 possible prices */
    int seen[11] = {0};
    for (uint64_t seed = 0; seed < 2000; seed++) {
        int64_t p;
        assert_int_equal(sim_trader_price(&t, MKT_BUY, &small, seed, &p), 0);
        assert_true(p >= 10 && p <= 20);
        seen[p - 10]++;
    }
    for (int i = 0; i < 11; i++)
        assert_true(seen[i] > 0);
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    const char *what = NULL;
    sim_strategy_params p = params(SIM_AGENT_MARKUP);
    p.markup = 1.5;
    assert_int_equal(sim_strategy_check(&p, &what), SIM_STRAT_E_INVAL);
    assert_string_equal(what, "markup");
    p = params(SIM_AGENT_ZIP);
    p.zip_beta = 0.0;
    assert_int_equal(sim_strategy_check(&p, &what), SIM_STRAT_E_INVAL);
    assert_string_equal(what, "zip_beta");
    p = params(SIM_AGENT_ZIP);
    p.zip_momentum = 1.0;
    assert_int_equal(sim_strategy_check(&p, &what), SIM_STRAT_E_INVAL);
    assert_string_equal(what, "zip_momentum");
    p = params((sim_agent_kind)7);
    assert_int_equal(sim_strategy_check(&p, &what), SIM_STRAT_E_INVAL);
    assert_string_equal(what, "agent");
    sim_trader t;
    assert_int_equal(sim_trader_init(&t, &p, 1), SIM_STRAT_E_INVAL);
    p = params(SIM_AGENT_TRUTHFUL);
    assert_int_equal(sim_strategy_check(&p, &what), SIM_STRAT_OK);
    assert_null(what);
    assert_int_equal(sim_trader_init(&t, &p, 1), 0);
    int64_t price;
    mkt_params inverted = {MKT_PAY_AS_CLEAR, 300000, 80000, 0, 0};
    assert_int_equal(sim_trader_price(&t, MKT_SELL, &inverted, 1, &price), SIM_STRAT_E_INVAL);
    assert_int_equal(sim_trader_price(&t, (mkt_side)5, &TARIFFS, 1, &price), SIM_STRAT_E_INVAL);
    /* names round-trip */
    for (int k = SIM_AGENT_TRUTHFUL; k <= SIM_AGENT_ZIP; k++) {
        sim_agent_kind back;
        assert_int_equal(sim_strategy_parse(sim_strategy_name((sim_agent_kind)k), &back), 0);
        assert_int_equal(back, k);
    }
    sim_agent_kind k;
    assert_int_equal(sim_strategy_parse("greedy", &k), SIM_STRAT_E_INVAL);
    assert_null(sim_strategy_name((sim_agent_kind)4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_prices_equal_the_simulators),
        cmocka_unit_test(test_zip_learning_equals_the_simulators),
        cmocka_unit_test(test_zic_spans_the_band),
        cmocka_unit_test(test_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
