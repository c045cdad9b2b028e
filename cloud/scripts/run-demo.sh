#!/usr/bin/env bash
# `make run-cloud`: KalGuard Cloud on 127.0.0.1:9393 with a fresh demo organisation,
# its API key and an agent token exported, then the given command (the guarded
# stack in cloud mode), or just the Cloud when no command is given.
#
#   cloud/scripts/run-demo.sh                 # Cloud alone, seeded
#   cloud/scripts/run-demo.sh make run        # + the stack, with KALGUARD_API_KEY,
#                                             #   KALGUARD_CLOUD_URL, KALGUARD_AGENT_TOKEN set
#                                             #   (and a KALGUARD_CHANNEL_KEY: see below)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
addr="${KALGUARD_CLOUD_ADDR:-127.0.0.1:9393}"
data="${KALGUARD_CLOUD_DEMO_DIR:-$PWD/.kalguard/cloud-demo}"
email="demo@kalguard.local"
password="kalguard-demo-1"

cargo build -q -p kalguard-cloud
bin="$CARGO_TARGET_DIR/debug/kalguard-cloud"
rm -rf "$data"
mkdir -p "$data"
unset KALGUARD_CLOUD_DATABASE_URL
key="$("$bin" --data-dir "$data" org create --name "Demo Org" --email "$email" --password "$password" 2>/dev/null)"
token="$("$bin" --data-dir "$data" token create --api-key "$key" --agent demo-agent --name "demo agent")"

"$bin" --data-dir "$data" serve --addr "$addr" --public-url "http://$addr" &
cloud_pid=$!
trap 'kill "$cloud_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$addr/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

cat <<INFO

  KalGuard Cloud:  http://$addr/        (log in: $email / $password)
  Sidecar env:     KALGUARD_API_KEY=$key
                   KALGUARD_CLOUD_URL=http://$addr
                   KALGUARD_AGENT_TOKEN=$token

INFO

export KALGUARD_API_KEY="$key" KALGUARD_CLOUD_URL="http://$addr" KALGUARD_AGENT_TOKEN="$token"
# The filter and the control plane share this key; the control plane refuses
# to start in Cloud mode without it.
if [ -z "${KALGUARD_CHANNEL_KEY:-}" ]; then
  KALGUARD_CHANNEL_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  export KALGUARD_CHANNEL_KEY
fi
if [ "$#" -gt 0 ]; then
  "$@"
else
  wait "$cloud_pid"
fi
