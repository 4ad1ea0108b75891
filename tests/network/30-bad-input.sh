#!/usr/bin/env bash
# Bad input (issue 2): unknown subcommand; the base port already taken by another
# process; Go missing from PATH. Each gives a clear message, a non-zero exit and
# no half-started network.
set -euo pipefail
TEST_NAME=bad-input
# shellcheck source=tests/network/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
net_setup 7400

# expect_failure WHAT EXPECTED_MESSAGE CMD...: non-zero exit and the message.
expect_failure() {
  local what=$1 msg=$2 out rc=0
  shift 2
  out=$("$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "$what: exit status 0, expected failure. Output: $out"
  assert_contains "$out" "$msg" "$what: exit $rc with a clear message"
}
no_network_left() {
  [[ ! -e "$BCAMI_RUN_DIR" ]] || fail "$1: run dir $BCAMI_RUN_DIR left behind"
  local left
  left=$(network_processes)
  [[ -z "$left" ]] || fail "$1: process(es) $left of a half-started network are running"
  pass "$1: no half-started network"
}

expect_failure "unknown subcommand" "unknown command 'frobnicate'" net frobnicate
expect_failure "no subcommand" "missing command" net
expect_failure "unknown node" "unknown node 'orderer9'" net stop-node orderer9
expect_failure "bad port base" "BCAMI_PORT_BASE must be an integer" env BCAMI_PORT_BASE=abc "$NETWORK" up
expect_failure "deploy without a network" "run 'network.sh up' first" net deploy --binary /bin/true
expect_failure "peer-cli unknown org" "unknown org" "$PEER_CLI" nowhere admin channel list
no_network_left "bad arguments"

# The base port taken by another process.
command -v python3 >/dev/null || fail "python3 is needed to occupy a port"
for port in "$BCAMI_PORT_BASE" $((BCAMI_PORT_BASE + 41)); do
  python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1 &
  squatter=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  expect_failure "port $port taken" "port(s) $port on 127.0.0.1 already in use" net up
  kill "$squatter"
  wait "$squatter" 2>/dev/null || true
  no_network_left "port $port taken"
done

# Go missing from PATH, Fabric not yet installed (a fresh, empty install dir).
empty_fabric=$(mktemp -d)
nogo_path=$(path_without_go)
expect_failure "install-fabric without Go" "Go is not installed or not on PATH" \
  env PATH="$nogo_path" BCAMI_FABRIC_DIR="$empty_fabric" "$REPO/scripts/install-fabric.sh"
expect_failure "up without Go" "Go is not installed or not on PATH" \
  env PATH="$nogo_path" BCAMI_FABRIC_DIR="$empty_fabric" "$NETWORK" up
rm -rf "$empty_fabric"
no_network_left "Go missing"

# Module proxy unreachable: an empty module cache and GOPROXY=off.
empty_fabric=$(mktemp -d)
empty_modcache=$(mktemp -d)
expect_failure "install-fabric with the module proxy unreachable" "Go module proxy" \
  env GOPROXY=off GOMODCACHE="$empty_modcache" BCAMI_FABRIC_DIR="$empty_fabric" "$REPO/scripts/install-fabric.sh"
chmod -R u+w "$empty_modcache"
rm -rf "$empty_fabric" "$empty_modcache"
