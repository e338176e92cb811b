#!/bin/sh
# mgx-certs.sh: the coordinator's tool for the community broker's credentials.
#
#   mgx-certs.sh init DIR HOST...        a CA, and a server certificate for the broker valid
#                                        for every HOST (DNS names or IP addresses)
#   mgx-certs.sh password DIR ID [PASS]  adds or replaces ID in DIR/passwd; without PASS a
#                                        random one is made and printed once
#   mgx-certs.sh client DIR LOGIN        a client key and certificate with CN=LOGIN (an ID,
#                                        or ID.meter), for the certificate listener
#                                        (DIR/clients/LOGIN.key, LOGIN.crt)
#   mgx-certs.sh remove DIR ID           deletes ID and its ID.meter and ID.ha logins from
#                                        DIR/passwd, and their blocks from DIR/acl
#   mgx-certs.sh meter DIR ID [METER...] [--password PASS]
#                                        the login ID.meter for the home's meter daemon: a
#                                        password (random and printed once without PASS) and
#                                        its block in DIR/acl (publishes the readings of the
#                                        home's meter ID and each extra METER); reload the
#                                        broker. With a client certificate instead: also
#                                        `client DIR ID.meter`
#   mgx-certs.sh ha DIR ID [METER...] [--password PASS]
#                                        a read-only login ID.ha for the home's Home
#                                        Assistant: a password (random and printed once
#                                        without PASS) and its block in DIR/acl (the home's
#                                        meter ID and each extra METER); reload the broker
#
# The broker gives every client its login as client id (community.conf), so one login is one
# connection: the home's agent logs in as ID, its meter daemon as ID.meter.
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
  [ $# -eq 1 ] || die "client needs exactly one LOGIN"
  check_id "${1%.meter}"
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

# role_login ROLE ID [METER...] [--password PASS]: the login ID.ROLE with its password and its
# one block in DIR/acl (an older block of the same login is replaced). ROLE meter may write the
# home's readings, status and discovery; ROLE ha may only read them.
role_login() {
  role="$1"; shift
  [ $# -ge 1 ] || die "$role needs an ID"
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
  login="$id.$role"
  if [ -z "$pass" ]; then
    pass=$(openssl rand -base64 18)
    echo "password for $login: $pass"
  fi
  if [ -e "$dir/passwd" ]; then
    mosquitto_passwd -b "$dir/passwd" "$login" "$pass"
  else
    mosquitto_passwd -c -b "$dir/passwd" "$login" "$pass"
  fi
  case "$role" in meter) access="readwrite" ;; *) access="read" ;; esac
  drop_block "$login"
  tmp="$dir/acl.tmp"
  cp "$dir/acl" "$tmp"
  {
    echo "user $login"
    echo "topic $access mgx/v1/+/status/$id/#"
    for m in $meters; do
      echo "topic $access mgx/v1/+/meter/$m/#"
      echo "topic $access homeassistant/sensor/$m/#"
    done
  } >>"$tmp"
  chmod --reference="$dir/acl" "$tmp" 2>/dev/null || true
  mv "$tmp" "$dir/acl"
}

# drop_block LOGIN: removes LOGIN's "user" line and the topic lines after it from DIR/acl
drop_block() {
  [ -e "$dir/acl" ] || return 0
  tmp="$dir/acl.tmp"
  awk -v u="user $1" '$0 == u { skip = 1; next } skip && /^topic / { next } { skip = 0; print }' \
    "$dir/acl" >"$tmp"
  chmod --reference="$dir/acl" "$tmp" 2>/dev/null || true
  mv "$tmp" "$dir/acl"
}

cmd_ha() {
  role_login ha "$@"
  echo "mgx-certs: read-only Home Assistant login $id.ha for meters: $meters (reload the broker)"
}

cmd_meter() {
  role_login meter "$@"
  echo "mgx-certs: meter daemon login $id.meter for meters: $meters (reload the broker)"
}

cmd_remove() {
  [ $# -eq 1 ] || die "remove needs exactly one ID"
  check_id "$1"
  mosquitto_passwd -D "$dir/passwd" "$1"
  # the home's meter daemon and Home Assistant logins go with it
  for role in meter ha; do
    if grep -q "^$1\.$role:" "$dir/passwd" 2>/dev/null; then
      mosquitto_passwd -D "$dir/passwd" "$1.$role"
    fi
    drop_block "$1.$role"
  done
}

[ $# -ge 2 ] || { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
cmd="$1"; dir="$2"; shift 2
case "$cmd" in
  init) cmd_init "$@" ;;
  password) cmd_password "$@" ;;
  client) cmd_client "$@" ;;
  remove) cmd_remove "$@" ;;
  ha) cmd_ha "$@" ;;
  meter) cmd_meter "$@" ;;
  *) die "unknown command '$cmd' (init, password, client, remove, meter, ha)" ;;
esac
