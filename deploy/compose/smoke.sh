#!/bin/sh
# Checks the Compose stack end to end (run from the repository root): the example agent got a key
# from keywarden and used it at the (stub) provider, a process the policy does not name is refused,
# keywarden's metrics show the issuance, and its ledger verifies. Exits 0 only then.
#
#   sh deploy/compose/smoke.sh [TIMEOUT_SECONDS]                  # a stack already up
#   KEYWARDEN_COMPOSE_SMOKE_UP=1 sh deploy/compose/smoke.sh       # up -d first, down -v after, and
#                                                                  # checks that nothing is left behind
# Compose: `docker compose` (v2) when the CLI has it, else Debian's `docker-compose` (v1.29; the
# file is written to what both accept). Images: $COMPOSE_ENV_FILE (default
# ~/.cache/keywarden/images/images.env, written by deploy/docker/build-images.sh) when it exists,
# else the public images.
set -eu
timeout=${1:-180}
project=${COMPOSE_PROJECT_NAME:-keywarden}
env_file=${COMPOSE_ENV_FILE:-$HOME/.cache/keywarden/images/images.env}
file=deploy/compose/docker-compose.yaml
if docker compose version >/dev/null 2>&1; then
  compose_cli="docker compose"
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cli=docker-compose
else
  echo "smoke: neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 2
fi
env_arg=""
[ -f "$env_file" ] && env_arg="--env-file $env_file"
# shellcheck disable=SC2086 # the command and its options are words on purpose
compose() { $compose_cli -p "$project" $env_arg -f "$file" "$@"; }

# What this script itself mounted, to undo it (a bind of /run/keywarden onto itself, made shared:
# the keywarden container propagates its FUSE mount to the host through it).
made_shared=""
down() {
  status=$?
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  left=$(docker ps -aq --filter "label=com.docker.compose.project=$project"; docker volume ls -q --filter \
    "label=com.docker.compose.project=$project"; docker network ls -q --filter "label=com.docker.compose.project=$project")
  if [ -n "$made_shared" ]; then
    umount /run/keywarden 2>/dev/null || true
  fi
  if [ -n "$left" ]; then
    echo "smoke: down -v left containers, volumes or networks behind: $left" >&2
    status=1
  fi
  if grep -q ' /run/keywarden' /proc/self/mounts; then
    echo "smoke: a mount is left at /run/keywarden: $(grep ' /run/keywarden' /proc/self/mounts)" >&2
    status=1
  fi
  [ "$status" -eq 0 ] && echo "smoke: down -v left nothing behind (no container, volume, network or mount)"
  exit "$status"
}

if [ "${KEYWARDEN_COMPOSE_SMOKE_UP:-}" = 1 ]; then
  # A run killed before its own down leaves its stack (volumes with an old ledger and SPIRE state)
  # and its bind of /run/keywarden behind: cleared first, and said, so this run starts clean.
  if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$project"; docker volume ls -q --filter \
      "label=com.docker.compose.project=$project")" ]; then
    echo "smoke: removing the $project stack an earlier run left behind"
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  while grep -q ' /run/keywarden ' /proc/self/mounts; do
    echo "smoke: unmounting /run/keywarden, left mounted by an earlier run"
    umount -l /run/keywarden || break
  done
  mkdir -p /run/keywarden
  if [ "$(findmnt -n -o PROPAGATION -T /run/keywarden 2>/dev/null)" != shared ]; then
    mount --bind /run/keywarden /run/keywarden && mount --make-shared /run/keywarden
    made_shared=1
  fi
  trap down EXIT
  trap 'exit 130' INT TERM
  started=$(date +%s)
  compose up -d --no-build >/dev/null 2>&1 || compose up -d
  echo "smoke: the stack is up ($compose_cli, $(($(date +%s) - started)) s)"
fi

waited=0
until compose logs example-agent 2>/dev/null | grep -q 'models visible'; do
  waited=$((waited + 2))
  if [ "$waited" -ge "$timeout" ]; then
    echo "smoke: the example agent used no key within ${timeout}s; its log and keywarden's:" >&2
    compose logs --tail 20 example-agent keywarden bootstrap >&2 || true
    exit 1
  fi
  sleep 2
done
echo "smoke: the example agent (uid 1001, docker:label:app:example-agent) read its key and called the API"

# The same file, read by a process the policy does not name: root in keywarden's own container,
# which SPIRE attests as spiffe://example.org/keywarden, a delegate but no workload.
if compose exec -T keywarden cat /run/keywarden/openai/api_key >/dev/null 2>&1; then
  echo "smoke: a process the policy does not name was served a key" >&2
  exit 1
fi
echo "smoke: a process the policy does not name is refused"

if ! curl -fsS http://127.0.0.1:9464/metrics | grep -q '^keywarden_keys_issued_total{.*key="openai",outcome="ok"}'; then
  echo "smoke: keywarden's metrics show no issuance" >&2
  exit 1
fi
echo "smoke: /metrics counts the issuance"

compose exec -T keywarden keywarden audit verify /var/log/keywarden/audit.jsonl
echo "smoke: all good"
