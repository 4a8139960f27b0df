#!/usr/bin/env bash
# The benchmarks against real servers, from a fresh machine: installs the MariaDB binaries
# if missing and, where it can, Debian's prometheus-mysqld-exporter (the reference they are
# compared with; skipped with a note when it cannot be installed), then runs
#   scripts/bench.sh [TABLES]                        # one shard of TABLES tables (5000):
#                                                    # the inventory and the whole poll
#                                                    # against their floor
#   scripts/bench.sh fleet [SHARDS TABLES SERVERS]   # a fleet (200 x 250 on 4 servers):
#                                                    # a real headroom end to end
# Both build throwaway mariadbd servers and print figures with their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_cargo
ensure_mariadb
if ! command -v prometheus-mysqld-exporter >/dev/null 2>&1; then
  (apt_install prometheus-mysqld-exporter) || echo "prometheus-mysqld-exporter not installed: its figures are skipped"
fi
if [ "${1:-}" = fleet ]; then
  shift
  exec cargo bench --locked --bench fleet -- "$@"
fi
exec cargo bench --locked --bench inventory -- "${1:-5000}"
