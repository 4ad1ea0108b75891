#!/usr/bin/env bash
# Long outage (not part of CI; issue 18): the demo's 200 meters measure at a fixed rate while
# both peers are stopped for OUTAGE minutes (default 10, twice the contract's default 5-minute
# window), then restarted. Samples, every 2 s, how many readings the meters hold unconfirmed
# (the `unconfirmed` lists in their state files) and how many are committed (sent.csv), and
# reports how long catching up took after the restart: until the meters hold no more than what
# they measured in the last few seconds (the live readings in flight).
#
# usage: scripts/long-outage.sh [OUTAGE_MINUTES] [READINGS_PER_SECOND]   (default 10 minutes, 20/s)
# Environment: LONG_METERS (default 200), LONG_BATCH (default 100), BCAMI_PORT_BASE (default 7750),
#              LONG_OUT (default <repo>/target/long-outage), BCAMI_METER_SIM (a prebuilt meter-sim).
# The network is its own (scripts/network.sh up + deploy, run dir /tmp/bcami-long-<pid>/run) and is
# taken down at the end. Output: $LONG_OUT/samples.csv (elapsed_s,pending,committed),
# $LONG_OUT/summary.md, meter-sim's report (meter-sim.json) and log (meter-sim.err).
# Exit: 0 nothing lost or pending and the MDMS read-back matched; 1 otherwise; 2 usage.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
MINUTES=${1:-10}
RATE=${2:-20}
if [[ ! "$MINUTES" =~ ^[0-9]+$ || ! "$RATE" =~ ^[0-9]+$ ]] || ((MINUTES == 0 || RATE == 0)); then
  echo "usage: scripts/long-outage.sh [OUTAGE_MINUTES] [READINGS_PER_SECOND]" >&2
  exit 2
fi
METERS=${LONG_METERS:-200}
BATCH=${LONG_BATCH:-100}
OUT=${LONG_OUT:-$REPO/target/long-outage}
say() { printf 'long-outage: %s\n' "$*"; }

