# Shared by scripts/dev and scripts/test. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV_DIR="$ROOT/.dev"
PG_DIR="$ROOT/target/dev-postgres"

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The server part of DATABASE_URL (default: local Postgres as user postgres).
server_url() {
  local url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  printf '%s' "${url%/*}"
}

pg_answers() {
  local url; url="$(server_url)/postgres"
  pg_isready -q -d "$url" -t 2 >/dev/null 2>&1
}

# Starts the machine's cluster if it is installed but stopped, else a throwaway cluster under target/.
ensure_postgres() {
  if pg_answers; then return 0; fi
  if [ -z "${DATABASE_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    local version; version="$(ls /etc/postgresql | sort -V | tail -n1)"
    log "starting the system PostgreSQL $version cluster"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do pg_answers && return 0; sleep 0.5; done
  fi
  [ -z "${DATABASE_URL:-}" ] || die "no Postgres answers at $(server_url); start it or unset DATABASE_URL"
  # The postgres user must reach the data directory; a checkout in a private directory does not allow it.
  mkdir -p "$ROOT/target"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$ROOT/target"; then
    PG_DIR="${TMPDIR:-/tmp}/partner-dev-postgres"
  fi
  log "starting the throwaway Postgres cluster in $PG_DIR on 127.0.0.1:5432"
  start_cluster "$PG_DIR" 5432
  pg_answers || die "Postgres did not start; see $PG_DIR/postgres.log"
}

# The directory of initdb and pg_ctl: that of initdb on PATH, or the newest /usr/lib/postgresql/*/bin.
pg_bindir() {
  local initdb
  initdb="$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1)"
  [ -x "$initdb" ] || die "no Postgres answers and initdb is not installed (apt-get install postgresql)"
  dirname "$(readlink -f "$initdb")"
}

# Runs a Postgres program, as the postgres user when root (Postgres refuses to run as root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts a cluster in directory $1 on 127.0.0.1:$2 (trust authentication, user postgres), creating it
# the first time; $3 adds server options (e.g. "-c fsync=off"). The tests' private clusters use it too.
start_cluster() {
  local dir="$1" port="$2" options="${3:-}" bindir
  bindir="$(pg_bindir)"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_postgres "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync >/dev/null
  fi
  as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -k $dir $options" start >/dev/null
}

# Stops the cluster in directory $1; $2 is pg_ctl's mode (fast by default: every connection is cut).
stop_cluster() {
  as_postgres "$(pg_bindir)/pg_ctl" -D "$1/data" -w -m "${2:-fast}" stop >/dev/null
}

# Creates database $1 on the server if it does not exist.
ensure_database() {
  local name="$1" url; url="$(server_url)/postgres"
  if ! psql -d "$url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    log "creating database $name"
    psql -d "$url" -qc "CREATE DATABASE \"$name\"" >/dev/null
  fi
}

# Secrets for local runs, generated once per checkout into .dev/secrets.env (never committed).
ensure_local_secrets() {
  mkdir -p "$DEV_DIR"
  if [ ! -f "$DEV_DIR/secrets.env" ]; then
    log "generating local-only secrets in .dev/secrets.env"
    umask 077
    {
      echo "PARTNER_ENCRYPTION__KEY=$(openssl rand -hex 32)"
      echo "PARTNER_WEB__SESSION_KEY=$(openssl rand -hex 64)"
    } > "$DEV_DIR/secrets.env"
  fi
  set -a
  # shellcheck disable=SC1091
  . "$DEV_DIR/secrets.env"
  set +a
}

# Waits until URL $1 answers 200, or fails after $2 seconds.
wait_http() {
  local url="$1" limit="${2:-30}"
  for _ in $(seq 1 $((limit * 4))); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.25
  done
  die "$url did not answer within ${limit}s"
}
