#!/usr/bin/env bash
# MDMS key rotation, end to end, against the live network with `bcami` deployed — what a utility
# does after its MDMS key leaks:
#   meters send readings (meter-sim run) → the administrator rotates the MDMS key
#   (`meter-sim mdms rotate-key`: RotateMdmsKey with the new key's proof of possession) → the
#   ledger names the new key, with the old one kept in its key history → the next run's meters
#   encrypt to the new key → the MDMS export decrypts EVERY reading, from before and after the
#   rotation, to exactly what the meters sent; the MDMS state folder keeps the old key as
#   retired. Only the administrator may rotate (the MDMS's own identity and a data concentrator
#   get 403), a replayed rotation request is refused (409 replayed), and the retired key can
#   never come back (409 key_reused); none of the refusals changes the ledger.
# Uses the network's shared MDMS folder (mdms/ beside network.env), so later suites see the
# rotated key like any other user of the network.
#
# usage: tests/e2e/40-mdms-key-rotation.sh   (with network.env sourced, or BCAMI_RUN_DIR set)
# Environment: BCAMI_METER_SIM (a prebuilt meter-sim; default: build it with cargo).
# Exit: 0 if every check passed, 1 otherwise. Logs: $BCAMI_RUN_DIR/e2e-mdms-rotation/.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=mdms-rotation
# shellcheck source=tests/e2e/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
CC=${BCAMI_CC_NAME:-bcami}
WORK=$RUN/e2e-mdms-rotation
rm -rf "$WORK"
mkdir -p "$WORK/logs"
LOGS=$WORK/logs
STATE=$WORK/state
MDMS_DIR=$RUN/mdms
say "logs in $LOGS"

e2e_meter_sim
ms() { "$METER_SIM" "$@"; }
cli() { "$REPO/scripts/peer-cli.sh" "$@"; }
ctor() { jq -cn --arg f "$1" '{Args: ([$f] + $ARGS.positional)}' --args "${@:2}"; }
mdms_view() { cli utility admin chaincode query -C "$BCAMI_CHANNEL" -n "$CC" -c '{"Args":["GetMdmsKey"]}' 2>>"$LOGS/queries.err"; }
# refused LOG ORG ROLE STATUS CODE FUNCTION ARG: a query (endorsement only) refused as expected
refused() {
  local log=$LOGS/$1.log
  cli "$2" "$3" chaincode query -C "$BCAMI_CHANNEL" -n "$CC" -c "$(ctor "${@:6}")" >"$log" 2>&1 && return 1
  grep -q "status:$4" "$log" && grep -q "$5:" "$log"
}
run_meters() { # NAME: 6 meters × 4 half-hours through 2 concentrators, read back by the MDMS
  ms run --state "$STATE" --meters 6 --meter-prefix "ROT-$TAG" --days 0.084 --batch 12 \
    --concentrators 2 --json --quiet >"$LOGS/$1.json" 2>"$LOGS/$1.err"
}
report() { jq -r "$2" "$LOGS/$1.json" 2>/dev/null || echo "?"; }
TAG=$(date +%s)

# --- readings made for the current key ---------------------------------------------------------
if run_meters run-before && (($(report run-before .committed) > 0)); then
  pass "run before the rotation: $(report run-before .committed) readings committed, read back with 0 mismatches"
else
  fail "run before the rotation" "meter-sim exited non-zero; see $LOGS/run-before.err"
  finish
fi
before=$(mdms_view)
v_before=$(jq -r '.keyVersion // 1' <<<"$before")
old_pub=$(jq -r .publicKey <<<"$before")
if [[ "$(jq -r .public_key "$MDMS_DIR/mdms.json")" == "$old_pub" ]]; then
  pass "the MDMS folder holds the ledger's current key (version $v_before)"
else
  fail "MDMS folder" "mdms.json's key is not the ledger's $old_pub"
fi

# --- who may rotate, and what is refused --------------------------------------------------------
PROBE=$WORK/probe
ms tx mdms-keygen --state "$PROBE" >/dev/null
request=$(ms tx mdms-register --state "$PROBE")
if refused mdms-rotates utility client1 403 forbidden RotateMdmsKey "$request"; then
  pass "the MDMS's own identity cannot rotate its key (403): whoever stole the key may hold the identity too"
else
  fail "MDMS rotates" "expected 403 forbidden; see $LOGS/mdms-rotates.log"
fi
if refused dc-rotates operator client1 403 forbidden RotateMdmsKey "$request"; then
  pass "a data concentrator cannot rotate the MDMS key (403)"
else
  fail "DC rotates" "expected 403 forbidden; see $LOGS/dc-rotates.log"
fi
if [[ "$(mdms_view)" == "$before" ]]; then
  pass "the refusals changed nothing (GetMdmsKey byte-identical)"
else
  fail "refusals" "GetMdmsKey changed"
fi

# --- the rotation -------------------------------------------------------------------------------
if ms mdms rotate-key --json >"$LOGS/rotate.json" 2>"$LOGS/rotate.err"; then
  pass "meter-sim mdms rotate-key: version $(jq -r .key_version "$LOGS/rotate.json")"
