/*
 * The bodies `mgx controller` publishes after clearing, minimised (see publish_body.h).
 */
#include "daemon/publish_body.h"

#include <string.h>

void ctl_result_groups_add(ctl_result_groups *g, const mkt_participant_result *p)
{
    if (p->side == MKT_SELL)
        g->sellers++;
    else
        g->buyers++;
    if (p->local_sold_wh > 0)
        g->sold++;
    if (p->local_bought_wh > 0)
        g->bought++;
}

/* Whether n contributors (none is fine: the figure is then 0 for everyone) hide each other. */
static int thin(size_t n, int64_t k)
{
    return n > 0 && (int64_t)n < k;
}

unsigned ctl_result_withheld(const ctl_result_groups *g, int64_t k)
{
    unsigned w = 0;
    /* matched energy is both the sellers' and the buyers' sum: both sides must be wide */
    if (thin(g->sold, k) || thin(g->bought, k))
        w |= CTL_WITHHOLD_LOCAL;
    if (thin(g->sellers, k))
        w |= CTL_WITHHOLD_GRID_SOLD;
    if (thin(g->buyers, k))
        w |= CTL_WITHHOLD_GRID_BOUGHT;
    return w;
}

/* v, or JSON null when withheld. */
static json_t *figure(int64_t v, unsigned withheld, unsigned bit)
{
    return withheld & bit ? json_null() : json_integer((json_int_t)v);
}

json_t *ctl_result_body(const char *community, const ctl_interval_result *r,
                        const ctl_result_groups *g, int64_t k)
{
    const mkt_summary *m = &r->summary;
    unsigned w = ctl_result_withheld(g, k);
    json_t *price = m->has_price ? json_integer(m->clearing_price_uc_per_kwh) : json_null();
    json_t *names = json_array();
    static const struct {
        unsigned bit;
        const char *name;
    } FIELDS[] = {{CTL_WITHHOLD_LOCAL, "matched_wh"},
                  {CTL_WITHHOLD_LOCAL, "trades"},
                  {CTL_WITHHOLD_LOCAL, "local_value_uc"},
                  {CTL_WITHHOLD_LOCAL, "fees_uc"},
                  {CTL_WITHHOLD_GRID_BOUGHT, "grid_bought_wh"},
                  {CTL_WITHHOLD_GRID_SOLD, "grid_sold_wh"}};
    for (size_t i = 0; names && i < sizeof FIELDS / sizeof FIELDS[0]; i++)
        if (w & FIELDS[i].bit)
            json_array_append_new(names, json_string(FIELDS[i].name));
    return json_pack("{s:i, s:s, s:I, s:I, s:I, s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o, "
                     "s:I, s:I, s:I, s:I, s:s, s:I, s:o}",
                     "v", 1, "community", community, "interval_id", (json_int_t)r->interval_id,
                     "start_utc", (json_int_t)r->start_utc, "interval_s",
                     (json_int_t)r->length_s, "mechanism", mkt_mechanism_name(m->mechanism),
                     "price_uc_per_kwh", price, "matched_wh",
                     figure(m->matched_wh, w, CTL_WITHHOLD_LOCAL), "orders",
                     (json_int_t)r->n_orders, "trades",
                     figure((int64_t)r->n_trades, w, CTL_WITHHOLD_LOCAL), "grid_bought_wh",
                     figure(m->grid_bought_wh, w, CTL_WITHHOLD_GRID_BOUGHT), "grid_sold_wh",
                     figure(m->grid_sold_wh, w, CTL_WITHHOLD_GRID_SOLD), "local_value_uc",
                     figure(m->local_value_uc, w, CTL_WITHHOLD_LOCAL), "fees_uc",
                     figure(m->fees_uc, w, CTL_WITHHOLD_LOCAL), "feed_in_uc_per_kwh",
                     (json_int_t)r->params.feed_in_uc_per_kwh, "retail_uc_per_kwh",
                     (json_int_t)r->params.retail_uc_per_kwh, "network_fee_uc_per_kwh",
                     (json_int_t)r->params.network_fee_uc_per_kwh, "cleared_ms",
                     (json_int_t)r->cleared_ms, "error", r->error, "min_group_size",
                     (json_int_t)k, "withheld", names);
}

