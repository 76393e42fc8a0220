#!/bin/sh
# Configures OpenBao (or Vault) for keywarden: JWT auth trusting SPIRE's OIDC discovery
# provider, one role per workload bound to its SPIFFE ID and the "vault" audience, a policy
# granting the role's creds, and the OpenAI secrets engine with one role per workload.
#
#   BAO_ADDR=http://127.0.0.1:8200 BAO_TOKEN=... OIDC_URL=http://spire-oidc:8080 \
#   OPENAI_ADMIN_KEY=... OPENAI_PROJECT_ID=... OPENAI_API_URL=http://openai-stub:8080/v1 sh setup.sh
set -eu

bao=${BAO_BIN:-bao}
oidc_url=${OIDC_URL:?set OIDC_URL to the SPIRE OIDC discovery provider}
workload=${WORKLOAD:-example-agent}
spiffe_id=${SPIFFE_ID:-spiffe://example.org/ns/agents/sa/example-agent}

"$bao" auth enable jwt 2>/dev/null || true
"$bao" write auth/jwt/config oidc_discovery_url="$oidc_url"

"$bao" policy write "$workload" - <<POLICY
path "openai/creds/$workload" {
  capabilities = ["read"]
}
POLICY

"$bao" write "auth/jwt/role/$workload" \
  role_type=jwt \
  user_claim=sub \
  bound_audiences=vault \
  bound_subject="$spiffe_id" \
  token_policies="$workload" \
  token_ttl=1h \
  token_max_ttl=4h

"$bao" plugin register -sha256="${OPENAI_PLUGIN_SHA256:?}" secret vault-plugin-secrets-openai 2>/dev/null || true
"$bao" secrets enable -path=openai vault-plugin-secrets-openai 2>/dev/null || true
"$bao" write openai/config \
  admin_api_key="${OPENAI_ADMIN_KEY:?}" \
  organization_id="${OPENAI_ORG_ID:-}" \
  api_endpoint="${OPENAI_API_URL:-https://api.openai.com/v1}"
"$bao" write "openai/roles/$workload" \
  project_id="${OPENAI_PROJECT_ID:?}" \
  ttl=15m \
  max_ttl=24h
