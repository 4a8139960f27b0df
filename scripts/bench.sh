#!/usr/bin/env bash
# The benchmarks against real servers, from a fresh machine: installs the MariaDB binaries
# if missing and, where it can, Debian's prometheus-mysqld-exporter (the reference they are
# compared with; skipped with a note when it cannot be installed), then runs
#   scripts/bench.sh [TABLES]                        # one shard of TABLES tables (5000):
#                                                    # the inventory and the whole poll
#                                                    # against their floor
#   scripts/bench.sh fleet [SHARDS TABLES SERVERS]   # a fleet (200 x 250 on 4 servers):
#                                                    # a real headroom end to end
#   scripts/bench.sh postgres [TABLES]               # one PostgreSQL database of TABLES
#                                                    # tables (10000): the whole poll against
#                                                    # its floor and pgMonitor's query
# The first two build throwaway mariadbd servers, the last a throwaway PostgreSQL cluster
# (installing the PostgreSQL binaries if missing); each prints figures with their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_cargo
if [ "${1:-}" = postgres ]; then
  shift
  ensure_postgres
  exec cargo bench --locked --bench postgres -- "$@"
fi
ensure_mariadb
if ! command -v prometheus-mysqld-exporter >/dev/null 2>&1; then
  (apt_install prometheus-mysqld-exporter) || echo "prometheus-mysqld-exporter not installed: its figures are skipped"
fi
if [ "${1:-}" = fleet ]; then
  shift
  exec cargo bench --locked --bench fleet -- "$@"
fi
exec cargo bench --locked --bench inventory -- "${1:-5000}"
