#!/usr/bin/env bash
# Outages longer than the contract's acceptance window lose no reading (issue 18), on a network
# of its own (port base 7900) with `bcami` deployed and the window shortened to 30 s by the
# administrator's configuration call. Three outages, each ~45 s — longer than the window — while
# the meters keep measuring (meter-sim --rate), each in its own `meter-sim run` with its own
# meters:
#   A. the ordering service below quorum: two SmartBFT followers crashed (SIGKILL), restarted;
#   B. both peers stopped (nothing can endorse or read), restarted;
#   C. one concentrator cut off from the ledger (meter-sim --link-down), the other one working.
# After each: meter-sim exits 0 with lost = 0 and pending = 0 and at least one reading re-signed
# (a reading signed before the outage is outside the window after it); its own MDMS read-back
# finds every committed reading as sent; and `meter-sim mdms export` of that run's meters writes exactly one
# row per (meter, interval), as many as the meters measured, no conflict, no gap, nothing the
# meters' log does not match.
# Prints PASS/FAIL per check and a table of measured / submitted / committed / re-signed /
# duplicate-suppressed / lost per outage, also written to target/test-logs/outage.md.
# usage: tests/network/70-outage.sh   (OUTAGE_PHASES="A B C", OUTAGE_SECONDS=45, BCAMI_METER_SIM=a
# prebuilt meter-sim; default: cargo build --release)   Logs: the network's run dir (printed),
# and $BCAMI_RUN_DIR/outage/ (meter-sim reports and stderr, exports).
set -euo pipefail
TEST_NAME=outage
# shellcheck source=tests/network/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
net_setup 7900
PHASES=${OUTAGE_PHASES:-A B C}
OUTAGE=${OUTAGE_SECONDS:-45}
WINDOW_MS=30000
want() { [[ " $PHASES " == *" $1 "* ]]; }

TABLE=$REPO/target/test-logs/outage.md
mkdir -p "$(dirname "$TABLE")"
meter_sim_bin
((OUTAGE * 1000 > WINDOW_MS)) || fail "OUTAGE_SECONDS=$OUTAGE is not longer than the ${WINDOW_MS} ms window"

net up
net deploy
envfile
WORK=$BCAMI_RUN_DIR/outage
mkdir -p "$WORK"
ENV=$BCAMI_RUN_DIR/network.env
MDMS_DIR=$BCAMI_RUN_DIR/mdms
log "work dir $WORK"
ms() { "$METER_SIM" "$@"; }

# --- the acceptance window: 30 s before the transaction's timestamp, 60 s after --------------
F_CONFIGURE=$(contract_fn CONFIGURE)
F_GET_CONFIG=$(contract_fn GET_CONFIG)
CONFIG=$(jq -cn --argjson past "$WINDOW_MS" '{window: {pastMs: $past, futureMs: 60000}}')
"$PEER_CLI" utility admin chaincode invoke -C ami -n bcami \
  -c "$(jq -cn --arg f "$F_CONFIGURE" --arg c "$CONFIG" '{Args: [$f, $c]}')" --waitForEvent >"$WORK/configure.log" 2>&1 ||
  fail "$F_CONFIGURE $CONFIG: $(tail -n 3 "$WORK/configure.log")"
"$PEER_CLI" utility admin chaincode query -C ami -n bcami -c "$(jq -cn --arg f "$F_GET_CONFIG" '{Args: [$f]}')" >"$WORK/config.json" 2>"$WORK/config.err" ||
  fail "$F_GET_CONFIG: $(tail -n 2 "$WORK/config.err")"
assert_eq "$(jq -r .window.pastMs "$WORK/config.json")" "$WINDOW_MS" "the acceptance window is ${WINDOW_MS} ms ($F_CONFIGURE)"

