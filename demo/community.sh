#!/usr/bin/env bash
# The live demo: runs a whole community on this machine with the real daemons, at an
# accelerated clock (a simulated day in about a minute), then prints what was traded and each
# home's result, and stops everything it started (also on Ctrl-C).
#
#   demo/community.sh [SCENARIO.ini]      (default config/live-community.ini)
#
# What runs, all on 127.0.0.1: a private mosquitto broker; `mgx sim --serve-modbus` playing the
# scenario's homes as Modbus meters; `mgx meter` reading them onto the bus; one `mgx agent` per
# home (key made with `mgx keygen`, registered with `mgx participant add`); `mgx controller`.
# Every process gets the same --clock-speed and --clock-anchor, so they agree on simulated time.
# docs/quickstart.md walks through it; docs/end-to-end.md says why the results equal the
# in-process simulator's.
#
# Environment: MGX (the binary, default build/mgx), MGX_DEMO_SPEED (default 1440),
# MGX_DEMO_OUT (default demo-out/live: configs, keys, databases, logs and the report),
# MGX_DEMO_KEEP (set: after the day the web dashboard, `mgx web`, keeps running until Ctrl-C
# so a person can look; its address and logins are printed).
set -euo pipefail
cd "$(dirname "$0")/.."

MGX=${MGX:-build/mgx}
SCENARIO=${1:-config/live-community.ini}
SPEED=${MGX_DEMO_SPEED:-1440}
OUT=$(realpath -m "${MGX_DEMO_OUT:-demo-out/live}")
COMMUNITY=demo
GATE_S=300
GRACE_S=300 # readings arrive every ~2 simulated minutes

die() { echo "demo: $*" >&2; exit 1; }
[ -x "$MGX" ] || die "$MGX not found: build first (cmake --build build)"
[ -f "$SCENARIO" ] || die "$SCENARIO: no such scenario"
command -v mosquitto >/dev/null || die "mosquitto not found (apt-get install mosquitto)"
command -v sqlite3 >/dev/null || die "sqlite3 not found (apt-get install sqlite3)"

