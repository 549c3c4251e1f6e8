#!/bin/sh
# pgBackRest inside the backup project's pgbackrest container (POSIX sh; mounted read-only).
# Its main process is `archiver`; the backup jobs (bin/soulmatting-backup on the host) run the
# other commands with `docker exec`, or in a one-off container for a restore.
#
#   archiver                 push each WAL segment the database hands over in the spool, forever
#   health                   the archiver is alive (the container's healthcheck)
#   ensure-stanza            create the stanza when the repository has none ("CHANGED:" line);
#                            with SOULMATTING_CHECK_MODE=1 only say so
#   has-backup               exit 0 when the repository holds a backup
#   backup TYPE              a full, diff or incr backup, then expire by count and age
#   expire COUNT DAYS        expire full backups beyond the newest COUNT and older than DAYS
#   keep-count COUNT DAYS NOW  how many full backups to keep, from their labels on stdin (newest first)
#   restore PGPATH TARGET [SET]  restore into PGPATH (latest, or a time) and fetch the WAL it needs
#   wal-wanted START         the WAL a restore from START needs, from a repository listing on stdin
#   info | check             pgBackRest's own
#
# Environment (compose.yaml): SOULMATTING_STANZA, SOULMATTING_PGDATA, SOULMATTING_WAL_SPOOL,
# SOULMATTING_WAL_RESTORE, SOULMATTING_STATE.
set -eu

stanza=${SOULMATTING_STANZA:-main}
pgdata=${SOULMATTING_PGDATA:-/var/lib/postgresql/data}
spool_name=${SOULMATTING_WAL_SPOOL:-soulmatting_pgbackrest_spool}
restore_name=${SOULMATTING_WAL_RESTORE:-soulmatting_pgbackrest_restore}
state=${SOULMATTING_STATE:-/var/lib/soulmatting-backup}
heartbeat=/tmp/soulmatting-archiver.heartbeat
# What PostgreSQL archives: segments, timeline history files, backup history files, partial segments.
wal_names='^([0-9A-F]{24}|[0-9A-F]{8}\.history|[0-9A-F]{24}\.partial|[0-9A-F]{24}\.[0-9A-F]{8}\.backup)$'

pgbr() {
    pgbackrest --stanza="$stanza" "$@"
}

say() {
    printf '%s\n' "$*"
}

fail() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# Writes VALUE to the state file NAME atomically (the host's metrics job reads these files).
put_state() {
    if [ -d "$state" ] && [ -w "$state" ]; then
        printf '%s\n' "$2" >"$state/.$1.tmp" && mv -f "$state/.$1.tmp" "$state/$1"
    fi
}

get_state() {
    cat "$state/$1" 2>/dev/null || printf '%s\n' "${2:-0}"
}

# The whole WAL files in the spool, oldest first (files being copied in start with a dot).
spooled() {
    (cd "$1" 2>/dev/null && printf '%s\n' *) | grep -E "$wal_names" | LC_ALL=C sort
}

archiver() {
    spool="$pgdata/$spool_name"
    delay=1
    trap 'exit 0' TERM INT
    say "archiver: pushing the WAL handed over in $spool to stanza $stanza"
    while :; do
        touch "$heartbeat"
        failed=0
        backlog=0
        if [ ! -f "$state/stanza" ]; then
            # Not before ensure-stanza has found or made the stanza (right after the project starts).
            :
        elif [ -d "$spool" ]; then
            for name in $(spooled "$spool"); do
                if out=$(pgbr --log-level-console=error --log-level-stderr=error archive-push "$spool/$name" 2>&1); then
                    rm -f "$spool/$name"
                    put_state last_push "$(date +%s)"
                else
                    failed=1
                    put_state failures "$(($(get_state failures) + 1))"
                    put_state last_failure "$(date +%s)"
                    say "archiver: could not push $name (retrying): $(printf '%s' "$out" | tail -n 1)" >&2
                    break
                fi
            done
            backlog=$(spooled "$spool" | grep -c . || true)
        fi
        put_state backlog "$backlog"
        if [ "$failed" -eq 1 ]; then
            delay=$((delay * 2 > 10 ? 10 : delay * 2))
        else
            delay=1
        fi
        sleep "$delay" &
        wait $! || true
    done
}

health() {
    [ -f "$heartbeat" ] || exit 1
    age=$(($(date +%s) - $(stat -c %Y "$heartbeat")))
    [ "$age" -lt 90 ]
}

# The stanza's status line from `pgbackrest info` (ok, error (missing stanza path), ...).
stanza_status() {
    pgbr --log-level-console=error info 2>&1 | sed -n 's/^ *status: //p' | head -n 1
}

ensure_stanza() {
    status=$(stanza_status)
    case "$status" in
        "error (missing stanza path)")
            if [ "${SOULMATTING_CHECK_MODE:-0}" = 1 ]; then
                say "CHANGED: would have created stanza $stanza in the repository"
            else
                pgbr --log-level-console=warn stanza-create
                put_state stanza "$stanza"
                say "CHANGED: created stanza $stanza in the repository"
            fi
            ;;
        ok* | "error (no valid backups)" | "error (missing stanza data)")
            put_state stanza "$stanza"
            ;;
        "")
            fail "pgBackRest gave no status for stanza $stanza: $(pgbr --log-level-console=error info 2>&1 | tail -n 3)"
            ;;
        *)
            fail "the repository's stanza $stanza is not usable: $status; $(pgbr --log-level-console=error info 2>&1 | tail -n 3)"
            ;;
    esac
}

