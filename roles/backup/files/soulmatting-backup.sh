#!/usr/bin/env bash
# The backup jobs of one SoulMatting stack on this host: what the systemd timers (or cron) run,
# what playbooks/backup.yml and playbooks/restore.yml run, and what you run by hand in an
# emergency. Installed by the backup role as <backup project>/bin/soulmatting-backup with its
# settings in bin/backup.conf (no secret: the tools read theirs in their containers).
#
# Jobs (each records its outcome for monitoring and exits non-zero, saying why, when it fails):
#   full | diff | incr      a pgBackRest backup of that type, then retention by count and age
#   dump                    pg_dump -Fc of each database and pg_dumpall --globals-only, encrypted
#   config                  the database's config directory (pgsodium key), the stack's configuration
#                           and the secret store copy, as one encrypted archive
#   mirror                  the object store's buckets, copied incrementally to the mirror
#   drill [TARGET]          restore into a scratch instance and check it (production untouched)
#   status                  refresh the WAL archiving metrics (every minute)
# Operations:
#   first-backups [--check] take a first full backup and configuration archive when the repository holds none
#   restore-db TARGET [SET] [--discard-previous]
#                           replace the database with the backup as of TARGET (latest or a time)
#   restore-plan TARGET     what restore-db would do (read-only)
#   restore-objects [BUCKET...]  copy buckets back from the mirror into the object store
#   config-extract DIR      unpack the newest configuration archive into DIR
#   info                    pgBackRest's view of the repository
#   render-metrics          write the metrics file from the recorded outcomes
set -euo pipefail
umask 077

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
. "${SOULMATTING_BACKUP_CONF:-$here/backup.conf}"

state=$PROJECT_DIR/state
quiet=0

log() {
    [ "$quiet" -eq 1 ] || printf '%s\n' "$*"
}

die() {
    printf 'soulmatting-backup: %s\n' "$*" >&2
    exit 1
}

now() {
    date +%s
}

stamp() {
    date -u +%Y%m%dT%H%M%SZ
}

in_pgbackrest() {
    docker exec "$PGBACKREST_CONTAINER" /bin/sh "$TOOLS/pgbackrest-tool.sh" "$@"
}

in_rclone() {
    docker exec "$RCLONE_CONTAINER" /bin/sh "$TOOLS/rclone-tool.sh" "$@"
}

# A one-off container of the pgbackrest service (for restores, while the service is stopped).
pgbackrest_once() {
    docker compose --project-directory "$PROJECT_DIR" run --rm --no-deps -T "$@"
}

# psql as the admin over the database container's own socket (peer: no password).
db_psql() {
    docker exec -u postgres "$DB_CONTAINER" psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql \
        -U "$DB_ADMIN" -d "$DB_DATABASE" -At "$@"
}

running() {
    [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null || true)" = true ]
}

# ----------------------------------------------------------------------------------- outcomes

kinds="full diff incr dump config mirror drill"

# Records KIND's outcome (rc, start, end) and rewrites the metrics file.
record() {
    local kind=$1 rc=$2 start=$3 end=$4 dir=$state/jobs
    mkdir -p "$dir"
    echo $((end - start)) >"$dir/$kind.duration"
    if [ "$rc" -eq 0 ]; then
        echo "$end" >"$dir/$kind.last_success"
        echo 1 >"$dir/$kind.ok"
    else
        echo "$end" >"$dir/$kind.last_failure"
        echo $(($(cat "$dir/$kind.failures" 2>/dev/null || echo 0) + 1)) >"$dir/$kind.failures"
        echo 0 >"$dir/$kind.ok"
    fi
    render_metrics
}

