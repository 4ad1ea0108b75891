#!/usr/bin/env bash
# A hostile data concentrator, end to end, against the live network with `bcami` deployed. The DC
# holds a legitimate Operator client identity, so it passes the role check; everything it relays
# must still be judged on its own merits:
#   replays an accepted reading · relays an older reading after a newer one (reorder) · the same
#   reading twice in one batch · a reading for meter B signed with meter A's key · a tampered
#   ciphertext · truncated / trailing bytes · a registration where a reading belongs · an oversize
#   element · bad base64 · random bytes · an unknown, an unregistered and a revoked meter · stale
#   and future timestamps → each rejected with its own reason (one committed transaction that
#   accepts nothing);
#   whole-call garbage (not JSON, an object, numbers, an empty array, 1,001 elements three times,
#   missing/extra arguments, an unknown function, a garbage registration, a registration replay) →
#   refused at endorsement with 400/409, never ordered.
# Then: GetCounts, GetReadings and GetMeter on BOTH peers are byte-identical to before.
# Finally, a meter K provisioned with its key hash bound (SHA-256 of its compressed public key):
# the DC registers K with a key of its own → 409 key_not_provisioned, GetMeter of K unchanged on
# both peers; re-binding K to the DC's key → 409 provision_conflict; K's own registration
# commits, and its readings are accepted.
#
# usage: tests/e2e/31-hostile-concentrator.sh   (with network.env sourced, or BCAMI_RUN_DIR set)
# Environment: BCAMI_METER_SIM (a prebuilt meter-sim; default: build it with cargo).
# Exit: 0 if every check passed, 1 otherwise. Logs: $BCAMI_RUN_DIR/e2e-hostile/logs/.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=hostile-dc
# shellcheck source=tests/e2e/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
CC=${BCAMI_CC_NAME:-bcami}
WORK=$RUN/e2e-hostile
rm -rf "$WORK"
mkdir -p "$WORK/logs"
LOGS=$WORK/logs
say "logs in $LOGS"

e2e_meter_sim
ms() { "$METER_SIM" "$@"; }

# --- the peer CLI as a given identity against a given peer ---------------------------------------
# as MSPID MSPDIR ORG(utility|operator, whose peer) PEER_ARGS...
as() {
  local mspid=$1 dir=$2 org=${3^^}
  shift 3
  local addr=BCAMI_${org}_PEER_ADDRESS ca=BCAMI_${org}_PEER_TLS_CA
  FABRIC_LOGGING_SPEC=INFO CORE_PEER_TLS_ENABLED=true CORE_PEER_LOCALMSPID=$mspid \
    CORE_PEER_MSPCONFIGPATH=$dir CORE_PEER_TLS_ROOTCERT_FILE=${!ca} CORE_PEER_ADDRESS=${!addr} \
    FABRIC_CFG_PATH=$FABRIC_CFG_PATH "$BCAMI_FABRIC_BIN/peer" "$@"
}
# Identities by name, used through namerefs (`local -n who=ADMIN`).
# shellcheck disable=SC2034
ADMIN=("$BCAMI_UTILITY_MSPID" "$BCAMI_UTILITY_MSP_ADMIN")
# shellcheck disable=SC2034
DC=("$BCAMI_OPERATOR_MSPID" "$BCAMI_OPERATOR_MSP_CLIENT1")
# shellcheck disable=SC2034
MDMS=("$BCAMI_UTILITY_MSPID" "$BCAMI_UTILITY_MSP_CLIENT1")
ctor() { jq -cn --arg f "$1" '{Args: ([$f] + $ARGS.positional)}' --args "${@:2}"; }
# query WHO(admin|dc) ORG FUNCTION ARGS...
query() {
  local -n who=${1^^}
  as "${who[0]}" "${who[1]}" "$2" chaincode query -C "$BCAMI_CHANNEL" -n "$CC" -c "$(ctor "${@:3}")"
}
# invoke LOG WHO FUNCTION ARGS...: endorsed by both peers, ordered, waits for the commit.
invoke() {
  local log=$LOGS/$1.log
  local -n who=${2^^}
  as "${who[0]}" "${who[1]}" operator chaincode invoke -C "$BCAMI_CHANNEL" -n "$CC" -c "$(ctor "${@:3}")" \
    --waitForEvent -o "$BCAMI_ORDERER_ADDRESS" --tls --cafile "$BCAMI_ORDERER_TLS_CA" \
    --peerAddresses "$BCAMI_UTILITY_PEER_ADDRESS" --tlsRootCertFiles "$BCAMI_UTILITY_PEER_TLS_CA" \
    --peerAddresses "$BCAMI_OPERATOR_PEER_ADDRESS" --tlsRootCertFiles "$BCAMI_OPERATOR_PEER_TLS_CA" \
    >"$log" 2>&1
}
valid() { grep -q 'committed with status (VALID)' "$LOGS/$1.log"; }
payload_has() { sed 's/\\"/"/g' "$LOGS/$1.log" | grep -qF "$2"; } # LOG TEXT: in the invoke's payload