# ---- processes: every one started is remembered and stopped on the way out ----
pids=()
names=()
cleanup() {
  trap - EXIT INT TERM
  local i
  for i in "${!pids[@]}"; do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for i in "${!pids[@]}"; do
    for _ in $(seq 50); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "demo: ${names[$i]} did not stop on SIGTERM; killing it" >&2
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted; stopping everything it started" >&2; exit 130' INT TERM

start() { # start NAME LOG cmd...
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

alive() { # fails (with the log's tail) when a started process has died
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "demo: ${names[$i]} stopped unexpectedly; its log ends with:" >&2
      tail -n 5 "$OUT/logs/${names[$i]}.log" >&2 || true
      return 1
    fi
  done
}

free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# ---- the scenario: homes, strategies, tariffs, clock ----
# One line per home: "id strategy markup" (homes of group G are G-1 .. G-count, in file order).
scenario_homes() {
  awk '
    function flush() { if (g != "") for (i = 1; i <= n; i++) print g "-" i, a, m }
    { sub(/[;#].*/, ""); gsub(/[ \t\r]/, "") }
    /^\[/ { flush(); g = ""; if ($0 ~ /^\[group\./) { g = substr($0, 8, length($0) - 8);
            n = 0; a = "truthful"; m = 0.1 } next }
    g != "" && /^count=/ { n = substr($0, 7) + 0 }
    g != "" && /^agent=/ { a = substr($0, 7) }
    g != "" && /^markup=/ { m = substr($0, 8) }
    END { flush() }' "$SCENARIO"
}
key() { # key SECTION NAME DEFAULT
  awk -v s="[$1]" -v k="$2" -v d="$3" '
    { sub(/[;#].*/, ""); gsub(/[ \t\r]/, "") }
    /^\[/ { in_s = ($0 == s); next }
    in_s && index($0, k "=") == 1 { v = substr($0, length(k) + 2) }
    END { print (v == "" ? d : v) }' "$SCENARIO"
}
FEED_IN=$(key market feed_in_tariff 80000)
RETAIL=$(key market retail_tariff 300000)
FEE=$(key market network_fee 0)
MECHANISM=$(key market mechanism pay-as-clear)
TIMING=$(key market timing ex_ante)
INTERVAL_S=$(( $(key period interval_min 15) * 60 ))
DAYS=$(key period days 7)
TZ_OFF=$(key location timezone +01:00)
if [ "$TZ_OFF" = UTC ] || [ "$TZ_OFF" = Z ]; then TZ_OFF=+00:00; fi
START_UTC=$(date -u -d "$(key period start 2025-06-01)T00:00:00$TZ_OFF" +%s) ||
  die "cannot read the scenario's start and timezone"
INTERVALS=$(( DAYS * 86400 / INTERVAL_S ))
FIRST=$(( START_UTC / INTERVAL_S ))
LAST=$(( FIRST + INTERVALS - 1 ))
HOLD_S=$(( INTERVAL_S / 3 ))
mapfile -t HOMES < <(scenario_homes)
[ ${#HOMES[@]} -gt 0 ] || die "$SCENARIO has no homes"

rm -rf "$OUT"
mkdir -p "$OUT/keys" "$OUT/agents" "$OUT/logs" "$OUT/sim"
DB=$OUT/controller.db
echo "== mgx live demo: ${#HOMES[@]} homes of $SCENARIO, $DAYS simulated day(s) at ${SPEED}x, timing $TIMING =="

# ---- broker ----
# An open broker on loopback for the demo. A community's real broker is config/mosquitto/ (TLS,
# passwords, the ACL, the client id bound to the login: each daemon needs a login of its own,
# docs/bus-security.md); here every daemon just has a client id of its own.
PORT=$(free_port) || die "no free TCP port"
cat >"$OUT/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
EOF
start broker "$OUT/logs/broker.log" mosquitto -c "$OUT/mosquitto.conf"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
alive || die "the broker did not start"
echo "broker       mosquitto on 127.0.0.1:$PORT"

bus_section() { # bus_section CLIENT_ID [nocommunity]: the controller names it in [controller]
  printf '[bus]\nhost = 127.0.0.1\nport = %s\nclient_id = %s\n' "$PORT" "$1"
  [ -n "${2:-}" ] || printf 'community = %s\n' "$COMMUNITY"
}
quietly() { # runs a command, showing its output only when it fails
  local out
  out=$("$@" 2>&1) || { echo "$out" >&2; die "failed: $*"; }
}

# ---- participants: a key per home, registered with the controller's database ----
for line in "${HOMES[@]}"; do
  read -r id strategy markup <<<"$line"
  quietly "$MGX" keygen --out "$OUT/keys/$id"
  quietly "$MGX" participant add --db "$DB" --id "$id" --pubkey "$OUT/keys/$id.pub" --meter "$id"
  { bus_section "$id-agent"
    printf '\n[agent]\nparticipant = %s\nkey_file = %s\noutbox = %s\n' "$id" \
      "$OUT/keys/$id.key" "$OUT/agents/$id.db"
    printf 'strategy = %s\nmarkup = %s\n' "$strategy" "$markup"
    printf 'feed_in_uc_per_kwh = %s\nretail_uc_per_kwh = %s\nnetwork_fee_uc_per_kwh = %s\n' \
      "$FEED_IN" "$RETAIL" "$FEE"
    printf 'interval_s = %s\ngate_closure_s = %s\nmax_reading_gap_s = %s\n' "$INTERVAL_S" \
      "$GATE_S" $(( 2 * HOLD_S ))
    printf 'timing = %s\n' "$TIMING"
  } >"$OUT/agents/$id.ini"
done
echo "participants ${#HOMES[@]} keys made (mgx keygen) and registered (mgx participant add)"
# the coordinator's boundary meter at the transformer (docs/trust.md, layer 3): the simulator
# serves it (the homes' net plus 2 % losses); settlement balances the homes against it
quietly "$MGX" keygen --out "$OUT/keys/feeder"
quietly "$MGX" participant add --db "$DB" --id feeder --pubkey "$OUT/keys/feeder.pub" \
  --role boundary --meter feeder
echo "boundary     meter 'feeder' registered (mgx participant add --role boundary)"
"$MGX" ledger keygen "$COMMUNITY.example/mgx" --out "$OUT/keys/ledger.skey" >"$OUT/keys/ledger.vkey" ||
  die "mgx ledger keygen failed"
echo "ledger       community settlement key made (mgx ledger keygen)"

{ bus_section controller nocommunity
  printf '\n[controller]\ncommunity = %s\ndb = %s\ninterval_s = %s\ngate_closure_s = %s\n' \
    "$COMMUNITY" "$DB" "$INTERVAL_S" "$GATE_S"
  printf 'mechanism = %s\nfeed_in_uc_per_kwh = %s\nretail_uc_per_kwh = %s\n' "$MECHANISM" \
    "$FEED_IN" "$RETAIL"
  printf 'network_fee_uc_per_kwh = %s\ntiming = %s\n' "$FEE" "$TIMING"
  # settle each interval into the signed ledger once its readings are in (docs/ledger.md)
  printf 'settlement_key = %s\nsettlement_grace_s = %s\n' "$OUT/keys/ledger.skey" "$GRACE_S"
  # energy credits for verified export (docs/credits.md); the simulated meters are unsigned
  printf 'credit_min_tier = 0\n'
} >"$OUT/controller.ini"

# ---- the clock: the scenario's first instant is a few real seconds from now ----
ANCHOR=$(( $(date +%s) + 4 ))
CLOCK=(--clock-speed "$SPEED" --clock-anchor "$ANCHOR:$START_UTC")

start controller "$OUT/logs/controller.log" "$MGX" controller "$OUT/controller.ini" "${CLOCK[@]}"
start sim "$OUT/logs/sim.log" "$MGX" sim "$SCENARIO" --out "$OUT/sim" --no-plots \
  --serve-modbus 127.0.0.1:0 --clock-speed "$SPEED" --clock-start "${ANCHOR}000" \
  --meter-config "$OUT/meters-sim.ini" --meter-hold "$HOLD_S" --boundary-meter feeder
for _ in $(seq 100); do [ -f "$OUT/meters-sim.ini" ] && break; alive || exit 1; sleep 0.1; done
[ -f "$OUT/meters-sim.ini" ] || die "the simulated meters did not come up"
{ bus_section meters; printf '\n[outbox]\npath = %s\n\n' "$OUT/meters-outbox.db"
  sed -n '/^\[meter /,$p' "$OUT/meters-sim.ini"; } >"$OUT/meters.ini"  # its [meter] sections only
start meter "$OUT/logs/meter.log" "$MGX" meter "$OUT/meters.ini" "${CLOCK[@]}"
for line in "${HOMES[@]}"; do
  read -r id _ <<<"$line"
  start "agent-$id" "$OUT/logs/agent-$id.log" "$MGX" agent "$OUT/agents/$id.ini" "${CLOCK[@]}"
done
echo "running      controller, simulated meters, meter reader, ${#HOMES[@]} agents (logs in $OUT/logs)"

# ---- wait for the day to be cleared ----
q() { sqlite3 -cmd '.timeout 5000' "$DB" "$@"; }
last=-1
while :; do
  sleep 1
  alive || exit 1
  last=$(q "SELECT coalesce(max(interval_id), -1) FROM intervals WHERE state = 1" 2>/dev/null ||
    echo "$last")
  done_n=$(( last < FIRST ? 0 : last - FIRST + 1 ))
  [ "$done_n" -gt "$INTERVALS" ] && done_n=$INTERVALS
  traded=$(q "SELECT coalesce(sum(matched_wh), 0) FROM results WHERE interval_id BETWEEN $FIRST
    AND $LAST" 2>/dev/null || echo 0)
  line=$(printf '  %3d of %d intervals cleared, %6.1f kWh traded locally' "$done_n" \
    "$INTERVALS" "$(echo "$traded" | awk '{ print $1 / 1000 }')")
  if [ -t 1 ]; then printf '\r%s' "$line"
  elif [ $(( done_n / 24 )) -ne "${shown:--1}" ]; then shown=$(( done_n / 24 )); echo "$line"; fi
  if [ "$done_n" -ge "$INTERVALS" ] && [ -f "$OUT/sim/summary.json" ]; then break; fi
done
echo
# the last intervals settle once their grace has passed: a few real seconds at most
for _ in $(seq 60); do
  settled=$(q "SELECT count(*) FROM ledger_block WHERE interval_id BETWEEN $FIRST AND $LAST" \
    2>/dev/null || echo 0)
  [ "$settled" -ge "$INTERVALS" ] && break
  alive || exit 1
  sleep 0.5
done
cleanup
trap 'exit 130' INT TERM

MGX_REPORT_DB=$DB MGX_REPORT_SIM=$OUT/sim demo/report.sh "$FIRST" "$LAST" | tee "$OUT/report.txt"

echo
echo "== The signed ledger (controller database; docs/ledger.md) =="
q "SELECT count(*) || ' of $INTERVALS intervals settled into signed blocks' FROM ledger_block
   WHERE interval_id BETWEEN $FIRST AND $LAST" | tee -a "$OUT/report.txt"
if "$MGX" ledger verify "$DB" --vkey-file "$OUT/keys/ledger.vkey" >"$OUT/ledger-verify.txt" 2>&1; then
  echo "mgx ledger verify: $(tail -n 1 "$OUT/ledger-verify.txt")" | tee -a "$OUT/report.txt"
else
  cat "$OUT/ledger-verify.txt" >&2
  die "mgx ledger verify found a fault"
fi
echo
echo "== The boundary balance (docs/trust.md, layer 3; the controller log) =="
bal=$(grep -c 'boundary balanced' "$OUT/logs/controller.log" || true)
dis=$(grep -c 'boundary DISPUTED' "$OUT/logs/controller.log" || true)
echo "intervals balanced at the boundary meter: $bal, disputed: $dis" | tee -a "$OUT/report.txt"
grep 'boundary balanced' "$OUT/logs/controller.log" | grep -m 1 -v 'net 0 Wh' |
  sed 's/^.*: interval/interval/' || true
first_home=${HOMES[0]%% *}
noon=$(( FIRST + INTERVALS / 2 ))
echo "statement of $first_home for the interval at midday (mgx ledger statement, CSV):"
"$MGX" ledger statement "$DB" --participant "$first_home" --interval "$noon" | head -n 2
echo
echo "== Energy credits (mgx ledger certificates; docs/credits.md) =="
month=$(date -u -d "@$START_UTC" +%Y-%m)
for line in "${HOMES[@]}"; do
  read -r id _ <<<"$line"
  "$MGX" ledger certificates "$DB" --participant "$id" --month "$month" \
    >"$OUT/certificates-$id.json" 2>>"$OUT/logs/certificates.log" || continue
  # the month's totals are the last object of the export
  awk -v id="$id" -F'[:,]' '/"month"/ { m = 1 } m && /"/ { gsub(/[" ]/, "", $1); v[$1] = $2 + 0 }
    END { printf "%-10s minted %7d Wh, bought %7d, retired %7d of %7d Wh used: %5.1f%% local verified\n",
          id, v["minted_wh"], v["bought_wh"], v["matched_wh"], v["consumption_wh"],
          v["matched_share_bp"] / 100 }' "$OUT/certificates-$id.json" | tee -a "$OUT/report.txt"
done

# ---- the web dashboard on the day's database (docs/dashboard.md). The demo's broker takes
# anonymous clients, so its homes have no bus password: the demo writes one for the first home
# into a password file of the broker's format, as a community's broker would hold it. ----
echo
echo "== The web dashboard (mgx web; docs/dashboard.md) =="
if command -v mosquitto_passwd >/dev/null; then
  WEB_PORT=$(free_port) || die "no free TCP port"
  mosquitto_passwd -c -b "$OUT/keys/web-homes.passwd" "$first_home" "demo-$first_home"
  mosquitto_passwd -c -b "$OUT/keys/web-admin.passwd" coordinator demo-coordinator
  printf '[web]\nlisten = 127.0.0.1\nport = %s\ndatabase = controller.db\npassword_file = %s\nadmin_file = %s\n' \
    "$WEB_PORT" keys/web-homes.passwd keys/web-admin.passwd >"$OUT/web.ini"
  pids=() names=() # the stack was stopped above: from here only the dashboard
  trap cleanup EXIT
  trap 'echo; echo "demo: stopping the dashboard" >&2; exit 0' INT TERM
  start web "$OUT/logs/web.log" "$MGX" web "$OUT/web.ini"
  for _ in $(seq 100); do grep -q serving "$OUT/logs/web.log" 2>/dev/null && break; sleep 0.1; done
  alive || die "mgx web did not start"
  { echo "dashboard    http://127.0.0.1:$WEB_PORT/ (mgx web $OUT/web.ini)"
    echo "  log in as a home:        $first_home / demo-$first_home"
    echo "  log in as coordinator:   coordinator / demo-coordinator"; } | tee -a "$OUT/report.txt"
  if [ -n "${MGX_DEMO_KEEP:-}" ]; then
    echo "MGX_DEMO_KEEP is set: the dashboard keeps running until Ctrl-C."
    while alive; do sleep 1; done
    exit 1
  fi
  cleanup
else
  echo "mosquitto_passwd not found: no dashboard (apt-get install mosquitto)"
fi
echo "Everything started was stopped. Configs, keys, databases and logs are in $OUT/."
