#!/usr/bin/env bash
# Meters in wasm, end to end, against the live network with `bcami` deployed: meter-sim runs
# every meter as the meter module (bcami-sdk-wasm, built for wasm32 by
# scripts/build-meter-wasm.sh) under wasmtime, one instance per meter with a one-page (64 KiB)
# memory cap and fuel metering. The keys, registrations and readings the instances make go
# through the concentrators to the ledger; the MDMS reads every reading back, verifies and
# decrypts it with zero mismatches; the report gives each operation's fuel and memory, and a
# reading fits one page. A cap below the module's need stops the run with a clear error.
#
# usage: tests/e2e/60-wasm-meters.sh   (with network.env sourced, or BCAMI_RUN_DIR set)
# Environment: BCAMI_WASM_METER_SIM (a prebuilt meter-sim with the cargo feature `wasm`; default:
# the debug one the rust stage's `cargo test --workspace --exclude bcami-e2e --features
# meter-sim/wasm` builds, by that command: nothing to compile after that stage).
# Exit: 0 if every check passed, 1 otherwise. Logs: $BCAMI_RUN_DIR/e2e-wasm-meters/.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=wasm-meters
# shellcheck source=tests/e2e/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
WORK=$RUN/e2e-wasm-meters
rm -rf "$WORK"
mkdir -p "$WORK/logs"
LOGS=$WORK/logs
say "logs in $LOGS"

if [[ -n "${BCAMI_WASM_METER_SIM:-}" ]]; then
  METER_SIM=$BCAMI_WASM_METER_SIM
else
  build=(cargo test --workspace --exclude bcami-e2e --features meter-sim/wasm --no-run)
  say "meter-sim with wasm meters: ${build[*]} (log $LOGS/cargo.log)"
  (cd "$REPO" && "${build[@]}") >"$LOGS/cargo.log" 2>&1 || {
    fail "build meter-sim" "${build[*]} failed; see $LOGS/cargo.log"
    finish
  }
  METER_SIM=${CARGO_TARGET_DIR:-$REPO/target}/debug/meter-sim
fi
[[ -x "$METER_SIM" ]] || {
  fail "meter-sim" "$METER_SIM is not an executable"
  finish
}
MODULE=$WORK/bcami_sdk_wasm.wasm
if "$REPO/scripts/build-meter-wasm.sh" >"$LOGS/build.log" 2>&1; then
  cp "${CARGO_TARGET_DIR:-$REPO/target}/meter-wasm/bcami_sdk_wasm.wasm" "$MODULE"
  pass "meter module built ($(tail -n 1 "$LOGS/build.log" | sed 's/^build-meter-wasm: //'))"
else
  fail "build the meter module" "scripts/build-meter-wasm.sh failed; see $LOGS/build.log"
  finish
fi
TAG=$(date +%s)
ms_run() { # NAME ARGS...: 8 wasm meters × 6 half-hours through 2 concentrators
  local name=$1
  shift
  "$METER_SIM" run --state "$WORK/state-$name" --meters 8 --meter-prefix "WASM-$name-$TAG" \
    --days 0.125 --batch 16 --concentrators 2 --meter-runtime wasm --meter-module "$MODULE" \
    --json --quiet "$@" >"$LOGS/$name.json" 2>"$LOGS/$name.err"
}
report() { jq -r "$2" "$LOGS/$1.json" 2>/dev/null || echo "?"; }

if ms_run run; then
  pass "meter-sim --meter-runtime wasm ran against the network"
else
  fail "wasm run" "meter-sim exited non-zero; see $LOGS/run.err"
  finish
fi
committed=$(report run .committed)
if [[ "$committed" == 48 && "$(report run .verified)" == 48 && "$(report run .mismatches)" == 0 ]]; then
  pass "48 readings built in wasm committed; the MDMS verified and decrypted all 48, 0 mismatches"
else
  fail "wasm readings" "committed $committed, verified $(report run .verified), mismatches $(report run .mismatches)"
fi
if [[ "$(report run '.meter_runtime.failed_meters | length')" == 0 &&
  "$(report run '.meter_runtime.operations.keygen.count')" == 8 &&
  "$(report run '.meter_runtime.operations.registration.count')" == 8 &&
  "$(report run '.meter_runtime.operations.reading.count')" == 48 ]]; then
  pass "every key, registration and reading came from a wasm instance; no meter stopped"
else
  fail "wasm operations" "see .meter_runtime in $LOGS/run.json"
fi
fuel=$(report run '.meter_runtime.operations.reading.fuel_max')
used=$(report run '.meter_runtime.operations.reading.used_bytes')
memory=$(report run '.meter_runtime.operations.reading.memory_bytes')
if [[ "$fuel" =~ ^[0-9]+$ ]] && ((fuel > 0)) && [[ "$memory" == 65536 ]] && ((used <= 65536)); then
  pass "a reading: $fuel fuel, $used bytes of linear memory used, within one 64 KiB page"
else
  fail "wasm costs" "fuel $fuel, used $used, memory $memory"
fi

# A cap below the module's one page: a clear error, exit 1, nothing half-done on the ledger.
if ms_run small --meter-memory 32KiB; then
  fail "memory cap" "meter-sim accepted a 32 KiB cap"
elif grep -q "memory cap of 32768 bytes exceeded: it needed 65536 bytes" "$LOGS/small.err"; then
  pass "a 32 KiB cap stops the run with: $(grep -o 'meter memory cap.*' "$LOGS/small.err" | head -n 1)"
else
  fail "memory cap" "no clear cap error; see $LOGS/small.err"
fi

finish