# Prometheus text format, read by the node exporter's textfile collector.
metrics_text() {
    local dir=$state/jobs archiver=$state/archiver kind file labels
    family() {
        printf '# HELP %s %s\n# TYPE %s %s\n' "$1" "$3" "$1" "$2"
        for kind in $kinds; do
            file=$dir/$kind.$4
            [ -f "$file" ] || continue
            labels="kind=\"$kind\",stack=\"$INSTANCE\""
            printf '%s{%s} %s\n' "$1" "$labels" "$(cat "$file")"
        done
    }
    family soulmatting_backup_last_success_timestamp_seconds gauge \
        "Unix time at which the last successful backup run of this kind ended." last_success
    family soulmatting_backup_last_failure_timestamp_seconds gauge \
        "Unix time at which the last failed backup run of this kind ended." last_failure
    family soulmatting_backup_failures_total counter "Backup runs of this kind that failed." failures
    family soulmatting_backup_last_run_success gauge "Whether the last backup run of this kind succeeded (1) or failed (0)." ok
    family soulmatting_backup_last_duration_seconds gauge "How long the last backup run of this kind took." duration
    if [ -d "$archiver" ] && [ "$POSTGRES" = 1 ]; then
        single() {
            printf '# HELP %s %s\n# TYPE %s %s\n%s{stack="%s"} %s\n' "$1" "$3" "$1" "$2" "$1" "$INSTANCE" \
                "$(cat "$archiver/$4" 2>/dev/null || echo 0)"
        }
        single soulmatting_backup_wal_last_push_timestamp_seconds gauge \
            "Unix time at which the last WAL file reached the repository." last_push
        single soulmatting_backup_wal_spool_files gauge "WAL files handed over by the database and not yet in the repository." backlog
        single soulmatting_backup_wal_push_failures_total counter "Failed attempts to push a WAL file to the repository." failures
    fi
}

render_metrics() {
    local target=$METRICS_DIR/soulmatting_backup_$INSTANCE.prom
    mkdir -p "$METRICS_DIR"
    (
        flock 9
        metrics_text >"$target.tmp"
        chmod 0644 "$target.tmp"
        mv -f "$target.tmp" "$target"
    ) 9>"$state/lock.metrics"
}

# Runs a job: its output goes to the terminal (or the journal) and to state/log/KIND.log; its
# outcome is recorded; a failure ends with one line that says why.
run_job() {
    local kind=$1 start end rc last
    shift
    mkdir -p "$state/log"
    start=$(now)
    log "soulmatting-backup: $kind backup of $INSTANCE started"
    set +e
    if [ "$quiet" -eq 1 ]; then
        # (cron mails what a job prints: only its failure.)
        (
            set -e
            "$@"
        ) >"$state/log/$kind.log" 2>&1
        rc=$?
    else
        (
            set -e
            "$@"
        ) 2>&1 | tee "$state/log/$kind.log"
        rc=${PIPESTATUS[0]}
    fi
    set -e
    end=$(now)
    record "$kind" "$rc" "$start" "$end"
    if [ "$rc" -ne 0 ]; then
        last=$(grep -E 'ERROR|FATAL|error|failed|refused|timed out' "$state/log/$kind.log" | tail -n 1 || true)
        printf 'soulmatting-backup: the %s backup of %s FAILED after %s s: %s\n' "$kind" "$INSTANCE" "$((end - start))" \
            "${last:-exit $rc, see $state/log/$kind.log}" >&2
        return "$rc"
    fi
    log "soulmatting-backup: the $kind backup of $INSTANCE succeeded in $((end - start)) s"
}

# One job of a group at a time (pgBackRest's backups, restores and drills share one).
locked() {
    local name=$1
    shift
    mkdir -p "$state"
    (
        flock -w $((12 * 3600)) 9 || die "another $name job still runs after 12 hours"
        "$@"
    ) 9>"$state/lock.$name"
}

# ------------------------------------------------------------------------------------- checks

need_running() {
    running "$1" || die "the $2 container $1 is not running: deploy the backup role (site.yml), or start it with docker compose --project-directory $PROJECT_DIR up -d"
}

# A clear sentence when the repository does not answer, before a tool fails with its own words.
repository_answers() {
    local out
    if ! out=$(in_rclone reach repo-s3 "$REPO_BUCKET" 2>&1); then
        printf 'ERROR: the backup repository %s (bucket %s) does not answer: %s\n' "$REPO_URL" "$REPO_BUCKET" \
            "$(printf '%s' "$out" | tail -n 1)"
        return 1
    fi
}

# --------------------------------------------------------------------------------------- jobs

pg_backup() {
    local type=$1
    need_running "$PGBACKREST_CONTAINER" pgbackrest
    need_running "$RCLONE_CONTAINER" rclone
    repository_answers
    in_pgbackrest backup "$type"
    in_pgbackrest expire "$RETENTION_FULL" "$RETENTION_FULL_DAYS"
}

databases() {
    if [ -n "$DUMP_DATABASES" ]; then
        # shellcheck disable=SC2086  # a space-separated list
        printf '%s\n' $DUMP_DATABASES
    else
        db_psql -c "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
    fi
}

