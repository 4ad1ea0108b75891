#!/usr/bin/env bash
# Interoperability with Fabric's official Node libraries, against the live network:
#   - the official Node Gateway client (@hyperledger/fabric-gateway 1.11.0) drives `bcami`
#     (tests/interop/client/bcami.test.js: roles and their 403, a 400, a reading submitted and
#     read back, its event) with node's test runner;
#   - it deploys tests/interop/chaincode (fabric-contract-api 2.5.8) as chaincode `interopnode`
#     with `network.sh deploy --binary tests/interop/chaincode/server.sh --client-auth` and checks
#     that its server insists on mutual TLS (openssl: no client certificate → handshake failure;
#     the peer's client certificate → accepted). Our Rust client then drives it in
#     tests/tests/interop_node_shim.rs (run by `cargo test -p bcami-e2e` after these scripts).
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

# --- the Node-shim chaincode, as a chaincode service with mutual TLS ------------------------
say "deploying tests/interop/chaincode as interopnode (Node shim, --client-auth)"
if "$REPO/scripts/network.sh" deploy --name interopnode --binary "$INTEROP/chaincode/server.sh" --client-auth; then
  pass "Node-shim chaincode deployed with network.sh deploy --binary"
  # shellcheck source=/dev/null
  address=$(source "$RUN/chaincode/interopnode/chaincode.env" && echo "$BCAMI_CC_UTILITY_ADDRESS")
  # shellcheck source=/dev/null
  tls=$RUN/chaincode/interopnode/seq$(source "$RUN/chaincode/interopnode/chaincode.env" && echo "$BCAMI_CC_SEQUENCE")/utility/tls
  tls_probe() { timeout 20 openssl s_client -connect "$address" -CAfile "$RUN/chaincode-ca/ca.crt" -tls1_2 "$@" </dev/null >/dev/null 2>&1; }
  if ! tls_probe; then
    pass "the Node-shim server refuses a TLS client without a certificate"
  else
    fail "mutual TLS" "the Node-shim server at $address accepted a client without a certificate"
  fi
  if tls_probe -cert "$tls/clientAuth.crt" -key "$tls/clientAuth.key"; then
    pass "the Node-shim server accepts the peer's client certificate"
  else
    fail "mutual TLS" "the Node-shim server at $address refused the peer's client certificate"
  fi
else
  fail "Node-shim chaincode deployed" "network.sh deploy failed (log: $RUN/logs/deploy-interopnode.log)"
fi

say "official Node Gateway client $(node -p "require('$INTEROP/node_modules/@hyperledger/fabric-gateway/package.json').version") on node $(node --version) drives ${BCAMI_CC_NAME:-bcami}"
if (cd "$INTEROP" && node --no-deprecation --test --test-reporter=spec client/); then
  pass "official Node client drives bcami"
else
  fail "official Node client drives bcami" "node --test failed (see above)"
fi
finish