else
  fail "rotate-key" "exited non-zero: $(tail -n 2 "$LOGS/rotate.err")"
  finish
fi
after=$(mdms_view)
new_pub=$(jq -r .publicKey <<<"$after")
if [[ "$(jq -r .keyVersion <<<"$after")" == $((v_before + 1)) && "$new_pub" != "$old_pub" &&
  "$new_pub" == "$(jq -r .new_public_key "$LOGS/rotate.json")" ]]; then
  pass "the ledger names the new key as version $((v_before + 1))"
else
  fail "ledger after rotation" "GetMdmsKey: $after"
fi
if [[ "$(jq -c '[.keys[] | .publicKey]' <<<"$after")" == "$(jq -c '[.keys[] | .publicKey]' <<<"$before" | jq -c --arg k "$new_pub" '. + [$k]')" ]]; then
  pass "the key history keeps every earlier key and appends the new one"
else
  fail "key history" "before $(jq -c .keys <<<"$before"), after $(jq -c .keys <<<"$after")"
fi
if [[ "$(jq -r .public_key "$MDMS_DIR/mdms.json")" == "$new_pub" &&
  "$(jq -r '.retired_keys[0].public_key' "$MDMS_DIR/mdms.json")" == "$old_pub" &&
  "$(jq -r '.pending_key // "none"' "$MDMS_DIR/mdms.json")" == none ]]; then
  pass "the MDMS folder holds the new key and keeps the old one as retired"
else
  fail "MDMS folder after rotation" "see $MDMS_DIR/mdms.json"
fi
# A request as old as the one that bound the new key (a replay of it, or of anything older).
old_request=$(ms tx mdms-register --state "$PROBE" --timestamp-ms "$(jq -r .keySince <<<"$after")")
if refused replayed utility admin 409 replayed RotateMdmsKey "$old_request"; then
  pass "a rotation request not newer than the current key's is refused (409 replayed)"
else
  fail "replayed request" "expected 409 replayed; see $LOGS/replayed.log"
fi
mkdir -p "$WORK/old-key"
jq '{version, mdms_id, hid, secret_key: .retired_keys[0].secret_key, public_key: .retired_keys[0].public_key}' \
  "$MDMS_DIR/mdms.json" >"$WORK/old-key/mdms.json"
old_back=$(ms tx mdms-register --state "$WORK/old-key")
if refused old-key-back utility admin 409 key_reused RotateMdmsKey "$old_back"; then
  pass "the retired key cannot be rotated back in, even in a fresh request (409 key_reused)"
else
  fail "old key back" "expected 409 key_reused; see $LOGS/old-key-back.log"
fi
if [[ "$(mdms_view)" == "$after" ]]; then
  pass "the refusals after the rotation changed nothing"
else
  fail "refusals after" "GetMdmsKey changed"
fi

# --- readings made for the new key; everything decrypts -----------------------------------------
if run_meters run-after && (($(report run-after .committed) > 0)); then
  pass "run after the rotation: $(report run-after .committed) readings committed, read back with 0 mismatches"
else
  fail "run after the rotation" "meter-sim exited non-zero; see $LOGS/run-after.err"
fi
sent=$(($(wc -l <"$STATE/sent.csv") - 1))
ms mdms export --state "$STATE" --state-meters-only --out "$WORK/export.csv" --json --quiet \
  >"$LOGS/export.json" 2>"$LOGS/export.err" || true
exported=$(jq -r .exported "$LOGS/export.json" 2>/dev/null || echo "?")
summary=$(jq -c '{failed: (.failed | length), matched: .sent_log.matched, mismatched: (.sent_log.mismatched | length), missing: (.sent_log.missing | length)}' "$LOGS/export.json" 2>/dev/null || echo "?")
if [[ "$exported" == "$sent" && "$summary" == "{\"failed\":0,\"matched\":$sent,\"mismatched\":0,\"missing\":0}" ]]; then
  pass "the MDMS export decrypts all $sent readings, from before and after the rotation, to what the meters sent"
else
  fail "export" "exported $exported of $sent; $summary; see $LOGS/export.json"
fi
# Each key alone opens only its own period: the export really used both.
jq '.retired_keys = [] | del(.pending_key)' "$MDMS_DIR/mdms.json" >"$WORK/new-only.json"
mkdir -p "$WORK/new-only" && mv "$WORK/new-only.json" "$WORK/new-only/mdms.json"
ms mdms export --state "$STATE" --state-meters-only --mdms-state "$WORK/new-only" --out "$WORK/new-only.csv" \
  --json --quiet >"$LOGS/export-new-only.json" 2>"$LOGS/export-new-only.err" || true
failed_new_only=$(jq -r '.failed | length' "$LOGS/export-new-only.json" 2>/dev/null || echo "?")
before_count=$(report run-before .committed)
if [[ "$failed_new_only" == "$before_count" ]]; then
  pass "without the retired key the $before_count readings made before the rotation do not decrypt"
else
  fail "new key only" "expected $before_count decrypt failures, got $failed_new_only"
fi

finish
