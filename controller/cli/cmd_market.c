/*
 * `mgx market clear`: reads an orders CSV, clears it with the market library and prints the
 * result as text, JSON or CSV. The thin shell around mkt_csv_parse and mkt_clear: it owns the
 * file, the options and the output formats, nothing of the market rules.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/usage_error.h"
#include "mgx/market.h"
#include "mgx/order_csv.h"

#include "common/file.h"
#include "common/opt.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORDERS_FILE_BYTES ((size_t)2 << 30) /* 2 GiB */
#define MAX_ORDERS            ((size_t)16 << 20)
#define MAX_ROWS              (MAX_ORDERS * 4)

/* Defaults that resemble a European retail contract: 0.30 per kWh retail, 0.08 feed-in. */
#define DEFAULT_RETAIL_UC  300000
#define DEFAULT_FEED_IN_UC 80000

typedef enum { FMT_TEXT, FMT_JSON, FMT_CSV } out_format;

static const char CLEAR_USAGE[] =
    "usage: mgx market clear --orders FILE.csv [options]\n"
    "\n"
    "Clears one interval's orders. FILE.csv has the header\n"
    "participant,side,energy_wh,price_uc_per_kwh and one row per curve step ('-' reads stdin).\n"
    "\n"
    "options:\n"
    "  --mechanism pay-as-clear|pay-as-bid   (default pay-as-clear)\n"
    "  --feed-in-tariff UC    grid buys at UC micro-currency per kWh (default 80000)\n"
    "  --retail-tariff UC     grid sells at UC micro-currency per kWh (default 300000)\n"
    "  --network-fee UC       fee per local kWh, paid by the buyer (default 0)\n"
    "  --interval N           the interval's number, which seats tied prices (default 0;\n"
    "                         the controller uses floor(start_utc / interval_s))\n"
    "  --format text|json|csv output format (default text; csv prints the trade list)\n"
    "\n"
    "Exit status: 0 cleared, 1 bad input (the message names file, line and column), 2 usage.\n"
    "Rules: docs/market-rules.md. Format: docs/orders-format.md.\n";

static const char MARKET_USAGE[] = "usage: mgx market clear --orders FILE.csv [options]\n"
                                   "       mgx market clear --help\n";

static void print_text(const mkt_clearing *c, const mkt_order_set *set, const mkt_params *p)
{
    const mkt_summary *s = mkt_clearing_summary(c);
    size_t nt, np;
    const mkt_trade *t = mkt_clearing_trades(c, &nt);
    const mkt_participant_result *pr = mkt_clearing_participants(c, &np);
    printf("mechanism        %s\n", mkt_mechanism_name(s->mechanism));
    printf("tariffs          feed-in %lld, retail %lld, network fee %lld uc/kWh\n",
           (long long)p->feed_in_uc_per_kwh, (long long)p->retail_uc_per_kwh,
           (long long)p->network_fee_uc_per_kwh);
    if (s->has_price)
        printf("clearing price   %lld uc/kWh (equilibrium interval %lld..%lld)\n",
               (long long)s->clearing_price_uc_per_kwh, (long long)s->price_low_uc_per_kwh,
               (long long)s->price_high_uc_per_kwh);
    else if (s->mechanism == MKT_PAY_AS_CLEAR)
        printf("clearing price   none (no local trade)\n");
    printf("matched locally  %lld Wh in %zu trades worth %lld uc, fees %lld uc\n",
           (long long)s->matched_wh, nt, (long long)s->local_value_uc, (long long)s->fees_uc);
    printf("grid             bought %lld Wh for %lld uc, sold %lld Wh for %lld uc\n",
           (long long)s->grid_bought_wh, (long long)s->grid_paid_uc, (long long)s->grid_sold_wh,
           (long long)s->grid_received_uc);
    printf("\n%-16s %-16s %12s %16s %12s %10s\n", "seller", "buyer", "energy_wh",
           "price_uc_per_kwh", "amount_uc", "fee_uc");
    for (size_t i = 0; i < nt; i++)
        printf("%-16s %-16s %12lld %16lld %12lld %10lld\n", mkt_order_set_name(set, t[i].seller),
               mkt_order_set_name(set, t[i].buyer), (long long)t[i].energy_wh,
               (long long)t[i].price_uc_per_kwh, (long long)t[i].amount_uc, (long long)t[i].fee_uc);
    printf("\n%-16s %-4s %10s %10s %10s %12s %12s %10s\n", "participant", "side", "offered_wh",
           "local_wh", "grid_wh", "local_uc", "grid_uc", "fee_uc");
    for (size_t i = 0; i < np; i++) {
        int sell = pr[i].side == MKT_SELL;
        printf("%-16s %-4s %10lld %10lld %10lld %12lld %12lld %10lld\n",
               mkt_order_set_name(set, pr[i].participant), sell ? "sell" : "buy",
               (long long)pr[i].offered_wh,
               (long long)(sell ? pr[i].local_sold_wh : pr[i].local_bought_wh),
               (long long)(sell ? pr[i].grid_sold_wh : pr[i].grid_bought_wh),
               (long long)(sell ? pr[i].local_received_uc : -pr[i].local_paid_uc),
               (long long)(sell ? pr[i].grid_received_uc : -pr[i].grid_paid_uc),
               (long long)pr[i].fee_paid_uc);
    }
}

