#!/bin/sh
# The Debian package as a coordinator installs it (label integration): builds the .deb with
# the project's own CPack rules, checks that it holds the binary, a man page for every
# subcommand `mgx --help` lists (each rendering without a groff warning), the three systemd
# units and the config, and that systemd itself accepts the units: `systemd-analyze verify`
# in a root made of the unpacked package plus the host's own units, where any complaint
# (an unknown key, a missing binary) fails the test. Installing the package into a fresh
# Debian chroot with dpkg -i is docs/operations.md's documented run (packaging/chroot-install.sh).
#   usage: test_package.sh BUILD_DIR
set -eu
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_package: $*" >&2; exit 1; }

cpack --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
    { cat "$tmp/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$tmp"/out/mgx_*.deb)
dpkg-deb -I "$deb" >"$tmp/info"
grep -q '^ Package: mgx$' "$tmp/info" || fail "no Package: mgx in the control file"
grep -q '^ Depends:.*libmosquitto1' "$tmp/info" || fail "shlibdeps did not name libmosquitto1"
dpkg-deb -x "$deb" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/control"
for f in postinst prerm postrm; do
    [ -x "$tmp/control/$f" ] || fail "maintainer script $f missing or not executable"
    sh -n "$tmp/control/$f" || fail "maintainer script $f does not parse"
done
grep -qx /etc/mgx/controller.ini "$tmp/control/conffiles" || fail "controller.ini is not a conffile"
[ -x "$tmp/root/usr/bin/mgx" ] || fail "no /usr/bin/mgx"
"$tmp/root/usr/bin/mgx" --version | grep -q '^mgx ' || fail "the packaged mgx does not run"

# a man page per subcommand, found from the packaged binary's own --help
man="$tmp/root/usr/share/man/man1"
cmds=$("$tmp/root/usr/bin/mgx" --help | sed -n '/^commands:/,/^$/p' |
    sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' | grep -vx help)
[ -n "$cmds" ] || fail "mgx --help lists no subcommand"
for page in mgx $(for c in $cmds; do echo "mgx-$c"; done); do
    f="$man/$page.1.gz"
    [ -f "$f" ] || fail "no man page $page(1)"
    zcat "$f" | groff -man -Tutf8 -ww >/dev/null 2>"$tmp/groff.err"
    [ ! -s "$tmp/groff.err" ] || { cat "$tmp/groff.err" >&2; fail "$page(1) renders with warnings"; }
done
for c in $cmds; do
    # every long option of the help text is in the page: the page is the help text
    for o in $("$tmp/root/usr/bin/mgx" "$c" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        zcat "$man/mgx-$c.1.gz" | sed 's/\\-/-/g; s/\\f[BIRP]//g' | grep -q -- "$o" ||
            fail "mgx-$c(1) lacks $o of mgx $c --help"
    done
done

units="$tmp/root/usr/lib/systemd/system"
for u in mgx-controller.service mgx-meter@.service mgx-agent@.service mgx-web.service \
    mgx-witness@.service; do
    [ -f "$units/$u" ] || fail "no unit $u"
done
cp -an /lib/systemd/system/. "$units/"
for u in mgx-controller.service mgx-meter@home.service mgx-agent@home.service mgx-web.service \
    mgx-witness@alice.service; do
    out=$(systemd-analyze verify --root="$tmp/root" --man=no "$u" 2>&1) || fail "$u: $out"
    [ -z "$out" ] || fail "$u: $out"
done
echo "test_package: $(basename "$deb"): $(echo $cmds | wc -w) subcommands with man pages, 5 units verified"
