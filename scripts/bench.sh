#!/usr/bin/env bash
# The inventory benchmark, from a fresh machine: installs the MariaDB binaries if missing
# and, where it can, Debian's prometheus-mysqld-exporter (the reference it is compared
# with; skipped with a note when it cannot be installed), then builds one throwaway shard
# of N tables (default 5000) and prints headroom's inventory read against the floor (the
# same statements through the mariadb client) and against mysqld_exporter's collector.
#   scripts/bench.sh           # 5,000 tables
#   scripts/bench.sh 20000     # 20,000 tables
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_cargo
ensure_mariadb
if ! command -v prometheus-mysqld-exporter >/dev/null 2>&1; then
  (apt_install prometheus-mysqld-exporter) || echo "prometheus-mysqld-exporter not installed: its figures are skipped"
fi
exec cargo bench --locked --bench inventory -- "${1:-5000}"
