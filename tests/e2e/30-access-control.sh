#!/usr/bin/env bash
# Access control, end to end: every BC-AMI contract function × every kind of identity, against the
# live network with `bcami` deployed. Only the roles chaincode/contract/README.md allows may get
# past the role check; everyone else is refused — by the contract (403 naming the role needed) or,
# for identities the channel does not admit, by the peer before the chaincode runs.
#
# Identities (columns):
#   Utility admin    administrator          Operator admin   no role
#   Utility client1  MDMS                   Operator client1 data concentrator
#   Orderer admin    OrdererMSP Admin from the crypto material (in the channel, not an application org)
#   rogue CA         a throwaway CA of our own + a client cert with OU=client, in an MSP folder with
#                    NodeOUs, claiming to be OperatorMSP (a forged data concentrator)
# Method: each call is a `peer chaincode query` — the proposal is endorsed (simulated) by the
# identity's peer, exactly where a real invoke's role check runs, but nothing is ordered, so the
# matrix changes no state. The arguments are valid (a provisioned and an active meter, a fresh
# registration, a signed reading and rotation, made offline with meter-sim) so an allowed caller
# gets 200, or a business error that proves the role check passed.
#
# Output: PASS/FAIL per cell; the generated markdown table on stdout and in
# target/test-logs/access-control.md (copied into RELIABILITY.md). Logs: $BCAMI_RUN_DIR/e2e-access/.
# usage: tests/e2e/30-access-control.sh   (with network.env sourced, or BCAMI_RUN_DIR set)
# Environment: BCAMI_METER_SIM (a prebuilt meter-sim; default: build it with cargo).
# Exit: 0 if every cell matched the expected matrix, 1 otherwise.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=access-control
# shellcheck source=tests/e2e/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
CC=${BCAMI_CC_NAME:-bcami}
WORK=$RUN/e2e-access
rm -rf "$WORK/logs" "$WORK/cells"
mkdir -p "$WORK/logs" "$WORK/cells"
TABLE=$REPO/target/test-logs/access-control.md
mkdir -p "$(dirname "$TABLE")"
say "logs in $WORK/logs, table in $TABLE"

e2e_meter_sim
ms() { "$METER_SIM" "$@"; }

# --- identities ----------------------------------------------------------------------------------
ORDERER_MSP=$BCAMI_CRYPTO_DIR/ordererOrganizations/orderer.bcami.local/users/Admin@orderer.bcami.local/msp
[[ -d "$ORDERER_MSP/signcerts" ]] || {
  fail "orderer admin MSP" "not found at $ORDERER_MSP"
  finish
}

# A CA nobody configured, and a NodeOU client certificate from it, in an MSP folder layout.
ROGUE=$WORK/rogue
make_rogue() {
  rm -rf "$ROGUE"
  mkdir -p "$ROGUE/ca" "$ROGUE/msp/cacerts" "$ROGUE/msp/signcerts" "$ROGUE/msp/keystore"
  openssl ecparam -name prime256v1 -genkey -noout -out "$ROGUE/ca/key.pem"
  openssl req -x509 -new -key "$ROGUE/ca/key.pem" -sha256 -days 2 -out "$ROGUE/msp/cacerts/ca.pem" \
    -subj "/C=US/O=operator.bcami.local/CN=ca.operator.bcami.local" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
  openssl ecparam -name prime256v1 -genkey -noout -out "$ROGUE/ca/client.key"
  openssl pkcs8 -topk8 -nocrypt -in "$ROGUE/ca/client.key" -out "$ROGUE/msp/keystore/priv_sk"
  openssl req -new -key "$ROGUE/ca/client.key" -out "$ROGUE/ca/client.csr" \
    -subj "/C=US/OU=client/CN=User1@operator.bcami.local"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' >"$ROGUE/ca/ext.cnf"
  openssl x509 -req -in "$ROGUE/ca/client.csr" -CA "$ROGUE/msp/cacerts/ca.pem" -CAkey "$ROGUE/ca/key.pem" \
    -CAcreateserial -days 2 -sha256 -extfile "$ROGUE/ca/ext.cnf" -out "$ROGUE/msp/signcerts/cert.pem"
  cat >"$ROGUE/msp/config.yaml" <<'EOF'
NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
EOF
}
if make_rogue >"$WORK/logs/rogue-ca.log" 2>&1 &&
  openssl x509 -in "$ROGUE/msp/signcerts/cert.pem" -noout -subject | grep -q 'OU *= *client'; then
  pass "made a throwaway CA and a client (OU=client) MSP folder in $ROGUE/msp"
