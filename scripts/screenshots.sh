#!/usr/bin/env bash
# Regenerates the screenshots of the pages in docs/img from the demo: starts the demo fleet
# (scripts/demo.sh: two throwaway MariaDB shards, a ticket pair and a PostgreSQL shard,
# watched by headroom), waits until
# headroom has polled it for a while and holds a critical column, then has Debian's chromium,
# headless, take the fleet page (docs/img/fleet.png) and that column's page
# (docs/img/column.png). Stops everything it started, on success or not.
# Argument: the address the demo's headroom listens on (127.0.0.1:9187).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

listen="${1:-127.0.0.1:9187}"
base="http://$listen"
width=1280
# Polls of the demo (one every 5 s) before the pictures, so that the chart has a history.
history_seconds=60

ensure_cargo
ensure_mariadb
ensure_postgres
ensure_chromium
command -v curl >/dev/null 2>&1 || apt_install curl
chromium="$(command -v chromium || echo /usr/bin/chromium)"
if [ ! -x "$chromium" ]; then
  echo "error: chromium is needed for the screenshots (apt-get install chromium)" >&2
  exit 1
fi

if curl -fsS -o /dev/null "$base/healthz" 2>/dev/null; then
  echo "error: something already answers on $listen: stop it, or give another address" >&2
  exit 1
fi

cargo build --quiet --locked -p headroom-demo
demo_bin="${CARGO_TARGET_DIR:-target}/debug/headroom-demo"

work="$(mktemp -d)"
demo=""
stop() {
  if [ -n "$demo" ]; then
    # The demo stops its servers when it ends; what is left of its process group (only
    # what it started) is killed after 30 s.
    kill -TERM "$demo" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$demo" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

echo "Starting the demo (log: $work/demo.log) ..."
# A process group of its own: the demo, its servers and nothing else.
setsid "$demo_bin" --listen "$listen" >"$work/demo.log" 2>&1 &
demo=$!

# The first critical column's plan_url, once the demo's headroom has one.
critical() {
  curl -fsS "$base/api/columns?status=critical&kind=reference&limit=1" 2>/dev/null |
    grep -o '"plan_url":"[^"]*"' | head -n 1 | cut -d '"' -f 4
}

plan_url=""
for _ in $(seq 1 240); do
  if ! kill -0 "$demo" 2>/dev/null; then
    echo "error: the demo stopped:" >&2
    tail -n 20 "$work/demo.log" >&2
    exit 1
  fi
  plan_url="$(critical || true)"
  [ -n "$plan_url" ] && break
  sleep 0.5
done
if [ -z "$plan_url" ]; then
  echo "error: no critical column after 2 minutes:" >&2
  tail -n 20 "$work/demo.log" >&2
  exit 1
fi
page="${plan_url#/api}"
echo "Critical: $page; letting $history_seconds s of history gather ..."
sleep "$history_seconds"

shoot() {
  local out="$1" height="$2" url="$3"
  "$chromium" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --force-device-scale-factor=1 \
    --user-data-dir="$work/profile" --virtual-time-budget=5000 \
    --window-size="$width,$height" --screenshot="$out" --dump-dom "$url" \
    >"$work/dom.html" 2>"$work/chromium.log" || {
    echo "error: chromium failed on $url:" >&2
    tail -n 20 "$work/chromium.log" >&2
    exit 1
  }
}

mkdir -p docs/img
shoot "$PWD/docs/img/fleet.png" 900 "$base/"
echo "Wrote docs/img/fleet.png ($(wc -c <docs/img/fleet.png) bytes)"

# A column's plan is computed once per poll of its shards, and a page waits for it only
# briefly: asked for first, so that the page finds it, and taken again while the page
# shows a plan of an earlier poll instead (a poll landed in between).
current=""
for attempt in $(seq 1 10); do
  curl -fsS -o /dev/null "$base$plan_url"
  shoot "$PWD/docs/img/column.png" 1500 "$base$page"
  if ! grep -q 'earlier poll\|The plan is being computed' "$work/dom.html"; then
    current=1
    break
  fi
  echo "The page showed a plan of an earlier poll (attempt $attempt); again ..."
done
if [ -z "$current" ]; then
  echo "error: the column page never showed the current plan" >&2
  exit 1
fi
echo "Wrote docs/img/column.png ($(wc -c <docs/img/column.png) bytes)"
