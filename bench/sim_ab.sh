#!/bin/sh
# A/B of the simulator against an older commit: builds the old commit's bench_sim from
# `git archive OLD` (Release), then runs it and this build's bench_sim alternately (old, new,
# old, new, ...) so that both see the same load on a shared machine, and prints every run's wall
# and CPU seconds (user + system, all threads), the medians and new / old. Run from the
# repository with a Release build:
#   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel --target bench_sim
#   bench/sim_ab.sh [OLD_COMMIT] [REPS] [THREADS] [HOMES] [DAYS] [BUILD_DIR]
set -eu
old=${1:-708ed9c}
reps=${2:-5}
threads=${3:-1}
homes=${4:-10000}
days=${5:-30}
build=${6:-build-rel}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive "$old" | tar -x -C "$work" -f -
cmake -S "$work" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" --target bench_sim >/dev/null
uptime
echo "bench_sim $homes --days=$days --threads=$threads: old $old, new $build, $reps runs each"
i=0
while [ "$i" -lt "$reps" ]; do
    for which in old new; do
        bin="$build/bench/bench_sim"
        [ "$which" = old ] && bin="$work/build/bench/bench_sim"
        t=$({ /usr/bin/time -f "%e %U %S" "$bin" "$homes" --days="$days" --threads="$threads" \
            >/dev/null; } 2>&1 | tail -n 1)
        echo "$which $t" | awk '{printf "%s wall %.2f s CPU %.2f s\n", $1, $2, $3 + $4}'
    done
    i=$((i + 1))
done | tee "$work/runs"
med() { # median of column $2 of the rows of $1
    grep "^$1 " "$work/runs" | awk -v c="$2" '{print $c}' | sort -g |
        awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
ow=$(med old 3) nw=$(med new 3) oc=$(med old 6) nc=$(med new 6)
awk -v ow="$ow" -v nw="$nw" -v oc="$oc" -v nc="$nc" 'BEGIN {
    printf "median: old %.2f s wall (%.2f s CPU), new %.2f s wall (%.2f s CPU): new / old %.3f wall, %.3f CPU\n",
        ow, oc, nw, nc, nw / ow, nc / oc }'
uptime
