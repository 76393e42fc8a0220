#!/usr/bin/env bash
# Stops what deploy/local/up.sh started (by pid: SIGTERM, then SIGKILL after 10 s) and removes its
# sockets. Leaves the logs in DIR/logs. Safe to run twice.
#   deploy/local/down.sh --state DIR
set -uo pipefail
state=""
while [ $# -gt 0 ]; do
  case "$1" in
    --state) state="$2"; shift 2 ;;
    *) echo "down.sh: unknown argument '$1' (usage: down.sh --state DIR)" >&2; exit 2 ;;
  esac
done
if [ -z "$state" ] || [ ! -d "$state" ]; then
  echo "down.sh: --state DIR (an up.sh state directory) is required" >&2
  exit 2
fi
for name in openbao oidc spire-agent spire-server openai-stub; do
  f="$state/pids/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  # up.sh starts each component in its own session: signal the whole group (a wrapper and its child).
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$f"
  echo "down.sh: $name stopped"
done
find "$state" -type s -delete 2>/dev/null || true
echo "down.sh: done"