# --- fixture: meters A, B (active), C (revoked), P (provisioned only), U (unknown) ----------------
STATE=$WORK/state
mkdir -p "$STATE"
TAG=$(date +%s)-$$
declare -A ID HID
for m in A B C P U; do
  ID[$m]=SM-hostile-$m-$TAG
  HID[$m]=$(ms tx hid --meter-id "${ID[$m]}")
  ms tx keygen --meter-id "${ID[$m]}" --state "$STATE" >/dev/null
done
MDMS_PUB=$(query admin utility GetMdmsKey 2>"$LOGS/mdms-key.err" | jq -r '.publicKey // empty' || true)
if [[ ! "$MDMS_PUB" =~ ^[0-9a-f]{66}$ ]]; then
  # On a network where no earlier suite registered an MDMS: register the network's MDMS, with
  # its key where meter-sim keeps it (mdms/ beside network.env).
  ms tx mdms-keygen --state "$RUN/mdms" >/dev/null
  invoke provision-mdms admin ProvisionMdms "$(ms tx hid --mdms-id MDMS-1)" || true
  invoke register-mdms mdms RegisterMdmsKey "$(ms tx mdms-register --state "$RUN/mdms")" || true
  MDMS_PUB=$(query admin utility GetMdmsKey 2>>"$LOGS/mdms-key.err" | jq -r '.publicKey // empty' || true)
fi
[[ "$MDMS_PUB" =~ ^[0-9a-f]{66}$ ]] || {
  fail "fixture: MDMS key" "no registered MDMS key on the ledger; see $LOGS/mdms-key.err"
  finish
}
ok=1
invoke provision admin ProvisionMeters "{\"meters\":[\"${HID[A]}\",\"${HID[B]}\",\"${HID[C]}\",\"${HID[P]}\"]}" && valid provision || ok=0
for m in A B C; do
  ((ok)) || break
  invoke "register-$m" dc RegisterMeter "$(ms tx register --meter-id "${ID[$m]}" --state "$STATE")" && valid "register-$m" || ok=0
done
((ok)) && invoke revoke-C admin RevokeMeter "${HID[C]}" && valid revoke-C || ok=0
if ((ok)); then
  pass "fixture: A and B active, C revoked, P provisioned only, U unknown"
else
  fail "fixture" "a setup transaction failed; see $LOGS/provision.log, register-*.log, revoke-C.log"
  finish
fi

reading() { # METER [EXTRA meter-sim ARGS]
  local m=$1
  shift
  ms tx reading --meter-id "${ID[$m]}" --state "$STATE" --energy-wh 300 --mdms-public-key "$MDMS_PUB" "$@"
}
NOW=$(date +%s%3N)
RA1=$(reading A)
RB1=$(reading B) # withheld: relayed only after RB2 (reorder)
RB2=$(reading B)
RA2=$(reading A) # never accepted: the base of the tampered variants

# --- a legitimate batch with an in-batch duplicate ------------------------------------------------
invoke legit dc SubmitReadings "[\"$RA1\",\"$RB2\",\"$RA1\"]" || true
if valid legit && payload_has legit '"accepted":2,"rejected":1'; then
  pass "batch [A1, B2, A1 again]: committed; 2 accepted, the duplicate rejected"
else
  fail "legit batch" "$(tail -n 2 "$LOGS/legit.log" | tr '\n' ' ')"
fi
dup=$(query dc operator SubmitReadings "[\"$RA2\",\"$RA2\"]" 2>"$LOGS/dup.err" | jq -r '"\(.accepted),\(.rejected),\([.rejections[] | "\(.index):\(.reason)"] | join(" "))"' || true)
if [[ "$dup" == "1,1,1:replayed" ]]; then
  pass "duplicate inside one batch: the second copy is rejected as replayed (simulated, not ordered)"