static void print_csv(const mkt_clearing *c, const mkt_order_set *set)
{
    size_t nt;
    const mkt_trade *t = mkt_clearing_trades(c, &nt);
    printf("seller,buyer,energy_wh,price_uc_per_kwh,amount_uc,fee_uc\n");
    for (size_t i = 0; i < nt; i++)
        printf("%s,%s,%lld,%lld,%lld,%lld\n", mkt_order_set_name(set, t[i].seller),
               mkt_order_set_name(set, t[i].buyer), (long long)t[i].energy_wh,
               (long long)t[i].price_uc_per_kwh, (long long)t[i].amount_uc, (long long)t[i].fee_uc);
}

static json_t *json_participant(const mkt_participant_result *p, const mkt_order_set *set)
{
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "participant",
        mkt_order_set_name(set, p->participant), "side", p->side == MKT_SELL ? "sell" : "buy",
        "offered_wh", (json_int_t)p->offered_wh, "local_bought_wh", (json_int_t)p->local_bought_wh,
        "local_sold_wh", (json_int_t)p->local_sold_wh, "grid_bought_wh",
        (json_int_t)p->grid_bought_wh, "grid_sold_wh", (json_int_t)p->grid_sold_wh, "local_paid_uc",
        (json_int_t)p->local_paid_uc, "local_received_uc", (json_int_t)p->local_received_uc,
        "grid_paid_uc", (json_int_t)p->grid_paid_uc, "grid_received_uc",
        (json_int_t)p->grid_received_uc, "fee_paid_uc", (json_int_t)p->fee_paid_uc);
}

