#!/usr/bin/env bash
# Soak test (not part of CI): drives `meter-sim run` at a fixed rate for N minutes against a
# network with `bcami` deployed and samples the resident memory (VmRSS) of every Fabric process,
# every chaincode server and meter-sim itself at the start and then once a minute, into a CSV.
#
# usage: scripts/soak.sh [MINUTES] [READINGS_PER_SECOND]     (default 10 minutes, 20 readings/s)
#
# The network: $BCAMI_RUN_DIR (default <repo>/run) if it is up and has `bcami` deployed;
# otherwise the script brings up its own (scripts/network.sh up + deploy, port base
# SOAK_PORT_BASE, default 7700, run dir /tmp/bcami-soak-<pid>/run) and takes it down at the end.
# Environment: SOAK_METERS (default 50), SOAK_BATCH (default 50), SOAK_SAMPLE_S (default 60),
#              SOAK_OUT (default <repo>/target/soak).
# Output: $SOAK_OUT/rss.csv (elapsed_s,committed,process,pid,rss_kib), $SOAK_OUT/summary.md
# (first / peak / last RSS per process, readings committed), meter-sim's report in
# $SOAK_OUT/meter-sim.json and its log in meter-sim.err.
# Exit: 0 the run finished with no failed transaction and no MDMS mismatch; 1 otherwise; 2 usage.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
MINUTES=${1:-10}
RATE=${2:-20}
if [[ ! "$MINUTES" =~ ^[0-9]+$ || ! "$RATE" =~ ^[0-9]+$ ]] || ((MINUTES == 0 || RATE == 0)); then
  echo "usage: scripts/soak.sh [MINUTES] [READINGS_PER_SECOND]" >&2
  exit 2
fi
METERS=${SOAK_METERS:-50}
BATCH=${SOAK_BATCH:-50}
SAMPLE_S=${SOAK_SAMPLE_S:-60}
OUT=${SOAK_OUT:-$REPO/target/soak}
say() { printf 'soak: %s\n' "$*"; }

RUN=${BCAMI_RUN_DIR:-$REPO/run}
OWN=0
if [[ ! -f "$RUN/network.env" || ! -f "$RUN/chaincode/bcami/chaincode.env" ]]; then
  OWN=1
  say "no network with bcami in $RUN"
  RUN=/tmp/bcami-soak-$$/run
  export BCAMI_PORT_BASE=${SOAK_PORT_BASE:-7700}
fi
export BCAMI_RUN_DIR=$RUN
MS_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$MS_PID" ]]; then kill "$MS_PID" 2>/dev/null || true; fi
  if ((OWN)); then
    say "taking down the soak network in $RUN"
    "$SCRIPT_DIR/network.sh" down >/dev/null 2>&1 || true
    rmdir "$(dirname "$RUN")" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ((OWN)); then
  say "bringing up a soak network (port base $BCAMI_PORT_BASE, run dir $RUN)"
  "$SCRIPT_DIR/network.sh" up
  "$SCRIPT_DIR/network.sh" deploy
fi

say "building meter-sim (cargo build --release -p meter-sim)"
(cd "$REPO" && cargo build --release -q -p meter-sim)
METER_SIM=${CARGO_TARGET_DIR:-$REPO/target}/release/meter-sim

rm -rf "$OUT"
mkdir -p "$OUT"
STATE=$OUT/state
# Enough readings for MINUTES at RATE: METERS meters × intervals of 30 min.
READINGS=$((RATE * 60 * MINUTES))
DAYS=$(awk -v r="$READINGS" -v m="$METERS" 'BEGIN { printf "%.4f", r / m / 48 }')
say "$MINUTES min at $RATE readings/s: $READINGS readings, $METERS meters × $DAYS days, batches of $BATCH"
say "network $RUN; output in $OUT (rss.csv, summary.md, meter-sim.json, meter-sim.err)"
start_meter_sim() {
  "$METER_SIM" run --network-env "$RUN/network.env" --state "$STATE" --meters "$METERS" --concentrators 2 \
    --days "$DAYS" --batch "$BATCH" --rate "$RATE" --json --quiet >"$OUT/meter-sim.json" 2>>"$OUT/meter-sim.err" &
  MS_PID=$!
}
# A run that fails while provisioning/registering (before any reading) is started again: the
# state folder remembers what was done, and nothing was sent yet.
for try in 1 2 3 4 5; do
  start_meter_sim
  for ((i = 0; i < 60; i++)); do
    kill -0 "$MS_PID" 2>/dev/null || break
    [[ -s "$STATE/sent.csv" ]] && break
    sleep 1
  done
  if kill -0 "$MS_PID" 2>/dev/null; then break; fi
  wait "$MS_PID" || true
  say "meter-sim stopped during setup (try $try): $(tail -n 1 "$OUT/meter-sim.err" | cut -c1-300); again in 5 s"
  MS_PID=""
  sleep 5
