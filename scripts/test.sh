#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing (MariaDB binaries,
# hadolint), then format check, clippy, unit and integration tests (throwaway MariaDB
# servers, no running database needed), and the Dockerfile lint. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_cargo
ensure_mariadb
ensure_hadolint

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets
echo "== hadolint Dockerfile"
hadolint Dockerfile
echo "All checks passed."
