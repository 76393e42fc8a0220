#!/usr/bin/env bash
# Starts the real chain on loopback, without Docker: SPIRE server, agent (join token; admin socket
# with keywarden as authorised delegate; unix workload attestor), OIDC discovery provider, OpenBao
# (dev server, keywarden's OpenAI engine registered, JWT auth trusting the OIDC provider, engine
# pointed at the OpenAI Admin API stub) and the stub. Registers keywarden itself (uid 0).
#
#   deploy/local/up.sh --state DIR        (then: . DIR/env; …; deploy/local/down.sh --state DIR)
#
# Binaries come from deploy/local/install.sh's cache. Ports are free ones picked at start unless
# SPIRE_SERVER_PORT, OIDC_PORT, BAO_PORT or STUB_PORT are set. Each component is waited for until it
# really answers. DIR/env exports everything the tests and deploy/openbao/setup.sh need; DIR/pids
# holds one pid file per component and DIR/start/<name>.sh restarts one. Logs: DIR/logs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
deploy="$(cd "$here/.." && pwd)"
state=""
while [ $# -gt 0 ]; do
  case "$1" in
    --state) state="$2"; shift 2 ;;
    *) echo "up.sh: unknown argument '$1' (usage: up.sh --state DIR)" >&2; exit 2 ;;
  esac
done
[ -n "$state" ] || { echo "up.sh: --state DIR is required" >&2; exit 2; }
cache="${KEYWARDEN_REAL_CACHE:-$HOME/.cache/keywarden/real}"
[ -f "$cache/paths.env" ] || { echo "up.sh: run deploy/local/install.sh first (no $cache/paths.env)" >&2; exit 2; }
# shellcheck source=/dev/null
. "$cache/paths.env"
mkdir -p "$state"
state="$(cd "$state" && pwd)"
mkdir -p "$state/logs" "$state/pids" "$state/start" "$state/spire/server" "$state/spire/agent/public" \
  "$state/spire/agent/admin" "$state/spire/data/server" "$state/spire/data/agent" "$state/openbao/plugins"
chmod 0750 "$state/spire/agent/admin"

t0=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for WHAT SECONDS COMMAND...
  local what="$1" max="$2" i=0; shift 2
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge $((max * 10)) ]; then
      echo "up.sh: $what did not become ready within ${max}s; its log:" >&2
      tail -n 20 "$state/logs/$what.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  echo "up.sh: $what ready ($(elapsed))"
}
# start NAME: runs $state/start/NAME.sh in the background, its pid in $state/pids/NAME.pid.
start() {
  local name="$1"
  setsid bash "$state/start/$name.sh" >> "$state/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$state/pids/$name.pid"
}

td=example.org
server_port=${SPIRE_SERVER_PORT:-$(free_port)}
oidc_port=${OIDC_PORT:-$(free_port)}
bao_port=${BAO_PORT:-$(free_port)}
stub_port=${STUB_PORT:-$(free_port)}
server_sock="$state/spire/server/api.sock"
agent_sock="$state/spire/agent/public/api.sock"
admin_sock="$state/spire/agent/admin/admin.sock"
oidc_url="http://127.0.0.1:$oidc_port"
bao_addr="http://127.0.0.1:$bao_port"
bao_token="root-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
admin_key="sk-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# --- the OpenAI Admin API stub -------------------------------------------------------------------
cat > "$state/start/openai-stub.sh" <<SH
exec env HOST=127.0.0.1 PORT=$stub_port OPENAI_STUB_ADMIN_KEY=$admin_key CALL_LOG=$state/openai-stub-calls.log \
  OPENAI_STUB_MAX_KEY_LIFETIME=${OPENAI_STUB_MAX_KEY_LIFETIME:-172800} \
  python3 "$deploy/compose/openai-stub/stub.py"
SH
: > "$state/openai-stub-calls.log"
start openai-stub
wait_for openai-stub 20 curl -fsS "http://127.0.0.1:$stub_port/health"

# --- SPIRE server --------------------------------------------------------------------------------
# The shipped configs (deploy/spire, also used by Compose and the Testcontainers suite), with this
# host's loopback addresses, free ports and state paths put in: one source for every way to run it.
sed -e "s|bind_address = \"0.0.0.0\"|bind_address = \"127.0.0.1\"|" \
    -e "s|bind_port = \"8081\"|bind_port = \"$server_port\"|" \
    -e "s|/var/lib/spire/server|$state/spire/data/server|g" \
    -e "s|/tmp/spire-server/private/api.sock|$server_sock|" \
    -e "s|jwt_issuer = \"http://spire-oidc:8080\"|jwt_issuer = \"$oidc_url\"|" \
    "$deploy/spire/server.conf" > "$state/spire/server.conf"
grep -q "\"$oidc_url\"" "$state/spire/server.conf" || { echo "up.sh: deploy/spire/server.conf changed shape (jwt_issuer)" >&2; exit 1; }
echo "exec \"$SPIRE_BIN/spire-server\" run -config \"$state/spire/server.conf\"" > "$state/start/spire-server.sh"
start spire-server
wait_for spire-server 60 "$SPIRE_BIN/spire-server" healthcheck -socketPath "$server_sock"

token=$("$SPIRE_BIN/spire-server" token generate -socketPath "$server_sock" -spiffeID "spiffe://$td/node" -ttl 86400 \
  | sed -n 's/^Token: //p')
[ -n "$token" ] || { echo "up.sh: the SPIRE server minted no join token" >&2; exit 1; }
"$SPIRE_BIN/spire-server" bundle show -socketPath "$server_sock" -format pem > "$state/spire/bundle.pem"

