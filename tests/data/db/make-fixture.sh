#!/usr/bin/env bash
# Makes community-v0.db: a community database written by the controller of commit 0d1b6d9
# (schema_version controller = 1, PRAGMA user_version 0), with rows in every table that file
# holds, for migration tests ("today's database -> new schema, every row kept"). README.md
# next to this script says what is in it and how it was made.
#
#   tests/data/db/make-fixture.sh [MGX]        (or MGX=... ; default build/mgx)
#
# MGX must be built from 0d1b6d9 (the schema this fixture stands for); a newer binary would
# write its own schema. It runs the real stack on loopback for a few simulated hours, as
# demo/community.sh does: a private mosquitto, `mgx sim --serve-modbus` playing 4 homes'
# meters, `mgx meter`, one `mgx agent` per home, `mgx controller` with settlement_key and,
# when node and LiteSVM are there, a [solana] section pointing at tests/solana/rpc_server.mjs
# (an offline Solana node) so that solana_outbox and solana_outbox_superseded fill too.
#
# Environment:
#   MGX_FIXTURE_OUT     where community-v0.db (and .schema.sql) go (default: this folder)
#   MGX_FIXTURE_WORK    work folder kept afterwards (default: a fresh mktemp -d, removed on success)
#   MGX_FIXTURE_SPEED   clock speed (default 1440: a simulated hour in 2.5 s)
#   MGX_FIXTURE_UNTIL   local hour (00-23) of the scenario day up to which intervals are cleared (default 14)
#   MGX_FIXTURE_SOLANA  auto (default: with Solana when possible), 1 (required), 0 (without)
#   MGX_SOLANA_DIR      the folder with rpc_server.mjs and node_modules/ (`npm install` there;
#                       default: tests/solana of this checkout)
#   NODE                node binary (default: node)
# Needs: mosquitto, mosquitto_pub, mosquitto_sub, sqlite3, curl (Solana), node >= 20 (Solana).
# Takes about a minute. Exact bytes differ between runs (keys, nonces, timestamps, how many
# readings arrive); the tables, their columns and the kinds of rows do not.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MGX=${1:-${MGX:-build/mgx}}
MGX=$(realpath -m "$MGX")
OUTDIR=$(realpath -m "${MGX_FIXTURE_OUT:-$HERE}")
SPEED=${MGX_FIXTURE_SPEED:-1440}
UNTIL_H=${MGX_FIXTURE_UNTIL:-14}
SOLANA=${MGX_FIXTURE_SOLANA:-auto}
SOLDIR=$(realpath -m "${MGX_SOLANA_DIR:-$HERE/../../solana}")
NODE=${NODE:-node}
COMMUNITY=demo
GATE_S=300
GRACE_S=300
INTERVAL_S=900
HOLD_S=300

die() { echo "make-fixture: $*" >&2; exit 1; }
say() { echo "make-fixture: $*"; }
[ -x "$MGX" ] || die "$MGX: no mgx binary (give the path of one built from 0d1b6d9)"
for c in mosquitto mosquitto_pub mosquitto_sub sqlite3; do
  command -v "$c" >/dev/null || die "$c not found"
done
HAVE_NODE=0
command -v "$NODE" >/dev/null && HAVE_NODE=1
case "$SOLANA" in
  0) ;;
  1|auto)
    if command -v "$NODE" >/dev/null && command -v curl >/dev/null &&
       [ -f "$SOLDIR/rpc_server.mjs" ] && [ -f "$SOLDIR/node_modules/litesvm/package.json" ]; then
      SOLANA=1
    elif [ "$SOLANA" = 1 ]; then
      die "Solana wanted but $NODE, curl or $SOLDIR/node_modules (npm install there) is missing"
    else
      echo "make-fixture: WARNING: no node/LiteSVM in $SOLDIR: solana_outbox* stay EMPTY" >&2
      SOLANA=0
    fi ;;
  *) die "MGX_FIXTURE_SOLANA is auto, 0 or 1" ;;
esac

if [ -n "${MGX_FIXTURE_WORK:-}" ]; then
  WORK=$(realpath -m "$MGX_FIXTURE_WORK"); rm -rf "$WORK"; mkdir -p "$WORK"; KEEP=1
else
  WORK=$(mktemp -d /tmp/mgx-fixture.XXXXXX); KEEP=0
fi
mkdir -p "$WORK/keys" "$WORK/agents" "$WORK/logs" "$WORK/sim"
DB=$WORK/controller.db

