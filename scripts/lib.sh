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
  local initdb pg_ctl bindir
  initdb="$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1)"
  [ -x "$initdb" ] || die "no Postgres answers on 127.0.0.1:5432 and initdb is not installed (apt-get install postgresql)"
  bindir="$(dirname "$(readlink -f "$initdb")")"
  pg_ctl="$bindir/pg_ctl"
  local as=()
  if [ "$(id -u)" = 0 ]; then
    as=(runuser -u postgres --)
    # The postgres user must reach the data directory; a checkout in a private directory does not allow it.
    mkdir -p "$ROOT/target"
    if ! runuser -u postgres -- test -x "$ROOT/target"; then PG_DIR="${TMPDIR:-/tmp}/partner-dev-postgres"; fi
  fi
  mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    log "creating a throwaway Postgres cluster in $PG_DIR"
    "${as[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >/dev/null
  fi
  log "starting the throwaway Postgres cluster on 127.0.0.1:5432"
  "${as[@]}" "$pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=5432 -k $PG_DIR" start >/dev/null
  pg_answers || die "Postgres did not start; see $PG_DIR/postgres.log"
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
