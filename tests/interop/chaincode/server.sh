#!/usr/bin/env bash
# Runs chaincode/index.js on Fabric's official Node shim as a chaincode service: the executable
# `scripts/network.sh deploy --binary` starts. It maps the environment network.sh gives every
# chaincode server (CHAINCODE_SERVER_ADDRESS, CHAINCODE_ID, CHAINCODE_TLS_CERT/KEY and, with
# --client-auth, CHAINCODE_CLIENT_CA_CERT) onto `fabric-chaincode-node server` options.
# Needs `npm ci` in tests/interop first (scripts/test.sh does it).
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLI=$DIR/../node_modules/fabric-shim/cli.js
[[ -f "$CLI" ]] || {
  echo "server.sh: $CLI is missing; run 'npm ci' in $(dirname "$DIR")" >&2
  exit 1
}
args=(server --chaincode-address "${CHAINCODE_SERVER_ADDRESS:?}" --chaincode-id "${CHAINCODE_ID:?}"
  --module-path "$DIR")
if [[ ${CHAINCODE_TLS_DISABLED:-false} != true ]]; then
  args+=(--chaincode-tls-cert-file "${CHAINCODE_TLS_CERT:?}" --chaincode-tls-key-file "${CHAINCODE_TLS_KEY:?}")
fi
if [[ -n ${CHAINCODE_CLIENT_CA_CERT:-} ]]; then
  args+=(--chaincode-tls-client-cacert-file "$CHAINCODE_CLIENT_CA_CERT")
fi
exec node "$CLI" "${args[@]}"
