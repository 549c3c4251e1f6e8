#!/bin/sh
# Runs weed as the seaweed user; as root it first gives /data (perhaps a bind mount) to that user.
set -eu

case "${1:-}" in
    -*|server|mini|s3|master|volume|filer) set -- weed "$@" ;;
esac

if [ "${1:-}" = 'weed' ] && [ "$(id -u)" = '0' ]; then
    find /data \! -user seaweed -exec chown seaweed:seaweed '{}' +
    exec setpriv --reuid=seaweed --regid=seaweed --init-groups "$@"
fi

exec "$@"
