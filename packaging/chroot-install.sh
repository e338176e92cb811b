#!/bin/sh
# The package on a clean Debian 12 system, for docs/operations.md: makes (or reuses) a minimal
# bookworm chroot with debootstrap, installs the .deb in it with dpkg -i (its dependencies come
# from apt), and checks what a coordinator gets: the binary and man pages, the mgx system user
# owning /var/lib/mgx, /etc/mgx/controller.ini readable by mgx only, and the controller started
# as mgx from the packaged config, reporting READY=1 to a notify socket as systemd would, with
# `mgx doctor` run beside it.
# Needs root and Debian's mirror. Not part of the CI suite (it downloads a system);
# tests/packaging/test_package.sh checks the package itself on every run.
#   usage: packaging/chroot-install.sh DEB [CHROOT_DIR]
set -eu
deb=$(readlink -f "$1")
root=${2:-/tmp/mgx-chroot}
say() { printf '== %s\n' "$*"; }

if [ ! -x "$root/usr/bin/apt-get" ]; then
    say "debootstrap bookworm into $root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
fi
mount_all() {
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
}
umount_all() { umount "$root/dev" 2>/dev/null || true; umount "$root/proc" 2>/dev/null || true; }
trap umount_all EXIT
mount_all
cp "$deb" "$root/tmp/mgx.deb"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

say "dpkg -i (dependencies through apt-get -f install)"
chroot "$root" sh -c 'apt-get update -qq && { dpkg -i /tmp/mgx.deb || true; } &&
    DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq --no-install-recommends >/dev/null &&
    dpkg -s mgx | sed -n "s/^Status: /status: /p; s/^Version: /version: /p"'
chroot "$root" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto python3 >/dev/null'

say "what was installed"
chroot "$root" sh -c '
    mgx --version
    ls /usr/share/man/man1/ | grep "^mgx" | tr "\n" " "; echo
    getent passwd mgx
    stat -c "%U:%G %a %n" /var/lib/mgx /etc/mgx /etc/mgx/controller.ini
    ls /usr/lib/systemd/system/ | grep "^mgx"'

say "the controller as the mgx user, from the packaged config, under a notify socket"
cat >"$root/tmp/notify.py" <<'PY'
import os, socket, subprocess, sys, time
path = "/tmp/mgx-notify.sock"
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
broker = subprocess.Popen(["mosquitto", "-p", "1883"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
p = subprocess.Popen(["setpriv", "--reuid=mgx", "--regid=mgx", "--init-groups", "/usr/bin/mgx",
                      "controller", "/etc/mgx/controller.ini"], env=env, cwd="/var/lib/mgx")
s.settimeout(30)
got = []
try:
    while "READY=1" not in got or "WATCHDOG=1" not in got:
        got.append(s.recv(256).decode())
    print("-- mgx doctor /etc/mgx/controller.ini, as mgx, with the controller running:")
    sys.stdout.flush()
    subprocess.run(["setpriv", "--reuid=mgx", "--regid=mgx", "--init-groups", "/usr/bin/mgx",
                    "doctor", "/etc/mgx/controller.ini"])
finally:
    p.terminate()
    p.wait(30)
    broker.terminate()
print("notifications:", ", ".join(dict.fromkeys(got)), "| exit status", p.returncode)
sys.exit(0 if p.returncode == 0 else 1)
PY
chroot "$root" python3 /tmp/notify.py
chroot "$root" sh -c 'stat -c "%U:%G %a %n" /var/lib/mgx/controller.db'
say "ok"