dumps() {
    local set db names=()
    need_running "$DB_CONTAINER" database
    need_running "$RCLONE_CONTAINER" rclone
    repository_answers
    set=$(stamp)
    mapfile -t names < <(databases)
    [ "${#names[@]}" -gt 0 ] || die "no database to dump"
    for db in "${names[@]}"; do
        docker exec -u postgres "$DB_CONTAINER" pg_dump -h /var/run/postgresql -U "$DB_ADMIN" -d "$db" -Fc |
            docker exec -i "$RCLONE_CONTAINER" rclone rcat "repo:dumps/$set/$db.dump"
        log "dumped $db"
    done
    docker exec -u postgres "$DB_CONTAINER" pg_dumpall -h /var/run/postgresql -U "$DB_ADMIN" -l "$DB_DATABASE" --globals-only |
        docker exec -i "$RCLONE_CONTAINER" rclone rcat "repo:dumps/$set/globals.sql"
    # Written last: a set without it is incomplete.
    printf '%s\n' "${names[@]}" | docker exec -i "$RCLONE_CONTAINER" rclone rcat "repo:dumps/$set/COMPLETE"
    log "dump set $set: ${names[*]} and the roles"
    in_rclone prune dumps "$DUMP_RETENTION_COUNT" "$DUMP_RETENTION_DAYS"
}

# Whether PATH lies inside one of the (relative) paths after it.
inside() {
    local path=$1 parent
    shift
    for parent in "$@"; do
        [[ $path/ == "/$parent/"* ]] && return 0
    done
    return 1
}

config_archive() {
    local name path paths=() excludes=() rc
    need_running "$RCLONE_CONTAINER" rclone
    repository_answers
    IFS=: read -r -a wanted <<<"$CONFIG_PATHS"
    # Each path once: one inside another that is archived already is left to it.
    mapfile -t wanted < <(printf '%s\n' "${wanted[@]}" | sed 's#/*$##' | LC_ALL=C sort -u)
    for path in "${wanted[@]}"; do
        if [ ! -e "$path" ]; then
            log "config: $path does not exist, left out"
        elif ! inside "$path" "${paths[@]}"; then
            paths+=("${path#/}")
        fi
    done
    [ "${#paths[@]}" -gt 0 ] || die "none of the configuration paths exists"
    IFS=: read -r -a wanted <<<"$CONFIG_EXCLUDE"
    for path in "${wanted[@]}"; do
        [ -n "$path" ] && excludes+=("--exclude=${path#/}")
    done
    name=$(stamp).tar.gz
    set +e
    tar -C / --create --gzip --numeric-owner --warning=no-file-changed "${excludes[@]}" --file - "${paths[@]}" |
        docker exec -i "$RCLONE_CONTAINER" rclone rcat "repo:config/$name"
    rc=("${PIPESTATUS[@]}")
    set -e
    # tar exits 1 when a file changed while it read it: the archive is still whole.
    [ "${rc[0]}" -le 1 ] || die "tar failed (exit ${rc[0]})"
    [ "${rc[1]}" -eq 0 ] || die "the upload of config/$name failed (exit ${rc[1]})"
    log "config archive $name: ${paths[*]/#//}"
    in_rclone prune config "$CONFIG_RETENTION_COUNT" "$CONFIG_RETENTION_DAYS"
}

mirror_objects() {
    need_running "$RCLONE_CONTAINER" rclone
    in_rclone mirror "$MIRROR_BUCKETS" "$MIRROR_SKIP" "$MIRROR_DELETED_DAYS"
}

status() {
    render_metrics
}

# ------------------------------------------------------------------------------------ restore

# Restores the backup as of TARGET into DIR (the pgbackrest service's data directory path in the
# container is PATH_IN) with a one-off container of the pgbackrest service.
restore_into() {
    local dir=$1 target=$2 set=$3 path_in=$4
    shift 4
    mkdir -p "$dir"
    chown "$DB_UID:$DB_GID" "$dir"
    chmod 0700 "$dir"
    pgbackrest_once "$@" pgbackrest restore "$path_in" "$target" "$set"
}