export BCAMI_PORT_BASE=${BCAMI_PORT_BASE:-7750}
export BCAMI_RUN_DIR=/tmp/bcami-long-$$/run
NETWORK=$REPO/scripts/network.sh
cleanup() {
  local rc=$?
  if [[ -n "${RUN_PID:-}" ]]; then kill "$RUN_PID" 2>/dev/null || true; fi
  "$NETWORK" down >/dev/null 2>&1 || true
  rm -rf "$(dirname "$BCAMI_RUN_DIR")"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT"
rm -rf "$OUT/state"
if [[ -n "${BCAMI_METER_SIM:-}" ]]; then
  METER_SIM=$BCAMI_METER_SIM
else
  say "building meter-sim (cargo build --release -p meter-sim)"
  (cd "$REPO" && cargo build --release -q -p meter-sim)
  METER_SIM=${CARGO_TARGET_DIR:-$REPO/target}/release/meter-sim
fi
say "network: port base $BCAMI_PORT_BASE, run dir $BCAMI_RUN_DIR; output in $OUT"
"$NETWORK" up >"$OUT/network.log" 2>&1
"$NETWORK" deploy >>"$OUT/network.log" 2>&1

# Measuring lasts 60 s before the outage, the outage, and 120 s after it.
SECONDS_MEASURING=$((60 + MINUTES * 60 + 120))
INTERVALS=$(((SECONDS_MEASURING * RATE + METERS - 1) / METERS))
DAYS=$(awk -v i="$INTERVALS" 'BEGIN { printf "%.6f", i / 48 }')
say "meter-sim: $METERS meters × $INTERVALS half-hours at $RATE readings/s (~$SECONDS_MEASURING s), batch $BATCH"
T0=$SECONDS
"$METER_SIM" run --network-env "$BCAMI_RUN_DIR/network.env" --state "$OUT/state" --meters "$METERS" \
  --concentrators 2 --days "$DAYS" --batch "$BATCH" --rate "$RATE" --json --quiet \
  >"$OUT/meter-sim.json" 2>"$OUT/meter-sim.err" &
RUN_PID=$!

pending() { cat "$OUT"/state/meters/*.json 2>/dev/null | jq -s '[.[] | (.unconfirmed // []) | length] | add // 0'; }
committed() { if [[ -f "$OUT/state/sent.csv" ]]; then echo $(($(wc -l <"$OUT/state/sent.csv") - 1)); else echo 0; fi; }
echo "elapsed_s,pending,committed" >"$OUT/samples.csv"
sample() { echo "$((SECONDS - T0)),$(pending),$(committed)" >>"$OUT/samples.csv"; }
sleep_sampling() { # SECONDS
  local until=$((SECONDS + $1))
  while ((SECONDS < until)) && kill -0 "$RUN_PID" 2>/dev/null; do
    sample
    sleep 2
  done
}

until (($(committed) > 0)); do
  kill -0 "$RUN_PID" 2>/dev/null || {
    say "meter-sim exited early: $(tail -n 3 "$OUT/meter-sim.err")"
    exit 1
  }
  sleep 1
done
T_FLOW=$((SECONDS - T0))
sleep_sampling 60
"$NETWORK" stop-node operator-peer >/dev/null
"$NETWORK" stop-node utility-peer >/dev/null
T_DOWN=$((SECONDS - T0))
say "both peers stopped at ${T_DOWN} s for $MINUTES min"
sleep_sampling $((MINUTES * 60))
# start-node returns once gossip shows the peer the other org's peer: start both together.
"$NETWORK" start-node utility-peer >/dev/null &
UP=$!
"$NETWORK" start-node operator-peer >/dev/null
wait "$UP"
T_UP=$((SECONDS - T0))
BACKLOG=$(pending)
say "both peers back at ${T_UP} s; the meters hold $BACKLOG unconfirmed readings"
# Caught up: the meters hold no more than the live readings of the last 2 batches per lane.
LIVE=$((2 * BATCH))
T_CAUGHT=""
while kill -0 "$RUN_PID" 2>/dev/null; do
  sample
  p=$(pending)
  if [[ -z "$T_CAUGHT" ]] && ((p <= LIVE)); then
    T_CAUGHT=$((SECONDS - T0))
    say "caught up at ${T_CAUGHT} s: $((T_CAUGHT - T_UP)) s after the peers were back ($p pending)"
  fi
  sleep 2
done
RC=0
wait "$RUN_PID" || RC=$?
RUN_PID=""
T_END=$((SECONDS - T0))
sample
R=$OUT/meter-sim.json
summary=$(grep -m1 -E '^(complete|INCOMPLETE)' "$OUT/meter-sim.err" || echo "no summary")
{
  echo "# Long outage: both peers stopped $MINUTES min, $METERS meters at $RATE readings/s"
  echo
  echo "\`scripts/long-outage.sh $MINUTES $RATE\` (batch $BATCH, 2 concentrators, window 5 min), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| what | value |"
  echo "| --- | --- |"
  echo "| meter-sim | exit $RC: $summary |"
  echo "| readings flowing / peers stopped / back / caught up / run ended | ${T_FLOW} / ${T_DOWN} / ${T_UP} / ${T_CAUGHT:-never} / ${T_END} s |"
  echo "| held unconfirmed when the peers came back | $BACKLOG |"
  echo "| catch-up after the restart | $([[ -n "$T_CAUGHT" ]] && echo "$((T_CAUGHT - T_UP)) s" || echo never) |"
  for f in measured submitted committed resigned duplicates_suppressed lost pending resent_transactions mismatches conflicts readings_per_s; do
    echo "| $f | $(jq -r ".$f" "$R" 2>/dev/null) |"
  done
  echo "| latency p50/p95/p99/max (ms, per transaction) | $(jq -r '.latency | "\(.p50_ms|floor) / \(.p95_ms|floor) / \(.p99_ms|floor) / \(.max_ms|floor)"' "$R" 2>/dev/null) |"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
[[ "$RC" == 0 ]]