# --- SPIRE agent ---------------------------------------------------------------------------------
# No Docker here: the docker workload attestor is left out; entries sync every second (tests wait on it).
sed -e "s|server_address = \"spire-server\"|server_address = \"127.0.0.1\"|" \
    -e "s|server_port = \"8081\"|server_port = \"$server_port\"|" \
    -e "s|/var/lib/spire/agent|$state/spire/data/agent|g" \
    -e "s|/run/spire/sockets/agent.sock|$agent_sock|" \
    -e "s|/run/spire/admin/admin.sock|$admin_sock|" \
    -e '/WorkloadAttestor "docker"/,/^    }$/d' \
    -e 's|^agent {$|agent {\n    experimental { sync_interval = "1s" }|' \
    "$deploy/spire/agent.conf" > "$state/spire/agent.template"
sh "$deploy/spire/agent-conf.sh" "$state/spire/agent.template" "$token" "$state/spire/bundle.pem" "$state/spire/agent.conf"
grep -q "$admin_sock" "$state/spire/agent.conf" || { echo "up.sh: deploy/spire/agent.conf changed shape (admin socket)" >&2; exit 1; }
echo "exec \"$SPIRE_BIN/spire-agent\" run -config \"$state/spire/agent.conf\"" > "$state/start/spire-agent.sh"
# A restarted agent has its SVID and key in data_dir (disk KeyManager): the used join token is not needed again.
cp "$state/start/spire-agent.sh" "$state/start/spire-agent-restart.sh"
start spire-agent
wait_for spire-agent 60 "$SPIRE_BIN/spire-agent" healthcheck -socketPath "$agent_sock"

# --- OIDC discovery provider ---------------------------------------------------------------------
sed -e 's|domains = \["spire-oidc"\]|domains = ["127.0.0.1"]|' \
    -e "s|insecure_addr = \":8080\"|insecure_addr = \"127.0.0.1:$oidc_port\"|" \
    -e "s|unix:///tmp/spire-server/private/api.sock|unix://$server_sock|" \
    "$deploy/spire/oidc-discovery-provider.conf" > "$state/spire/oidc.conf"
grep -q "127.0.0.1:$oidc_port" "$state/spire/oidc.conf" || { echo "up.sh: deploy/spire/oidc-discovery-provider.conf changed shape" >&2; exit 1; }
echo "exec \"$SPIRE_BIN/oidc-discovery-provider\" -config \"$state/spire/oidc.conf\"" > "$state/start/oidc.sh"
start oidc
wait_for oidc 60 curl -fsS "$oidc_url/keys"

"$SPIRE_BIN/spire-server" entry create -socketPath "$server_sock" -parentID "spiffe://$td/node" \
  -spiffeID "spiffe://$td/keywarden" -selector unix:uid:0 > /dev/null
echo "up.sh: keywarden (uid 0) registered as spiffe://$td/keywarden, the agent's delegate"

# --- OpenBao -------------------------------------------------------------------------------------
cp "$OPENAI_PLUGIN_DIR/keywarden-openai-engine" "$state/openbao/plugins/"
plugin_sha=$(sha256sum "$state/openbao/plugins/keywarden-openai-engine" | cut -d' ' -f1)
cat > "$state/start/openbao.sh" <<SH
exec "$BAO_BIN" server -dev -dev-root-token-id=$bao_token -dev-listen-address=127.0.0.1:$bao_port \
  -dev-plugin-dir="$state/openbao/plugins"
SH
cat > "$state/env" <<ENV
export SPIRE_BIN="$SPIRE_BIN"
export SPIRE_SERVER_SOCKET="$server_sock"
export SPIRE_AGENT_SOCKET="$agent_sock"
export SPIRE_ADMIN_SOCKET="$admin_sock"
export TRUST_DOMAIN="$td"
export NODE_SPIFFE_ID="spiffe://$td/node"
export OIDC_URL="$oidc_url"
export BAO_BIN="$BAO_BIN"
export BAO_ADDR="$bao_addr"
export BAO_TOKEN="$bao_token"
export OPENAI_API_URL="http://127.0.0.1:$stub_port/v1"
export OPENAI_ADMIN_KEY="$admin_key"
export OPENAI_ORG_ID="org-keywarden-local"
export OPENAI_PROJECT_ID="proj_keywarden_local"
export OPENAI_PLUGIN_SHA256="$plugin_sha"
export OPENAI_STUB_LOG="$state/openai-stub-calls.log"
export KEYWARDEN_REAL_STATE="$state"
ENV
chmod 0600 "$state/env"
# Restarting OpenBao (dev mode keeps nothing) needs its configuration again: start/openbao-setup.sh.
cat > "$state/start/openbao-setup.sh" <<SH
set -e
. "$state/env"
i=0
until "\$BAO_BIN" status >/dev/null 2>&1; do i=\$((i + 1)); [ "\$i" -lt 300 ] || exit 1; sleep 0.1; done
WORKLOADS="\${WORKLOADS-}" BAO_BIN="\$BAO_BIN" sh "$deploy/openbao/setup.sh"
SH
start openbao
# shellcheck source=/dev/null
. "$state/env"
wait_for openbao 60 "$BAO_BIN" status
WORKLOADS="" bash "$state/start/openbao-setup.sh" > "$state/logs/openbao-setup.log" 2>&1 \
  || { cat "$state/logs/openbao-setup.log" >&2; exit 1; }
echo "up.sh: OpenBao configured: JWT auth trusts $oidc_url, openai/ engine -> the stub ($(elapsed))"
echo "up.sh: the chain is up in $(elapsed); environment in $state/env"