# Waits until the server in CONTAINER has finished recovery; fails with its log when it stops.
wait_promoted() {
    local container=$1 deadline=$(($(now) + RESTORE_TIMEOUT)) answer
    while :; do
        if ! running "$container"; then
            docker logs --tail 15 "$container" >&2 || true
            die "the database in $container stopped during recovery (its last log lines are above)"
        fi
        answer=$(docker exec -u postgres "$container" psql -X -h /var/run/postgresql -U "$DB_ADMIN" -d "$DB_DATABASE" -Atc \
            'SELECT pg_is_in_recovery()' 2>/dev/null || true)
        [ "$answer" = f ] && return 0
        [ "$(now)" -lt "$deadline" ] || die "the database in $container did not finish recovery within $RESTORE_TIMEOUT s"
        sleep 2
    done
}

# What the server in CONTAINER said about the end of its recovery.
recovery_summary() {
    docker logs --since "${2:-0}" "$1" 2>&1 | grep -E 'redo done at|last completed transaction was at log time|recovery stopping|selected new timeline' |
        tail -n 4 | sed 's/^.*\(LOG\|DETAIL\): *//' | paste -sd ';' - | sed 's/;/; /g'
}

# Hands the current WAL over and waits until the archiver has pushed everything (restore to latest):
# the server runs its archive_command for the segment the switch completed a moment after the switch,
# so first until it has (pg_stat_archiver), then until the spool is empty.
drain_wal() {
    local deadline=$(($(now) + 180)) left segment handed=f
    running "$DB_CONTAINER" || return 0
    segment=$(db_psql -c 'SELECT pg_walfile_name(pg_switch_wal())' 2>/dev/null || true)
    [[ $segment =~ ^[0-9A-F]{24}$ ]] || handed=t
    while :; do
        if [ "$handed" != t ]; then
            handed=$(db_psql -c "SELECT coalesce(last_archived_wal >= '$segment' COLLATE \"C\", false) FROM pg_stat_archiver" 2>/dev/null || true)
        fi
        left=$(find "$DB_DATA_DIR/$WAL_SPOOL" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)
        [ "$handed" = t ] && [ "$left" -eq 0 ] && return 0
        if [ "$(now)" -ge "$deadline" ]; then
            [ "$handed" = t ] || die "the database did not hand over its WAL segment $segment within 180 s (see its log: docker logs $DB_CONTAINER)"
            die "$left WAL files of the running database are not in the repository yet (is it reachable? see docker logs $PGBACKREST_CONTAINER); restore once they are, or restore to an earlier time"
        fi
        sleep 1
    done
}

