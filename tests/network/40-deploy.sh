#!/usr/bin/env bash
# `network.sh deploy` (issue 3), independent of the Rust chaincode: deploys a tiny
# Go CCaaS server (fabric-network/build/kvcc) and checks packaging, install,
# approval by both orgs, commit with the AND policy, TLS to the chaincode server,
# write on one org's peer / read on the other's, contract errors reaching the CLI,
# a killed server restarted without redeploy, a no-op redeploy, an upgrade to the
# next sequence, mutual TLS, a server with a certificate from the wrong CA being
# refused, and a clear failure for a server that does not start.
set -euo pipefail
TEST_NAME=deploy
# shellcheck source=tests/network/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
net_setup 7500

work=$(dirname "$BCAMI_RUN_DIR")
log "building the kvcc test server (Go)"
(cd "$REPO/fabric-network/build" &&
  go build -o "$work/kvcc1" -ldflags "-X main.build=one" ./kvcc &&
  go build -o "$work/kvcc2" -ldflags "-X main.build=two" ./kvcc &&
  go build -o "$work/kvcc3" -ldflags "-X main.build=three" ./kvcc) || fail "could not build kvcc"

query() { # ORG ROLE ARGS... -> payload on stdout
  local org=$1 role=$2
  shift 2
  local json
  json=$(jq -cn '{Args: $ARGS.positional}' --args "$@")
  FABRIC_LOGGING_SPEC=WARNING "$PEER_CLI" "$org" "$role" chaincode query -C ami -n kv -c "$json"
}
invoke() { # ORG ROLE ARGS...
  local org=$1 role=$2
  shift 2
  local json
  json=$(jq -cn '{Args: $ARGS.positional}' --args "$@")
  "$PEER_CLI" "$org" "$role" chaincode invoke -C ami -n kv -c "$json" --waitForEvent --waitForEventTimeout 120s
}

net up
net deploy --name kv --binary "$work/kvcc1"
# shellcheck source=/dev/null
source "$BCAMI_RUN_DIR/chaincode/kv/chaincode.env"
assert_eq "$BCAMI_CC_SEQUENCE" 1 "first deploy is sequence 1"
[[ "$BCAMI_CC_UTILITY_PACKAGE_ID" != "$BCAMI_CC_OPERATOR_PACKAGE_ID" ]] || fail "both orgs got the same package id"
pass "each org has its own package id"
policy=$(FABRIC_LOGGING_SPEC=WARNING "$PEER_CLI" utility admin lifecycle chaincode querycommitted -C ami -n kv -O json |
  jq -r '.validation_parameter' | base64 -d | tr -dc '[:print:]')
assert_contains "$policy" "UtilityMSP" "committed endorsement policy names UtilityMSP"
assert_contains "$policy" "OperatorMSP" "committed endorsement policy names OperatorMSP"

out=$(invoke utility client1 put meter-1 42 2>&1) || fail "invoke failed: $out"
assert_contains "$out" "status:200" "invoke endorsed by both orgs and committed"
assert_eq "$(query operator client2 get meter-1)" 42 "written via Utility's peer, read via Operator's peer"

rc=0
out=$(query utility client1 fail "meter not provisioned" 2>&1) || rc=$?
((rc != 0)) || fail "an error response did not make the CLI fail"
assert_contains "$out" 'message:"meter not provisioned"' "a contract error reaches the CLI with its message"

kill "$(pid_of cc-kv-utility)"
sleep 1
rc=0
out=$(query utility client1 ping 2>&1) || rc=$?
((rc != 0)) || fail "query succeeded with the utility chaincode server killed"
log "with the server killed the CLI says: $(tail -n1 <<<"$out")"
net restart-chaincode kv utility
ok=0
for _ in $(seq 60); do
  if [[ "$(query utility client1 ping 2>/dev/null)" == pong ]]; then ok=1 && break; fi
  sleep 1
done
((ok)) || fail "query did not succeed after restart-chaincode"
pass "killed chaincode server restarted; next query succeeds without redeploy"

out=$(net deploy --name kv --binary "$work/kvcc1" 2>&1) || fail "redeploy of the same binary failed: $out"
assert_contains "$out" "up to date" "redeploying the same binary is a no-op"

net deploy --name kv --binary "$work/kvcc2"
# shellcheck source=/dev/null
source "$BCAMI_RUN_DIR/chaincode/kv/chaincode.env"
assert_eq "$BCAMI_CC_SEQUENCE" 2 "deploying a changed server upgrades to sequence 2"
assert_eq "$(query utility client1 build)" two "the upgraded server answers"
assert_eq "$(query operator client1 get meter-1)" 42 "state survives the upgrade"

net deploy --name kv --binary "$work/kvcc3" --client-auth
assert_eq "$(query operator client1 build)" three "mutual TLS: the peer presents a client certificate the server accepts"
out=$(invoke operator client1 put meter-2 7 2>&1) || fail "invoke under mutual TLS failed: $out"
assert_eq "$(query utility client2 get meter-2)" 7 "mutual TLS: write and read across orgs"

# A server whose certificate comes from another CA: the peer must refuse it.
rogue=$work/rogue
mkdir -p "$rogue"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=rogue" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$rogue/key.pem" -out "$rogue/cert.pem" 2>/dev/null
kill "$(pid_of cc-kv-utility)"
(
  set -a
  # shellcheck source=/dev/null
  source "$BCAMI_RUN_DIR/state/cc-kv-utility.env"
  set +a
  CHAINCODE_TLS_CERT=$rogue/cert.pem CHAINCODE_TLS_KEY=$rogue/key.pem exec "$work/kvcc3"
) >"$rogue/server.log" 2>&1 &
rogue_pid=$!
sleep 1
rc=0
out=$(query utility client1 ping 2>&1) || rc=$?
kill "$rogue_pid" 2>/dev/null || true
wait "$rogue_pid" 2>/dev/null || true
((rc != 0)) || fail "the peer accepted a chaincode server with a certificate from the wrong CA"
grep -q 'certificate signed by unknown authority' "$BCAMI_RUN_DIR/logs/utility-peer.log" ||
  fail "the utility peer log does not say why the chaincode server was refused"
pass "a server with a certificate from the wrong CA is refused; the peer log says: x509: certificate signed by unknown authority"
net restart-chaincode kv utility

rc=0
out=$(net deploy --name broken --binary /bin/false 2>&1) || rc=$?
((rc != 0)) || fail "deploying a server that exits immediately succeeded"
assert_contains "$out" "exited right after start" "a server that does not start gives a clear message"

net down
assert_eq "$(network_processes | wc -l)" 0 "down stops the chaincode servers too"
