#!/bin/sh
# rclone inside the backup project's rclone container (POSIX sh; mounted read-only). Its main
# process is `serve`, which writes rclone's configuration and waits; the backup jobs
# (bin/soulmatting-backup on the host) run the other commands with `docker exec`.
#
#   serve                        write $RCLONE_CONFIG (crypt passwords obscured), then idle
#   health                       the configuration is in place and reads
#   reach REMOTE BUCKET          the bucket answers (read-only)
#   ensure-bucket REMOTE BUCKET  make the bucket when missing ("CHANGED:" line); with
#                                SOULMATTING_CHECK_MODE=1 only say so
#   mirror "BUCKETS" "SKIP" DAYS copy the object store's buckets (all but SKIP when BUCKETS is
#                                empty) to the mirror; what the source deleted or replaced moves
#                                to deleted/<time>/ there and is dropped after DAYS days
#   restore-objects "BUCKETS"    copy the mirror's buckets (all when empty) back into the object store
#   prune PREFIX COUNT DAYS      delete the sets under repo:PREFIX that are beyond the newest COUNT
#                                and older than DAYS (their names start with their UTC time)
#   doomed COUNT DAYS NOW        which of the names on stdin prune deletes
#   latest PREFIX                the newest set under repo:PREFIX
set -eu

config=${RCLONE_CONFIG:-/tmp/rclone.conf}
secrets=${SOULMATTING_RCLONE_DIR:-/etc/soulmatting-backup/rclone}

say() {
    printf '%s\n' "$*"
}

fail() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# rclone failing fast on an unreachable endpoint instead of retrying for minutes.
rcq() {
    sub=$1
    shift
    rclone "$sub" --contimeout=15s --timeout=60s --retries=2 --low-level-retries=2 "$@"
}

serve() {
    umask 077
    obscured=$(rclone obscure - <"$secrets/cipher")
    sed "s|@CIPHER_OBSCURED@|$obscured|" "$secrets/rclone.conf" >"$config.tmp"
    mv -f "$config.tmp" "$config"
    trap 'exit 0' TERM INT
    say "rclone: ready ($(rclone version | head -n 1))"
    while :; do
        sleep 3600 &
        wait $! || true
    done
}

health() {
    [ -s "$config" ] && rclone listremotes >/dev/null
}

ensure_bucket() {
    remote=$1
    bucket=$2
    listing=$(rcq lsf --dirs-only "$remote:") || fail "cannot list the buckets of $remote"
    if printf '%s\n' "$listing" | grep -qxF "$bucket/"; then
        return 0
    fi
    if [ "${SOULMATTING_CHECK_MODE:-0}" = 1 ]; then
        say "CHANGED: would have made bucket $bucket ($remote)"
        return 0
    fi
    rcq mkdir "$remote:$bucket"
    say "CHANGED: made bucket $bucket ($remote)"
}

reach() {
    rcq lsf --max-depth 1 "$1:$2" >/dev/null
}

# The object store's buckets, less those to skip.
source_buckets() {
    wanted=$1
    skip=$2
    if [ -n "$wanted" ]; then
        # shellcheck disable=SC2086  # a space-separated list
        printf '%s\n' $wanted
        return 0
    fi
    rcq lsf --dirs-only store: | sed 's#/$##' | while read -r bucket; do
        case " $skip " in
            *" $bucket "*) ;;
            *) printf '%s\n' "$bucket" ;;
        esac
    done
}

cutoff_name() {
    date -u -d "@$(($1 - $2 * 86400))" +%Y%m%dT%H%M%SZ
}

mirror() {
    wanted=$1
    skip=$2
    days=$3
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    buckets=$(source_buckets "$wanted" "$skip") || fail "cannot list the object store's buckets"
    count=0
    for bucket in $buckets; do
        say "mirror: $bucket"
        rcq sync --stats=0 "store:$bucket" "mirror:current/$bucket" \
            --backup-dir "mirror:deleted/$stamp/$bucket"
        count=$((count + 1))
    done
    # What the source deleted or replaced is kept DAYS days.
    cutoff=$(cutoff_name "$(date +%s)" "$days")
    rcq lsf --dirs-only mirror:deleted 2>/dev/null | sed 's#/$##' | awk -v cutoff="$cutoff" 'NF && $0 < cutoff' |
        while read -r name; do
            rclone purge "mirror:deleted/$name"
            say "mirror: dropped deleted/$name"
        done
    say "mirror: $count buckets copied"
}

restore_objects() {
    wanted=$1
    if [ -z "$wanted" ]; then
        wanted=$(rcq lsf --dirs-only mirror:current | sed 's#/$##')
    fi
    [ -n "$wanted" ] || fail "the mirror holds no bucket"
    for bucket in $wanted; do
        rcq lsf --dirs-only store: | grep -qxF "$bucket/" || rclone mkdir "store:$bucket"
        rcq copy "mirror:current/$bucket" "store:$bucket"
        say "restored bucket $bucket from the mirror"
    done
}

# Which of the names on stdin (sets whose names start with their UTC time) prune deletes: those
# beyond the newest COUNT that are also older than DAYS.
doomed() {
    count=$1
    cutoff=$(cutoff_name "$3" "$2")
    LC_ALL=C sort -r | awk -v count="$count" -v cutoff="$cutoff" 'NF { n++; if (n > count && substr($0, 1, 16) < cutoff) print }'
}

prune() {
    prefix=$1
    rcq lsf "repo:$prefix" | sed 's#/$##' | doomed "$2" "$3" "$(date +%s)" | while read -r name; do
        rclone purge "repo:$prefix/$name" 2>/dev/null || rclone deletefile "repo:$prefix/$name"
        say "pruned $prefix/$name"
    done
}

latest() {
    rcq lsf "repo:$1" | sed 's#/$##' | LC_ALL=C sort | tail -n 1
}

command=${1:-}
[ "$#" -gt 0 ] && shift
case "$command" in
    serve) serve ;;
    health) health ;;
    reach) reach "$@" ;;
    ensure-bucket) ensure_bucket "$@" ;;
    mirror) mirror "$@" ;;
    restore-objects) restore_objects "$@" ;;
    prune) prune "$@" ;;
    doomed) doomed "$@" ;;
    latest) latest "$@" ;;
    *) fail "usage: rclone-tool.sh serve|health|ensure-bucket REMOTE BUCKET|mirror BUCKETS SKIP DAYS|restore-objects BUCKETS|prune PREFIX COUNT DAYS|latest PREFIX" ;;
esac