# ---- processes: every one started is remembered and stopped on the way out ----
pids=()
names=()
cleanup() { # stops them in reverse order of start: the broker and the Solana node last
  local i
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
    kill -TERM "${pids[$i]}" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "make-fixture: ${names[$i]} did not stop on SIGTERM; killing it" >&2
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  pids=(); names=()
}
trap 'cleanup; echo "make-fixture: failed; work folder kept: $WORK" >&2' EXIT
trap 'exit 130' INT TERM
start() { # start NAME cmd...  (output in logs/NAME.log)
  local name=$1; shift
  "$@" >"$WORK/logs/$name.log" 2>&1 &
  pids+=($!); names+=("$name")
}
alive() {
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "make-fixture: ${names[$i]} stopped unexpectedly; its log ends with:" >&2
      tail -n 5 "$WORK/logs/${names[$i]}.log" >&2 || true
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
q() { sqlite3 -cmd '.timeout 5000' "$DB" "$@" 2>/dev/null; }
quietly() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; die "failed: $*"; }; }

# ---- the scenario: 4 homes (two without PV, a large roof, a small roof with a battery) ----
SCENARIO=$WORK/fixture.ini
cat >"$SCENARIO" <<'EOF'
; make-fixture.sh's community: 4 homes, one simulated day (the run stops in the afternoon)
[scenario]
name = fixture
[location]
latitude = 47.999
longitude = 7.842
timezone = +01:00
[period]
start = 2025-06-02
days = 1
interval_min = 15
seed = 7
[market]
mechanism = pay-as-clear
feed_in_tariff = 80000
retail_tariff = 300000
network_fee = 10000
forecast_lag = 2
[group.flat]
count = 2
annual_kwh = 3000
agent = markup
markup = 0.15
[group.roof]
count = 1
pv_kwp = 9
pv_tilt = 35
annual_kwh = 4000
agent = truthful
[group.sun]
count = 1
pv_kwp = 5
pv_azimuth = 200
annual_kwh = 3500
battery_kwh = 5
battery_kw = 2.5
agent = markup
markup = 0.2
EOF
HOMES=(flat-1 flat-2 roof-1 sun-1)
START_UTC=$(date -u -d "2025-06-02T00:00:00+01:00" +%s)
FIRST=$(( START_UTC / INTERVAL_S ))
TARGET=$(( FIRST + UNTIL_H * 3600 / INTERVAL_S - 1 )) # the last interval to be cleared

say "mgx $("$MGX" --version 2>/dev/null || echo '(no --version)'), work folder $WORK"

# ---- broker ----
PORT=$(free_port) || die "no free TCP port"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$PORT" \
  >"$WORK/mosquitto.conf"
start broker mosquitto -c "$WORK/mosquitto.conf"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
alive || die "the broker did not start"
bus_section() { # bus_section CLIENT_ID [nocommunity]
  printf '[bus]\nhost = 127.0.0.1\nport = %s\nclient_id = %s\n' "$PORT" "$1"
  [ -n "${2:-}" ] || printf 'community = %s\n' "$COMMUNITY"
}

# ---- participants: 4 homes, an observer and a controller-role key (no meter: meter_id NULL) ----
for id in "${HOMES[@]}"; do
  quietly "$MGX" keygen --out "$WORK/keys/$id"
  quietly "$MGX" participant add --db "$DB" --id "$id" --pubkey "$WORK/keys/$id.pub" --meter "$id"
  strategy=markup; markup=0.15
  case $id in roof-*) strategy=truthful; markup=0.1 ;; sun-*) markup=0.2 ;; esac
  { bus_section "$id-agent"
    printf '\n[agent]\nparticipant = %s\nkey_file = %s\noutbox = %s\n' "$id" \
      "$WORK/keys/$id.key" "$WORK/agents/$id.db"
    printf 'strategy = %s\nmarkup = %s\n' "$strategy" "$markup"
    printf 'feed_in_uc_per_kwh = 80000\nretail_uc_per_kwh = 300000\nnetwork_fee_uc_per_kwh = 10000\n'
    printf 'interval_s = %s\ngate_closure_s = %s\nmax_reading_gap_s = %s\n' "$INTERVAL_S" \
      "$GATE_S" $(( 2 * HOLD_S ))
  } >"$WORK/agents/$id.ini"
