#!/bin/sh
# The Compose stack's one-shot bootstrap; it runs on every `docker compose up` and is idempotent.
#  1. Waits for the SPIRE server, mints a join token for this node's alias and writes the agent's
#     config with it and the server's trust bundle (the agent starts once this has finished).
#  2. Registers keywarden (a delegate) and the example agent, by container label.
#  3. Configures OpenBao: JWT auth against SPIRE's OIDC discovery provider, the workload's role and
#     policy, the OpenAI engine pointed at the stub (or at OpenAI, see OPENAI_API_URL).
# The paths default to the bootstrap container's layout (see docker-compose.yaml).
set -eu

socket=${SPIRE_SERVER_SOCKET:-/tmp/spire-server/private/api.sock}
node_id=${NODE_ID:-spiffe://example.org/node/compose}
out=${BOOTSTRAP_OUT:-/run/spire/bootstrap}
spire_dir=${SPIRE_CONF_DIR:-/etc/spire}
setup=${OPENBAO_SETUP:-/etc/openbao/setup.sh}
plugin=${OPENAI_PLUGIN_FILE:-/openbao/plugins/keywarden-openai-engine}
wait_max=${WAIT_MAX:-120}

tries=0
until spire-server healthcheck -socketPath "$socket" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt "$wait_max" ] || { echo "bootstrap: the SPIRE server did not become healthy" >&2; exit 1; }
  sleep 1
done

token=$(spire-server token generate -socketPath "$socket" -spiffeID "$node_id" -ttl 3600 | sed -n 's/^Token: //p')
[ -n "$token" ] || { echo "bootstrap: the SPIRE server minted no join token" >&2; exit 1; }
spire-server bundle show -socketPath "$socket" -format pem > "$out/bundle.pem.tmp"
mv -f "$out/bundle.pem.tmp" "$out/bundle.pem"
sh "$spire_dir/agent-conf.sh" "$spire_dir/agent.conf" "$token" "$out/bundle.pem" "$out/agent.conf"
echo "bootstrap: agent config written for $node_id"

SPIRE_SERVER_BIN=spire-server SPIRE_SERVER_SOCKET="$socket" sh "$spire_dir/register.sh" "$node_id" docker

tries=0
until bao status >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt "$wait_max" ] || { echo "bootstrap: OpenBao at ${BAO_ADDR:-?} did not answer" >&2; exit 1; }
  sleep 1
done
OPENAI_PLUGIN_SHA256=$(sha256sum "$plugin" | cut -d' ' -f1)
export OPENAI_PLUGIN_SHA256
sh "$setup"
echo "bootstrap: done"
