#!/usr/bin/env bash
# Builds the Hyperledger Fabric command-line tools BC-AMI needs (peer, orderer,
# configtxgen, configtxlator, osnadmin, cryptogen) from Go modules with this
# machine's Go toolchain, into <repo>/.fabric/bin (git-ignored), and copies
# Fabric's sample core.yaml/orderer.yaml out of the Go module cache into
# <repo>/.fabric/config so that `network.sh up` does not need Go once built.
#
# Idempotent: if every binary is present and was built from the pinned version
# with the same go.mod/go.sum and Go toolchain, it says so and exits in well
# under a second.
#
# Environment:
#   FABRIC_MODULE_VERSION  Go module version of github.com/hyperledger/fabric to build
#                          (default: the pin below)
#   BCAMI_FABRIC_DIR       install prefix (default <repo>/.fabric)
#   BCAMI_FORCE_REBUILD=1  rebuild even if up to date
#
# Exit codes: 0 ok; 2 Go missing; 3 module proxy unreachable/refusing; 1 other failure.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

# THE Fabric pin — the only place the version is chosen.
# Fabric v3.1.1 (commit 435a7f1a780a, 2025-05-10): SmartBFT ("BFT" orderer
# type) with hyperledger-labs/SmartBFT eb005eef8866 (the view-change panic fix
# #538 and #561/#565/#570/#622), channel capability V3_0, the Gateway service,
# external builders, write batching and GET_STATE_MULTIPLE, and a request size
# limit taken from the channel configuration. This machine's Go module proxy
# serves exactly two Fabric 3.x releases, v3.1.0 and v3.1.1; it answers 403
# for v3.0.0-preview, v3.0.0-beta, v3.0.0 and v3.1.2 to v3.1.5.
# fabric-network/build/go.mod and go.sum lock exactly this version; this script
# checks that they agree. On a machine whose proxy serves v3.1.5, run with
#   FABRIC_MODULE_VERSION=v1.4.0-rc1.0.20260618074816-86c1172bec37
# and the build happens in a scratch copy of the module whose go.mod is
# re-resolved for that version.
PINNED_FABRIC_VERSION=v1.4.0-rc1.0.20250510200036-435a7f1a780a
FABRIC_MODULE_VERSION=${FABRIC_MODULE_VERSION:-$PINNED_FABRIC_VERSION}

FABRIC_DIR=${BCAMI_FABRIC_DIR:-$REPO/.fabric}
BIN_DIR=$FABRIC_DIR/bin
CONFIG_DIR=$FABRIC_DIR/config
BUILD_MODULE=$REPO/fabric-network/build
STAMP=$FABRIC_DIR/.install-stamp
LOG_DIR=$FABRIC_DIR/logs
TOOLS=(peer orderer configtxgen configtxlator osnadmin cryptogen)

say() { printf 'install-fabric: %s\n' "$*"; }
die() {
  local code=$1
  shift
  printf 'install-fabric: ERROR: %s\n' "$*" >&2
  exit "$code"
}

if ! command -v go >/dev/null 2>&1; then
  # Built binaries do not need Go: accept them if they were built from this pin.
  if [[ -f "$STAMP" ]] && grep -qxF "fabric=$FABRIC_MODULE_VERSION" "$STAMP" &&
    [[ "$(tail -n1 "$STAMP")" == "$(cat "$BUILD_MODULE/go.mod" "$BUILD_MODULE/go.sum" | sha256sum | cut -d' ' -f1)" ]]; then
    all=1
    for t in "${TOOLS[@]}"; do [[ -x "$BIN_DIR/$t" ]] || all=0; done
    if ((all)) && [[ -f "$CONFIG_DIR/core.yaml" && -f "$CONFIG_DIR/orderer.yaml" ]]; then
      say "Go is not on PATH, but Fabric ${FABRIC_MODULE_VERSION} is already built in $BIN_DIR; using it."
      exit 0
    fi
  fi
  die 2 "Go is not installed or not on PATH (needed to build Fabric ${FABRIC_MODULE_VERSION}). Install Go >= 1.24.2 (https://go.dev/dl) and re-run."
fi

go_version=$(go env GOVERSION)
# The stamp records everything that determines the build output.
stamp_content() {
  printf 'fabric=%s\ngo=%s\n' "$FABRIC_MODULE_VERSION" "$go_version"
  cat "$BUILD_MODULE/go.mod" "$BUILD_MODULE/go.sum" | sha256sum | cut -d' ' -f1
}

up_to_date() {
  [[ -f "$STAMP" ]] || return 1
  [[ "$(cat "$STAMP")" == "$(stamp_content)" ]] || return 1
  local t
  for t in "${TOOLS[@]}"; do
    [[ -x "$BIN_DIR/$t" ]] || return 1
  done
  [[ -f "$CONFIG_DIR/core.yaml" && -f "$CONFIG_DIR/orderer.yaml" ]] || return 1
}