static int print_json(const mkt_clearing *c, const mkt_order_set *set, const mkt_params *p)
{
    const mkt_summary *s = mkt_clearing_summary(c);
    size_t nt, np;
    const mkt_trade *t = mkt_clearing_trades(c, &nt);
    const mkt_participant_result *pr = mkt_clearing_participants(c, &np);
    json_t *trades = json_array(), *parts = json_array();
    json_t *root = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "mechanism",
        mkt_mechanism_name(s->mechanism), "feed_in_tariff_uc_per_kwh",
        (json_int_t)p->feed_in_uc_per_kwh, "retail_tariff_uc_per_kwh",
        (json_int_t)p->retail_uc_per_kwh, "network_fee_uc_per_kwh",
        (json_int_t)p->network_fee_uc_per_kwh, "matched_wh", (json_int_t)s->matched_wh, "fees_uc",
        (json_int_t)s->fees_uc, "local_value_uc", (json_int_t)s->local_value_uc, "grid_bought_wh",
        (json_int_t)s->grid_bought_wh, "grid_sold_wh", (json_int_t)s->grid_sold_wh, "grid_paid_uc",
        (json_int_t)s->grid_paid_uc, "grid_received_uc", (json_int_t)s->grid_received_uc);
    int rc = -1;
    if (!root || !trades || !parts)
        goto out;
    if (s->mechanism == MKT_PAY_AS_CLEAR) {
        json_object_set_new(root, "clearing_price_uc_per_kwh",
                            s->has_price ? json_integer(s->clearing_price_uc_per_kwh)
                                         : json_null());
        json_object_set_new(root, "price_interval_uc_per_kwh",
                            s->has_price ? json_pack("[I, I]", (json_int_t)s->price_low_uc_per_kwh,
                                                     (json_int_t)s->price_high_uc_per_kwh)
                                         : json_null());
    }
    for (size_t i = 0; i < nt; i++)
        if (json_array_append_new(
                trades, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "seller",
                                  mkt_order_set_name(set, t[i].seller), "buyer",
                                  mkt_order_set_name(set, t[i].buyer), "energy_wh",
                                  (json_int_t)t[i].energy_wh, "price_uc_per_kwh",
                                  (json_int_t)t[i].price_uc_per_kwh, "amount_uc",
                                  (json_int_t)t[i].amount_uc, "fee_uc", (json_int_t)t[i].fee_uc)))
            goto out;
    for (size_t i = 0; i < np; i++)
        if (json_array_append_new(parts, json_participant(&pr[i], set)))
            goto out;
    json_object_set(root, "trades", trades);
    json_object_set(root, "participants", parts);
    rc = json_dumpf(root, stdout, JSON_INDENT(2)) == 0 ? 0 : -1;
    putchar('\n');
out:
    json_decref(root);
    json_decref(trades);
    json_decref(parts);
    return rc;
}

typedef struct {
    const char *orders;
    mkt_params params;
    out_format format;
} clear_opts;

