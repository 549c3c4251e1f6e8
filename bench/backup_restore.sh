#!/usr/bin/env bash
# Backups side by side, through the backup role's own jobs, on a pgbench database of at least 2 GB:
#   1. pgBackRest full backup (`soulmatting-backup full`: parallel processes, lz4, encrypted, to the S3
#      repository) against the logical dump job (`soulmatting-backup dump`: pg_dump -Fc of every
#      database, encrypted, to the same repository);
#   2. pgBackRest restore (`soulmatting-backup restore-db latest`: restore, WAL fetch, recovery, until
#      the database answers) against a restore of that dump (download, then pg_restore with as many
#      jobs as pgBackRest has processes, into an empty database, indexes included);
#   3. the recovery point of WAL archiving: under a steady write load the database and the pgbackrest
#      service are killed at once (the host is lost), the newest state is restored from the repository
#      into a scratch instance (a drill), and the seconds of acknowledged commits that are missing are
#      counted. Three rounds.
# Deploys the data layer and the backup role (test bed images) under /var/tmp/soulmatting-benchbk with
# its own names and ports, and removes everything when it ends. Needs `make testbed` first.
#   bench/backup_restore.sh [SCALE]       pgbench scale (default 150, about 2.2 GB)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
scale=${1:-150}
bin=$here/${VENV:-.venv}/bin
export ANSIBLE_COLLECTIONS_PATH="$here/.cache/collections" ANSIBLE_PIPELINING=1 ANSIBLE_NOCOWS=1
root=/var/tmp/soulmatting-benchbk
scratch=$(mktemp -d)
job=$root/backup/bin/soulmatting-backup
db=benchbk-postgres
processes=2