if [[ "${BCAMI_FORCE_REBUILD:-0}" != 1 ]] && up_to_date; then
  say "Fabric ${FABRIC_MODULE_VERSION} already installed and up to date in $BIN_DIR (built with ${go_version}); nothing to do."
  exit 0
fi

mkdir -p "$BIN_DIR" "$CONFIG_DIR" "$LOG_DIR"
build_log=$LOG_DIR/install-fabric.log
: >"$build_log"
say "building Fabric ${FABRIC_MODULE_VERSION} with ${go_version} into $BIN_DIR (log: $build_log)"

# Choose the module to build in: the committed lock, or a scratch copy for an override.
module_dir=$BUILD_MODULE
proxy_hint="GOPROXY=$(go env GOPROXY)"
# The version the lock selects (go list -m resolves the module graph, so it needs the module
# cache or the proxy: a failure here is reported as the proxy's).
if ! locked_version=$(cd "$BUILD_MODULE" && go list -m -f '{{.Version}}' github.com/hyperledger/fabric 2>>"$build_log"); then
  tail -n 3 "$build_log" >&2
  die 3 "could not resolve fabric-network/build/go.mod: the Go module proxy ($proxy_hint) could not be reached or refused a module of the lock, and the module cache does not have it; see $build_log"
fi
if [[ "$FABRIC_MODULE_VERSION" == "$PINNED_FABRIC_VERSION" ]]; then
  if [[ "$locked_version" != "$PINNED_FABRIC_VERSION" ]]; then
    die 1 "fabric-network/build/go.mod requires '$locked_version' but install-fabric.sh pins '$PINNED_FABRIC_VERSION'; update them together."
  fi
else
  module_dir=$FABRIC_DIR/build-override
  say "FABRIC_MODULE_VERSION overrides the pin; resolving it in a scratch module $module_dir"
  rm -rf "$module_dir"
  mkdir -p "$module_dir"
  cp "$BUILD_MODULE/go.mod" "$BUILD_MODULE/go.sum" "$BUILD_MODULE/tools.go" "$module_dir/"
fi

cd "$module_dir"
if [[ "$module_dir" != "$BUILD_MODULE" ]]; then
  if ! go get "github.com/hyperledger/fabric@${FABRIC_MODULE_VERSION}" >>"$build_log" 2>&1 ||
    ! go mod tidy >>"$build_log" 2>&1; then
    tail -n 5 "$build_log" >&2
    die 3 "the Go module proxy ($proxy_hint) could not be reached or refused github.com/hyperledger/fabric@${FABRIC_MODULE_VERSION}; see $build_log"
  fi
fi

# Download first so that a proxy failure is reported as such, not as a compile error.
say "downloading modules (no-op when the module cache is warm)"
if ! go mod download github.com/hyperledger/fabric >>"$build_log" 2>&1 ||
  ! go list -deps -test=false ./... >/dev/null 2>>"$build_log"; then
  tail -n 5 "$build_log" >&2
  die 3 "could not download github.com/hyperledger/fabric@${FABRIC_MODULE_VERSION} and its dependencies: the Go module proxy ($proxy_hint) could not be reached or refused the request; see $build_log"
fi

pkgs=()
for t in "${TOOLS[@]}"; do
  pkgs+=("github.com/hyperledger/fabric/cmd/$t")
done
start=$(date +%s)
if ! go build -trimpath -o "$BIN_DIR/" \
  -ldflags "-X github.com/hyperledger/fabric/common/metadata.Version=${FABRIC_MODULE_VERSION}" \
  "${pkgs[@]}" >>"$build_log" 2>&1; then
  tail -n 20 "$build_log" >&2
  die 1 "go build failed; see $build_log"
fi
say "built ${TOOLS[*]} in $(($(date +%s) - start)) s"

# Fabric's sample configuration, straight from the module cache.
fabric_src=$(go list -m -f '{{.Dir}}' github.com/hyperledger/fabric)
if [[ -z "$fabric_src" || ! -f "$fabric_src/sampleconfig/core.yaml" ]]; then
  die 1 "module cache has no sampleconfig for github.com/hyperledger/fabric ($fabric_src)"
fi
cp "$fabric_src/sampleconfig/core.yaml" "$fabric_src/sampleconfig/orderer.yaml" "$CONFIG_DIR/"
chmod u+w "$CONFIG_DIR"/*.yaml
say "copied core.yaml and orderer.yaml from $fabric_src/sampleconfig to $CONFIG_DIR"

stamp_content >"$STAMP"
for t in "${TOOLS[@]}"; do
  say "  $BIN_DIR/$t"
done
say "done. The chaincode-as-a-service builder is fabric-network/ccaas-builder (shell scripts; nothing to build)."
