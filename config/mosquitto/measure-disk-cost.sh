#!/bin/bash
# Measures what a Mosquitto persistence setting costs in disk writes (docs/bus-security.md,
# "Persistence and its disk cost"): starts a private broker on a free loopback port with
# persistence in a temporary folder and the given autosave lines, retains SEED interval results
# of ~1.5 KB (the broker's file grows with them), then publishes RATE retained meter readings a
# second for SECONDS and prints the bytes the broker process wrote meanwhile (wchar of
# /proc/PID/io) and the file's size. Needs mosquitto and python3 only.
#
#   measure-disk-cost.sh 'autosave_interval 1\nautosave_on_changes true' 20 50 2000
#   measure-disk-cost.sh 'autosave_interval 60\nautosave_on_changes false' 125 50 2000
set -eu
extra=${1:?autosave lines}; secs=${2:-60}; rate=${3:-50}; seed=${4:-96}
d=$(mktemp -d); trap 'kill $bpid 2>/dev/null; rm -rf "$d"' EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n%b\n' \
    "$port" "$d" "$extra" > "$d/m.conf"
[ "$(id -u)" = 0 ] && echo "user root" >> "$d/m.conf" # else mosquitto drops to its own user
mosquitto -c "$d/m.conf" > "$d/log" 2>&1 & bpid=$!
sleep 0.5

# A minimal MQTT 3.1.1 publisher (QoS 0, retained) on a raw socket: seed or meter load.
cat > "$d/pub.py" <<'PY'
import socket, struct, sys, time
def rl(n):
    out = b''
    while True:
        b = n % 128; n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
def s16(b): return struct.pack('>H', len(b)) + b
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
vh = s16(b'MQTT') + bytes([4, 2]) + struct.pack('>H', 60); pl = s16(b'load-%d' % time.time_ns())
s.sendall(bytes([0x10]) + rl(len(vh + pl)) + vh + pl); s.recv(4)
def pub(topic, body):
    v = s16(topic.encode()) + body.encode()
    s.sendall(bytes([0x31]) + rl(len(v)) + v)
if sys.argv[2] == 'seed':
    for i in range(int(sys.argv[3])):
        pub('mgx/v1/c/market/%d/result' % i, '{"interval_id":%d,"pad":"%s"}' % (i, 'x' * 1500))
else:
    secs, rate = int(sys.argv[3]), int(sys.argv[4]); t0 = time.time(); n = 0
    while time.time() - t0 < secs:
        h = n % 50
        pub('mgx/v1/c/meter/home-%d/state' % h, '{"meter_id":"home-%d","ts":%d,"power_w":1500,'
            '"import_wh":%d,"export_wh":0,"quality":0}' % (h, time.time() * 1000, 1000 + n))
        n += 1
        time.sleep(max(0, t0 + n / rate - time.time()))
s.sendall(bytes([0xE0, 0])); time.sleep(0.2); s.close()
PY
python3 "$d/pub.py" "$port" seed "$seed"
sleep 2
w0=$(awk '/^wchar/{print $2}' /proc/$bpid/io)
python3 "$d/pub.py" "$port" meter "$secs" "$rate"
w1=$(awk '/^wchar/{print $2}' /proc/$bpid/io)
size=$(stat -c %s "$d/mosquitto.db" 2>/dev/null || echo 0)
echo "wrote $((w1 - w0)) bytes in ${secs} s at ${rate} readings/s; persistence file $size bytes" \
     "($seed retained results)"
