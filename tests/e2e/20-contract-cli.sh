#!/usr/bin/env bash
# End-to-end test of the BC-AMI contract as an integrator drives it: runs, verbatim, the shell
# blocks marked "```sh e2e=NAME" in the root README.md section "Invoking with the peer CLI"
# against the live network with `bcami` deployed, and checks what each prints:
#   provision → register (MDMS key, meter key; made offline with meter-sim / the SDK) → submit a
#   reading → read it back and decrypt it from the other org's peer → a DC may not revoke →
#   the administrator revokes → the next reading is rejected as `revoked` → counts.
#
# usage: tests/e2e/20-contract-cli.sh   (with network.env sourced, or BCAMI_RUN_DIR set)
# Environment: BCAMI_RUN_DIR (default <repo>/run); BCAMI_METER_SIM (a prebuilt meter-sim; default:
# build it with cargo into CARGO_TARGET_DIR or target/).
# Exit: 0 if every check passed, 1 otherwise. Logs: $BCAMI_RUN_DIR/e2e-contract/<step>.log.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=contract-e2e
# shellcheck source=tests/e2e/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
WORK=$RUN/e2e-contract
rm -rf "$WORK/logs"
mkdir -p "$WORK/logs"
# --- meter-sim, the SDK's command line ---------------------------------------------------------
e2e_meter_sim
# The README calls it by name, as an integrator with meter-sim on the PATH would.
# shellcheck disable=SC2317 # called from the README blocks, through eval
meter-sim() { "$METER_SIM" "$@"; }

