#!/bin/sh
# The module map holds (docs/architecture.md): configures the product alone with
# `cmake --graphviz` and checks its target graph with docs/architecture/graph.py: no cycle, no
# upward edge (by the layers listed there), no dead edge (a link none of the module's files
# includes), no library missing from the layers.
#   module_graph.sh SOURCE_DIR GENERATOR
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake -S "$src" -B "$tmp/build" -G "$2" -DMGX_BUILD_TESTS=OFF -DMGX_BUILD_BENCH=OFF \
    --graphviz="$tmp/all.dot" >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
python3 "$src/docs/architecture/graph.py" "$src" "$tmp/all.dot" "$tmp/targets.dot"