else
  fail "in-batch duplicate" "got '$dup'"
fi
a_count=$(query admin utility GetReadings "{\"hid\":\"${HID[A]}\"}" 2>/dev/null | jq -r '.readings | length' || echo "?")
if [[ "$a_count" == 1 ]]; then
  pass "meter A has exactly one stored reading after [A1, …, A1]"
else
  fail "duplicate stored" "meter A has '$a_count' readings"
fi

# --- snapshot of everything a hostile DC could touch, on both peers -----------------------------
snapshot() { # ORG → one text blob (the Utility admin may read on either org's peer)
  local org=$1 m
  query admin "$org" GetCounts
  for m in A B C P; do
    query admin "$org" GetMeter "${HID[$m]}"
    query admin "$org" GetReadings "{\"hid\":\"${HID[$m]}\"}"
  done
}
snapshot utility >"$WORK/before-utility.txt" 2>"$LOGS/snapshot.err" || true
snapshot operator >"$WORK/before-operator.txt" 2>>"$LOGS/snapshot.err" || true

# --- the hostile batch ---------------------------------------------------------------------------
# Byte surgery on base64 readings: flip, truncate, append.
bytes() { python3 -c 'import base64,sys
b=bytearray(base64.b64decode(sys.argv[1])); op=sys.argv[2]
if op=="flip": b[80]^=1
elif op=="cut": b=b[:-10]
elif op=="trail": b+=b"\x00"
print(base64.b64encode(bytes(b)).decode())' "$1" "$2"; }
# A reading for meter B, signed with meter A's key: a state folder whose "B" holds A's key.
FORGE=$WORK/forge
mkdir -p "$FORGE/meters"
cp "$STATE/mdms.json" "$FORGE/" 2>/dev/null || true
jq --arg id "${ID[B]}" --arg hid "${HID[B]}" '.meter_id = $id | .hid = $hid' \
  "$STATE/meters/${ID[A]}.json" >"$FORGE/meters/${ID[B]}.json"
FORGED=$(ms tx reading --meter-id "${ID[B]}" --state "$FORGE" --energy-wh 9999 --mdms-public-key "$MDMS_PUB")
OVERSIZE=$(head -c 1100 /dev/zero | base64 -w0)
NOISE=$(head -c 188 /dev/urandom | base64 -w0)
# A reading's kind and version bytes followed by noise: gets past the kind check.
HEADER_NOISE=$( (printf '\002\001' && head -c 186 /dev/urandom) | base64 -w0)
REGISTRATION=$(ms tx register --meter-id "${ID[P]}" --state "$STATE")

labels=() elements=() expect=()
add() { # LABEL EXPECTED_REASON ELEMENT
  labels+=("$1")
  expect+=("$2")
  elements+=("$3")
}
add "replay of an accepted reading (A1)" replayed "$RA1"
add "older reading after a newer one (B1 after B2)" replayed "$RB1"
add "meter B's reading signed with meter A's key" bad_signature "$FORGED"
add "one bit of the ciphertext flipped" bad_signature "$(bytes "$RA2" flip)"
add "truncated by 10 bytes" malformed "$(bytes "$RA2" cut)"
add "one trailing byte" malformed "$(bytes "$RA2" trail)"
add "a registration request where a reading belongs" malformed "$REGISTRATION"
add "188 random bytes" malformed "$NOISE"
add "a reading header (kind 2, version 1) + 186 random bytes" malformed "$HEADER_NOISE"
add "1,100-byte element" oversize "$OVERSIZE"
add "not base64" bad_base64 'this is not base64!'
add "unknown meter (never provisioned)" unknown_meter "$(reading U)"
add "provisioned, never registered" not_registered "$(reading P)"
add "revoked meter" revoked "$(reading C)"
add "timestamp 10 minutes old" stale "$(reading A --timestamp-ms $((NOW - 600000)))"
add "timestamp 10 minutes ahead" future "$(reading A --timestamp-ms $((NOW + 600000)))"
BATCH=$(jq -cn '$ARGS.positional' --args "${elements[@]}")
N=${#elements[@]}

# Per-element reasons (the simulation gives the clean JSON), then the same batch really ordered.
query dc operator SubmitReadings "$BATCH" >"$WORK/hostile-result.json" 2>"$LOGS/hostile-query.err" || true
for i in "${!labels[@]}"; do
  got=$(jq -r --argjson i "$i" '[.rejections[] | select(.index == $i)] | if length == 1 then "rejected \(.[0].reason)" else "accepted" end' "$WORK/hostile-result.json" 2>/dev/null || echo "?")
  msg=$(jq -r --argjson i "$i" '.rejections[] | select(.index == $i) | .message' "$WORK/hostile-result.json" 2>/dev/null | cut -c1-110)
  if [[ "$got" == "rejected ${expect[$i]}" ]]; then
    pass "${labels[$i]} → rejected: ${expect[$i]} (${msg})"
  else
    fail "${labels[$i]}" "expected 'rejected ${expect[$i]}', got '$got'"
  fi
done
invoke hostile dc SubmitReadings "$BATCH" || true
if valid hostile && payload_has hostile "\"accepted\":0,\"rejected\":$N,"; then
  pass "the hostile batch of $N was ordered and committed VALID with 0 accepted, $N rejected"
else
  fail "hostile batch committed" "$(tail -n 2 "$LOGS/hostile.log" | tr '\n' ' ' | cut -c1-400)"
fi

# --- whole-call garbage: refused at endorsement, never ordered ----------------------------------
refused() { # LABEL STATUS CODE WHO FUNCTION ARGS...
  local label=$1 status=$2 code=$3 log
  log=garbage-$((++GARBAGE))
  shift 3
  if invoke "$log" "$@"; then
    fail "$label" "the invoke succeeded: $(tail -n 1 "$LOGS/$log.log")"
  elif grep -q "status:$status" "$LOGS/$log.log" && grep -q "$code" "$LOGS/$log.log"; then
    pass "$label → refused at endorsement: $status $code"
  else
    fail "$label" "expected $status $code: $(grep -m1 -o 'Error:.*' "$LOGS/$log.log" | cut -c1-300)"
  fi
}
GARBAGE=0
FLOOD=$(jq -cn '[range(1001) | "AAAA"]')
refused "SubmitReadings 'hello' (not JSON)" 400 bad_argument dc SubmitReadings hello
refused "SubmitReadings a JSON object" 400 bad_argument dc SubmitReadings '{"readings":[]}'
refused "SubmitReadings an array of numbers" 400 bad_argument dc SubmitReadings '[1,2,3]'
refused "SubmitReadings an empty array" 400 bad_argument dc SubmitReadings '[]'
for k in 1 2 3; do
  refused "SubmitReadings 1,001 elements (flood $k/3)" 400 bad_argument dc SubmitReadings "$FLOOD"
done
refused "SubmitReadings with no argument" 400 bad_argument dc SubmitReadings
refused "SubmitReadings with two arguments" 400 bad_argument dc SubmitReadings '[]' '[]'
refused "an unknown function" 400 unknown_function dc DeleteEverything "${HID[A]}"
refused "RegisterMeter with garbage" 400 bad_argument dc RegisterMeter 'AAAA'
refused "RegisterMeter replaying meter A's registration" 409 already_registered dc RegisterMeter \
  "$(ms tx register --meter-id "${ID[A]}" --state "$STATE")"
refused "RotateMeterKey for meter B signed by meter A's key" 400 bad_signature dc RotateMeterKey \
  "$(ms tx rotate --meter-id "${ID[B]}" --state "$FORGE")"

# --- nothing accepted changed, on either peer ---------------------------------------------------
snapshot utility >"$WORK/after-utility.txt" 2>>"$LOGS/snapshot.err" || true
snapshot operator >"$WORK/after-operator.txt" 2>>"$LOGS/snapshot.err" || true
if [[ -s "$WORK/before-utility.txt" ]] && cmp -s "$WORK/before-utility.txt" "$WORK/after-utility.txt" &&
  cmp -s "$WORK/before-operator.txt" "$WORK/after-operator.txt" &&
  cmp -s "$WORK/after-utility.txt" "$WORK/after-operator.txt"; then
  pass "GetCounts, GetMeter and GetReadings of A, B, C, P identical before/after, on both peers"
else
  fail "state unchanged" "diff: $(diff "$WORK/before-utility.txt" "$WORK/after-utility.txt" | head -n 5 | tr '\n' ' ') $(diff "$WORK/after-utility.txt" "$WORK/after-operator.txt" | head -n 5 | tr '\n' ' ')"
fi

# --- a meter provisioned with its key hash: a registration with another key is refused -----------
# (After the snapshot above: provisioning K changes GetCounts.) The meter's key pair is made "at
# manufacture" (`tx keygen` prints the compressed public key); the administrator binds its
# SHA-256 to the HID. The hostile DC holds its own key for the same meter ID, in its own folder.
key_hash() { xxd -r -p <<<"$1" | sha256sum | cut -d' ' -f1; } # HEX public key → 64 hex digits
ID[K]=SM-hostile-K-$TAG
HID[K]=$(ms tx hid --meter-id "${ID[K]}")
K_PUB=$(ms tx keygen --meter-id "${ID[K]}" --state "$STATE")
K_HASH=$(key_hash "$K_PUB")
HIJACK=$WORK/hijack
mkdir -p "$HIJACK"
H_HASH=$(key_hash "$(ms tx keygen --meter-id "${ID[K]}" --state "$HIJACK")")
meter_k() { # ORG → GetMeter of K
  query admin "$1" GetMeter "${HID[K]}" 2>>"$LOGS/meter-K.err"
}
invoke provision-K admin ProvisionMeters "{\"meters\":[{\"hid\":\"${HID[K]}\",\"keyHash\":\"$K_HASH\"}]}" || true
k_bound=$(meter_k utility | jq -r '"\(.meter.status) \(.meter.keyHash)"' || true)
if valid provision-K && [[ "$k_bound" == "provisioned $K_HASH" ]]; then
  pass "meter K provisioned with its key hash bound; GetMeter shows keyHash ${K_HASH:0:16}…"
else
  fail "provision K with a key hash" "GetMeter: '$k_bound'; see $LOGS/provision-K.log"
fi
meter_k utility >"$WORK/K-before-utility.json" || true
meter_k operator >"$WORK/K-before-operator.json" || true
refused "RegisterMeter of bound meter K with the DC's own key (hash ${H_HASH:0:16}…)" 409 key_not_provisioned \
  dc RegisterMeter "$(ms tx register --meter-id "${ID[K]}" --state "$HIJACK")"
refused "ProvisionMeters re-binding K to the DC's key hash" 409 provision_conflict \
  admin ProvisionMeters "{\"meters\":[{\"hid\":\"${HID[K]}\",\"keyHash\":\"$H_HASH\"}]}"
meter_k utility >"$WORK/K-after-utility.json" || true
meter_k operator >"$WORK/K-after-operator.json" || true
if [[ "$(jq -r '"\(.meter.status) \(.meter.keyVersion) \(.keys | length)"' "$WORK/K-after-utility.json" 2>/dev/null)" == "provisioned 0 0" ]] &&
  cmp -s "$WORK/K-before-utility.json" "$WORK/K-after-utility.json" &&
  cmp -s "$WORK/K-before-operator.json" "$WORK/K-after-operator.json" &&
  cmp -s "$WORK/K-after-utility.json" "$WORK/K-after-operator.json"; then
  pass "GetMeter of K identical before/after on both peers: still provisioned, no key, binding unchanged"
else
  fail "K unchanged" "diff: $(diff "$WORK/K-before-utility.json" "$WORK/K-after-utility.json" | head -n 4 | tr '\n' ' ')"
fi
invoke register-K dc RegisterMeter "$(ms tx register --meter-id "${ID[K]}" --state "$STATE")" || true
k_active=$(meter_k operator | jq -r '"\(.meter.status) \(.meter.keyVersion) \(.meter.keyHash) \(.keys[0].publicKey)"' || true)
if valid register-K && [[ "$k_active" == "active 1 $K_HASH $K_PUB" ]]; then
  pass "K's own registration committed VALID: active, key version 1 is the key whose hash was bound"
else
  fail "genuine registration of K" "GetMeter: '$k_active'; $(tail -n 2 "$LOGS/register-K.log" | tr '\n' ' ' | cut -c1-300)"
fi
k_reading=$(query dc operator SubmitReadings "[\"$(reading K)\"]" 2>"$LOGS/reading-K.err" | jq -r '"\(.accepted),\(.rejected)"' || true)
if [[ "$k_reading" == "1,0" ]]; then
  pass "a reading of K signed with its bound key is accepted (simulated)"
else
  fail "reading of K" "expected 1 accepted, got '$k_reading'; see $LOGS/reading-K.err"
fi
finish