done
quietly "$MGX" keygen --out "$WORK/keys/auditor"
quietly "$MGX" participant add --db "$DB" --id auditor --pubkey "$WORK/keys/auditor.pub" --role observer
quietly "$MGX" keygen --out "$WORK/keys/coordinator"
quietly "$MGX" participant add --db "$DB" --id coordinator --pubkey "$WORK/keys/coordinator.pub" \
  --role controller
"$MGX" ledger keygen "$COMMUNITY.example/mgx" --out "$WORK/keys/ledger.skey" \
  >"$WORK/keys/ledger.vkey" || die "mgx ledger keygen failed"

# ---- Solana: an offline node (LiteSVM) holding the mints and the homes' token accounts ----
rpc() { # rpc METHOD PARAMS_JSON
  curl -sS -m 5 -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "$RPC_URL" >/dev/null
}
SOLANA_INI=
if [ "$SOLANA" = 1 ]; then
  RPC_PORT=$(free_port) || die "no free TCP port"
  RPC_URL=http://127.0.0.1:$RPC_PORT
  { printf '{"payment_decimals": 6, "homes": ['
    for i in "${!HOMES[@]}"; do
      [ "$i" = 0 ] || printf ', '
      printf '{"energy": "2000000", "payment": "1000000000000", "energy_allowance": "1500000", '
      printf '"payment_allowance": "500000000000"}'
    done
    printf ']}\n'; } >"$WORK/sol-community.json"
  start solana-node "$NODE" "$SOLDIR/rpc_server.mjs" "$RPC_PORT" "$WORK/sol-scenario.json" \
    "$WORK/sol-community.json"
  for _ in $(seq 600); do grep -q READY "$WORK/logs/solana-node.log" 2>/dev/null && break
    alive || die "the Solana test node did not start"; sleep 0.1; done
  grep -q READY "$WORK/logs/solana-node.log" || die "the Solana test node did not get ready"
  # the settlement key pair as solana-keygen writes it (64 numbers: seed, public key), and
  # the wallets file (participant wallet), from what the node wrote
  (umask 077; SCEN="$WORK/sol-scenario.json" KP="$WORK/keys/solana-settle.json" \
     WALLETS="$WORK/wallets.txt" IDS="${HOMES[*]}" "$NODE" -e '
    const fs = require("fs"), crypto = require("crypto");
    const s = JSON.parse(fs.readFileSync(process.env.SCEN, "utf8"));
    const seed = Buffer.from(s.authority_seed, "hex");
    const priv = crypto.createPrivateKey({ format: "der", type: "pkcs8",
      key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]) });
    const pub = crypto.createPublicKey(priv).export({ format: "der", type: "spki" }).subarray(-32);
    fs.writeFileSync(process.env.KP, JSON.stringify([...seed, ...pub]) + "\n", { mode: 0o600 });
    const ids = process.env.IDS.split(" ");
    fs.writeFileSync(process.env.WALLETS, "# participant wallet\n" +
      ids.map((id, i) => `${id} ${s.wallets[i].address}\n`).join(""));
    fs.writeFileSync(process.env.SCEN + ".mints", `${s.energy_mint} ${s.payment_mint}\n`);')
  read -r EMINT PMINT <"$WORK/sol-scenario.json.mints"
  SOLANA_INI=$(printf '\n[solana]\nrpc_url = %s\nkeypair = %s\nenergy_mint = %s\npayment_mint = %s\npayment_decimals = 6\nwallets = %s\npoll_ms = 200\ntimeout_ms = 2000\n' \
    "$RPC_URL" "$WORK/keys/solana-settle.json" "$EMINT" "$PMINT" "$WORK/wallets.txt")
fi

{ bus_section controller nocommunity
  printf '\n[controller]\ncommunity = %s\ndb = %s\ninterval_s = %s\ngate_closure_s = %s\n' \
    "$COMMUNITY" "$DB" "$INTERVAL_S" "$GATE_S"
  printf 'mechanism = pay-as-clear\nfeed_in_uc_per_kwh = 80000\nretail_uc_per_kwh = 300000\n'
  printf 'network_fee_uc_per_kwh = 10000\n'
  printf 'settlement_key = %s\nsettlement_grace_s = %s\n' "$WORK/keys/ledger.skey" "$GRACE_S"
  printf '%s\n' "$SOLANA_INI"
} >"$WORK/controller.ini"

