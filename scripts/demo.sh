#!/usr/bin/env bash
# The demo, from a fresh machine: installs the MariaDB and PostgreSQL binaries if missing,
# then starts two throwaway MariaDB shards and a ticket pair seeded with an Etsy-like schema
# whose IDs keep advancing, and a PostgreSQL shard (a serial close to 2^31, an integer
# column storing ticket IDs), monitored by headroom. Prints the URLs to open; Ctrl-C stops everything.
# Arguments go to headroom-demo (--listen, --rate, --start).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_cargo
ensure_mariadb
ensure_postgres
exec cargo run --quiet --locked -p headroom-demo -- "$@"
