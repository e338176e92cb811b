#!/bin/sh
# A/B of mkt_clear against an older commit's in one process (bench/market_ab.c): builds the old
# market library from `git archive OLD`, prefixes its symbols with old_, and links both into one
# program with the Release build's library. Run from the repository with a Release build:
#   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel --target mgx_market
#   bench/market_ab.sh [OLD_COMMIT] [REPS] [BUILD_DIR] [ORDERS] [IDS]   (ORDERS: a smaller book,
#   default 1M; IDS: "hashed" for hashed participant ids instead of the scramble)
set -eu
old=${1:-0298d9e}
reps=${2:-15}
build=${3:-build-rel}
orders=${4:-1000000}
ids=${5:-scrambled}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive "$old" | tar -x -C "$work" -f -
cmake -S "$work" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" --target mgx_market >/dev/null
lib="$work/build/market/libmgx_market.a"
nm --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[TDBR]/ {print $3 " old_" $3}' | sort -u >"$work/rename"
objcopy --redefine-syms="$work/rename" "$lib" "$work/libold.a"
${CC:-cc} -O3 -std=c11 -Imarket/include -Ibench bench/market_ab.c bench/bench_util.c \
  "$build/market/libmgx_market.a" \
  "$work/libold.a" -o "$work/market_ab"
uptime
"$work/market_ab" "$reps" "$orders" "$ids"