done
[[ -n "$MS_PID" ]] || {
  say "FAIL: meter-sim could not get past setup; see $OUT/meter-sim.err"
  exit 1
}

CSV=$OUT/rss.csv
echo "elapsed_s,committed,process,pid,rss_kib" >"$CSV"
committed() { if [[ -f "$STATE/sent.csv" ]]; then echo $(($(wc -l <"$STATE/sent.csv") - 1)); else echo 0; fi; }
sample() {
  local t=$1 f name pid rss c
  c=$(committed)
  for f in "$RUN"/pids/*.pid; do
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    echo "$t,$c,$name,$pid,${rss:-0}" >>"$CSV"
  done
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$MS_PID/status" 2>/dev/null || true)
  [[ -n "$rss" ]] && echo "$t,$c,meter-sim,$MS_PID,$rss" >>"$CSV"
  say "t=${t}s committed=$c $(grep "^$t," "$CSV" | awk -F, '{ printf "%s=%dM ", $3, $5 / 1024 }')"
}
START=$SECONDS
next=0
LIMIT=$((MINUTES * 60 * 2 + 300)) # the run may lag its rate; give up well after
while kill -0 "$MS_PID" 2>/dev/null; do
  t=$((SECONDS - START))
  if ((t >= next)); then
    sample "$t"
    next=$((next + SAMPLE_S))
  fi
  if ((t > LIMIT)); then
    say "meter-sim still running after $t s; stopping it"
    kill "$MS_PID" 2>/dev/null || true
    break
  fi
  sleep 1
done
rc=0
wait "$MS_PID" || rc=$?
MS_PID=""
sample "$((SECONDS - START))"

jq_or() { jq -r "$1" "$OUT/meter-sim.json" 2>/dev/null || echo "?"; }
{
  echo "Soak: $MINUTES min planned at $RATE readings/s, ran $((SECONDS - START)) s; meter-sim exit $rc;"
  echo "submitted $(jq_or .submitted), committed $(jq_or .committed), failed transactions $(jq_or .failed_transactions) of $(jq_or .transactions),"
  echo "$(jq_or .readings_per_s) readings/s, MDMS mismatches $(jq_or '.mismatches // "?"'). RSS in MiB:"
  echo
  echo "| process | first | peak | last | last − first |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  awk -F, 'NR > 1 {
      if (!($3 in first)) { first[$3] = $5; order[++n] = $3 }
      if ($5 > peak[$3]) peak[$3] = $5
      last[$3] = $5
    }
    END { for (i = 1; i <= n; i++) { p = order[i]
      printf "| %s | %.0f | %.0f | %.0f | %+.0f |\n", p, first[p] / 1024, peak[p] / 1024, last[p] / 1024, (last[p] - first[p]) / 1024 } }' "$CSV"
  echo
  echo "Per-minute samples (MiB):"
  echo
  awk -F, 'NR > 1 { if (!($1 in t)) { t[$1] = 1; ts[++m] = $1 }
      c[$1] = $2; v[$1 "," $3] = $5; if (!($3 in seen)) { seen[$3] = 1; procs[++n] = $3 } }
    END {
      printf "| t (s) | committed |"; for (i = 1; i <= n; i++) printf " %s |", procs[i]; printf "\n| ---: | ---: |"
      for (i = 1; i <= n; i++) printf " ---: |"; printf "\n"
      for (j = 1; j <= m; j++) { k = ts[j]; printf "| %s | %s |", k, c[k]
        for (i = 1; i <= n; i++) printf " %.0f |", v[k "," procs[i]] / 1024; printf "\n" }
    }' "$CSV"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
failed=$(jq_or .failed_transactions)
mism=$(jq_or '.mismatches // 0')
if ((rc == 0)) && [[ "$failed" == 0 && "$mism" == 0 ]]; then
  say "PASS: the soak run finished with no failed transaction and no MDMS mismatch"
else
  say "FAIL: meter-sim exit $rc, failed transactions $failed, MDMS mismatches $mism (see $OUT/meter-sim.err)"
  exit 1
fi
