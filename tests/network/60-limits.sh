#!/usr/bin/env bash
# The size limits agree (issue 10), on a live network of its own:
#   - the contract's maxima commit: one provisioning of MAX_PROVISION = 1,000 meters
#     (~664 KB) and one batch of MAX_BATCH = 1,000 readings (~686 KB), both above the
#     500 KiB the 2023 snapshot hard-coded, sent by meter-sim on a fresh ledger;
#   - one more is refused by the contract with its message (1,001 HIDs, 1,001 readings);
#   - the channel's SmartBFT.RequestMaxBytes (2 MiB, configtx.yaml.tmpl) is what the orderers
#     enforce: a ~2.0 MB transaction commits, a ~2.2 MB one is refused with the pool's message.
# The network's users (the MDMS, the concentrators, the peer CLI's client1) hold Ed25519 keys
# (BCAMI_USER_KEYS=ed25519, Fabric 3), and the admins ECDSA: both kinds sign through our gateway
# client, the peer CLI and the contract's role check on a live network.
set -euo pipefail
TEST_NAME=limits
# shellcheck source=tests/network/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
net_setup 7800

work=$(dirname "$BCAMI_RUN_DIR")
meter_sim_bin
# The contract's names and limits, from bcami-api (scripts/contract-api.sh).
F_PROVISION=$(contract_fn PROVISION_METERS)
F_SUBMIT=$(contract_fn SUBMIT_READINGS)
F_COUNTS=$(contract_fn GET_COUNTS)
MAX_PROVISION=$(contract_limit MAX_PROVISION)
MAX_BATCH=$(contract_limit MAX_BATCH)
assert_eq "$MAX_PROVISION/$MAX_BATCH" 1000/1000 "bcami-api's limits are the ones this suite sends (1,000 meters, batches of 1,000)"
log "building the kvcc test server"
(cd "$REPO/fabric-network/build" && go build -o "$work/kvcc" ./kvcc) || fail "could not build kvcc"

export BCAMI_USER_KEYS=ed25519
net up
envfile
assert_contains "$(openssl x509 -noout -text -in "$(echo "$BCAMI_OPERATOR_MSP_CLIENT1"/signcerts/*.pem)")" \
  "Public Key Algorithm: ED25519" "the concentrators' certificate holds an Ed25519 key"
assert_contains "$(openssl x509 -noout -text -in "$(echo "$BCAMI_UTILITY_MSP_ADMIN"/signcerts/*.pem)")" \
  "Public Key Algorithm: id-ecPublicKey" "the administrator's certificate holds an ECDSA key"
net deploy --probe-args "$(jq -cn --arg f "$F_COUNTS" '{Args: [$f]}')"
net deploy --name kv --binary "$work/kvcc"
envfile

# --- the maxima commit: meter-sim provisions 1,000 meters in one call, then sends 2 readings per
# meter in batches of 1,000 (one concentrator, one lane: every batch is full) -----------------------------
rc=0
"$METER_SIM" --state "$work/sim" run --network-env "$BCAMI_RUN_DIR/network.env" \
  --meter-prefix LIMIT --meters 1000 --days 1 --interval 43200 --batch 1000 --concentrators 1 --in-flight 1 \
  --no-verify --json >"$work/run.json" 2>"$work/run.log" || rc=$?
((rc == 0)) || fail "meter-sim run exited with $rc: $(tail -n 5 "$work/run.log")"
log "meter-sim: $(jq -c '{meters, meters_unregistered, submitted, committed, rejected, transactions}' "$work/run.json")"
assert_eq "$(jq -r '.meters_unregistered' "$work/run.json")" 0 "1,000 meters provisioned in one $F_PROVISION call and registered"
assert_eq "$(jq -r '"\(.committed) in \(.transactions)"' "$work/run.json")" "2000 in 2" "2,000 readings committed in 2 $F_SUBMIT transactions of 1,000"
assert_eq "$(jq -r '[.rejected[]] | add // 0' "$work/run.json")" 0 "no reading rejected"
meter_readings=$("$PEER_CLI" utility admin chaincode query -C ami -n bcami -c "$(jq -cn --arg f "$F_COUNTS" '{Args: [$f]}')" | jq -r '.readings')
assert_eq "$meter_readings" 2000 "$F_COUNTS: 2,000 readings on the ledger"
# A full batch is bigger than the snapshot's cap (its block is at least one such transaction).
biggest=0
top=$(peer_height utility)
for ((n = top - 1; n > top - 6 && n >= 0; n--)); do
  "$PEER_CLI" utility admin channel fetch "$n" "$work/b$n.pb" -c ami >/dev/null 2>&1 || continue
  s=$(stat -c %s "$work/b$n.pb")
  ((s > biggest)) && biggest=$s
done
log "largest of the last 5 blocks: $biggest bytes"
assert_ge "$biggest" 600000 "a block with 1,000-reading transactions: >= 600,000 bytes (the snapshot refused transactions over 512,000)"

# --- one more is refused by the contract, with a message that says why ---------------------------
over=$((MAX_PROVISION + 1))
hids=$(jq -cn --argjson n "$over" '[range($n) | "\(.)" | ("0" * (64 - length)) + .]')
rc=0
out=$("$PEER_CLI" utility admin chaincode invoke -C ami -n bcami \
  -c "$(jq -cn --arg f "$F_PROVISION" --arg m "{\"meters\":$hids}" '{Args: [$f, $m]}')" --waitForEvent 2>&1) || rc=$?
((rc != 0)) || fail "$F_PROVISION with $over HIDs was accepted"
assert_contains "$out" "must hold 1 to $MAX_PROVISION HIDs, got $over" "$F_PROVISION with $over HIDs refused by the contract"
over=$((MAX_BATCH + 1))
items=$(jq -cn --argjson n "$over" '[range($n) | "AAAA"]')
rc=0
out=$("$PEER_CLI" operator client1 chaincode invoke -C ami -n bcami \
  -c "$(jq -cn --arg f "$F_SUBMIT" --arg b "$items" '{Args: [$f, $b]}')" --waitForEvent 2>&1) || rc=$?
((rc != 0)) || fail "$F_SUBMIT with $over readings was accepted"
assert_contains "$out" "a batch holds 1 to $MAX_BATCH readings, got $over" "$F_SUBMIT with $over readings refused by the contract"

# --- the channel limit itself: 2 MiB per transaction -------------------------------------------
max=$(jq -r '.data.data[0].payload.data.config.channel_group.groups.Orderer.values.ConsensusType.value.metadata.request_max_bytes' \
  <("$BCAMI_FABRIC_BIN/configtxlator" proto_decode --type common.Block --input "$BCAMI_RUN_DIR/artifacts/ami.block"))
assert_eq "$max" 2097152 "configtxlator decodes the BFT channel config: request_max_bytes 2097152"
fill() { # BYTES → the CLI's output; exit status of the CLI
  "$PEER_CLI" utility client1 chaincode invoke -C ami -n kv -c "{\"Args\":[\"fill\",\"big\",\"$1\"]}" \
    --waitForEvent --waitForEventTimeout 120s 2>&1
}
out=$(fill 2000000) || fail "a ~2.0 MB transaction did not commit: $(tail -n 2 <<<"$out")"
assert_contains "$out" "committed with status (VALID)" "a transaction of ~2.0 MB (under 2 MiB) commits"
rc=0
out=$(fill 2200000) || rc=$?
((rc != 0)) || fail "a ~2.2 MB transaction was accepted: $(tail -n 2 <<<"$out")"
assert_contains "$out" "bigger than request max bytes (2097152)" "a transaction of ~2.2 MB is refused by the orderers' request limit"
