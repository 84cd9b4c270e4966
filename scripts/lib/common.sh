# Shared helpers of the scripts: progress output and idempotent installs.
# shellcheck shell=bash

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"
}

ensure_rust_components() {
  command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
  fi
}

# PostgreSQL server binaries (initdb, pg_ctl) from Debian's packages.
pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

ensure_postgres() {
  if ! pg_bindir >/dev/null; then
    echo "installing PostgreSQL from Debian's packages"
    apt_install postgresql
  fi
  pg_bindir >/dev/null || { echo "PostgreSQL install failed"; exit 1; }
}

# Debian's Chromium: the browser the UI tests drive (no browser download), and a
# colour emoji font so reactions in the screenshots look as they do for people.
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/noto ]; then
    echo "installing Chromium and fonts from Debian's packages"
    apt_install chromium fonts-noto-color-emoji
  fi
}

# The UI tests' npm packages (ui/package-lock.json), installed again only when the
# lock file changes; downloads are cached outside the repository.
ensure_ui_packages() {
  command -v npm >/dev/null || { echo "installing Node.js and npm"; apt_install nodejs npm; }
  local stamp=ui/node_modules/.rendezvous-lock.sha256 want
  want="$(sha256sum ui/package-lock.json | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing the UI tests' npm packages (ui/package-lock.json)"
    npm ci --prefix ui --no-audit --no-fund --loglevel=error \
      --cache "$HOME/.cache/rendezvous/npm" --prefer-offline
    echo "$want" >"$stamp"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# initdb refuses to run as root: the cluster belongs to the `postgres` user.
pg_run() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  local bin
  bin="$(pg_bindir)"
  PG_DIR="$(mktemp -d /tmp/rendezvous-pg.XXXXXX)"
  PG_PORT="$(free_port)"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR" 2>/dev/null || true
  pg_run "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log"; exit 1; }
  pg_run "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
    || { cat "$PG_DIR/server.log"; exit 1; }
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    pg_run "$(pg_bindir)/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

# One closing line for the whole run, summed over every test binary:
# "tests: N passed, N failed, N skipped".
summarize_cargo_tests() {
  awk '/^test result:/ {
         for (i = 1; i <= NF; i++) {
           if ($(i+1) ~ /^passed;?$/) p += $i
           if ($(i+1) ~ /^failed;?$/) f += $i
           if ($(i+1) ~ /^ignored;?$/) s += $i
         }
       }
       END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s }' "$1"
}
