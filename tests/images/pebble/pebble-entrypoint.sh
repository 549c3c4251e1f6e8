#!/bin/sh
# Starts Pebble (ACME test CA) with pebble-challtestsrv as its DNS. `docker run IMAGE` runs both;
# `docker run IMAGE [pebble] -FLAG...` passes extra flags to Pebble; `docker run IMAGE certs` only makes
# the TLS certificate (into a mounted /etc/pebble/certs) and exits; any other command runs as given.
#
# Environment:
#   PEBBLE_HTTP_PORT      port Pebble connects to for HTTP-01 validation (default 80): the proxy's web entrypoint
#   PEBBLE_TLS_PORT       port Pebble connects to for TLS-ALPN-01 validation (default 443)
#   PEBBLE_DEFAULT_IPV4   the address every name resolves to (default 127.0.0.1). A host name (e.g. the
#                         proxy's container name on the same network) is looked up every 0.5 s in the
#                         background and the answer follows it; until it resolves, names resolve to
#                         127.0.0.1. Set it by hand: curl -d '{"ip":"ADDR"}' http://HOST:8055/set-default-ipv4
#   PEBBLE_DNS_SERVER     Pebble's DNS: `challtestsrv` (default: the mock DNS above, 127.0.0.1:8053),
#                         `system` (the container's resolver, i.e. Docker's DNS: a made-up name must then be
#                         a network alias of the proxy), or HOST:PORT
#   PEBBLE_CERT_NAMES     extra names (DNS or IP, space-separated) for Pebble's own TLS certificate, e.g. the
#                         container or alias name clients use in the directory URL; always included:
#                         localhost, pebble, the container's host name, 127.0.0.1, ::1. The certificate is
#                         made once: with /etc/pebble/certs on a volume, empty it to change the names.
#   PEBBLE_CONFIG         a config file of your own instead of the generated one
#   PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0 are set in the image (fast, no nonce rejections).
#
# The two roots a client must trust:
#   - Pebble's own TLS certificate (the ACME directory at https://HOST:14000/dir): /etc/pebble/certs/ca.pem,
#     made at the first start unless cert.pem and key.pem are mounted in /etc/pebble/certs. Get it with
#     `docker exec CONTAINER cat /etc/pebble/certs/ca.pem` or by mounting a directory there.
#   - the root that signs issued certificates: new at every start, from the management API:
#     `curl --cacert ca.pem https://HOST:15000/roots/0` (intermediates: /intermediates/0).
#
# Start Pebble first and the proxy once Pebble answers (healthcheck: curl -fsk https://localhost:14000/dir):
# Traefik asks for its certificates once at start and does not retry soon when the CA is not up yet.
set -eu

[ "$#" -gt 0 ] || set -- pebble
case "$1" in
    pebble | certs) ;;
    -*) set -- pebble "$@" ;;
    *) exec "$@" ;;
esac

certs=/etc/pebble/certs
if [ ! -s "$certs/cert.pem" ] || [ ! -s "$certs/key.pem" ]; then
    san="DNS:localhost,DNS:pebble,IP:127.0.0.1,IP:::1"
    host="$(hostname)"
    [ "$host" = "pebble" ] || [ "$host" = "localhost" ] || san="$san,DNS:$host"
    for name in ${PEBBLE_CERT_NAMES:-}; do
        case "$name" in
            *[!0-9.]*) case "$name" in *:*) san="$san,IP:$name" ;; *) san="$san,DNS:$name" ;; esac ;;
            *) san="$san,IP:$name" ;;
        esac
    done
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=soulmatting test-bed Pebble directory CA" \
        -keyout "$certs/ca-key.pem" -out "$certs/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=pebble" -keyout "$certs/key.pem" -out "$certs/cert.csr" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        "$san" >"$certs/cert.ext"
    openssl x509 -req -in "$certs/cert.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" \
        -CAcreateserial -days 3650 -extfile "$certs/cert.ext" -out "$certs/cert.pem" 2>/dev/null
    rm -f "$certs/cert.csr" "$certs/cert.ext" "$certs/ca.srl"
    chmod 0644 "$certs/ca.pem" "$certs/cert.pem"
    echo "pebble-entrypoint: made a TLS certificate for $san, signed by $certs/ca.pem" >&2
fi
if [ "$1" = "certs" ]; then
    exit 0
fi
shift

config="${PEBBLE_CONFIG:-}"
if [ -z "$config" ]; then
    config=/run/pebble-config.json
    cat >"$config" <<JSON
{
  "pebble": {
    "listenAddress": "0.0.0.0:14000",
    "managementListenAddress": "0.0.0.0:15000",
    "certificate": "$certs/cert.pem",
    "privateKey": "$certs/key.pem",
    "httpPort": ${PEBBLE_HTTP_PORT:-80},
    "tlsPort": ${PEBBLE_TLS_PORT:-443},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
JSON
fi

# Follows a host name's IPv4 address and points every mock DNS answer at it.
follow_name() {
    name="$1" last=""
    while :; do
        ip="$(getent ahostsv4 "$name" | awk 'NR == 1 { print $1 }')" || true
        if [ -n "$ip" ] && [ "$ip" != "$last" ] \
            && curl -fsS -o /dev/null -d "{\"ip\":\"$ip\"}" http://127.0.0.1:8055/set-default-ipv4 2>/dev/null; then
            echo "pebble-entrypoint: every name now resolves to $ip ($name)" >&2
            last="$ip"
        fi
        sleep 0.5
    done
}

ipv4="${PEBBLE_DEFAULT_IPV4:-127.0.0.1}"
follow=""
case "$ipv4" in
    *[!0-9.]*) follow="$ipv4"; ipv4=127.0.0.1 ;;
esac

# Only the mock DNS and its management API: the challenge servers would take ports the proxy needs.
pebble-challtestsrv -defaultIPv4 "$ipv4" -defaultIPv6 "" -dns01 :8053 -management :8055 \
    -http01 "" -https01 "" -tlsalpn01 "" &
[ -z "$follow" ] || follow_name "$follow" &

case "${PEBBLE_DNS_SERVER:-challtestsrv}" in
    challtestsrv) set -- -dnsserver 127.0.0.1:8053 "$@" ;;
    system) ;;
    *) set -- -dnsserver "$PEBBLE_DNS_SERVER" "$@" ;;
esac
exec pebble -config "$config" "$@"
