#!/usr/bin/env bash
# Every KalGuard Cloud test, non-interactively:
#   1. cargo test -p kalguard-cloud  (unit, API, dashboard, Stripe) on SQLite, and on
#      Postgres too: KALGUARD_TEST_POSTGRES_URL if set, else a throwaway server on a
#      free loopback port when Debian's postgresql is installed (else: SQLite only,
#      said loudly);
#   2. the headless-Chromium browser journey, layout, roles, drill-down, alerts and approvals tests (need
#      chromium + chromium-driver);
#   3. the whole-product journey (cloud/tests/browser/test_journey.py): the Cloud,
#      the control plane, Envoy with the release filter and the OpenAI SDK, driven
#      from the dashboard (also needs `make build` and the `openai` package in
#      .tools/venv, which `make tools` installs).
# Set KALGUARD_TEST_REQUIRE_ALL=1 (CI) to fail instead of skipping a missing tool.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
require_all="${KALGUARD_TEST_REQUIRE_ALL:-0}"

missing() {
  if [ "$require_all" = 1 ]; then
    echo "FAIL: $1" >&2
    exit 1
  fi
  echo "SKIP: $1" >&2
}

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

if [ -z "${KALGUARD_TEST_POSTGRES_URL:-}" ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] && id postgres >/dev/null 2>&1; then
    pg_dir="$(mktemp -d /tmp/kalguard-cloud-pg.XXXXXX)"
    chown postgres "$pg_dir"
    pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres >"$pg_dir/initdb.log" 2>&1
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/pg.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off" start >/dev/null
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE kalguard_test" >/dev/null
    export KALGUARD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/kalguard_test"
    echo "started a throwaway Postgres at $KALGUARD_TEST_POSTGRES_URL"
  else
    missing "Postgres not installed (apt-get install -y postgresql); Cloud tests run on SQLite only"
  fi
fi

nice -n 10 cargo test -p kalguard-cloud

nice -n 10 cargo build -p kalguard-cloud
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" python3 cloud/tests/browser/test_dashboard.py
  KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" python3 cloud/tests/browser/test_layout.py
  KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" python3 cloud/tests/browser/test_roles.py
  KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" python3 cloud/tests/browser/test_drilldown.py
  KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" python3 cloud/tests/browser/test_alerts.py
  KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" python3 cloud/tests/browser/test_approvals.py
  KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" python3 cloud/tests/browser/test_pins.py
  venv_python="$PWD/.tools/venv/bin/python"
  built=1
  for f in "$CARGO_TARGET_DIR/release/kalguard" "$CARGO_TARGET_DIR/release/kalguard-stub-llm" \
           "$CARGO_TARGET_DIR/wasm32-wasip1/release/kalguard_filter.wasm" "$PWD/.tools/venv/bin/envoy"; do
    [ -e "$f" ] || built=0
  done
  if [ "$built" = 0 ]; then
    missing "the filter, control plane, stand-in LLM or Envoy is not built (make build); whole-product journey not run"
  elif ! "$venv_python" -c 'import openai' 2>/dev/null; then
    missing "the openai package is not in .tools/venv (make tools); whole-product journey not run"
  else
    KALGUARD_CLOUD_BIN="$CARGO_TARGET_DIR/debug/kalguard-cloud" "$venv_python" cloud/tests/browser/test_journey.py
  fi
else
  missing "chromium/chromedriver not installed (apt-get install -y chromium chromium-driver); browser journeys not run"
fi
echo "kalguard-cloud: all tests passed"