else
  fail "rogue CA" "openssl failed; see $WORK/logs/rogue-ca.log"
  finish
fi

# Columns: label | MSP id claimed | MSP folder | peer address | peer TLS CA
IDS=(uadmin uclient oadmin oclient orderer rogue)
declare -A LABEL MSPID MSPDIR PEER PEERCA
LABEL=([uadmin]="Utility admin" [uclient]="Utility client1" [oadmin]="Operator admin"
  [oclient]="Operator client1" [orderer]="Orderer admin" [rogue]="rogue CA (claims OperatorMSP client)")
MSPID=([uadmin]=$BCAMI_UTILITY_MSPID [uclient]=$BCAMI_UTILITY_MSPID [oadmin]=$BCAMI_OPERATOR_MSPID
  [oclient]=$BCAMI_OPERATOR_MSPID [orderer]=OrdererMSP [rogue]=$BCAMI_OPERATOR_MSPID)
MSPDIR=([uadmin]=$BCAMI_UTILITY_MSP_ADMIN [uclient]=$BCAMI_UTILITY_MSP_CLIENT1
  [oadmin]=$BCAMI_OPERATOR_MSP_ADMIN [oclient]=$BCAMI_OPERATOR_MSP_CLIENT1
  [orderer]=$ORDERER_MSP [rogue]=$ROGUE/msp)
for id in uadmin uclient orderer; do
  PEER[$id]=$BCAMI_UTILITY_PEER_ADDRESS
  PEERCA[$id]=$BCAMI_UTILITY_PEER_TLS_CA
done
for id in oadmin oclient rogue; do
  PEER[$id]=$BCAMI_OPERATOR_PEER_ADDRESS
  PEERCA[$id]=$BCAMI_OPERATOR_PEER_TLS_CA
done

# as ID PEER_ARGS...: the peer CLI as that identity, against its peer.
as() {
  local id=$1
  shift
  FABRIC_LOGGING_SPEC=INFO CORE_PEER_TLS_ENABLED=true CORE_PEER_LOCALMSPID=${MSPID[$id]} \
    CORE_PEER_MSPCONFIGPATH=${MSPDIR[$id]} CORE_PEER_TLS_ROOTCERT_FILE=${PEERCA[$id]} \
    CORE_PEER_ADDRESS=${PEER[$id]} FABRIC_CFG_PATH=$FABRIC_CFG_PATH "$BCAMI_FABRIC_BIN/peer" "$@"
}
ctor() { jq -cn --arg f "$1" '{Args: ([$f] + $ARGS.positional)}' --args "${@:2}"; }
query() { # ID FUNCTION ARGS... → stdout payload
  as "$1" chaincode query -C "$BCAMI_CHANNEL" -n "$CC" -c "$(ctor "${@:2}")"
}
invoke() { # ID FUNCTION ARGS... → committed (both orgs endorse)
  as "$1" chaincode invoke -C "$BCAMI_CHANNEL" -n "$CC" -c "$(ctor "${@:2}")" --waitForEvent \
    -o "$BCAMI_ORDERER_ADDRESS" --tls --cafile "$BCAMI_ORDERER_TLS_CA" \
    --peerAddresses "$BCAMI_UTILITY_PEER_ADDRESS" --tlsRootCertFiles "$BCAMI_UTILITY_PEER_TLS_CA" \
    --peerAddresses "$BCAMI_OPERATOR_PEER_ADDRESS" --tlsRootCertFiles "$BCAMI_OPERATOR_PEER_TLS_CA"
}
committed() { # LOGNAME ID FUNCTION ARGS...
  local log=$WORK/logs/$1.log
  shift
  invoke "$@" >"$log" 2>&1 && grep -q 'status:200' "$log"
}

