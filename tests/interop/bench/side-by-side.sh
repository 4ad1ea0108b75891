#!/usr/bin/env bash
# The side-by-side throughput run of BENCHMARKS.md ("Gateway clients and chaincode shims"):
# one-write `put` invocations/s, interleaved in rounds on one network so that the machine's
# noise hits every combination alike:
#   our Rust client  → the Rust shim (conformance), Fabric's Go shim (kvgo), Fabric's Node shim
#                      (interopnode);
#   Fabric's official Node client → the same three chaincodes.
# Not part of CI. Needs a network (network.env sourced), the three chaincodes deployed (see
# BENCHMARKS.md for the commands), `npm ci` in tests/interop and
#   cargo build --release -p bcami-e2e --example gateway_throughput
# usage: tests/interop/bench/side-by-side.sh [ROUNDS] [TOTAL] [CONCURRENCY]
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$DIR/../../.." && pwd)
ROUNDS=${1:-2}
TOTAL=${2:-300}
CONCURRENCY=${3:-50}
RUST=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/gateway_throughput
[[ -x "$RUST" ]] || {
  echo "side-by-side: build $RUST first (cargo build --release -p bcami-e2e --example gateway_throughput)" >&2
  exit 1
}
: "${BCAMI_CHANNEL:?source network.env first}"

echo "machine: nproc=$(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg); node $(node --version)"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  for cc in conformance kvgo interopnode; do
    "$RUST" "$cc" "$TOTAL" "$CONCURRENCY"
    (cd "$DIR/.." && node --no-deprecation bench/throughput.js "$cc" "$TOTAL" "$CONCURRENCY")
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
