#!/bin/sh
# Writes the man pages of mgx and of each of its subcommands into OUTDIR, generated from the
# one source they describe: the program's own --help text (help2man). The subcommands are read
# from `mgx --help`, so a new subcommand gets its page without anyone remembering to write one;
# extra sections (files, examples, see also) come from packaging/man/<page>.h2m when present.
#   usage: mkman.sh MGX_BINARY OUTDIR
set -eu
mgx=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
version=$("$mgx" --version | sed -n 's/^mgx //p')
[ -n "$version" ] || { echo "mkman: $mgx --version printed no version" >&2; exit 1; }
mkdir -p "$out"

# page NAME "PROGRAM" "SUMMARY": one page; its title is NAME in capitals.
page() {
    name=$1 prog=$2 summary=$3
    inc=
    [ -f "$here/$name.h2m" ] && inc="--include=$here/$name.h2m"
    # shellcheck disable=SC2086
    help2man --no-info --no-discard-stderr --version-string="$version" --section=1 \
        --source="mgx $version" --name="$summary" $inc --output="$out/$name.1.tmp" "$prog"
    title=$(echo "$name" | tr 'a-z' 'A-Z')
    sed "s/^\.TH MGX /.TH $title /" "$out/$name.1.tmp" >"$out/$name.1"
    rm -f "$out/$name.1.tmp"
    gzip -9nc "$out/$name.1" >"$out/$name.1.gz" # Debian ships man pages compressed
}

# The subcommand table of `mgx --help`: "  name   summary" lines after "commands:".
"$mgx" --help | sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\)  *\(.*\)$/\1\t\2/p' |
    grep -v '^help	' >"$out/commands.tsv"
[ -s "$out/commands.tsv" ] || { echo "mkman: no subcommands in mgx --help" >&2; exit 1; }
page mgx "$mgx" "peer-to-peer energy exchange for microgrids"
while IFS='	' read -r cmd summary; do
    page "mgx-$cmd" "$mgx $cmd" "$summary"
done <"$out/commands.tsv"