# --- fixture: an MDMS, a provisioned meter P, an active meter A -------------------------------
STATE=$WORK/state
mkdir -p "$STATE"
TAG=$(date +%s)-$$
METER_P=SM-acl-P-$TAG
METER_A=SM-acl-A-$TAG
HID_P=$(ms tx hid --meter-id "$METER_P")
HID_A=$(ms tx hid --meter-id "$METER_A")
ms tx keygen --meter-id "$METER_P" --state "$STATE" >/dev/null
ms tx keygen --meter-id "$METER_A" --state "$STATE" >/dev/null

mdms_state=$(query uadmin GetCounts 2>"$WORK/logs/counts-before.err" | jq -r .mdms || echo "?")
MDMS_ID=MDMS-1
if [[ "$mdms_state" == none ]]; then
  # A fresh network (this script run on its own): provision and register the network's MDMS,
  # with its key where meter-sim keeps it (mdms/ beside network.env), so later runs can use it.
  ms tx mdms-keygen --mdms-id "$MDMS_ID" --state "$RUN/mdms" >/dev/null
  MDMS_HID=$(ms tx hid --mdms-id "$MDMS_ID")
  if committed provision-mdms uadmin ProvisionMdms "$MDMS_HID" &&
    committed register-mdms uclient RegisterMdmsKey "$(ms tx mdms-register --mdms-id "$MDMS_ID" --state "$RUN/mdms")"; then
    pass "fixture: provisioned and registered an MDMS key"
  else
    fail "fixture: MDMS" "see $WORK/logs/provision-mdms.log, register-mdms.log"
    finish
  fi
fi
MDMS_RECORD=$(query uclient GetMdmsKey 2>"$WORK/logs/mdms-key.err") || MDMS_RECORD=""
MDMS_PUB=$(jq -r '.publicKey // empty' <<<"$MDMS_RECORD" 2>/dev/null || true)
MDMS_HID=$(jq -r '.hid // empty' <<<"$MDMS_RECORD" 2>/dev/null || true)
if [[ "$MDMS_PUB" =~ ^[0-9a-f]{66}$ && "$MDMS_HID" =~ ^[0-9a-f]{64}$ ]]; then
  pass "fixture: the MDMS key is on the ledger (hid ${MDMS_HID:0:12}…)"
else
  fail "fixture: MDMS key" "GetMdmsKey gave '$MDMS_RECORD' (mdms state was '$mdms_state')"
  finish
fi
if committed provision-meters uadmin ProvisionMeters "{\"meters\":[\"$HID_P\",\"$HID_A\"]}" &&
  committed register-a oclient RegisterMeter "$(ms tx register --meter-id "$METER_A" --state "$STATE")"; then
  pass "fixture: meters P (provisioned) and A (active) committed"
else
  fail "fixture: meters" "see $WORK/logs/provision-meters.log, register-a.log"
  finish
fi

# Arguments that an allowed caller can act on. The reading is built before the rotation (which
# switches the stored key); both are only ever simulated, so neither changes the ledger.
REG_P=$(ms tx register --meter-id "$METER_P" --state "$STATE")
READING=$(ms tx reading --meter-id "$METER_A" --state "$STATE" --energy-wh 250 --mdms-public-key "$MDMS_PUB")
ROTATE=$(ms tx rotate --meter-id "$METER_A" --state "$STATE")
MDMS_STATE=$WORK/mdms-probe
mkdir -p "$MDMS_STATE"
ms tx mdms-keygen --mdms-id "$MDMS_ID" --state "$MDMS_STATE" >/dev/null
REG_MDMS=$(ms tx mdms-register --mdms-id "$MDMS_ID" --state "$MDMS_STATE")

