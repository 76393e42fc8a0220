#!/bin/sh
# Configures OpenBao (or Vault) for keywarden, idempotently:
#  - JWT auth trusting SPIRE's OIDC discovery provider (its JWKS is fetched when the config is
#    written, so the write is retried while the provider starts);
#  - per workload: a JWT role bound to the workload's SPIFFE ID (sub) and the "vault" audience, and
#    a policy that may read only that workload's OpenAI creds and revoke only their leases;
#  - the OpenAI secrets engine and one role per workload: OPENAI_ENGINE=keywarden (the default:
#    plugin keywarden-openai-engine, deploy/openbao/openai-engine, the community engine's API,
#    working under OpenBao; keys die at OpenAI KEY_EXPIRY_MARGIN after their lease, capped by
#    MAX_KEY_LIFETIME when the organisation sets one) or OPENAI_ENGINE=community (plugin
#    vault-plugin-secrets-openai, HashiCorp Vault only: under OpenBao its config write fails on the
#    rotation-job calls; it needs OPENAI_ADMIN_KEY_ID and puts no expiry on keys).
#
#   BAO_ADDR=http://127.0.0.1:8200 BAO_TOKEN=... OIDC_URL=http://spire-oidc:8080 \
#   OPENAI_ADMIN_KEY=... [OPENAI_ADMIN_KEY_ID=...] OPENAI_ORG_ID=... OPENAI_PROJECT_ID=... \
#   [OPENAI_ENGINE=keywarden|community] [OPENAI_API_URL=http://openai-stub:8080/v1] \
#   [OPENAI_PLUGIN_SHA256=...] [OPENAI_PLUGIN=name] [WORKLOADS="name=spiffe://td/id ..."] \
#   [KEY_TTL=15m] [MAX_KEY_TTL=24h] [KEY_EXPIRY_MARGIN=60s] [MAX_KEY_LIFETIME=...] [TOKEN_TTL=1h] sh setup.sh
# WORKLOADS="" configures auth and the engine only.
#
# With the HashiCorp CLI: BAO_BIN=vault and VAULT_ADDR/VAULT_TOKEN instead.
set -eu

bao=${BAO_BIN:-bao}
oidc_url=${OIDC_URL:?set OIDC_URL to the SPIRE OIDC discovery provider}
workloads=${WORKLOADS-example-agent=spiffe://example.org/ns/agents/sa/example-agent}
key_ttl=${KEY_TTL:-15m}
max_key_ttl=${MAX_KEY_TTL:-24h}
token_ttl=${TOKEN_TTL:-1h}
engine=${OPENAI_ENGINE:-keywarden}
case "$engine" in
  keywarden)
    plugin=${OPENAI_PLUGIN:-keywarden-openai-engine}
    # Only keywarden's engine knows these role fields.
    role_extra="key_expiry_margin=${KEY_EXPIRY_MARGIN:-60s}${MAX_KEY_LIFETIME:+ max_key_lifetime=$MAX_KEY_LIFETIME}"
    ;;
  community)
    plugin=${OPENAI_PLUGIN:-vault-plugin-secrets-openai}
    role_extra=""
    if [ -z "${OPENAI_ADMIN_KEY_ID:-}" ]; then
      echo "setup: OPENAI_ENGINE=community needs OPENAI_ADMIN_KEY_ID (the Admin API key's id, key_...)" >&2
      exit 2
    fi
    ;;
  *)
    echo "setup: OPENAI_ENGINE must be keywarden or community, not '$engine'" >&2
    exit 2
    ;;
esac
retries=${RETRIES:-60}
retry_delay=${RETRY_DELAY:-2}

if ! "$bao" auth list | grep -q '^jwt/'; then
  "$bao" auth enable jwt
fi
tries=0
until "$bao" write auth/jwt/config oidc_discovery_url="$oidc_url" >/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge "$retries" ]; then
    echo "setup: OpenBao could not use the OIDC discovery document at $oidc_url" >&2
    exit 1
  fi
  sleep "$retry_delay"
done
echo "setup: auth/jwt trusts $oidc_url"

if [ -n "${OPENAI_PLUGIN_SHA256:-}" ]; then
  "$bao" plugin register -sha256="$OPENAI_PLUGIN_SHA256" secret "$plugin"
fi
if ! "$bao" secrets list | grep -q '^openai/'; then
  "$bao" secrets enable -path=openai "$plugin"
fi
# The admin key id goes only where it is set (keywarden's engine takes it, the community engine needs it).
set -- admin_api_key="${OPENAI_ADMIN_KEY:?set OPENAI_ADMIN_KEY}"
if [ -n "${OPENAI_ADMIN_KEY_ID:-}" ]; then
  set -- "$@" admin_api_key_id="$OPENAI_ADMIN_KEY_ID"
fi
"$bao" write openai/config "$@" \
  organization_id="${OPENAI_ORG_ID:?set OPENAI_ORG_ID}" \
  api_endpoint="${OPENAI_API_URL:-https://api.openai.com/v1}" >/dev/null
echo "setup: openai/ engine configured ($engine: plugin $plugin)"

for w in $workloads; do
  name=${w%%=*}
  spiffe_id=${w#*=}
  "$bao" policy write "$name" - <<POLICY
path "openai/creds/$name" {
  capabilities = ["read"]
}
path "sys/leases/revoke/openai/creds/$name/*" {
  capabilities = ["update"]
}
POLICY
  "$bao" write "auth/jwt/role/$name" \
    role_type=jwt \
    user_claim=sub \
    bound_audiences=vault \
    bound_subject="$spiffe_id" \
    token_policies="$name" \
    token_ttl="$token_ttl" \
    token_max_ttl=4h >/dev/null
  # shellcheck disable=SC2086 # role_extra is a list of key=value words
  "$bao" write "openai/roles/$name" \
    project_id="${OPENAI_PROJECT_ID:?set OPENAI_PROJECT_ID}" \
    ttl="$key_ttl" \
    max_ttl="$max_key_ttl" $role_extra >/dev/null
  echo "setup: workload $name ($spiffe_id) may read openai/creds/$name"
done
