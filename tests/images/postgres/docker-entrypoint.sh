#!/usr/bin/env bash
# Entrypoint of the test bed's PostgreSQL image. On an empty PGDATA it runs initdb with password
# (scram-sha-256) authentication, creates POSTGRES_DB and runs /docker-entrypoint-initdb.d once, on a
# server that listens only on its Unix socket; then it runs the server as the postgres user.
set -Eeuo pipefail

# VAR or VAR_FILE (a Docker secret), never both.
env_or_file() {
    local var="$1" default="${2:-}" file_var="${1}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        echo "error: both $var and $file_var are set; use one" >&2
        exit 1
    fi
    local value="$default"
    if [ -n "${!var:-}" ]; then
        value="${!var}"
    elif [ -n "${!file_var:-}" ]; then
        value="$(<"${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

# Arguments starting with "-" are server options.
if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
    exec "$@"
fi

if [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    chown postgres:postgres /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    env_or_file POSTGRES_PASSWORD
    env_or_file POSTGRES_USER postgres
    env_or_file POSTGRES_DB "$POSTGRES_USER"
    env_or_file POSTGRES_INITDB_ARGS
    if [ -z "$POSTGRES_PASSWORD" ]; then
        echo "error: the database is not initialised and POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi

    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words by design
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=scram-sha-256 $POSTGRES_INITDB_ARGS -D "$PGDATA"
    rm -f "$pwfile"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf '\n# Other containers reach the server over the container network.\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

    export PGPASSWORD="$POSTGRES_PASSWORD" PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql
    # The same server options as the real start (e.g. shared_preload_libraries), but no TCP listener.
    server_options=("${@:2}" -c "listen_addresses=" -p 5432)
    pg_ctl -D "$PGDATA" -w -o "$(printf '%q ' "${server_options[@]}")" start

    psql_run=(psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres)
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        exists="$("${psql_run[@]}" -tA -v db="$POSTGRES_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")"
        if [ -z "$exists" ]; then
            "${psql_run[@]}" -q -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db"'
        fi
    fi

    export PGDATABASE="$POSTGRES_DB"
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then
                    echo "running $f"; "$f"
                else
                    echo "sourcing $f"
                    # shellcheck disable=SC1090
                    . "$f"
                fi
                ;;
            *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) echo "running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" ;;
            *) echo "ignoring $f" ;;
        esac
    done

    pg_ctl -D "$PGDATA" -m fast -w stop
    unset PGPASSWORD PGUSER PGHOST PGDATABASE
    echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
