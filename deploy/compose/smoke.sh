#!/bin/sh
# Checks a running Compose stack end to end (run from the repository root after `up -d`):
# the example agent got a key from keywarden and used it at the (stub) provider, a process the
# policy does not name is refused, keywarden's metrics show the issuance, and its ledger verifies.
#   sh deploy/compose/smoke.sh [TIMEOUT_SECONDS]
set -eu
compose="docker compose -f deploy/compose/docker-compose.yaml"
timeout=${1:-180}

waited=0
until $compose logs example-agent 2>/dev/null | grep -q 'models visible'; do
  waited=$((waited + 5))
  if [ "$waited" -ge "$timeout" ]; then
    echo "smoke: the example agent used no key within ${timeout}s; its log and keywarden's:" >&2
    $compose logs --tail 20 example-agent keywarden bootstrap >&2 || true
    exit 1
  fi
  sleep 5
done
echo "smoke: the example agent (uid 1001, docker:label:app:example-agent) read its key and called the API"

# The same file, read by a process the policy does not name: root in keywarden's own container,
# which SPIRE attests as spiffe://example.org/keywarden, a delegate but no workload.
if $compose exec -T keywarden cat /run/keywarden/openai/api_key >/dev/null 2>&1; then
  echo "smoke: a process the policy does not name was served a key" >&2
  exit 1
fi
echo "smoke: a process the policy does not name is refused"

if ! curl -fsS http://127.0.0.1:9464/metrics | grep -q '^keywarden_keys_issued_total{key="openai",outcome="ok"}'; then
  echo "smoke: keywarden's metrics show no issuance" >&2
  exit 1
fi
echo "smoke: /metrics counts the issuance"

$compose exec -T keywarden keywarden audit verify /var/log/keywarden/audit.jsonl
echo "smoke: all good"
