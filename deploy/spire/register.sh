#!/bin/sh
# Registration entries: keywarden itself (a delegate of the agent's Delegated Identity API) and the
# example agent. Idempotent: an entry that exists is left as it is.
#
#   register.sh PARENT_ID [docker|k8s]
#
# docker: containers by label (the Compose stack); k8s: namespace and service account (the
# kustomize base: keywarden in namespace keywarden, the agent in namespace agents).
# SPIRE_SERVER_BIN and SPIRE_SERVER_SOCKET point at the server CLI and its API socket.
set -eu
parent=${1:?usage: register.sh PARENT_ID [docker|k8s]}
mode=${2:-docker}
spire_server=${SPIRE_SERVER_BIN:-/opt/spire/bin/spire-server}
socket=${SPIRE_SERVER_SOCKET:-/tmp/spire-server/private/api.sock}
td=${TRUST_DOMAIN:-example.org}

# entry SPIFFE_ID SELECTOR [SELECTOR]
entry() {
  id=$1
  if "$spire_server" entry show -socketPath "$socket" -parentID "$parent" -spiffeID "$id" | grep -q '^Entry ID'; then
    echo "register: entry for $id exists"
    return 0
  fi
  if [ $# -eq 3 ]; then
    "$spire_server" entry create -socketPath "$socket" -parentID "$parent" -spiffeID "$id" -selector "$2" -selector "$3"
  else
    "$spire_server" entry create -socketPath "$socket" -parentID "$parent" -spiffeID "$id" -selector "$2"
  fi
}

case "$mode" in
  docker)
    entry "spiffe://$td/keywarden" docker:label:app:keywarden
    entry "spiffe://$td/ns/agents/sa/example-agent" docker:label:app:example-agent
    ;;
  k8s)
    entry "spiffe://$td/keywarden" k8s:ns:keywarden k8s:sa:keywarden
    entry "spiffe://$td/ns/agents/sa/example-agent" k8s:ns:agents k8s:sa:example-agent
    ;;
  *)
    echo "register: unknown mode '$mode' (docker or k8s)" >&2
    exit 2
    ;;
esac