# ---- the stack, on one accelerated clock starting a few real seconds from now ----
ANCHOR=$(( $(date +%s) + 4 ))
CLOCK=(--clock-speed "$SPEED" --clock-anchor "$ANCHOR:$START_UTC")
T0=$(date +%s)
start controller "$MGX" controller "$WORK/controller.ini" "${CLOCK[@]}"
start sim "$MGX" sim "$SCENARIO" --out "$WORK/sim" --no-plots --quiet \
  --serve-modbus 127.0.0.1:0 --clock-speed "$SPEED" --clock-start "${ANCHOR}000" \
  --meter-config "$WORK/meters-sim.ini" --meter-hold "$HOLD_S"
for _ in $(seq 100); do [ -f "$WORK/meters-sim.ini" ] && break; alive || exit 1; sleep 0.1; done
[ -f "$WORK/meters-sim.ini" ] || die "the simulated meters did not come up"
{ bus_section meters; printf '\n[outbox]\npath = %s\n\n' "$WORK/meters-outbox.db"
  sed -n '/^\[meter /,$p' "$WORK/meters-sim.ini"; } >"$WORK/meters.ini"
start meter "$MGX" meter "$WORK/meters.ini" "${CLOCK[@]}"
for id in "${HOMES[@]}"; do
  start "agent-$id" "$MGX" agent "$WORK/agents/$id.ini" "${CLOCK[@]}"
done
say "running: broker :$PORT, controller, sim meters, meter reader, ${#HOMES[@]} agents$([ "$SOLANA" = 1 ] && echo ", Solana node $RPC_URL")"

# Rejected orders are stored too (as evidence): one that is not an order at all, and a real
# signed order of roof-1 rewritten to say flat-2 and published under flat-2's topic (it
# decodes and is rejected before its signature is checked, as expired or superseded by
# flat-2's own order: a rejected row with nonce, steps and signed bytes).
TOPIC=mgx/v1/$COMMUNITY/order
mosquitto_sub -h 127.0.0.1 -p "$PORT" -C 1 -W 60 -t "$TOPIC/roof-1" >"$WORK/captured-order.json" \
  2>/dev/null &
SUBPID=$!

# Replaced orders (superseded = 1): flat-2 signs two orders for an interval two hours ahead of
# the captured one, the second replacing the first; its agent's own order for that interval
# replaces the second in turn. Needs node (Ed25519 signing of the order encoding, order_msg.c).
replace_orders() {
  local i
  for i in 1 2; do
    ORDER="$WORK/captured-order.json" KEY="$WORK/keys/flat-2.key" N=$i "$NODE" -e '
      const fs = require("fs"), crypto = require("crypto");
      const c = JSON.parse(fs.readFileSync(process.env.ORDER, "utf8"));
      const seed = Buffer.from(fs.readFileSync(process.env.KEY, "utf8").split("\n")[1].trim(), "hex");
      const sk = crypto.createPrivateKey({ format: "der", type: "pkcs8",
        key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]) });
      const n = Number(process.env.N), iv = c.interval_id + 8;
      const m = { v: 1, community: c.community, participant: "flat-2", interval_id: iv,
        interval_s: c.interval_s, created_ms: c.created_ms + n, expiry_s: iv * c.interval_s,
        nonce: crypto.randomBytes(16).toString("hex"), side: "buy",
        steps: [{ energy_wh: 100 + n, price_uc_per_kwh: 250000 }] };
      const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b; };
      const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
      const id = (t) => Buffer.concat([Buffer.from([t.length]), Buffer.from(t)]);
      const enc = Buffer.concat([Buffer.from("mgx-order-v1\0"), id(m.community), id(m.participant),
        u64(m.interval_id), u32(m.interval_s), u64(m.created_ms), u64(m.expiry_s),
        Buffer.from(m.nonce, "hex"), Buffer.from([0, m.steps.length]),
        ...m.steps.flatMap((s) => [u64(s.energy_wh), u64(s.price_uc_per_kwh)])]);
      m.sig = crypto.sign(null, enc, sk).toString("hex");
      process.stdout.write(JSON.stringify(m));' |
      mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$TOPIC/flat-2" -s
  done
}

