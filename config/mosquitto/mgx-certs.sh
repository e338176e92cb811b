#!/bin/sh
# mgx-certs.sh: the coordinator's tool for the community broker's credentials.
#
#   mgx-certs.sh init DIR HOST...        a CA, and a server certificate for the broker valid
#                                        for every HOST (DNS names or IP addresses)
#   mgx-certs.sh password DIR ID [PASS]  adds or replaces ID in DIR/passwd; without PASS a
#                                        random one is made and printed once
#   mgx-certs.sh client DIR ID           a client key and certificate with CN=ID, for the
#                                        certificate listener (DIR/clients/ID.key, ID.crt)
#   mgx-certs.sh remove DIR ID           deletes ID (and its ID.ha login) from DIR/passwd
#   mgx-certs.sh ha DIR ID [METER...] [--password PASS]
#                                        a read-only login ID.ha for the home's Home
#                                        Assistant: a password (random and printed once
#                                        without PASS) and its block in DIR/acl (the home's
#                                        meter ID and each extra METER); reload the broker
#
# DIR is the broker's folder, /etc/mosquitto/mgx on a real broker. ID is a participant id or
# "controller". Keys are ECDSA P-256. Uses only openssl and mosquitto_passwd. The CA key
# (DIR/ca.key) signs every certificate: keep it offline once the homes have theirs.
set -eu
umask 077
LC_ALL=C; export LC_ALL # byte-wise character classes and lengths in check_id

die() { echo "mgx-certs: $*" >&2; exit 1; }

# The one id rule of mgx (controller/common/ident.h): the id is an MQTT user name, a topic level
# in the ACL (%u) and a certificate CN, so only 1-63 characters of A-Z a-z 0-9 _ -.
check_id() {
  case "$1" in
    ''|*[!A-Za-z0-9_-]*) die "'$1' is not a valid id (1-63 characters of A-Z a-z 0-9 _ -)" ;;
  esac
  [ ${#1} -le 63 ] || die "id '$1' is longer than 63 characters"
}

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign CSR OUT DAYS EXTFILE: a certificate signed by DIR's CA
sign() {
  openssl x509 -req -in "$1" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAserial "$dir/ca.srl" \
    -CAcreateserial -days "$3" -extfile "$4" -out "$2" 2>/dev/null
}

cmd_init() {
  [ $# -ge 1 ] || die "init needs at least one HOST the homes will connect to"
  [ -e "$dir/ca.key" ] && die "$dir/ca.key exists; refusing to replace the community's CA"
  mkdir -p "$dir"
  newkey "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -days 3650 -subj "/CN=mgx community CA" \
    -out "$dir/ca.crt" 2>/dev/null
  san=""
  for h in "$@"; do
    case "$h" in
      *[!0-9.]*) case "$h" in *:*) entry="IP:$h" ;; *) entry="DNS:$h" ;; esac ;;
      *) entry="IP:$h" ;;
    esac
    san="${san:+$san,}$entry"
  done
  ext="$dir/server.ext"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
  newkey "$dir/server.key"
  openssl req -new -key "$dir/server.key" -subj "/CN=$1" -out "$dir/server.csr" 2>/dev/null
  sign "$dir/server.csr" "$dir/server.crt" 825 "$ext"
  rm -f "$dir/server.csr" "$ext"
  chmod 644 "$dir/ca.crt" "$dir/server.crt"
  echo "mgx-certs: CA and server certificate for $san in $dir"
}

cmd_password() {
  [ $# -ge 1 ] || die "password needs an ID"
  check_id "$1"
  pass="${2:-}"
  if [ -z "$pass" ]; then
    pass=$(openssl rand -base64 18)
    echo "password for $1: $pass"
  fi
  if [ -e "$dir/passwd" ]; then
    mosquitto_passwd -b "$dir/passwd" "$1" "$pass"
  else
    mosquitto_passwd -c -b "$dir/passwd" "$1" "$pass"
  fi
}

cmd_client() {
  [ $# -eq 1 ] || die "client needs exactly one ID"
  check_id "$1"
  [ -e "$dir/ca.key" ] || die "no CA in $dir: run init first"
  mkdir -p "$dir/clients"
  ext="$dir/clients/$1.ext"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$ext"
  newkey "$dir/clients/$1.key"
  openssl req -new -key "$dir/clients/$1.key" -subj "/CN=$1" -out "$dir/clients/$1.csr" 2>/dev/null
  sign "$dir/clients/$1.csr" "$dir/clients/$1.crt" 825 "$ext"
  rm -f "$dir/clients/$1.csr" "$ext"
  echo "mgx-certs: $dir/clients/$1.crt and $1.key (give both, and ca.crt, to the home)"
}

cmd_ha() {
  [ $# -ge 1 ] || die "ha needs an ID"
  check_id "$1"
  id="$1"; shift
  meters="$id"; pass=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --password) [ $# -ge 2 ] || die "--password needs a value"; pass="$2"; shift 2 ;;
      *) check_id "$1"; meters="$meters $1"; shift ;;
    esac
  done
  [ -e "$dir/acl" ] || die "no $dir/acl: install the shipped acl first"
  if [ -z "$pass" ]; then
    pass=$(openssl rand -base64 18)
    echo "password for $id.ha: $pass"
  fi
  if [ -e "$dir/passwd" ]; then
    mosquitto_passwd -b "$dir/passwd" "$id.ha" "$pass"
  else
    mosquitto_passwd -c -b "$dir/passwd" "$id.ha" "$pass"
  fi
  # one block per login: an older block of the same login is replaced
  tmp="$dir/acl.tmp"
  awk -v u="user $id.ha" '$0 == u { skip = 1; next } skip && /^topic / { next } { skip = 0; print }' \
    "$dir/acl" >"$tmp"
  {
    echo "user $id.ha"
    echo "topic read mgx/v1/+/status/$id/#"
    for m in $meters; do
      echo "topic read mgx/v1/+/meter/$m/#"
      echo "topic read homeassistant/sensor/$m/#"
    done
  } >>"$tmp"
  chmod --reference="$dir/acl" "$tmp" 2>/dev/null || true
  mv "$tmp" "$dir/acl"
  echo "mgx-certs: read-only Home Assistant login $id.ha for meters: $meters (reload the broker)"
}

cmd_remove() {
  [ $# -eq 1 ] || die "remove needs exactly one ID"
  check_id "$1"
  mosquitto_passwd -D "$dir/passwd" "$1"
  # the home's read-only Home Assistant login goes with it
  if grep -q "^$1\.ha:" "$dir/passwd" 2>/dev/null; then
    mosquitto_passwd -D "$dir/passwd" "$1.ha"
  fi
}

[ $# -ge 2 ] || { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
cmd="$1"; dir="$2"; shift 2
case "$cmd" in
  init) cmd_init "$@" ;;
  password) cmd_password "$@" ;;
  client) cmd_client "$@" ;;
  remove) cmd_remove "$@" ;;
  ha) cmd_ha "$@" ;;
  *) die "unknown command '$cmd' (init, password, client, remove, ha)" ;;
esac