# --- the README blocks -------------------------------------------------------------------------
README=$REPO/README.md
block() { # NAME → the block's text
  awk -v tag="e2e=$1" '
    $0 ~ "^```sh " tag "$" { inside = 1; next }
    inside && /^```/ { exit }
    inside { print }' "$README"
}
# run STEP: evaluate the block in this shell (its variables and functions persist), output to
# $WORK/logs/STEP.log and to $OUT; its status to $RC.
run() {
  local text
  text=$(block "$1")
  if [[ -z "$text" ]]; then
    OUT="README.md has no block 'sh e2e=$1'"
    RC=127
    return
  fi
  say "step $1"
  set +e
  eval "$text" >"$WORK/logs/$1.log" 2>&1
  RC=$?
  set -e
  OUT=$(cat "$WORK/logs/$1.log")
}
valid() { grep -q 'committed with status (VALID)' <<<"$OUT"; }
# The payload of a successful invoke, unquoted.
payload() { sed -n 's/.*result: status:200 *payload:"\(.*\)" *$/\1/p' <<<"$OUT" | tail -n1 | sed 's/\\"/"/g'; }
last_line() { tail -n 3 <<<"$OUT" | tr '\n' ' '; }

cd "$REPO"
# A meter ID of its own per run (re-runs on one network must not collide); the device state is
# kept with the network so the one MDMS key stays the same across runs.
STATE=$WORK/state
METER=SM-e2e-$(date +%s)-$$
export METER
mkdir -p "$STATE"

run setup
if ((RC == 0)) && [[ -n "${BCAMI_CHANNEL:-}" ]] && declare -F invoke >/dev/null; then
  pass "setup block: network.env sourced, invoke/query helpers defined"
else
  fail "setup block" "rc=$RC $(last_line)"
  finish
fi

run devices
if ((RC == 0)) && [[ "${METER_HID:-}" =~ ^[0-9a-f]{64}$ && "${MDMS_HID:-}" =~ ^[0-9a-f]{64}$ ]]; then
  pass "devices: keys generated offline, HIDs are 64 hex digits"
else
  fail "devices" "rc=$RC METER_HID=${METER_HID:-} $(last_line)"
  finish
fi

run provision
if ((RC == 0)) && valid && [[ "$(payload)" == *"\"provisioned\":[\"$METER_HID\"]"* ]]; then
  pass "provision: Utility admin provisioned the MDMS and the meter (committed VALID)"
else
  fail "provision" "rc=$RC $(last_line)"
fi

run register-mdms
our_mdms_key=$(meter-sim tx mdms-keygen --mdms-id MDMS-1 --state "$MDMS_STATE" 2>/dev/null | tail -n1 || echo "?")
if ((RC == 0)) && valid && [[ "$(payload)" == *'"status":"registered"'* ]]; then
  pass "register MDMS key (proof of possession checked)"
elif [[ "$OUT" == *already_registered* ]] &&
  [[ "$(query operator client1 GetMdmsKey 2>/dev/null | jq -r .publicKey)" == "$our_mdms_key" ]]; then
  pass "register MDMS key: already registered by an earlier run, with this state's key"
else
  fail "register MDMS key" "rc=$RC $(last_line)"
fi

run register-meter
if ((RC == 0)) && valid && [[ "$(payload)" == *'"status":"active"'* && "$(payload)" == *'"keyVersion":1'* ]]; then
  pass "register meter via a DC: active, key version 1"
else
  fail "register meter" "rc=$RC $(last_line)"
fi

run submit
if ((RC == 0)) && valid && [[ "$(payload)" == *'"accepted":1,"rejected":0'* ]]; then
  pass "submit a reading via a DC: accepted"
else
  fail "submit reading" "rc=$RC $(last_line)"
fi

run query
stored=$(jq -r '.readings[-1].reading' <<<"$OUT" 2>/dev/null || echo "?")
count=$(jq -r '.readings | length' <<<"$OUT" 2>/dev/null || echo "?")
if ((RC == 0)) && [[ "$count" == 1 && "$stored" == "${READING:-unset}" ]]; then
  pass "MDMS reads the reading back from the Utility peer, byte for byte"
else
  fail "query from the other org's peer" "rc=$RC count=$count $(last_line)"
fi

run decrypt
energy=$(jq -r '.energy_wh' <<<"$OUT" 2>/dev/null || echo "?")
if ((RC == 0)) && [[ "$energy" == 412 ]]; then
  pass "MDMS decrypts the committed reading: 412 Wh"
else
  fail "decrypt" "rc=$RC energy=$energy $(last_line)"
fi

run forbidden
if ((RC != 0)) && [[ "$OUT" == *"status:403"* && "$OUT" == *"forbidden: RevokeMeter requires the administrator"* ]]; then
  pass "a DC may not revoke: 403 naming the administrator role"
else
  fail "forbidden revoke" "rc=$RC $(last_line)"
fi

run revoke
if ((RC == 0)) && valid && [[ "$(payload)" == *'"status":"revoked"'* ]]; then
  pass "Utility admin revokes the meter"
else
  fail "revoke" "rc=$RC $(last_line)"
fi

run after-revoke
if ((RC == 0)) && valid && [[ "$(payload)" == *'"accepted":0,"rejected":1'* &&
  "$(payload)" == *'"reason":"revoked"'* && "$(payload)" == *"is revoked"* ]]; then
  pass "the next reading of the revoked meter is rejected: reason revoked, clear message"
else
  fail "reading after revocation" "rc=$RC $(last_line)"
fi

run counts
revoked=$(jq -r '.meters.revoked' <<<"$OUT" 2>/dev/null || echo "?")
readings=$(jq -r '.readings' <<<"$OUT" 2>/dev/null || echo "?")
mdms=$(jq -r '.mdms' <<<"$OUT" 2>/dev/null || echo "?")
if ((RC == 0)) && [[ "$revoked" =~ ^[0-9]+$ && "$readings" =~ ^[0-9]+$ ]] && ((revoked >= 1 && readings >= 1)) && [[ "$mdms" == registered ]]; then
  pass "counts from the Operator peer: $readings reading(s), $revoked revoked meter(s), MDMS registered"
else
  fail "counts" "rc=$RC $(last_line)"
fi

finish