static int parse_clear_opts(int argc, char **argv, clear_opts *o)
{
    static const struct option LONG[] = {{"orders", required_argument, NULL, 'o'},
                                         {"mechanism", required_argument, NULL, 'm'},
                                         {"feed-in-tariff", required_argument, NULL, 'f'},
                                         {"retail-tariff", required_argument, NULL, 'r'},
                                         {"network-fee", required_argument, NULL, 'n'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"format", required_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    o->orders = NULL;
    o->params = (mkt_params){MKT_PAY_AS_CLEAR, DEFAULT_FEED_IN_UC, DEFAULT_RETAIL_UC, 0, 0};
    o->format = FMT_TEXT;
    optind = 0; /* glibc: full reset, so the command can run twice in one process */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'o':
            o->orders = optarg;
            break;
        case 'm':
            if (mkt_mechanism_parse(optarg, &o->params.mechanism)) {
                fprintf(stderr,
                        "mgx market clear: --mechanism must be pay-as-clear or "
                        "pay-as-bid, not '%s'\n",
                        optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'f':
        case 'r':
        case 'n': {
            int64_t *dst = ch == 'f'   ? &o->params.feed_in_uc_per_kwh
                           : ch == 'r' ? &o->params.retail_uc_per_kwh
                                       : &o->params.network_fee_uc_per_kwh;
            if (ctl_opt_int64(optarg, 0, MKT_PRICE_MAX_UC_PER_KWH, dst)) {
                fprintf(stderr,
                        "mgx market clear: %s needs a whole number of micro-currency per kWh "
                        "between 0 and %lld, not '%s'\n",
                        ch == 'f'   ? "--feed-in-tariff"
                        : ch == 'r' ? "--retail-tariff"
                                    : "--network-fee",
                        (long long)MKT_PRICE_MAX_UC_PER_KWH, optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        }
        case 'i':
            if (ctl_opt_int64(optarg, INT64_MIN, INT64_MAX, &o->params.interval_id)) {
                fprintf(stderr, "mgx market clear: --interval needs a whole number, not '%s'\n",
                        optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'F':
            if (strcmp(optarg, "text") == 0)
                o->format = FMT_TEXT;
            else if (strcmp(optarg, "json") == 0)
                o->format = FMT_JSON;
            else if (strcmp(optarg, "csv") == 0)
                o->format = FMT_CSV;
            else {
                fprintf(stderr, "mgx market clear: --format must be text, json or csv\n");
                return CTL_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(CLEAR_USAGE, stdout);
            return -1;
        default: /* ':' (no value) or an unknown option */
            return ctl_cli_bad_option("mgx market clear", ch, argv, CLEAR_USAGE);
        }
    }
    if (optind < argc)
        return ctl_cli_extra_operand("mgx market clear", argv[optind]);
    if (!o->orders) {
        fprintf(stderr, "mgx market clear: --orders FILE.csv is required\n%s", CLEAR_USAGE);
        return CTL_EXIT_USAGE;
    }
    if (o->params.feed_in_uc_per_kwh > o->params.retail_uc_per_kwh) {
        fprintf(stderr,
                "mgx market clear: the feed-in tariff (%lld) is above the retail "
                "tariff (%lld)\n",
                (long long)o->params.feed_in_uc_per_kwh, (long long)o->params.retail_uc_per_kwh);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

static int market_clear(int argc, char **argv)
{
    clear_opts o;
    int rc = parse_clear_opts(argc, argv, &o);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    char *buf = NULL;
    size_t len = 0;
    mkt_order_set *set = NULL;
    mkt_clearing *c = NULL;
    rc = CTL_EXIT_FAILURE;
    if (ctl_read_file(o.orders, MAX_ORDERS_FILE_BYTES, &buf, &len)) {
        fprintf(stderr, "mgx market clear: %s: %s\n", o.orders, strerror(errno));
        goto out;
    }
    mkt_csv_error err;
    if (mkt_csv_parse(buf, len, MAX_ORDERS, MAX_ROWS, &set, &err)) {
        fprintf(stderr, "mgx market clear: %s:%zu:%zu: %s\n", o.orders, err.line, err.column,
                err.message);
        goto out;
    }
    size_t n;
    const mkt_order *orders = mkt_order_set_orders(set, &n);
    c = mkt_clearing_new(n ? n : 1);
    if (!c) {
        fprintf(stderr, "mgx market clear: out of memory\n");
        goto out;
    }
    mkt_error_at at;
    int mrc = mkt_clear(c, &o.params, orders, n, &at);
    if (mrc) {
        if (at.order_index == MKT_AT_BOOK) /* no row is at fault: do not blame one */
            fprintf(stderr, "mgx market clear: %s: %s\n", o.orders, mkt_strerror(mrc));
        else
            fprintf(stderr, "mgx market clear: %s:%zu: %s\n", o.orders,
                    mkt_order_set_line(set, at.order_index, at.step_index), mkt_strerror(mrc));
        goto out;
    }
    if (o.format == FMT_JSON) {
        if (print_json(c, set, &o.params)) {
            fprintf(stderr, "mgx market clear: could not write JSON\n");
            goto out;
        }
    } else if (o.format == FMT_CSV) {
        print_csv(c, set);
    } else {
        print_text(c, set, &o.params);
    }
    rc = fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
out:
    mkt_clearing_free(c);
    mkt_order_set_free(set);
    free(buf);
    return rc;
}

int ctl_cmd_market(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "clear") == 0)
        return market_clear(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(MARKET_USAGE, stdout);
        fputs("\n", stdout);
        fputs(CLEAR_USAGE, stdout);
        return CTL_EXIT_OK;
    }
    fputs(MARKET_USAGE, stderr);
    return CTL_EXIT_USAGE;
}