static const char *binding_name(int binding)
{
    return binding == MKT_BIND_EXPORT ? "export" : binding == MKT_BIND_IMPORT ? "import" : "none";
}

int ctl_result_body_add_grid(json_t *body, const ctl_grid_node_row *nodes, size_t n)
{
    if (n == 0)
        return 0;
    int congested = 0;
    for (size_t i = 0; i < n; i++)
        congested |= nodes[i].binding != MKT_BIND_NONE;
    json_t *zones = congested ? json_array() : NULL;
    for (size_t i = 0; zones && i < n; i++) {
        /* zone is a node index, and the rows are every node in node order */
        const char *top = nodes[i].zone < n ? nodes[nodes[i].zone].name : "";
        json_t *z = json_pack("{s:s, s:s, s:I, s:s}", "node", nodes[i].name, "zone", top,
                              "price_uc_per_kwh", (json_int_t)nodes[i].price_uc_per_kwh,
                              "binding", binding_name(nodes[i].binding));
        if (!z || json_array_append_new(zones, z)) {
            json_decref(zones);
            return -1;
        }
    }
    if (congested && !zones)
        return -1;
    if (json_object_set_new(body, "congested", json_boolean(congested)) ||
        (zones && json_object_set_new(body, "zones", zones)))
        return -1;
    return 0;
}

json_t *ctl_trades_body(const char *participant, const ctl_interval_result *r,
                        const mkt_participant_result *o, const ctl_trade_row *trades, size_t n)
{
    json_t *list = json_array();
    int64_t rent = 0;
    for (size_t i = 0; list && i < n; i++) {
        const ctl_trade_row *t = &trades[i];
        int sells = strcmp(t->seller, participant) == 0, buys = strcmp(t->buyer, participant) == 0;
        if (!sells && !buys)
            continue;
        /* the counterparty is the coordinator's to know: its name never leaves the controller */
        json_t *e = json_pack("{s:s, s:I, s:I, s:I, s:I}", "side", sells ? "sell" : "buy",
                              "energy_wh", (json_int_t)t->t.energy_wh, "price_uc_per_kwh",
                              (json_int_t)t->t.price_uc_per_kwh, "amount_uc",
                              (json_int_t)t->t.amount_uc, "fee_uc", (json_int_t)t->t.fee_uc);
        /* a grid-aware clearing's congestion rent, the buyer's to pay (docs/controller.md,
         * "Topology"); absent on the copper plate, whose bodies stay as they were */
        if (e && buys && t->congestion_uc) {
            json_object_set_new(e, "congestion_uc", json_integer((json_int_t)t->congestion_uc));
            rent += t->congestion_uc;
        }
        json_array_append_new(list, e);
    }
    json_t *body = json_pack(
        "{s:i, s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
        "v", 1, "participant", participant, "interval_id", (json_int_t)r->interval_id,
        "start_utc", (json_int_t)r->start_utc, "interval_s", (json_int_t)r->length_s, "side",
        o->side == MKT_SELL ? "sell" : "buy", "offered_wh", (json_int_t)o->offered_wh,
        "local_bought_wh", (json_int_t)o->local_bought_wh, "local_sold_wh",
        (json_int_t)o->local_sold_wh, "grid_bought_wh", (json_int_t)o->grid_bought_wh,
        "grid_sold_wh", (json_int_t)o->grid_sold_wh, "local_paid_uc",
        (json_int_t)o->local_paid_uc, "local_received_uc", (json_int_t)o->local_received_uc,
        "grid_paid_uc", (json_int_t)o->grid_paid_uc, "grid_received_uc",
        (json_int_t)o->grid_received_uc, "fee_paid_uc", (json_int_t)o->fee_paid_uc, "trades",
        list);
    if (body && rent)
        json_object_set_new(body, "congestion_paid_uc", json_integer((json_int_t)rent));
    return body;
}