# The config directory (pgsodium root key) from the newest configuration archive, when it is missing or empty.
restore_config_dir() {
    local latest rel
    if [ -d "$DB_CONFIG_DIR" ] && [ -n "$(ls -A "$DB_CONFIG_DIR" 2>/dev/null)" ]; then
        log "config directory $DB_CONFIG_DIR in place, kept"
        return 0
    fi
    latest=$(in_rclone latest config)
    [ -n "$latest" ] || die "no configuration archive in the repository to restore $DB_CONFIG_DIR from"
    rel=${DB_CONFIG_DIR#/}
    docker exec "$RCLONE_CONTAINER" rclone cat "repo:config/$latest" | tar -C / -xz --numeric-owner "$rel"
    log "config directory $DB_CONFIG_DIR restored from config/$latest"
}

restore_db() {
    local target=${1:-latest} set=${2:-} discard=${3:-} moved="" started
    [ -f "$DB_PROJECT_DIR/compose.yaml" ] || die "no PostgreSQL project in $DB_PROJECT_DIR: deploy the postgres role first, then restore"
    need_running "$RCLONE_CONTAINER" rclone
    repository_answers
    log "restore: the database of $INSTANCE as of $target${set:+, from backup set $set}"
    drain_wal
    docker compose --project-directory "$DB_PROJECT_DIR" stop --timeout 60 >/dev/null 2>&1 || true
    docker compose --project-directory "$PROJECT_DIR" stop pgbackrest >/dev/null 2>&1 || true
    if [ -d "$DB_DATA_DIR" ] && [ -n "$(ls -A "$DB_DATA_DIR")" ]; then
        if [ "$discard" = --discard-previous ]; then
            rm -rf "$DB_DATA_DIR"
            log "restore: removed the previous data directory"
        else
            moved=$DB_DATA_DIR.before-restore-$(stamp)
            mv "$DB_DATA_DIR" "$moved"
            log "restore: the previous data directory is kept in $moved"
        fi
    fi
    restore_into "$DB_DATA_DIR" "$target" "$set" "$PGDATA"
    restore_config_dir
    started=$(now)
    docker compose --project-directory "$DB_PROJECT_DIR" up -d >/dev/null
    wait_promoted "$DB_CONTAINER"
    # The recovery settings pgBackRest wrote have done their work.
    db_psql -c 'ALTER SYSTEM RESET restore_command' -c 'ALTER SYSTEM RESET recovery_target_time' \
        -c 'ALTER SYSTEM RESET recovery_target_action' -c 'SELECT pg_reload_conf()' >/dev/null
    rm -rf "${DB_DATA_DIR:?}/$WAL_RESTORE"
    docker compose --project-directory "$PROJECT_DIR" up -d pgbackrest >/dev/null
    log "restore: done ($(recovery_summary "$DB_CONTAINER" "$started"))"
}

restore_plan() {
    local target=${1:-latest}
    need_running "$PGBACKREST_CONTAINER" pgbackrest
    printf 'would restore the database of %s as of %s: stop %s and the pgbackrest service, keep the data directory %s aside, restore the newest backup before the target with pgBackRest, fetch the WAL, recover, start the database again\n' \
        "$INSTANCE" "$target" "$DB_CONTAINER" "$DB_DATA_DIR"
    in_pgbackrest info
}

restore_objects() {
    need_running "$RCLONE_CONTAINER" rclone
    in_rclone restore-objects "$*"
}

config_extract() {
    local dir=$1 latest
    need_running "$RCLONE_CONTAINER" rclone
    latest=$(in_rclone latest config)
    [ -n "$latest" ] || die "no configuration archive in the repository"
    mkdir -p "$dir"
    docker exec "$RCLONE_CONTAINER" rclone cat "repo:config/$latest" | tar -C "$dir" -xz --numeric-owner
    log "config/$latest unpacked into $dir"
}

# --------------------------------------------------------------------------------------- drill

drill() {
    local target=${1:-latest} query=${2:-} dir=$PROJECT_DIR/drill name=$INSTANCE-backup-drill image db rc
    need_running "$RCLONE_CONTAINER" rclone
    repository_answers
    # The database's own image (its container need not run: a drill also proves a lost host's backups).
    image=$(docker inspect -f '{{.Config.Image}}' "$DB_CONTAINER" 2>/dev/null) ||
        die "no container $DB_CONTAINER to take the database's image from: deploy the postgres role first"
    docker rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$dir"
    # shellcheck disable=SC2064  # the scratch names, as they are now
    trap "docker rm -f '$name' >/dev/null 2>&1 || true; rm -rf '$dir'" EXIT
    mkdir -p "$dir/conf"
    chmod 0755 "$dir/conf"
    printf 'local all all peer map=drill\n' >"$dir/conf/pg_hba.conf"
    printf 'drill postgres %s\ndrill postgres postgres\n' "$DB_ADMIN" >"$dir/conf/pg_ident.conf"
    chmod 0644 "$dir/conf/"*
    log "drill: restoring the backup as of $target into a scratch instance"
    restore_into "$dir/data" "$target" "" /var/lib/soulmatting-drill -v "$dir/data:/var/lib/soulmatting-drill"
    # No network, no archiving: nothing the scratch instance does reaches production or the repository.
    docker run -d --name "$name" --network none --memory "${DRILL_MEMORY_MB}m" \
        -v "$dir/data:$PGDATA" -v "$dir/conf:/etc/soulmatting-drill:ro" "$image" \
        postgres -c archive_mode=off -c hot_standby=off -c listen_addresses= -c max_connections=20 -c shared_buffers=64MB \
        -c hba_file=/etc/soulmatting-drill/pg_hba.conf -c ident_file=/etc/soulmatting-drill/pg_ident.conf >/dev/null
    wait_promoted "$name"
    log "drill: recovered ($(recovery_summary "$name"))"
    drill_psql() {
        docker exec -u postgres "$name" psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$DB_ADMIN" -At "$@"
    }
    while read -r db; do
        [ -n "$db" ] || continue
        log "drill: database $db answers, $(drill_psql -d "$db" -c "SELECT count(*) FROM pg_class WHERE relkind = 'r'") tables, $(drill_psql -d "$db" -c 'SELECT pg_size_pretty(pg_database_size(current_database()))')"
    done < <(drill_psql -d "$DB_DATABASE" -c "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")
    if [ -f "$here/drill-checks" ]; then
        while IFS=$'\t' read -r db sql; do
            case "$db" in '#'* | '') continue ;; esac
            [ "$(drill_psql -d "$db" -c "$sql")" = t ] || die "drill check failed in $db: $sql"
            log "drill: check passed in $db: $sql"
        done <"$here/drill-checks"
    fi
    if [ -n "$query" ]; then
        log "drill: query: $(drill_psql -d "$DB_DATABASE" -c "$query")"
    fi
    if [ "$CONFIG" = 1 ]; then
        db=$(in_rclone latest config)
        [ -n "$db" ] || die "no configuration archive in the repository"
        rc=$(docker exec "$RCLONE_CONTAINER" rclone cat "repo:config/$db" | tar -tz | grep -c "^${DB_CONFIG_DIR#/}/" || true)
        [ "$rc" -gt 0 ] || die "the configuration archive config/$db lacks $DB_CONFIG_DIR"
        log "drill: configuration archive config/$db reads, with $DB_CONFIG_DIR"
    fi
    if [ "$DUMPS" = 1 ]; then
        db=$(in_rclone latest dumps)
        [ -n "$db" ] || die "no dump set in the repository"
        docker exec "$RCLONE_CONTAINER" rclone cat "repo:dumps/$db/COMPLETE" >/dev/null || die "the newest dump set $db is incomplete"
        while read -r dump; do
            # pg_restore --list stops after the table of contents: the rest is drained, so that a large dump's
            # download ends normally instead of on a broken pipe.
            docker exec "$RCLONE_CONTAINER" rclone cat "repo:dumps/$db/$dump.dump" |
                docker exec -i "$name" sh -c 'pg_restore --list >/dev/null && cat >/dev/null' ||
                die "the dump dumps/$db/$dump.dump does not read"
        done < <(docker exec "$RCLONE_CONTAINER" rclone cat "repo:dumps/$db/COMPLETE")
        log "drill: dump set $db reads"
    fi
    log "drill: the backups of $INSTANCE restore and answer"
}

