#!/bin/sh
# Registration entries: keywarden itself (a delegate) and the example agent.
# Run inside the spire-server container: sh /etc/spire/register.sh <node SPIFFE ID>
set -eu
node_id="$1"

/opt/spire/bin/spire-server entry create \
  -parentID "$node_id" \
  -spiffeID spiffe://example.org/keywarden \
  -selector docker:label:app:keywarden

/opt/spire/bin/spire-server entry create \
  -parentID "$node_id" \
  -spiffeID spiffe://example.org/ns/agents/sa/example-agent \
  -selector docker:label:app:example-agent
