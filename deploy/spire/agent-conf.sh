#!/bin/sh
# Writes a node's SPIRE agent config: the shipped agent.conf with this node's join token and the
# server's trust bundle added to its agent block. The token is a one-time secret: the file is 0600.
#
#   agent-conf.sh TEMPLATE JOIN_TOKEN BUNDLE_PATH OUTPUT
set -eu
template=${1:?usage: agent-conf.sh TEMPLATE JOIN_TOKEN BUNDLE_PATH OUTPUT}
token=${2:?join token missing}
bundle=${3:?trust bundle path missing}
out=${4:?output path missing}

grep -q '^agent {' "$template" || { echo "agent-conf: no 'agent {' block in $template" >&2; exit 1; }
tmp="$out.tmp.$$"
umask 077
{
  sed -n '1,/^agent {/p' "$template"
  printf '    join_token = "%s"\n' "$token"
  printf '    trust_bundle_path = "%s"\n' "$bundle"
  sed '1,/^agent {/d' "$template"
} > "$tmp"
mv -f "$tmp" "$out"