# --- helpers -----------------------------------------------------------------------------------
# The meters measure 8 × 36 half-hours at 4 readings/s (~72 s): the outage falls in the middle.
METERS=8 DAYS=0.75 RATE=4
RUN_PID="" RUN_NAME=""
start_run() { # NAME EXTRA_ARGS...: meter-sim in the background, its own state folder and meters
  local name=$1 try
  shift
  RUN_NAME=$name
  mkdir -p "$WORK/$name"
  for try in 1 2 3 4 5 6; do
    ms run --network-env "$ENV" --state "$WORK/$name/state" --meter-prefix "OUT$name" --meters "$METERS" \
      --concentrators 2 --days "$DAYS" --batch 8 --rate "$RATE" --json --quiet "$@" \
      >"$WORK/$name/report.json" 2>"$WORK/$name/stderr.log" &
    RUN_PID=$!
    log "meter-sim $name started (pid $RUN_PID, $METERS meters measuring at $RATE readings/s; log $WORK/$name/stderr.log)"
    sleep 5
    if kill -0 "$RUN_PID" 2>/dev/null || ! grep -q 'no combination of peers' "$WORK/$name/stderr.log"; then
      return 0
    fi
    wait "$RUN_PID" || true
    log "meter-sim $name (try $try): discovery not ready; again in 5 s"
    sleep 5
  done
  fail "meter-sim $name could not start: $(tail -n 2 "$WORK/$name/stderr.log")"
}
committed_lines() { # readings the running meter-sim was told are committed
  local f=$WORK/$RUN_NAME/state/sent.csv
  if [[ -f "$f" ]]; then echo $(($(wc -l <"$f") - 1)); else echo 0; fi
}
wait_flowing() { # TIMEOUT: the running meter-sim has committed something
  local start=$SECONDS
  until (($(committed_lines) > 0)); do
    kill -0 "$RUN_PID" 2>/dev/null || fail "meter-sim $RUN_NAME exited early: $(tail -n 3 "$WORK/$RUN_NAME/stderr.log" | tr '\n' ' ')"
    ((SECONDS - start < $1)) || fail "meter-sim $RUN_NAME committed nothing within $1 s: $(tail -n 3 "$WORK/$RUN_NAME/stderr.log" | tr '\n' ' ')"
    sleep 1
  done
}
ROWS=()
# finish_run TIMEOUT LABEL: wait for meter-sim; check its report and the MDMS export of its meters.
finish_run() {
  local limit=$1 label=$2 start=$SECONDS rc=0 r=$WORK/$RUN_NAME/report.json e=$WORK/$RUN_NAME/export
  while kill -0 "$RUN_PID" 2>/dev/null; do
    if ((SECONDS - start >= limit)); then
      kill "$RUN_PID" 2>/dev/null || true
      fail "meter-sim $RUN_NAME did not finish within $limit s: $(tail -n 3 "$WORK/$RUN_NAME/stderr.log" | tr '\n' ' ')"
    fi
    sleep 1
  done
  wait "$RUN_PID" || rc=$?
  log "meter-sim $RUN_NAME: $(grep -m1 -E '^(complete|INCOMPLETE)' "$WORK/$RUN_NAME/stderr.log" || echo 'no summary')"
  grep -E 'unreachable|back after|gave up' "$WORK/$RUN_NAME/stderr.log" | sed -n '1p;$p' | sed 's/^/    meter-sim: /' || true
  assert_eq "$rc" 0 "$RUN_NAME: meter-sim exits 0 (nothing lost, nothing pending)"
  local measured submitted committed resigned dups lost pending
  measured=$(jq -r .measured "$r") submitted=$(jq -r .submitted "$r") committed=$(jq -r .committed "$r")
  resigned=$(jq -r .resigned "$r") dups=$(jq -r .duplicates_suppressed "$r") lost=$(jq -r .lost "$r") pending=$(jq -r .pending "$r")
  assert_eq "$measured" "$((METERS * 36))" "$RUN_NAME: the meters measured every interval through the outage"
  assert_eq "$lost/$pending" "0/0" "$RUN_NAME: lost 0, pending 0"
  assert_eq "$committed" "$measured" "$RUN_NAME: every measured reading committed"
  assert_ge "$resigned" 1 "$RUN_NAME: readings that outlived the ${WINDOW_MS} ms window were re-signed ($resigned)"
  assert_eq "$(jq -r '.mismatches' "$r")/$(jq -r .conflicts "$r")" "0/0" "$RUN_NAME: meter-sim's MDMS read-back: every committed reading as sent, no conflict"
  ms mdms export --network-env "$ENV" --mdms-state "$MDMS_DIR" --state "$WORK/$RUN_NAME/state" --state-meters-only \
    --out "$e.csv" --json --quiet >"$e.json" 2>"$e.err" || fail "$RUN_NAME: mdms export failed: $(tail -n 3 "$e.err" | tr '\n' ' ')"
  assert_eq "$(jq -r .exported "$e.json")" "$measured" "$RUN_NAME: the MDMS exports one row per measured interval"
  # one row per (meter, interval): columns hid,meter_id,timestamp_ms,interval_start_ms,…
  assert_eq "$(tail -n +2 "$e.csv" | cut -d, -f1,4 | sort -u | wc -l)" "$measured" "$RUN_NAME: each (meter, interval) exactly once in the CSV"
  assert_eq "$(jq -r '.conflicts | length' "$e.json")/$(jq -r '.gaps | length' "$e.json")/$(jq -r '.failed | length' "$e.json")" "0/0/0" \
    "$RUN_NAME: export has no conflict, no gap, no failed reading"
  assert_eq "$(jq -r '.sent_log.mismatched | length' "$e.json")/$(jq -r '.sent_log.missing | length' "$e.json")" "0/0" \
    "$RUN_NAME: export values identical to what the meters signed"
  ROWS+=("| $label | $measured | $submitted | $committed | $resigned | $dups | $lost |")
}
leader() { # the SmartBFT leader's number, waiting up to 120 s for the orderers to agree
  local l start=$SECONDS
  until l=$(current_leader) && [[ "$l" =~ ^[1-4]$ ]]; do
    ((SECONDS - start < 120)) || fail "the orderers report no SmartBFT leader on /metrics (views: $(views))"
    sleep 1
  done
  echo "$l"
}

