#!/bin/sh
# Regenerates the module picture of docs/architecture.md from a configured build dir, and checks
# the target graph on the way: no cycle, no upward edge (an arrow from a module to one on a
# higher layer than itself, by the LAYERS list in graph.py), and no dead edge (a module
# linking an mgx library or controller module none of its files includes).
#
#   docs/architecture/graph.sh BUILD_DIR     # e.g. docs/architecture/graph.sh build
#
# Writes docs/architecture/targets.dot (cmake --graphviz, filtered: tests, benches, fuzzers and
# library file paths dropped, external packages kept greyed) and, when graphviz's dot is
# installed, docs/architecture/targets.svg drawn from it after tred (graphviz's transitive
# reduction: an arrow implied by a path through other modules is not drawn; targets.dot keeps
# every direct link). Exits non-zero when a check fails.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:?usage: $0 BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --graphviz="$tmp/all.dot" "$build" >/dev/null
python3 "$here/graph.py" "$src" "$tmp/all.dot" "$here/targets.dot"
if command -v dot >/dev/null 2>&1; then
    tred "$here/targets.dot" | dot -Tsvg -o "$here/targets.svg"
    echo "wrote $here/targets.dot and targets.svg"
else
    echo "wrote $here/targets.dot (install graphviz for targets.svg)"
fi
