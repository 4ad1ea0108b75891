#!/usr/bin/env bash
# Runs every cargo-fuzz target in the repository for a bounded time each (not part of CI; the
# corpora are run again by unit tests there). Targets are found from */fuzz/Cargo.toml and
# */*/fuzz/Cargo.toml (`cargo fuzz list` in each). Uses the nightly toolchain; installs
# cargo-fuzz with `cargo install cargo-fuzz` if it is missing.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET_FILTER]   (default 60 s, every target)
#
# New corpus entries go to a scratch copy (the committed corpora are only read), so running this
# leaves the tree clean. Crashing inputs are kept in target/fuzz-logs/artifacts/<crate>/<target>/.
# Output: one line per target (seconds, executions, crash or not), and the same as a markdown
# table in target/fuzz-logs/summary.md; per-target logs in target/fuzz-logs/<crate>-<target>.log.
# Environment: CARGO_TARGET_DIR (where the instrumented builds go; default each fuzz crate's own).
# Exit: 0 no crash; 1 a target crashed or failed to build; 2 usage.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
SECS=${1:-60}
FILTER=${2:-}
if [[ ! "$SECS" =~ ^[0-9]+$ ]] || ((SECS == 0)); then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET_FILTER]" >&2
  exit 2
fi
LOG_DIR=$REPO/target/fuzz-logs
mkdir -p "$LOG_DIR"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/bcami-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

say() { printf 'fuzz: %s\n' "$*"; }
rustup toolchain list | grep -q '^nightly' || {
  say "installing the nightly toolchain (rustup toolchain install nightly --profile minimal)"
  rustup toolchain install nightly --profile minimal
}
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz (cargo install cargo-fuzz)"
  cargo install cargo-fuzz
fi

shopt -s nullglob
manifests=("$REPO"/*/fuzz/Cargo.toml "$REPO"/*/*/fuzz/Cargo.toml)
shopt -u nullglob
((${#manifests[@]})) || {
  say "no fuzz crates found"
  exit 1
}
say "$SECS s per target; logs in $LOG_DIR"

SUMMARY=$LOG_DIR/summary.md
{
  echo "| crate | target | fuzzed (s) | wall incl. build (s) | executions | corpus (seeds → after) | result |"
  echo "| --- | --- | ---: | ---: | ---: | --- | --- |"
} >"$SUMMARY"
CRASHED=0
for manifest in "${manifests[@]}"; do
  fuzz_dir=$(dirname "$manifest")
  crate_dir=$(dirname "$fuzz_dir")
  crate=${crate_dir#"$REPO"/}
  mapfile -t targets < <(cd "$crate_dir" && cargo +nightly fuzz list 2>/dev/null)
  for target in "${targets[@]}"; do
    [[ -z "$FILTER" || "$target" == *"$FILTER"* ]] || continue
    tag=$(tr '/' '-' <<<"$crate")-$target
    log=$LOG_DIR/$tag.log
    art=$LOG_DIR/artifacts/$crate/$target/
    work=$SCRATCH/$tag
    mkdir -p "$art" "$work/new"
    seeds=$fuzz_dir/corpus/$target
    mkdir -p "$work/seeds"
    [[ -d "$seeds" ]] && cp -r "$seeds/." "$work/seeds/"
    n_seeds=$(find "$work/seeds" -type f | wc -l)
    say "$crate: $target for $SECS s (log $log)"
    start=$SECONDS
    rc=0
    (cd "$crate_dir" && cargo +nightly fuzz run "$target" "$work/new" "$work/seeds" -- \
      -max_total_time="$SECS" -artifact_prefix="$art" -print_final_stats=1) >"$log" 2>&1 || rc=$?
    took=$((SECONDS - start))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1 || true)
    # libFuzzer's own clock (the wall time above includes the instrumented build)
    fuzzed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
    n_new=$(find "$work/new" -type f 2>/dev/null | wc -l)
    if ((rc == 0)); then
      result="no crash"
    elif crash=$(grep -o "Test unit written to .*" "$log" | head -n1) && [[ -n "$crash" ]]; then
      result="CRASH: ${crash#Test unit written to }"
      CRASHED=1
    else
      result="FAILED (exit $rc, see $log)"
      CRASHED=1
    fi
    say "  $target: fuzzed ${fuzzed:-?} s ($took s wall), ${execs:-?} executions, $result"
    echo "| \`$crate\` | \`$target\` | ${fuzzed:-?} | $took | ${execs:-?} | $n_seeds → $((n_seeds + n_new)) | $result |" >>"$SUMMARY"
  done
done
echo
cat "$SUMMARY"
exit "$CRASHED"
