#!/usr/bin/env bash
# The single test command (CI runs it through .ci/run). Works on a fresh clone on
# a fresh machine, non-interactively. Installs what the tests need (shellcheck,
# jq, curl, openssl, python3 via apt if missing; Fabric via install-fabric.sh),
# then runs, in order:
#   rust        cargo fmt --check; cargo clippy -D warnings; the wasm32/Cortex-M4 toolchain
#               (install-wasm-toolchain.sh); cargo test (all but bcami-e2e); the Cortex-M4 image.
#               clippy and test take meter-sim's feature `wasm`, so the debug wasmtime is built
#               once and shared by bcami-wasm-host's and meter-sim's tests; that build's
#               meter-sim and chaincode servers are what the later stages run
#   lint        shellcheck on scripts/*.sh, tests/**/*.sh and the ccaas builder
#   network     every tests/network/[0-9]*.sh (each brings up its own network)
#   e2e         npm ci in tests/interop; one shared network: up, deploy (bcami), every
#               tests/e2e/*.sh in lexical order with network.env sourced, then each
#               bcami-e2e test executable (tests/tests/*.rs) of the workspace build
# and always tears down every network it started, even on failure or Ctrl-C.
#
# usage: scripts/test.sh [STAGE...]      (default: all four stages, in that order)
# Environment: BCAMI_TEST_PORT_BASE (shared e2e network, default 7600),
#              BCAMI_TEST_SUITE_TIMEOUT (seconds per suite, default 1500)
# Output: live, plus one log per suite in target/test-logs/. The last line is
# "N passed, N failed"; the exit status is non-zero if anything failed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO"

