#!/usr/bin/env bash
# Interoperability with Fabric's official Node libraries, against the live network:
#   - the official Node Gateway client (@hyperledger/fabric-gateway 1.11.0) drives `bcami`
#     (tests/interop/client/bcami.test.js: roles and their 403, a 400, a reading submitted and
#     read back, its event) with node's test runner;
#   - the other direction, our Rust client against a chaincode on the official Node shim, is
#     tests/tests/interop_node_shim.rs (run by `cargo test -p bcami-e2e`; it deploys
#     tests/interop/chaincode with `network.sh deploy --binary … --client-auth` on first use).
# Needs tests/interop/node_modules (`npm ci` there; scripts/test.sh does it) and meter-sim.
# usage: tests/e2e/50-interop-node.sh   (with network.env sourced, or BCAMI_RUN_DIR set)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=interop-node
# shellcheck source=tests/e2e/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
INTEROP=$REPO/tests/interop

command -v node >/dev/null || {
  fail "node" "node is not installed"
  finish
}
[[ -d "$INTEROP/node_modules/@hyperledger/fabric-gateway" ]] || {
  fail "npm packages" "$INTEROP/node_modules is missing; run 'npm ci' in $INTEROP"
  finish
}
e2e_meter_sim
export BCAMI_METER_SIM=$METER_SIM

say "official Node Gateway client $(node -p "require('$INTEROP/node_modules/@hyperledger/fabric-gateway/package.json').version") on node $(node --version) drives ${BCAMI_CC_NAME:-bcami}"
if (cd "$INTEROP" && node --test --test-reporter=spec client/); then
  pass "official Node client drives bcami"
else
  fail "official Node client drives bcami" "node --test failed (see above)"
fi
finish
