#!/usr/bin/env bash
# The demo stack in the foreground: stand-in LLM on 127.0.0.1:18000, control
# plane on 127.0.0.1:9292, Envoy with the KalGuard filter on 127.0.0.1:10000
# (admin 127.0.0.1:9901). Ctrl-C stops everything it started. Run by `make run`
# after the build; the environment it is given reaches the control plane and,
# for KALGUARD_TOKEN_SECRET, KALGUARD_AGENT_TOKEN and KALGUARD_CHANNEL_KEY, the
# filter.
set -euo pipefail
cd "$(dirname "$0")/.."

data_dir=${KALGUARD_DATA_DIR:-./.kalguard}
mkdir -p "$data_dir/logs"

if [ -z "${KALGUARD_TOKEN_SECRET:-}" ]; then
  KALGUARD_TOKEN_SECRET="demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export KALGUARD_TOKEN_SECRET
  echo "kalguard: KALGUARD_TOKEN_SECRET is not set; this run uses a random demo secret."
fi

# The filter and the control plane authenticate each other with this key; both
# refuse to run without one.
if [ -z "${KALGUARD_CHANNEL_KEY:-}" ]; then
  KALGUARD_CHANNEL_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  export KALGUARD_CHANNEL_KEY
  echo "kalguard: KALGUARD_CHANNEL_KEY is not set; this run uses a random channel key."
fi

for port in 10000 9901 9292 18000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "kalguard: port $port on 127.0.0.1 is already in use; stop what listens there first." >&2
    exit 1
  fi
done

pids=()
stop() {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "kalguard: stack stopped."
}
trap stop EXIT
interrupted=
trap 'interrupted=1' INT TERM

started=$(date +%s%N)
target/release/kalguard-stub-llm 127.0.0.1:18000 >"$data_dir/logs/stub-llm.log" 2>&1 &
pids+=($!)
target/release/kalguard serve --listen 127.0.0.1:9292 >"$data_dir/logs/control-plane.log" 2>&1 &
pids+=($!)
.tools/venv/bin/envoy -c envoy.yaml --disable-hot-restart -l info --log-path "$data_dir/logs/envoy.log" &
pids+=($!)

ready() {
  curl -fsS -m 1 http://127.0.0.1:9901/ready 2>/dev/null | grep -q LIVE &&
    curl -fsS -m 1 http://127.0.0.1:9292/healthz >/dev/null 2>&1 &&
    curl -fsS -m 1 http://127.0.0.1:10000/health >/dev/null 2>&1
}
for _ in $(seq 1 300); do
  [ -n "$interrupted" ] && exit 130
  ready && break
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kalguard: a process of the stack exited during start; logs are in $data_dir/logs/" >&2
      tail -n 20 "$data_dir"/logs/*.log >&2
      exit 1
    fi
  done
  sleep 0.1
done
ready || { echo "kalguard: the stack did not become ready in 30 s; logs are in $data_dir/logs/" >&2; exit 1; }
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))

token=$(target/release/kalguard token create --agent-id demo-agent --capabilities prompt:send,tool:execute --ttl 24h 2>/dev/null)
cat <<BANNER

KalGuard is guarding http://127.0.0.1:10000 (ready in ${elapsed_ms} ms)
  stand-in LLM  http://127.0.0.1:18000   control plane  http://127.0.0.1:9292/healthz
  Envoy stats   http://127.0.0.1:9901/stats/prometheus   logs  $data_dir/logs/

Demo agent token (prompt:send, tool:execute, 24 h):
  export KALGUARD_DEMO_TOKEN=$token

Try it:
  curl -s http://127.0.0.1:10000/v1/chat/completions -H "x-kalguard-token: \$KALGUARD_DEMO_TOKEN" \\
    -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello through KalGuard"}]}'
  curl -s http://127.0.0.1:10000/v1/chat/completions -H 'content-type: application/json' -d '{"messages":[]}'   # no token: 401

Ctrl-C stops the stack.
BANNER

# Stay in the foreground until Ctrl-C or until a process of the stack dies.
wait -n "${pids[@]}" || true
# Ctrl-C reaches the children too; give the trap a moment to tell the two apart.
sleep 0.3
if [ -n "$interrupted" ]; then
  exit 0
fi
echo "kalguard: a process of the stack exited; stopping the rest. Logs are in $data_dir/logs/" >&2
exit 1