# ---- wait: intervals cleared to the target, blocks settled, the Solana outbox exercised ----
sol_phase=0 # 0: wait for a confirmed row, 1: sends dropped, wait for a submitted row, 2: done
sol_mark=0
injected=0
deadline=$(( T0 + 60 + 3 * (UNTIL_H * 3600 + 1800) / SPEED ))
while :; do
  sleep 0.5
  alive || exit 1
  [ "$(date +%s)" -le "$deadline" ] || die "timed out (logs in $WORK/logs)"
  cleared=$(q "SELECT coalesce(max(interval_id), 0) FROM intervals WHERE state = 1" || echo 0)
  settled=$(q "SELECT coalesce(max(interval_id), 0) FROM ledger_block" || echo 0)
  if [ "$injected" = 0 ] && ! kill -0 "$SUBPID" 2>/dev/null; then
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$TOPIC/flat-2" -m "not an order"
    [ -s "$WORK/captured-order.json" ] &&
      sed 's/"participant":"roof-1"/"participant":"flat-2"/' "$WORK/captured-order.json" |
      mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$TOPIC/flat-2" -s
    [ -s "$WORK/captured-order.json" ] && [ "$HAVE_NODE" = 1 ] && replace_orders
    injected=1
  fi
  if [ "$SOLANA" = 1 ]; then
    # A blockhash that expires with its transaction unseen: the node swallows the sends of one
    # transaction, its block height then jumps past the blockhash's validity, and the outbox
    # rebuilds it with a new blockhash (the old signature goes to solana_outbox_superseded).
    case $sol_phase in
      0) if [ "$(q "SELECT count(*) FROM solana_outbox WHERE state = 'confirmed'" || echo 0)" -ge 1 ]; then
           sol_mark=$(q "SELECT coalesce(max(id), 0) FROM solana_outbox")
           rpc mgxTest_dropNext '[1000000]'; sol_phase=1
         fi ;;
      1) if [ "$(q "SELECT count(*) FROM solana_outbox WHERE id > $sol_mark AND state = 'submitted'" || echo 0)" -ge 1 ]; then
           rpc mgxTest_dropNext '[0]'; rpc mgxTest_advance '[200]'; sol_phase=2
         fi ;;
    esac
  fi
  [ "$cleared" -ge "$TARGET" ] && [ "$settled" -ge $(( TARGET - 2 )) ] && [ "$injected" = 1 ] || continue
  [ "$SOLANA" = 1 ] || break
  if [ "$sol_phase" = 2 ] &&
     [ "$(q "SELECT count(*) FROM solana_outbox_superseded" || echo 0)" -ge 1 ] &&
     [ "$(q "SELECT count(*) FROM solana_outbox WHERE state IN ('built','submitted')" || echo 1)" = 0 ]; then
    break
  fi
done
kill "$SUBPID" 2>/dev/null || true
cleanup
say "stopped after $(( $(date +%s) - T0 )) s; cleared to interval $cleared (target $TARGET)"

# ---- the fixture: a compact copy, rollback journal (the controller sets WAL again on open) ----
"$MGX" ledger verify "$DB" --vkey-file "$WORK/keys/ledger.vkey" >"$WORK/ledger-verify.txt" 2>&1 ||
  { cat "$WORK/ledger-verify.txt" >&2; die "mgx ledger verify failed on the new database"; }
mkdir -p "$OUTDIR"
rm -f "$OUTDIR/community-v0.db" "$OUTDIR/community-v0.db-wal" "$OUTDIR/community-v0.db-shm"
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE); VACUUM INTO '$OUTDIR/community-v0.db';" >/dev/null
sqlite3 "$OUTDIR/community-v0.db" "PRAGMA journal_mode=DELETE;" >/dev/null
sqlite3 "$OUTDIR/community-v0.db" .schema >"$OUTDIR/community-v0.schema.sql"
cp "$WORK/keys/ledger.vkey" "$OUTDIR/community-v0.vkey"
empty=0
say "$OUTDIR/community-v0.db: $(stat -c %s "$OUTDIR/community-v0.db") bytes; rows per table:"
for t in $(sqlite3 "$OUTDIR/community-v0.db" \
    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"); do
  n=$(sqlite3 "$OUTDIR/community-v0.db" "SELECT count(*) FROM \"$t\"")
  printf '  %-26s %s\n' "$t" "$n"
  [ "$n" -gt 0 ] || empty=1
done
say "ledger verify: $(tail -n 1 "$WORK/ledger-verify.txt")"
trap - EXIT
if [ "$KEEP" = 0 ] && [ "$empty" = 0 ]; then rm -rf "$WORK"; else say "work folder kept: $WORK"; fi
[ "$empty" = 0 ] || die "some table is empty (see above)"