has_backup() {
    [ "$(stanza_status)" = ok ]
}

# Full backups to keep: the newest COUNT, and every one newer than DAYS plus the newest older one
# (so that the whole period stays recoverable). Labels (YYYYMMDD-HHMMSSF, UTC) on stdin.
keep_count() {
    count=$1
    days=$2
    now=$3
    cutoff=$(date -u -d "@$((now - days * 86400))" +%Y%m%d-%H%M%S)
    # (No interval expressions: mawk, Debian's awk, lacks them.)
    awk -v count="$count" -v cutoff="$cutoff" '
        length($0) == 16 && /^[0-9]+-[0-9]+F$/ { total++; if (substr($0, 1, 15) >= cutoff) young++ }
        END {
            keep = young + (total > young ? 1 : 0)
            if (keep < count) keep = count
            if (keep > total && total > 0) keep = total
            if (keep < 1) keep = 1
            print keep
        }'
}

expire() {
    labels=$(pgbr --log-level-console=error repo-ls "backup/$stanza" | grep -E '^[0-9]{8}-[0-9]{6}F$' | LC_ALL=C sort -r || true)
    keep=$(printf '%s\n' "$labels" | keep_count "$1" "$2" "$(date +%s)")
    say "expire: keeping the newest $keep full backups (at least $1, and every one of the last $2 days)"
    pgbr --log-level-console=info --repo1-retention-full-type=count --repo1-retention-full="$keep" expire
}

backup() {
    case "${1:-}" in
        full | diff | incr) ;;
        *) fail "backup takes full, diff or incr" ;;
    esac
    pgbr --log-level-console=info --type="$1" backup
}

# The WAL a restore needs: from the backup's first segment on (any later timeline) and every
# timeline history file. A `repo-ls --recurse` of the archive on stdin; one name per line out.
wal_wanted() {
    start=$1
    timeline=$(printf '%s' "$start" | cut -c1-8)
    position=$(printf '%s' "$start" | cut -c9-24)
    sed -n 's#^\([0-9A-F]\{16\}/\)\{0,1\}\([0-9A-F]\{8\}\.history\)$#\2#p; s#^[0-9A-F]\{16\}/\([0-9A-F]\{24\}\)-[0-9a-f]\{40\}.*$#\1#p' |
        awk -v tl="$timeline" -v pos="$position" 'length($0) == 16 || (substr($0, 1, 8) >= tl && substr($0, 9, 16) >= pos)' |
        LC_ALL=C sort -u
}

# Fetches into PGPATH/<restore dir> the WAL the restored backup needs; PostgreSQL's restore_command
# copies from there (the database's image needs no pgBackRest of its own).
prefetch() {
    pgpath=$1
    dest="$pgpath/$restore_name"
    label="$pgpath/backup_label"
    [ -f "$label" ] || fail "no backup_label in $pgpath: the restore did not complete"
    start=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\)).*$/\1/p' "$label")
    [ -n "$start" ] || fail "cannot read the first WAL segment from $label"
    archive_id=$(pgbr --log-level-console=error repo-ls "archive/$stanza" | grep -E '^[0-9]+-[0-9]+$' | LC_ALL=C sort -t- -k2 -n | tail -n 1)
    [ -n "$archive_id" ] || fail "the repository has no WAL archive for stanza $stanza"
    mkdir -p "$dest"
    pgbr --log-level-console=error repo-ls --recurse "archive/$stanza/$archive_id" | wal_wanted "$start" >"$dest/.wanted"
    processes=$(sed -n 's/^process-max=//p' /etc/pgbackrest/pgbackrest.conf 2>/dev/null | head -n 1)
    if ! xargs -P "${processes:-2}" -I{} pgbackrest --stanza="$stanza" --log-level-console=error --pg1-path="$pgpath" \
        archive-get {} "$dest/{}" <"$dest/.wanted"; then
        fail "could not fetch the WAL the restore needs from the repository"
    fi
    say "fetched $(grep -c . "$dest/.wanted" || true) WAL files from $start on"
    rm -f "$dest/.wanted"
}

restore() {
    pgpath=$1
    target=$2
    set_label=${3:-}
    [ -d "$pgpath" ] || fail "$pgpath does not exist"
    if [ -n "$(ls -A "$pgpath")" ]; then
        fail "$pgpath is not empty: a restore never writes over a data directory"
    fi
    set -- --pg1-path="$pgpath" --log-level-console=info \
        "--recovery-option=restore_command=[ -f $restore_name/%f ] && cp $restore_name/%f %p"
    if [ -n "$set_label" ]; then
        set -- "$@" --set="$set_label"
    fi
    if [ "$target" = latest ]; then
        set -- "$@" --type=default
    else
        set -- "$@" --type=time --target="$target" --target-action=promote
    fi
    pgbr "$@" restore
    prefetch "$pgpath"
}

command=${1:-}
[ "$#" -gt 0 ] && shift
case "$command" in
    archiver) archiver ;;
    health) health ;;
    ensure-stanza) ensure_stanza ;;
    has-backup) has_backup ;;
    backup) backup "$@" ;;
    expire) expire "$@" ;;
    keep-count) keep_count "$@" ;;
    restore) restore "$@" ;;
    wal-wanted) wal_wanted "$@" ;;
    info) pgbr --log-level-console=error info ;;
    check) pgbr --log-level-console=info check ;;
    *) fail "usage: pgbackrest-tool.sh archiver|health|ensure-stanza|has-backup|backup TYPE|expire COUNT DAYS|restore PGPATH TARGET [SET]|info|check" ;;
esac