teardown() {
  local dir
  docker rm -f benchbk-backup-drill >/dev/null 2>&1 || true
  for dir in "$root"/*/; do
    if [ -f "$dir/compose.yaml" ]; then
      docker compose --project-directory "$dir" down --remove-orphans >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$root"
}
trap 'teardown; rm -rf "$scratch"' EXIT

psql() {
  docker exec -u postgres "$db" psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U postgres -At "$@"
}

# seconds LOG COMMAND...: runs the command, prints its wall time; fails loudly with its log.
seconds() {
  local start end
  start=$(date +%s.%N)
  "${@:2}" >"$1" 2>&1 || { tail -n 40 "$1" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

cat >"$scratch/hosts.yml" <<YAML
all:
  hosts:
    bench:
      ansible_connection: local
      ansible_python_interpreter: $bin/python
  children:
    soulmatting: {hosts: {bench: }}
    postgres: {hosts: {bench: }}
    object_store: {hosts: {bench: }}
    backup: {hosts: {bench: }}
YAML
cat >"$scratch/vars.yml" <<YAML
selfhosted_instance: benchbk
selfhosted_root_dir: $root
selfhosted_secrets_dir: $scratch/secrets
selfhosted_metrics_dir: $root/metrics
docker_service_manage: false
postgres_image: soulmatting-testbed/postgres:latest
postgres_major_version: "15"
postgres_port: 26432
postgres_memory_mb: 4096
postgres_cpus: 2
minio_engine: seaweedfs
minio_seaweedfs_image: soulmatting-testbed/seaweedfs:latest
minio_api_port: 26300
minio_memory_mb: 2048
minio_seaweedfs_volume_size_limit_mb: 1024
backup_pgbackrest_image: soulmatting-testbed/pgbackrest:latest
backup_rclone_image: soulmatting-testbed/pgbackrest:latest
backup_relay_image: soulmatting-testbed/pgbackrest:latest
backup_pgbackrest_process_max: $processes
backup_pgbackrest_compress_type: lz4
backup_pgbackrest_memory_mb: 1024
backup_rclone_memory_mb: 1024
backup_drill_memory_mb: 2048
backup_mirror: none
backup_scheduler: none
YAML
cat >"$scratch/deploy.yml" <<YAML
- name: The data layer and the backups
  ansible.builtin.import_playbook: $here/playbooks/site.yml
YAML

teardown
deploy=$(seconds "$scratch/deploy.log" "$bin/ansible-playbook" -i "$scratch/hosts.yml" "$scratch/deploy.yml" -e "@$scratch/vars.yml")
init=$(seconds "$scratch/init.log" docker exec -u postgres "$db" pgbench -i -q -s "$scale" -h /var/run/postgresql -U postgres postgres)
size=$(psql -d postgres -c "SELECT pg_database_size('postgres')")
[ "$size" -ge $((2 * 1024 * 1024 * 1024)) ] || { echo "the database is only $size bytes: raise the scale" >&2; exit 1; }

# The initialisation's WAL reaches the repository before the measured runs start.
psql -d postgres -c 'CHECKPOINT' -c 'SELECT pg_switch_wal()' >/dev/null
until [ "$(find "$root/postgres/data/soulmatting_pgbackrest_spool" -type f ! -name '.*' | wc -l)" -eq 0 ]; do sleep 2; done

# 1. Backups, side by side.
full=$(seconds "$scratch/full.log" "$job" full)
dump=$(seconds "$scratch/dump.log" "$job" dump)
full_size=$(grep -oE 'backup set size: [0-9.]+[KMG]B' <("$job" info) | tail -n 1 | awk '{ print $4 }')

# 2. Restores, side by side. The dump restores into an empty database with pg_restore -j, from a
#    local copy (pg_restore -j needs a seekable file); the download counts.
set_name=$(docker exec benchbk-backup-rclone sh /opt/soulmatting-backup/rclone-tool.sh latest dumps)
dump_restore() {
  psql -d postgres -c 'DROP DATABASE IF EXISTS bench_restore' -c 'CREATE DATABASE bench_restore'
  docker exec benchbk-backup-rclone rclone cat "repo:dumps/$set_name/postgres.dump" |
    docker exec -i -u postgres "$db" sh -c 'cat >/tmp/bench.dump'
  docker exec -u postgres "$db" pg_restore -h /var/run/postgresql -U postgres -d bench_restore -j "$processes" --no-owner /tmp/bench.dump
  docker exec -u postgres "$db" rm -f /tmp/bench.dump
}
pg_restore_time=$(seconds "$scratch/pg_restore.log" dump_restore)
restored_rows=$(psql -d bench_restore -c 'SELECT count(*) FROM pgbench_accounts')
psql -d postgres -c 'DROP DATABASE bench_restore' >/dev/null
pgbackrest_restore=$(seconds "$scratch/restore.log" "$job" restore-db latest '' --discard-previous)
rows=$(psql -d postgres -c 'SELECT count(*) FROM pgbench_accounts')
if [ "$rows" != "$restored_rows" ] || [ "$rows" -ne $((scale * 100000)) ]; then
  echo "restored $rows and $restored_rows rows" >&2
  exit 1
fi

# 3. The recovery point under a steady write load: pgbench (TPC-B-like, 200 transactions per second)
#    and a writer that commits one row every 0.2 s and logs the commit time it got back.
psql -d postgres -c 'CREATE TABLE IF NOT EXISTS bench_marks (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())'
: >"$scratch/rpo.times"
for round in 1 2 3; do
  docker start benchbk-postgres benchbk-backup-pgbackrest >/dev/null
  until psql -d postgres -c 'SELECT 1' >/dev/null 2>&1; do sleep 1; done
  docker exec -u postgres "$db" pgbench -n -c 2 -R 200 -T 600 -h /var/run/postgresql -U postgres postgres >/dev/null 2>&1 &
  load=$!
  (
    while :; do
      psql -d postgres -c "INSERT INTO bench_marks DEFAULT VALUES RETURNING extract(epoch FROM at)" || break
      sleep 0.2
    done
  ) >"$scratch/marks.$round" 2>/dev/null &
  writer=$!
  sleep $((75 + round * 7))
  # The host is lost: the database and the WAL it had not handed to the repository yet.
  docker kill benchbk-postgres benchbk-backup-pgbackrest >/dev/null
  wait "$writer" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  acknowledged=$(grep -E '^[0-9.]+$' "$scratch/marks.$round" | tail -n 1)
  "$job" drill latest "SELECT extract(epoch FROM max(at)) FROM bench_marks" >"$scratch/drill.$round" 2>&1 || {
    tail -n 30 "$scratch/drill.$round" >&2; exit 1; }
  recovered=$(sed -n 's/^drill: query: //p' "$scratch/drill.$round" | tail -n 1)
  awk -v a="$acknowledged" -v r="$recovered" 'BEGIN { printf "%.1f\n", a - r }' >>"$scratch/rpo.times"
  # The spool the killed database left is pushed once it runs again; its data directory is intact.
done
docker start benchbk-postgres benchbk-backup-pgbackrest >/dev/null

echo "checkout:          $(git -C "$here" log -1 --format='%h %s' | cut -c1-72)"
echo "machine:           $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release)"
echo "database:          pgbench scale $scale, $(awk -v s="$size" 'BEGIN { printf "%.2f GiB", s / 1073741824 }'), initialised in ${init} s (deploy ${deploy} s)"
echo "full backup:       pgBackRest ${full} s (backup set $full_size, $processes processes, lz4, encrypted)   pg_dump -Fc job ${dump} s   ratio $(ratio "$dump" "$full")x"
echo "restore:           pgBackRest ${pgbackrest_restore} s (until the database answers)   pg_restore -j $processes ${pg_restore_time} s   ratio $(ratio "$pg_restore_time" "$pgbackrest_restore")x"
echo "recovery point:    seconds of acknowledged commits lost when the host is killed under load: $(tr '\n' ' ' <"$scratch/rpo.times")(worst $(sort -n "$scratch/rpo.times" | tail -n 1) s; archive_timeout 30 s)"