STAGES=("$@")
((${#STAGES[@]})) || STAGES=(rust lint network e2e)
for s in "${STAGES[@]}"; do
  case $s in rust | lint | network | e2e) ;; *)
    echo "test: unknown stage '$s' (rust, lint, network, e2e)" >&2
    exit 2
    ;;
  esac
done
want() { [[ " ${STAGES[*]} " == *" $1 "* ]]; }

LOG_DIR=$REPO/target/test-logs
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR"
SUITE_TIMEOUT=${BCAMI_TEST_SUITE_TIMEOUT:-1500}
# Every network a test starts lives under this temp dir, so teardown can find
# leftovers even if a test was killed.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bcami-test.XXXXXX")
export TMPDIR=$WORK
E2E_RUN_DIR=$WORK/e2e/run
E2E_PORT_BASE=${BCAMI_TEST_PORT_BASE:-7600}

PASSED=()
FAILED=()
FAILED_LOGS=() # "NAME|LOG" of each failed suite, excerpted in the summary
T0=$SECONDS

say() { printf '\n==> %s\n' "$*"; }

SUMMARY_DONE=0
summary() {
  SUMMARY_DONE=1
  say "summary ($((SECONDS - T0)) s; logs in $LOG_DIR)"
  local s
  for s in "${PASSED[@]}"; do echo "  PASS  $s"; done
  for s in "${FAILED[@]}"; do echo "  FAIL  $s"; done
  # CI shows only the end of the output: say here why each suite failed.
  local entry name log
  for entry in "${FAILED_LOGS[@]}"; do
    name=${entry%%|*} log=${entry#*|}
    [[ -f "$log" ]] || continue
    echo "  --- why $name failed (first failure lines, then the log's last lines):"
    { grep -E 'FAIL' "$log" || grep -E 'panicked|error(\[|:)|Error:' "$log" || true; } |
      head -n 6 | cut -c1-300 | sed 's/^/    | /' || true
    echo "    | ..."
    tail -n 8 "$log" | cut -c1-300 | sed 's/^/    | /' || true
  done
  echo "${#PASSED[@]} passed, ${#FAILED[@]} failed"
}

teardown() {
  local rc=$? d
  trap - EXIT INT TERM
  if ((!SUMMARY_DONE)); then
    FAILED+=("interrupted (exit $rc) before all suites ran")
  fi
  shopt -s nullglob
  for d in "$WORK"/*/run "$WORK"/*/*/run; do
    if [[ -f "$d/.bcami-run" ]]; then
      echo "test: tearing down the network in $d"
      BCAMI_RUN_DIR=$d "$SCRIPT_DIR/network.sh" down || true
    fi
  done
  shopt -u nullglob
  rm -rf "$WORK"
  # An interrupted run still ends with the summary line.
  ((SUMMARY_DONE)) || summary
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_suite NAME CMD...: runs one suite with a time limit; records pass/fail.
run_suite() {
  local name=$1 log start rc=0
  shift
  log=$LOG_DIR/$(tr '/ ' '__' <<<"$name").log
  say "$name   (log: $log)"
  start=$SECONDS
  timeout -k 30 "$SUITE_TIMEOUT" "$@" 2>&1 </dev/null | tee "$log" || rc=$?
  if ((rc == 0)); then
    PASSED+=("$name ($((SECONDS - start)) s)")
  else
    ((rc == 124)) && echo "test: $name timed out after $SUITE_TIMEOUT s" | tee -a "$log"
    FAILED+=("$name (exit $rc, $((SECONDS - start)) s, log $log)")
    FAILED_LOGS+=("$name|$log")
  fi
  return 0
}
fail_suite() { # NAME REASON: a suite that could not run counts as failed
  FAILED+=("$1 ($2)")
  echo "test: $1: $2"
}

# ---------------------------------------------------------------------------
say "installing prerequisites"
missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
  echo "test: installing ${missing[*]} with apt-get"
  sudo=()
  ((EUID == 0)) || sudo=(sudo -n)
  if command -v apt-get >/dev/null &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$LOG_DIR/apt.log" 2>&1; then
    echo "test: installed ${missing[*]}"
  else
    echo "test: WARNING: could not install ${missing[*]} (no apt-get or no root); see $LOG_DIR/apt.log" >&2
  fi
fi
if command -v rustup >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
FABRIC_OK=1
if want network || want e2e; then
  run_suite "install-fabric" "$SCRIPT_DIR/install-fabric.sh"
  [[ " ${FAILED[*]} " != *" install-fabric "* ]] || FABRIC_OK=0
fi

# ---------------------------------------------------------------------------
# One debug build serves every stage: `cargo test` builds the binaries its integration tests
# run (meter-sim, the chaincode servers), and the network and e2e suites deploy and drive those
# very files (BCAMI_BIN_DIR, BCAMI_METER_SIM) instead of a second, release build. The crypto
# crates are optimised in the dev profile (Cargo.toml), so they sign and verify at speed.
# The end-to-end tests (bcami-e2e) are built by that same workspace build and their test
# executables run directly in the e2e stage: `cargo test -p bcami-e2e` would resolve features
# for that one package and rebuild some 20 crates.
# meter-sim's feature `wasm` (wasm meters under wasmtime) is on for clippy and every test build,
# so the debug wasmtime is compiled once; CI builds no release wasmtime.
WORKSPACE_FEATURES=(--features meter-sim/wasm)
CARGO_TEST_ARGS=(--workspace --exclude bcami-e2e "${WORKSPACE_FEATURES[@]}")
if want rust; then
  run_suite "cargo fmt" cargo fmt --all --check
  run_suite "cargo clippy" cargo clippy --workspace --all-targets "${WORKSPACE_FEATURES[@]}" -- -D warnings
  # The 32-bit targets: the wasmtime tests (bcami-wasm-host, meter-sim) build the meter module
  # with this toolchain; the Cortex-M4 image is built and measured here.
  run_suite "install-wasm-toolchain" "$SCRIPT_DIR/install-wasm-toolchain.sh"
  run_suite "cargo test" cargo test "${CARGO_TEST_ARGS[@]}"
  run_suite "build-meter-cortex-m4" "$SCRIPT_DIR/build-meter-cortex-m4.sh"
fi

if want lint; then
  if command -v shellcheck >/dev/null; then
    shopt -s nullglob globstar
    files=(scripts/*.sh fabric-network/ccaas-builder/bin/* .ci/run)
    for f in tests/**/*.sh; do
      # Our scripts only, not those of the npm packages installed in tests/interop.
      [[ $f == */node_modules/* ]] || files+=("$f")
    done
    shopt -u globstar
    run_suite "shellcheck" shellcheck -x "${files[@]}"
  else
    fail_suite "shellcheck" "shellcheck is not installed and could not be installed"
  fi
fi

if want network || want e2e; then
  # After the rust stage this finds everything fresh and only checks; run alone, it builds.
  run_suite "build the binaries (cargo test --workspace --no-run)" \
    cargo test --workspace "${WORKSPACE_FEATURES[@]}" --no-run
  export BCAMI_BIN_DIR=${CARGO_TARGET_DIR:-$REPO/target}/debug
  # "EXECUTABLE|SOURCE" of each bcami-e2e test target (its library's unit tests and each
  # tests/tests/*.rs), from that (now fresh) build.
  E2E_TESTS=()
  if want e2e; then
    mapfile -t E2E_TESTS < <(cargo test --workspace "${WORKSPACE_FEATURES[@]}" --no-run --message-format=json 2>/dev/null |
      jq -r --arg repo "$REPO/" 'select(.reason == "compiler-artifact" and .profile.test
        and (.target.src_path | startswith($repo + "tests/")))
        | "\(.executable)|\(.target.src_path | ltrimstr($repo))"')
    ((${#E2E_TESTS[@]})) || fail_suite "bcami-e2e" "the build listed no test executables under tests/"
  fi
  export BCAMI_METER_SIM=$BCAMI_BIN_DIR/meter-sim
  # tests/e2e/60-wasm-meters.sh: the same meter-sim, built with the feature `wasm`.
  export BCAMI_WASM_METER_SIM=$BCAMI_METER_SIM
fi

if want network; then
  shopt -s nullglob
  for t in tests/network/[0-9]*.sh; do
    if ((FABRIC_OK)); then
      run_suite "$t" bash "$t"
    else
      fail_suite "$t" "not run: Fabric is not installed"
    fi
  done
  shopt -u nullglob
fi

if want e2e; then
  shopt -s nullglob
  e2e_scripts=(tests/e2e/*.sh)
  shopt -u nullglob
  export BCAMI_RUN_DIR=$E2E_RUN_DIR BCAMI_PORT_BASE=$E2E_PORT_BASE
  if ((!FABRIC_OK)); then
    fail_suite "e2e network" "not run: Fabric is not installed"
  else
    # The interoperability tests' npm packages (tests/interop, pinned by its lockfile).
    if command -v npm >/dev/null; then
      run_suite "npm ci (tests/interop)" npm ci --prefix tests/interop --no-audit --no-fund
    else
      fail_suite "npm ci (tests/interop)" "npm is not installed"
    fi
    run_suite "e2e: network.sh up" "$SCRIPT_DIR/network.sh" up
    if [[ -f "$E2E_RUN_DIR/network.env" ]]; then
      run_suite "e2e: network.sh deploy" "$SCRIPT_DIR/network.sh" deploy
    fi
    if [[ -f "$E2E_RUN_DIR/chaincode/bcami/chaincode.env" ]]; then
      (
        set -a
        # shellcheck source=/dev/null
        source "$E2E_RUN_DIR/network.env"
        # shellcheck source=/dev/null
        source "$E2E_RUN_DIR/chaincode/bcami/chaincode.env"
        set +a
        for t in "${e2e_scripts[@]}"; do
          run_suite "$t" bash "$t"
        done
        for t in "${E2E_TESTS[@]}"; do
          run_suite "bcami-e2e: ${t##*|}" env -C "$REPO/tests" "${t%%|*}" # cwd as cargo test's
        done
        declare -p PASSED FAILED FAILED_LOGS >"$WORK/e2e-results"
      )
      # shellcheck source=/dev/null
      source "$WORK/e2e-results"
      if ((${#e2e_scripts[@]} == 0)); then echo "test: tests/e2e/ has no *.sh scripts"; fi
    else
      for t in "${e2e_scripts[@]}" "bcami-e2e"; do
        fail_suite "$t" "not run: the shared network or the bcami deploy failed"
      done
    fi
    run_suite "e2e: network.sh down" "$SCRIPT_DIR/network.sh" down
  fi
fi

# ---------------------------------------------------------------------------
summary
((${#FAILED[@]} == 0))