FUNCS=(Configure GetConfig ProvisionMeters ProvisionMdms RegisterMeter RegisterMdmsKey RotateMeterKey
  RotateMdmsKey RevokeMeter SubmitReadings GetMeter GetMdmsKey GetReadings ListMeters GetCounts)
declare -A ARGS
ARGS=(
  [Configure]='{"window":{"pastMs":300000,"futureMs":60000}}'
  [GetConfig]=''
  [ProvisionMeters]="{\"meters\":[\"$HID_P\"]}"
  [ProvisionMdms]=$MDMS_HID
  [RegisterMeter]=$REG_P
  [RegisterMdmsKey]=$REG_MDMS
  [RotateMeterKey]=$ROTATE
  [RotateMdmsKey]=$REG_MDMS
  [RevokeMeter]=$HID_A
  [SubmitReadings]="[\"$READING\"]"
  [GetMeter]=$HID_A
  [GetMdmsKey]=''
  [GetReadings]="{\"hid\":\"$HID_A\"}"
  [ListMeters]='{"pageSize":1}'
  [GetCounts]=''
)

# The expected matrix, from chaincode/contract/README.md ("who" column, default roles):
# administrator = Utility admin, data concentrator = Operator client, MDMS = Utility client.
declare -A EXPECT_ROLES
EXPECT_ROLES=(
  [Configure]=uadmin [ProvisionMeters]=uadmin [ProvisionMdms]=uadmin [RevokeMeter]=uadmin
  [RotateMdmsKey]=uadmin
  [RegisterMeter]=oclient [RotateMeterKey]=oclient [SubmitReadings]=oclient
  [RegisterMdmsKey]=uclient [GetReadings]="uclient uadmin"
  [GetConfig]="uadmin oclient uclient" [GetMeter]="uadmin oclient uclient"
  [GetMdmsKey]="uadmin oclient uclient" [ListMeters]="uadmin oclient uclient"
  [GetCounts]="uadmin oclient uclient"
)

counts_before_u=$(query uadmin GetCounts 2>/dev/null || echo "?")
counts_before_o=$(query oclient GetCounts 2>/dev/null || echo "?")

# --- the matrix --------------------------------------------------------------------------------
say "querying ${#FUNCS[@]} functions × ${#IDS[@]} identities (4 at a time)"
cell() { # ID FUNCTION → $WORK/cells/ID.FUNCTION.{out,rc}
  local id=$1 f=$2 rc=0 args=()
  [[ -n "${ARGS[$f]}" ]] && args=("${ARGS[$f]}")
  query "$id" "$f" "${args[@]}" >"$WORK/cells/$id.$f.out" 2>&1 || rc=$?
  echo "$rc" >"$WORK/cells/$id.$f.rc"
}
running=0
for id in "${IDS[@]}"; do
  for f in "${FUNCS[@]}"; do
    cell "$id" "$f" &
    running=$((running + 1))
    if ((running >= 4)); then
      wait -n || true
      running=$((running - 1))
    fi
  done
done
wait

# classify ID FUNCTION → "200" | "4xx" (contract status) | "peer: <reason>"
classify() {
  local out rc status
  out=$(cat "$WORK/cells/$1.$2.out")
  rc=$(cat "$WORK/cells/$1.$2.rc")
  if ((rc == 0)); then
    echo 200
  elif status=$(grep -o 'status:[0-9]\{3\}' <<<"$out" | head -n1) && [[ -n "$status" ]]; then
    echo "${status#status:}"
  elif grep -qiE 'creator org unknown|creator is malformed|certificate signed by unknown authority|failed to deserialize|could not be validated' <<<"$out"; then
    echo "peer: creator not valid"
  elif grep -qE 'Failed evaluating policy.*/Channel/Application/Writers' <<<"$out"; then
    echo "peer: not a channel Writer"
  elif grep -qi 'access denied' <<<"$out"; then
    echo "peer: access denied"
  else
    echo "error (rc $rc)"
  fi
}
symbol() {
  case $1 in
    200) echo "✅ 200" ;;
    403) echo "⛔ 403" ;;
    peer:*) echo "⛔ ${1}" ;;
    [0-9][0-9][0-9]) echo "✅ $1" ;;
    *) echo "❓ $1" ;;
  esac
}