# Right after the role deployed the project: a first full backup and a first configuration archive
# when the repository holds none, so that the database is recoverable from the start.
first_backups() {
    local check=${1:-}
    if [ "$POSTGRES" = 1 ] && running "$PGBACKREST_CONTAINER" && ! in_pgbackrest has-backup; then
        if [ "$check" = --check ]; then
            echo "CHANGED: would have taken the first full backup"
        else
            locked pgbackrest run_job full pg_backup full
            echo "CHANGED: took the first full backup"
        fi
    fi
    if [ "$CONFIG" = 1 ] && running "$RCLONE_CONTAINER" && [ -z "$(in_rclone latest config 2>/dev/null)" ]; then
        if [ "$check" = --check ]; then
            echo "CHANGED: would have made the first configuration archive"
        else
            locked config run_job config config_archive
            echo "CHANGED: made the first configuration archive"
        fi
    fi
}

# --------------------------------------------------------------------------------------- main

main() {
    local command=${1:-}
    [ "$#" -gt 0 ] && shift
    if [ "${1:-}" = --quiet ]; then
        quiet=1
        shift
    fi
    case "$command" in
        full | diff | incr) [ "$POSTGRES" = 1 ] || die "physical backups are off (backup_postgres)"
            locked pgbackrest run_job "$command" pg_backup "$command" ;;
        dump) [ "$DUMPS" = 1 ] || die "dumps are off (backup_dumps)"
            locked dump run_job dump dumps ;;
        config) [ "$CONFIG" = 1 ] || die "configuration archives are off (backup_config)"
            locked config run_job config config_archive ;;
        mirror) [ "$MIRROR" != none ] || die "the object store mirror is off (backup_mirror)"
            locked mirror run_job mirror mirror_objects ;;
        drill) locked pgbackrest run_job drill drill "$@" ;;
        status) status ;;
        first-backups) first_backups "$@" ;;
        restore-db) locked pgbackrest restore_db "$@" ;;
        restore-plan) restore_plan "$@" ;;
        restore-objects) locked mirror restore_objects "$@" ;;
        config-extract) config_extract "$@" ;;
        info) in_pgbackrest info ;;
        render-metrics) render_metrics ;;
        metrics-text) metrics_text ;;
        *) die "usage: soulmatting-backup full|diff|incr|dump|config|mirror|drill [TARGET]|status|first-backups|restore-db TARGET [SET] [--discard-previous]|restore-plan TARGET|restore-objects [BUCKET...]|config-extract DIR|info" ;;
    esac
}

main "$@"