# --- A. the ordering service below quorum -----------------------------------------------------
if want A; then
  start_run A
  wait_flowing 120
  L=$(leader)
  mapfile -t F < <(for n in 1 2 3 4; do ((n == L)) || echo "$n"; done)
  K1=orderer${F[0]} K2=orderer${F[1]}
  kill -KILL "$(pid_of "$K1")" "$(pid_of "$K2")"
  log "crashed $K1 and $K2 (followers of orderer$L): 2 of 4 orderers, below quorum, for $OUTAGE s"
  sleep "$OUTAGE"
  net start-node "$K1" >/dev/null || fail "start-node $K1"
  net start-node "$K2" >/dev/null || fail "start-node $K2"
  log "restarted $K1 and $K2"
  finish_run 600 "A. $K1 + $K2 crashed (below quorum) ${OUTAGE} s"
  [[ -z "$(orderer_panics)" ]] || fail "an orderer panicked: $(orderer_panics)"
fi

# --- B. both peers stopped --------------------------------------------------------------------
if want B; then
  start_run B
  wait_flowing 120
  net stop-node operator-peer >/dev/null
  net stop-node utility-peer >/dev/null
  log "stopped both peers for $OUTAGE s"
  sleep "$OUTAGE"
  # start-node returns once gossip shows the peer the other org's peer: start both together.
  net start-node utility-peer >/dev/null &
  UP=$!
  net start-node operator-peer >/dev/null || fail "start-node operator-peer"
  wait "$UP" || fail "start-node utility-peer"
  log "restarted both peers"
  finish_run 600 "B. both peers stopped ${OUTAGE} s"
fi

# --- C. one concentrator cut off --------------------------------------------------------------
if want C; then
  # Concentrator 1's link is cut 10 s into the readings phase, for OUTAGE s; concentrator 0
  # keeps delivering its meters' readings meanwhile.
  start_run C --link-down "1:10:$OUTAGE"
  wait_flowing 120
  finish_run 600 "C. concentrator 1 cut off ${OUTAGE} s (--link-down)"
  grep -q 'link to the ledger is down' "$WORK/C/stderr.log" || fail "C: concentrator 1 never saw its link down"
  pass "C: concentrator 1 was cut off and caught up"
fi

{
  echo "# Outages longer than the acceptance window (${WINDOW_MS} ms): tests/network/70-outage.sh"
  echo
  echo "$METERS meters measuring at $RATE readings/s, 2 concentrators, batch 8; each outage ${OUTAGE} s."
  echo
  echo "| outage | measured | submitted | committed | re-signed | duplicate-suppressed | lost |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${ROWS[@]}"
} >"$TABLE"
cat "$TABLE"
log "PASS (table in $TABLE)"