{
  printf '| function | allowed (README) |'
  for id in "${IDS[@]}"; do printf ' %s |' "${LABEL[$id]}"; done
  printf '\n| --- | --- |'
  for _ in "${IDS[@]}"; do printf ' --- |'; done
  printf '\n'
} >"$TABLE"
for f in "${FUNCS[@]}"; do
  allowed=""
  for id in ${EXPECT_ROLES[$f]}; do allowed+="${allowed:+, }${LABEL[$id]}"; done
  row="| \`$f\` | $allowed |"
  for id in "${IDS[@]}"; do
    got=$(classify "$id" "$f")
    row+=" $(symbol "$got") |"
    if [[ " ${EXPECT_ROLES[$f]} " == *" $id "* ]]; then
      # Allowed: the contract ran and did not refuse on role grounds.
      if [[ "$got" =~ ^[0-9]{3}$ && "$got" != 403 ]]; then
        pass "$f as ${LABEL[$id]}: allowed ($got)"
      else
        fail "$f as ${LABEL[$id]}" "expected allowed, got '$got': $(tail -n 2 "$WORK/cells/$id.$f.out" | tr '\n' ' ')"
      fi
    else
      out=$(cat "$WORK/cells/$id.$f.out")
      if [[ "$got" == 403 && "$out" == *"forbidden: $f requires the"* ]]; then
        pass "$f as ${LABEL[$id]}: refused by the contract (403 naming the role)"
      elif [[ "$got" == peer:* ]]; then
        pass "$f as ${LABEL[$id]}: refused by the peer before the chaincode ran (${got#peer: })"
      else
        fail "$f as ${LABEL[$id]}" "expected refused, got '$got': $(tail -n 2 <<<"$out" | tr '\n' ' ')"
      fi
    fi
  done
  echo "$row" >>"$TABLE"
done
{
  echo
  echo "✅ = the role check passed (200, or the business status an allowed caller got with these"
  echo "arguments); ⛔ 403 = refused by the contract (\`forbidden: F requires the … role\`); ⛔ peer: = the"
  echo "peer refused the proposal before the chaincode ran."
} >>"$TABLE"

# What the peer said to the identities the channel does not admit, for the record.
for id in orderer rogue; do
  msg=$(grep -m1 -o 'Error:.*' "$WORK/cells/$id.GetCounts.out" | cut -c1-300 || true)
  say "${LABEL[$id]} → GetCounts: ${msg:-no error line}"
  printf "\n%s, GetCounts: \`%s\`\n" "${LABEL[$id]}" "${msg:-?}" >>"$TABLE"
done

echo
cat "$TABLE"
echo

# Nothing in the matrix was ordered: the counts are unchanged on both peers.
counts_after_u=$(query uadmin GetCounts 2>/dev/null || echo "?")
counts_after_o=$(query oclient GetCounts 2>/dev/null || echo "?")
if [[ "$counts_before_u" == "$counts_after_u" && "$counts_before_o" == "$counts_after_o" && "$counts_after_u" == "$counts_after_o" && "$counts_after_u" == "{"* ]]; then
  pass "no state change from the matrix; both peers agree: $counts_after_u"
else
  fail "state unchanged" "before $counts_before_u / $counts_before_o, after $counts_after_u / $counts_after_o"
fi
finish
