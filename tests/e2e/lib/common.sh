# shellcheck shell=bash
# Shared by the end-to-end scripts in tests/e2e (sourced, never run on its own): where the
# network is, PASS/FAIL bookkeeping ending in the "N passed, N failed" line, and meter-sim.
#
# Set E2E_NAME (the prefix `say` prints) before sourcing. Afterwards:
#   REPO, RUN (also exported as BCAMI_RUN_DIR), and the network's network.env sourced;
#   say MSG | pass CHECK | fail CHECK WHY | finish (prints the tally; exits 0 only if none failed);
#   e2e_meter_sim: sets METER_SIM to $BCAMI_METER_SIM, or to a fresh release build of meter-sim.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
RUN=${BCAMI_RUN_DIR:-$REPO/run}
[[ -f "$RUN/network.env" ]] || {
  echo "FAIL: no network (no $RUN/network.env); run scripts/network.sh up && scripts/network.sh deploy" >&2
  exit 1
}
export BCAMI_RUN_DIR=$RUN
# shellcheck source=/dev/null
source "$RUN/network.env"

PASSED=0
FAILED=0
say() { printf '%s: %s\n' "${E2E_NAME:-e2e}" "$*"; }
pass() {
  printf 'PASS: %s\n' "$1"
  PASSED=$((PASSED + 1))
}
fail() {
  printf 'FAIL: %s — %s\n' "$1" "$2"
  FAILED=$((FAILED + 1))
}
finish() {
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  ((FAILED == 0))
  exit
}

e2e_meter_sim() {
  if [[ -n "${BCAMI_METER_SIM:-}" ]]; then
    METER_SIM=$BCAMI_METER_SIM
  else
    say "building meter-sim (cargo build --release -p meter-sim)"
    (cd "$REPO" && cargo build --release -q -p meter-sim) || {
      fail "build meter-sim" "cargo build --release -p meter-sim failed"
      finish
    }
    METER_SIM=${CARGO_TARGET_DIR:-$REPO/target}/release/meter-sim
  fi
  [[ -x "$METER_SIM" ]] || {
    fail "meter-sim" "$METER_SIM is not an executable"
    finish
  }
}
