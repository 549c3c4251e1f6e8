#!/bin/sh
# Runs redis-server as the redis user; a first argument that is an option or a .conf file goes to redis-server.
set -eu

case "${1:-}" in
    -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    # A bind-mounted /data may belong to root; Redis must be able to write its dump and AOF files there.
    find . \! -user redis -exec chown redis:redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi

exec "$@"
