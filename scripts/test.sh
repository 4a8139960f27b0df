#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing (MariaDB and
# PostgreSQL binaries, Prometheus and Alertmanager, hadolint, chromium), then format check,
# clippy, the alert rules' checks and unit tests (promtool), the Alertmanager example
# (amtool), unit and integration tests (throwaway MariaDB servers and PostgreSQL clusters, a
# real Prometheus and Alertmanager, the pages in headless chromium; no running database
# needed), the Dockerfile lint, and docker-compose.yml where `docker compose` exists.
# .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_cargo
ensure_mariadb
ensure_postgres
ensure_prometheus
ensure_hadolint
ensure_chromium

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== promtool check rules / test rules"
promtool check rules alert-rules/*.rules.yml
promtool test rules alert-rules/tests/*.yml
echo "== amtool check-config"
amtool check-config config/alertmanager.example.yml config/compose/alertmanager.yml
echo "== cargo test"
cargo test --workspace --locked --all-targets
echo "== hadolint Dockerfile"
hadolint Dockerfile
if docker compose version >/dev/null 2>&1; then
  echo "== docker compose config"
  docker compose config --quiet
else
  echo "== docker compose config: skipped, no 'docker compose' on this machine"
fi
echo "All checks passed."
