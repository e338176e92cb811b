#!/usr/bin/env bash
# The live demo's report (demo/community.sh runs it after stopping the daemons):
#
#   MGX_REPORT_DB=controller.db MGX_REPORT_SIM=SIMOUT demo/report.sh FIRST LAST [UTC_OFFSET_MIN]
#
# What was traded comes from the controller's database (intervals FIRST..LAST): per hour, the
# orders, the energy matched locally and the clearing prices, then the day's totals. Each
# home's local trades and market money come from the same database. A home's grid energy and
# its bill against the grid-only baseline need its metered energy settled interval by interval
# (imbalance at the tariffs); the simulator that played the meters (`mgx sim --serve-modbus`)
# wrote exactly that into SIMOUT/homes.csv, and the report checks that its local trades are the
# ones the controller cleared before it uses those columns.
set -euo pipefail
DB=${MGX_REPORT_DB:?set MGX_REPORT_DB}
SIM=${MGX_REPORT_SIM:?set MGX_REPORT_SIM}
FIRST=${1:?FIRST interval id}
LAST=${2:?LAST interval id}
OFFSET_MIN=${3:-60}

sqlite3 -readonly "$DB" <<EOF
.mode column
.headers on
.print '== What was traded (controller database, per hour, local standard time) =='
SELECT strftime('%H:%M', min(r.interval_id) * i.length_s, 'unixepoch', '$OFFSET_MIN minutes')
         AS hour,
       sum(r.n_orders) AS orders,
       printf('%8.2f', sum(r.matched_wh) / 1000.0) AS local_kwh,
       CASE WHEN sum(r.has_price) = 0 THEN '-' ELSE
         printf('%.3f..%.3f', min(CASE WHEN r.has_price THEN r.price_uc_per_kwh END) / 1e6,
                max(CASE WHEN r.has_price THEN r.price_uc_per_kwh END) / 1e6) END
         AS price_per_kwh,
       printf('%8.2f', sum(r.grid_bought_wh) / 1000.0) AS from_grid_kwh,
       printf('%8.2f', sum(r.grid_sold_wh) / 1000.0) AS to_grid_kwh
FROM results r JOIN intervals i USING(interval_id)
WHERE r.interval_id BETWEEN $FIRST AND $LAST
GROUP BY (r.interval_id - $FIRST) / (3600 / i.length_s)
ORDER BY min(r.interval_id);
.print ''
.print '== Totals =='
SELECT count(*) AS intervals,
       sum(n_orders) AS orders,
       sum(matched_wh > 0) AS with_local_trades,
       sum(n_trades) AS trades,
       printf('%.2f', sum(matched_wh) / 1000.0) AS local_kwh,
       printf('%.2f', sum(local_value_uc) / 1e6) AS local_value,
       printf('%.2f', sum(fees_uc) / 1e6) AS network_fees,
       CASE WHEN sum(matched_wh) = 0 THEN '-' ELSE
         printf('%.4f', sum(local_value_uc) * 1.0 / sum(matched_wh) / 1000.0) END
         AS mean_price_per_kwh
FROM results WHERE interval_id BETWEEN $FIRST AND $LAST;
EOF

echo
echo "== Each home (local trades and market money: controller database; grid and bill: the"
echo "   day's metered energy settled against the grid, from the simulator that played the meters) =="
sqlite3 :memory: <<EOF
.import --csv $SIM/homes.csv homes
ATTACH '$DB' AS c;
CREATE TEMP TABLE live AS
  SELECT participant AS home, sum(local_sold_wh) AS sold, sum(local_bought_wh) AS bought,
         sum(local_paid_uc + fee_paid_uc) AS paid, sum(local_received_uc) AS received
  FROM c.outcomes WHERE interval_id BETWEEN $FIRST AND $LAST GROUP BY participant;
.mode column
.headers on
SELECT h.home,
       printf('%7.2f', coalesce(l.sold, 0) / 1000.0) AS sold_kwh,
       printf('%7.2f', coalesce(l.bought, 0) / 1000.0) AS bought_kwh,
       printf('%7.2f', (coalesce(l.received, 0) - coalesce(l.paid, 0)) / 1e6) AS market_net,
       printf('%7.2f', h.grid_import_wh / 1000.0) AS grid_in_kwh,
       printf('%7.2f', h.grid_export_wh / 1000.0) AS grid_out_kwh,
       printf('%7.2f', h.cost_uc / 1e6) AS bill,
       printf('%7.2f', h.baseline_cost_uc / 1e6) AS grid_only_bill,
       printf('%+7.2f', (h.baseline_cost_uc - h.cost_uc) / 1e6) AS saved
FROM homes h LEFT JOIN live l ON l.home = h.home ORDER BY h.rowid;
.mode list
.headers off
.print ''
SELECT printf('community: %.2f kWh sold locally, bill %.2f instead of %.2f (%.2f saved, %.1f%%)',
              sum(local_sold_wh) / 1000.0, sum(cost_uc) / 1e6, sum(baseline_cost_uc) / 1e6,
              (sum(baseline_cost_uc) - sum(cost_uc)) / 1e6,
              CASE WHEN sum(baseline_cost_uc) = 0 THEN 0 ELSE
                100.0 * (sum(baseline_cost_uc) - sum(cost_uc)) / abs(sum(baseline_cost_uc)) END)
FROM homes;
-- the CSV's columns are text: compare them as the integers they are
SELECT printf('homes worse off than with the grid alone: %d of %d%s',
              sum(CAST(cost_uc AS INTEGER) > CAST(baseline_cost_uc AS INTEGER)), count(*),
              CASE WHEN sum(CAST(cost_uc AS INTEGER) > CAST(baseline_cost_uc AS INTEGER)) = 0
                THEN printf(' (none; the smallest saving is %.2f)',
                            min(baseline_cost_uc - cost_uc) / 1e6)
                ELSE printf(' (worst %.2f)', min(baseline_cost_uc - cost_uc) / 1e6) END)
FROM homes;
SELECT CASE WHEN count(*) = 0
  THEN 'check: every home''s local trades equal the in-process simulator''s (docs/end-to-end.md)'
  ELSE 'check: ' || count(*) || ' home(s) traded differently from the in-process simulator; '
       || 'see docs/end-to-end.md' END
FROM homes h LEFT JOIN live l ON l.home = h.home
WHERE coalesce(l.sold, 0) != h.local_sold_wh OR coalesce(l.bought, 0) != h.local_bought_wh;
EOF
echo "(money in currency units: 1 = 1,000,000 uc; bill = grid and local purchases less sales)"
