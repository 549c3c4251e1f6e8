#!/bin/sh
# Stays up doing nothing, whatever arguments it gets; stops at once on SIGTERM/SIGINT (it runs as PID 1,
# where a signal without a handler is ignored). With --healthcheck it only reports failure.
if [ "${1:-}" = "--healthcheck" ]; then
    echo "unhealthy: this is the soulmatting-testbed/broken image" >&2
    exit 1
fi
echo "soulmatting-testbed/broken: ignoring the command: $*" >&2
trap 'exit 0' TERM INT
while :; do
    sleep 3600 &
    wait $!
done
