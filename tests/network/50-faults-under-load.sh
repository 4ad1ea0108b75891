#!/usr/bin/env bash
# Faults under load (issues 7 and 10), on a network of its own (port base 7200) with `bcami`
# deployed. The SmartBFT leader is read from the orderers' operations endpoints
# (consensus_BFT_leader_id on /metrics); without leader rotation it is orderer (view mod 4) + 1.
#   1. during a live `meter-sim run`: (a) crash (SIGKILL) the leader — nothing is ordered until
#      the followers change view (~20 s), so every in-flight transaction rides the view change —
#      and restart it; (b) once it is back, crash a follower and restart it; (c) right after that
#      follower's restart, while it is still catching up, crash the new leader, and restart it:
#      a view change with a freshly restarted node in it (where the 2023 snapshot's SmartBFT
#      panicked, RELIABILITY Findings 7). The run must finish; every reading the client was told
#      is committed must be on BOTH peers, verified and decrypted, no duplicates.
#   2. crash two followers of the current leader: a batch submitted now fails with a clear error
#      and nothing is written (heights and counts unchanged on both peers); restart both: the
#      network converges; then crash the leader (quorum is back, so 3 of 4 remain) and resubmit
#      the very same batch through the others: each reading lands on the ledger exactly once
#      (accepted now, or rejected as a replay if the pending transaction was ordered after the
#      restart); restart the leader and converge.
#   3. stop the Operator peer (the concentrators' gateway) during a live run and start it again:
#      the concentrators resend what failed meanwhile (meter-sim --retries) and lose nothing they
#      were told is committed; a resumed run afterwards commits everything; both peers' heights
#      converge.
#   4. kill the Operator's chaincode server (frozen with SIGSTOP while a 144-reading batch is sent
#      to it, then SIGKILL): the transaction fails as a whole (nothing ordered); restart the
#      server; the retried batch commits exactly once, and a second retry is rejected reading by
#      reading as a replay.
# An orderer that dies on its own (a panic) fails the suite at once, naming the panic; nothing is
# restarted that the test did not stop. (Losing quorum together with the leader, RELIABILITY
# Findings 8, is tests/network/20-bft-faults.sh.)
# Prints PASS/FAIL per check and a table of readings submitted / committed / on the ledger / lost
# (lost must be 0), also written to target/test-logs/faults-under-load.md.
# usage: tests/network/50-faults-under-load.sh    (FAULTS_PHASES="1 2 3 4", FAULTS_RATE=8,
# BCAMI_METER_SIM=a prebuilt meter-sim; default: cargo build --release)   Logs: the network's run dir (printed), and
# $BCAMI_RUN_DIR/faults/ (meter-sim reports, peer CLI outputs, exports).
set -euo pipefail
TEST_NAME=faults-under-load
# shellcheck source=tests/network/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
net_setup 7200
RATE=${FAULTS_RATE:-8}
PHASES=${FAULTS_PHASES:-1 2 3 4} # for development: run only some phases
want() { [[ " $PHASES " == *" $1 "* ]]; }
RUN1="| 1. skipped | | | |" RUN2="| 2. skipped | | | |" RUN3A="| 3. skipped | | | |" RUN3B="" RUN4="| 4. skipped | | | |"

TABLE=$REPO/target/test-logs/faults-under-load.md
mkdir -p "$(dirname "$TABLE")"
meter_sim_bin
# The contract's names, from bcami-api (scripts/contract-api.sh).
F_SUBMIT=$(contract_fn SUBMIT_READINGS)
F_COUNTS=$(contract_fn GET_COUNTS)
R_REPLAYED=$(contract_reason REPLAYED)

net up
net deploy
envfile
# shellcheck source=/dev/null
source "$BCAMI_RUN_DIR/chaincode/bcami/chaincode.env"
WORK=$BCAMI_RUN_DIR/faults
STATE=$WORK/state
mkdir -p "$WORK" "$STATE"
ENV=$BCAMI_RUN_DIR/network.env
MDMS_DIR=$BCAMI_RUN_DIR/mdms
# The same network seen through the Operator peer: meter-sim's MDMS reads from "the Utility
# peer", so point that at the Operator peer to read the Operator peer's copy of the ledger.
ENV_OP=$WORK/network-via-operator.env
sed -e "s|^export BCAMI_UTILITY_PEER_ADDRESS=.*|export BCAMI_UTILITY_PEER_ADDRESS=\"$BCAMI_OPERATOR_PEER_ADDRESS\"|" \
  -e "s|^export BCAMI_UTILITY_PEER_TLS_CA=.*|export BCAMI_UTILITY_PEER_TLS_CA=\"$BCAMI_OPERATOR_PEER_TLS_CA\"|" "$ENV" >"$ENV_OP"
# meter-sim reads the connection details from the network.json beside the env file it is given.
jq '.utility.peerAddress = .operator.peerAddress | .utility.peerTlsCa = .operator.peerTlsCa' \
  "$BCAMI_RUN_DIR/network.json" >"$WORK/network.json"
log "work dir $WORK"

read -r -a ORDERER_ADDRS <<<"$BCAMI_ORDERER_ADDRESSES" # orderer N (SmartBFT node N) at index N-1
SUBMITTED=0 # readings handed to the ledger by a client
CONFIRMED=0 # readings the client was told are committed (accepted, or rejected as already there)

# --- helpers -----------------------------------------------------------------------------------
ms() { "$METER_SIM" "$@"; }
# the Utility admin's queries, on either peer (the admin may read through both orgs' peers)
query_on() { # ORG FUNCTION ARGS...
  "$PEER_CLI" --via "$1" utility admin chaincode query -C ami -n bcami \
    -c "$(jq -cn --arg f "$2" '{Args: ([$f] + $ARGS.positional)}' --args "${@:3}")"
}
readings_on() { query_on "$1" "$F_COUNTS" 2>/dev/null | jq -r .readings 2>/dev/null || echo "?"; }
# invoke_batch LOG ORDERER WAIT JSON_ARRAY: the batch of readings as a DC (Operator client1)
invoke_batch() {
  "$PEER_CLI" operator client1 chaincode invoke -C ami -n bcami -o "$2" --tls --cafile "$BCAMI_ORDERER_TLS_CA" \
    -c "$(jq -cn --arg f "$F_SUBMIT" --arg a "$4" '{Args: [$f, $a]}')" --waitForEvent --waitForEventTimeout "$3" \
    >"$WORK/$1.log" 2>&1
}
leader_now() { # the current leader's number, waiting up to 120 s for the orderers to agree on one
  local l start=$SECONDS
  until l=$(current_leader) && [[ "$l" =~ ^[1-4]$ ]]; do
    ((SECONDS - start < 120)) || fail "the orderers report no SmartBFT leader on /metrics (views: $(views))"
    sleep 1
  done
  echo "$l"
}
leader_addr() { echo "${ORDERER_ADDRS[$(leader_now) - 1]}"; }
# invoke_until_committed LOG WAIT JSON_ARRAY: invoke_batch up to 5 attempts 3 s apart, until one
# commits VALID: first through the current leader, then through each other orderer in turn (as
# a client with several orderer endpoints would); each failure is logged with its reason.
invoke_until_committed() {
  local attempt leader addr
  leader=$(leader_now)
  for attempt in 1 2 3 4 5; do
    addr=${ORDERER_ADDRS[((leader - 1 + attempt - 1) % 4)]}
    invoke_batch "$1" "$addr" "$2" "$3" && return 0
    log "retry $attempt (via $addr): $(grep -m1 -oE 'committed with status \([A-Z_]+\)|Error:.*' "$WORK/$1.log" | cut -c1-200); again in 3 s"
    sleep 3
  done
  return 1
}
payload_of() { sed -n 's/.*result: status:200 *payload:"\(.*\)" *$/\1/p' "$WORK/$1.log" | tail -n1 | sed 's/\\"/"/g'; }
meter_ids() { for f in "$STATE"/meters/*.json; do basename "$f" .json; done; }
MDMS_PUB() { jq -r .public_key "$MDMS_DIR/mdms.json"; }
# batch_of N_PER_METER → JSON array of fresh readings, N per meter, built offline by the meters
batch_of() {
  local n=$1 id k pub out=()
  pub=$(MDMS_PUB)
  for id in $(meter_ids); do
    for ((k = 0; k < n; k++)); do
      out+=("$(ms tx reading --meter-id "$id" --state "$STATE" --energy-wh $((100 + k)) --mdms-public-key "$pub")")
    done
  done
  jq -cn '$ARGS.positional' --args "${out[@]}"
}
all_heights() {
  local n
  for n in orderer1 orderer2 orderer3 orderer4; do orderer_height "$n"; done
  peer_height utility || echo -
  peer_height operator || echo -
}
wait_converged() { # TIMEOUT → all 6 nodes at one height
  local start=$SECONDS h
  while true; do
    check_orderers
    mapfile -t h < <(all_heights)
    if [[ $(printf '%s\n' "${h[@]}" | sort -u | wc -l) == 1 && "${h[0]}" =~ ^[0-9]+$ ]]; then
      log "all 6 nodes at height ${h[0]} after $((SECONDS - start)) s"
      return 0
    fi
    ((SECONDS - start < $1)) || {
      log "heights not converged after $1 s (orderer1-4, utility, operator): ${h[*]}"
      report_dead_nodes
      return 1
    }
    sleep 2
  done
}
# report_dead_nodes: for every node whose process is gone, the panic or last line of its log.
report_dead_nodes() {
  local n pid why
  for n in orderer1 orderer2 orderer3 orderer4 utility-peer operator-peer; do
    pid=$(pid_of "$n" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && continue
    why=$(grep -m1 -E '^panic:|PANI' "$BCAMI_RUN_DIR/logs/$n.log" 2>/dev/null | cut -c1-250 || true)
    log "$n is not running: ${why:-$(tail -n 1 "$BCAMI_RUN_DIR/logs/$n.log" 2>/dev/null | cut -c1-250)}"
  done
}
# check_orderers: every orderer the test has not stopped itself is running and no orderer log
# holds a panic; otherwise the suite fails at once, naming the panic. STOPPED lists the orderers
# the test has stopped and not yet restarted.
STOPPED=" "
check_orderers() {
  local n pid panics
  panics=$(orderer_panics)
  [[ -z "$panics" ]] || fail "an orderer panicked: $panics"
  for n in orderer1 orderer2 orderer3 orderer4; do
    [[ "$STOPPED" == *" $n "* ]] && continue
    pid=$(pid_of "$n" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && continue
    fail "$n died by itself: $(tail -n 2 "$BCAMI_RUN_DIR/logs/$n.log" 2>/dev/null | cut -c1-250 | tr '\n' ' ')"
  done
}
crash() { # NODE...: SIGKILL the orderers, remembered as stopped
  local n
  for n in "$@"; do
    kill -KILL "$(pid_of "$n")"
    STOPPED+="$n "
  done
}
restart() { # NODE...: start the stopped orderers again
  local n
  for n in "$@"; do
    net start-node "$n" >/dev/null || fail "start-node $n failed"
    STOPPED=${STOPPED/ $n / }
  done
}
wait_peers_equal() { # TIMEOUT → both peers at one height
  local start=$SECONDS u o
  while true; do
    u=$(peer_height utility || echo -)
    o=$(peer_height operator || echo -)
    if [[ "$u" == "$o" && "$u" =~ ^[0-9]+$ ]]; then
      log "both peers at height $u"
      return 0
    fi
    ((SECONDS - start < $1)) || return 1
    sleep 1
  done
}
sent_lines() { if [[ -f "$STATE/sent.csv" ]]; then echo $(($(wc -l <"$STATE/sent.csv") - 1)); else echo 0; fi; }
wait_flowing() { # MIN_NEW_LINES TIMEOUT: readings are committing in the running meter-sim
  local base=$1 limit=$2 start=$SECONDS
  until (($(sent_lines) > base)); do
    kill -0 "$RUN_PID" 2>/dev/null ||
      fail "meter-sim $RUN_NAME exited before committing anything: $(tail -n 5 "$WORK/$RUN_NAME.err" | tr '\n' ' ')"
    ((SECONDS - start < limit)) ||
      fail "meter-sim $RUN_NAME committed nothing within $limit s; it says: $(tail -n 5 "$WORK/$RUN_NAME.err" | tr '\n' ' ')"
    sleep 1
  done
}
# start_run NAME DAYS: meter-sim in the background; its pid in RUN_PID. A run that dies before
# sending anything because discovery is not ready yet is started again (nothing was sent).
RUN_NAME=""
start_run() {
  local try
  RUN_NAME=$1
  for try in 1 2 3 4 5 6; do
    ms run --network-env "$ENV" --state "$STATE" --meters 12 --concentrators 2 --days "$2" --batch 12 \
      --rate "$RATE" --retries 8 --json --quiet >"$WORK/$1.json" 2>"$WORK/$1.err" &
    RUN_PID=$!
    log "meter-sim $1 started (pid $RUN_PID, 12 meters, $2 day(s), batch 12, $RATE readings/s; report $WORK/$1.json)"
    sleep 5
    if kill -0 "$RUN_PID" 2>/dev/null || ! grep -q 'no combination of peers' "$WORK/$1.err"; then
      return 0
    fi
    wait "$RUN_PID" || true
    log "meter-sim $1 (try $try): discovery not ready ($(grep -m1 -o 'no combination of peers[^:]*' "$WORK/$1.err")); again in 5 s"
    sleep 5
  done
  fail "meter-sim $1 could not start: $(tail -n 2 "$WORK/$1.err")"
}
finish_run() { # NAME TIMEOUT → sets RC; report fields in R_*
  local name=$1 limit=$2 start=$SECONDS
  while kill -0 "$RUN_PID" 2>/dev/null; do
    check_orderers
    if ((SECONDS - start >= limit)); then
      kill "$RUN_PID" 2>/dev/null || true
      fail "meter-sim $name did not finish within $limit s"
    fi
    sleep 1
  done
  RC=0
  wait "$RUN_PID" || RC=$?
  R_SUBMITTED=$(jq -r .submitted "$WORK/$name.json" 2>/dev/null || echo 0)
  R_COMMITTED=$(jq -r .committed "$WORK/$name.json" 2>/dev/null || echo 0)
  R_FAILED_TX=$(jq -r .failed_transactions "$WORK/$name.json" 2>/dev/null || echo "?")
  R_TX=$(jq -r .transactions "$WORK/$name.json" 2>/dev/null || echo "?")
  R_RESENT=$(jq -r '.resent_transactions // 0' "$WORK/$name.json" 2>/dev/null || echo "?")
  R_MISMATCH=$(jq -r '.mismatches // 0' "$WORK/$name.json" 2>/dev/null || echo "?")
  [[ "$R_SUBMITTED" =~ ^[0-9]+$ ]] || R_SUBMITTED=0
  [[ "$R_COMMITTED" =~ ^[0-9]+$ ]] || R_COMMITTED=0
  SUBMITTED=$((SUBMITTED + R_SUBMITTED))
  CONFIRMED=$((CONFIRMED + R_COMMITTED))
  log "meter-sim $name: exit $RC, submitted $R_SUBMITTED, committed $R_COMMITTED, transactions $R_TX (failed $R_FAILED_TX, resent $R_RESENT), MDMS mismatches $R_MISMATCH"
  grep -v '^\s*$' "$WORK/$name.err" | grep -iE 'fail|error|stopped' | head -n 5 | sed 's/^/    meter-sim: /' || true
}
# ledger_check LABEL: everything in sent.csv is on both peers (verified + decrypted by the MDMS),
# both peers hold the same readings, and the per-meter counters match the stored readings.
LOST=0
ledger_check() {
  local label=$1 org env exp missing mism failed n counts
  for org in utility operator; do
    env=$ENV
    [[ $org == operator ]] && env=$ENV_OP
    ms mdms export --network-env "$env" --mdms-state "$MDMS_DIR" --state "$STATE" --state-meters-only \
      --out "$WORK/export-$label-$org.csv" --json --quiet >"$WORK/export-$label-$org.json" 2>"$WORK/export-$label-$org.err" || true
    exp=$(jq -r .exported "$WORK/export-$label-$org.json" 2>/dev/null || echo "?")
    missing=$(jq -r '.sent_log.missing | length' "$WORK/export-$label-$org.json" 2>/dev/null || echo "?")
    mism=$(jq -r '.sent_log.mismatched | length' "$WORK/export-$label-$org.json" 2>/dev/null || echo "?")
    failed=$(jq -r '.failed | length' "$WORK/export-$label-$org.json" 2>/dev/null || echo "?")
    counts=$(readings_on "$org")
    n=$(sent_lines)
    [[ "$missing" =~ ^[0-9]+$ ]] || fail "$label: MDMS export from the $org peer failed: $(tail -n 3 "$WORK/export-$label-$org.err")"
    LOST=$((LOST + missing))
    assert_eq "$missing" 0 "$label: all $n readings the client was told are committed are on the $org peer (lost 0)"
    assert_eq "$mism/$failed" "0/0" "$label: every stored reading on the $org peer verifies and decrypts to what the meter sent"
    assert_eq "$counts" "$exp" "$label: $org peer: $F_COUNTS.readings ($counts) = readings stored ($exp): no duplicates"
  done
  cut -d, -f1-3 "$WORK/export-$label-utility.csv" | sort >"$WORK/keys-$label-utility"
  cut -d, -f1-3 "$WORK/export-$label-operator.csv" | sort >"$WORK/keys-$label-operator"
  cmp -s "$WORK/keys-$label-utility" "$WORK/keys-$label-operator" ||
    fail "$label: the two peers hold different readings: $(diff "$WORK/keys-$label-utility" "$WORK/keys-$label-operator" | head -n 4 | tr '\n' ' ')"
  pass "$label: both peers hold the same $(($(wc -l <"$WORK/keys-$label-utility") - 1)) readings"
  [[ $(sort "$WORK/keys-$label-utility" | uniq -d | wc -l) == 0 ]] || fail "$label: a reading appears twice in the export"
}

# --- 1. leader, follower, and leader again (next to a restarted node) under load ---------------
T0=$SECONDS
if want 1; then
T1=$SECONDS
start_run run1 1.5
wait_flowing 0 180
log "readings are committing; crash the leader in 5 s"
sleep 5
L1=orderer$(leader_now)
crash "$L1"
log "1a. SIGKILLed $L1 (the leader, views $(views)) at $(sent_lines) committed readings"
before=$(sent_lines)
sleep 25
check_orderers
restart "$L1"
log "1a. restarted $L1 at $(sent_lines) committed readings (+$(($(sent_lines) - before)) during the leader's absence); views $(views)"
sleep 5
L2=$(leader_now)
F=""
for n in 1 2 3 4; do
  if ((n != L2)) && [[ orderer$n != "$L1" ]]; then F=orderer$n && break; fi
done
crash "$F"
log "1b. SIGKILLed $F (a follower of orderer$L2; $L1 is back) at $(sent_lines) committed readings"
sleep 12
check_orderers
restart "$F"
crash "orderer$L2"
log "1c. restarted $F and at once SIGKILLed orderer$L2 (the leader): a view change with $F, still catching up, in it; views $(views)"
before=$(sent_lines)
sleep 25
check_orderers
restart "orderer$L2"
log "1c. restarted orderer$L2 at $(sent_lines) committed readings (+$(($(sent_lines) - before)) meanwhile); views $(views)"
finish_run run1 400
assert_eq "$RC" 0 "meter-sim run 1 finished (exit 0) through the leader's, a follower's and the next leader's crash"
assert_eq "$R_MISMATCH" 0 "run 1: meter-sim's own MDMS read-back found no mismatch or missing reading"
((R_COMMITTED > 0)) || fail "run 1 committed nothing"
RUN1="| 1. $L1 (leader) crashed 25 s; then $F (follower) 12 s; on $F's restart orderer$L2 (the next leader) 25 s; during one run | $R_SUBMITTED | $R_COMMITTED | $R_FAILED_TX of $R_TX (resends: $R_RESENT) |"
wait_converged 180 || fail "heights did not converge after run 1"
check_orderers
pass "phase 1: no orderer panicked or died by itself"
ledger_check run1
log "phase 1 took $((SECONDS - T1)) s"
fi

# --- 2. two followers down (no quorum), then the leader once quorum is back ---------------------
if want 2; then
T2=$SECONDS
X=$(batch_of 1)
NX=$(jq length <<<"$X")
hu=$(peer_height utility)
ho=$(peer_height operator)
cu=$(readings_on utility)
co=$(readings_on operator)
LEADER=$(leader_now)
FOLLOWERS=()
for n in 1 2 3 4; do ((n == LEADER)) || FOLLOWERS+=("$n"); done
K1=orderer${FOLLOWERS[1]} K2=orderer${FOLLOWERS[2]}
crash "$K1" "$K2"
log "SIGKILLed $K1 and $K2 (followers; orderer$LEADER leads): 2 of 4 orderers left, below the BFT quorum of 3"
rc=0
invoke_batch no-quorum "${ORDERER_ADDRS[LEADER - 1]}" 30s "$X" || rc=$?
SUBMITTED=$((SUBMITTED + NX))
msg=$(grep -m1 -E 'Error|timed out' "$WORK/no-quorum.log" || tail -n 1 "$WORK/no-quorum.log")
log "client said: $msg"
((rc != 0)) || fail "a batch was committed with 2 of 4 orderers down"
assert_deadline "$msg" "without quorum the submission fails with a clear error (commit not seen within 30 s)"
sleep 3
assert_eq "$(peer_height utility)/$(peer_height operator)" "$hu/$ho" "without quorum no block is written on either peer"
assert_eq "$(readings_on utility)/$(readings_on operator)" "$cu/$co" "without quorum no reading is half-written (counts unchanged on both peers)"
restart "$K1" "$K2"
log "restarted $K1 and $K2"
wait_converged 300 || fail "heights did not converge after restarting two orderers"
pass "all 6 nodes converged after the quorum came back"
after_restart=$(readings_on utility)
log "readings on the ledger after the restart: $after_restart (before the outage $cu; the pending batch of $NX $( ((after_restart == cu + NX)) && echo "was ordered after the restart" || echo "was not ordered"))"
# Quorum is back: now the leader goes (3 of 4 remain). The client retries through the other
# orderers until its transaction commits VALID. A retry may race the pending transaction, which
# may be ordered only now: then the retry is invalidated as a whole (MVCC_READ_CONFLICT) and
# tried again — never applied twice.
LEADER=$(leader_now)
crash "orderer$LEADER"
log "SIGKILLed orderer$LEADER (the leader, with the quorum back); views $(views)"
ORDERER_ADDRS_ALL=("${ORDERER_ADDRS[@]}")
ORDERER_ADDRS[LEADER - 1]=${ORDERER_ADDRS[LEADER % 4]} # the client knows the leader is gone
invoke_until_committed retry-x 120s "$X" || fail "retrying the batch with the leader down failed: $(tail -n 2 "$WORK/retry-x.log")"
ORDERER_ADDRS=("${ORDERER_ADDRS_ALL[@]}")
check_orderers
p=$(payload_of retry-x)
acc=$(jq -r .accepted <<<"$p")
rep=$(jq -r --arg r "$R_REPLAYED" '[.rejections[] | select(.reason == $r)] | length' <<<"$p")
assert_eq "$((acc + rep))" "$NX" "retried batch with the leader down: each of the $NX readings accepted ($acc) or already there ($R_REPLAYED: $rep)"
CONFIRMED=$((CONFIRMED + NX))
restart "orderer$LEADER"
wait_converged 300 || fail "heights did not converge after restarting the leader"
assert_eq "$(readings_on utility)/$(readings_on operator)" "$((cu + NX))/$((co + NX))" "the $NX readings are on both peers exactly once"
RUN2="| 2. $K1 + $K2 (followers) crashed (no quorum), batch submitted, both restarted; then orderer$LEADER (leader) crashed and the same batch retried | $NX | $NX | 1 of 2 (the no-quorum attempt) |"
log "phase 2 took $((SECONDS - T2)) s"
fi

# --- 3. the concentrators' peer restarted under load ------------------------------------------
if want 3; then
T3=$SECONDS
base=$(sent_lines)
start_run run2 0.5
wait_flowing "$base" 120
sleep 3
net stop-node operator-peer >/dev/null
log "stopped operator-peer (the concentrators' gateway) at $(($(sent_lines) - base)) readings of this run"
sleep 8
# start-node returns once gossip shows the restarted peer the Utility peer again: only then can
# its Gateway plan an endorsement by both orgs.
net start-node operator-peer >/dev/null
log "restarted operator-peer"
finish_run run2 400
log "run 2 (peer restart): exit $RC; $R_RESENT resend(s), $R_FAILED_TX transaction(s) failed for good"
assert_eq "$R_MISMATCH" 0 "run 2: meter-sim's MDMS read-back: nothing it was told is committed is missing"
# --retries 8 resends for up to 75 s: longer than the peer's outage plus its gossip (~40 s).
assert_eq "$R_FAILED_TX/$R_COMMITTED" "0/$R_SUBMITTED" "run 2: the concentrators resent what failed during the outage until every reading committed"
RUN3A="| 3a. operator-peer (the DCs' gateway) stopped 8 s during a run | $R_SUBMITTED | $R_COMMITTED | $R_FAILED_TX of $R_TX (resends: $R_RESENT) |"
wait_peers_equal 120 || fail "peer heights did not converge after the peer restart"
pass "both peers' heights converged after the peer restart"
start_run run3 0.25
finish_run run3 300
assert_eq "$RC/$R_FAILED_TX" "0/0" "run 3 (resumed after the peer restart): every transaction committed"
RUN3B="| 3b. resumed run after the peer restart, no fault | $R_SUBMITTED | $R_COMMITTED | $R_FAILED_TX of $R_TX |"
wait_converged 120 || fail "heights did not converge after run 3"
ledger_check run3
log "phase 3 took $((SECONDS - T3)) s"
fi

# --- 4. chaincode server killed mid-batch -------------------------------------------------------
if want 4; then
T4=$SECONDS
if [[ ! -d "$STATE/meters" ]]; then
  start_run setup 0.05
  finish_run setup 300
fi
Y=$(batch_of 12)
NY=$(jq length <<<"$Y")
cu=$(readings_on utility)
co=$(readings_on operator)
cc_pid=$(pid_of cc-bcami-operator)
# Deterministic "mid-batch": freeze the server (SIGSTOP), send the batch, and once the
# endorsement request is in flight to it, kill it (SIGKILL) — it dies holding the transaction.
kill -STOP "$cc_pid"
invoke_batch cc-killed "$(leader_addr)" 60s "$Y" &
inv=$!
sleep 5
kill -0 "$inv" 2>/dev/null || fail "the invoke ended while the Operator's chaincode server was frozen: $(tail -n 2 "$WORK/cc-killed.log")"
kill -KILL "$cc_pid"
rc=0
wait "$inv" || rc=$?
SUBMITTED=$((SUBMITTED + NY))
log "SIGKILLed the Operator's chaincode server (pid $cc_pid) holding the endorsement of $NY readings"
log "client said: $(grep -m1 -o 'Error:.*' "$WORK/cc-killed.log" | cut -c1-250)"
((rc != 0)) || fail "the batch committed although its endorser was killed mid-batch"
pass "the transaction failed as a whole (the invoke exited $rc, endorsement incomplete)"
net restart-chaincode bcami operator >/dev/null
log "restarted the Operator's chaincode server"
sleep 2
assert_eq "$(readings_on utility)/$(readings_on operator)" "$cu/$co" "nothing of the killed batch is on either peer"
invoke_until_committed retry-y 60s "$Y" || fail "the retried batch did not commit: $(tail -n 2 "$WORK/retry-y.log")"
p=$(payload_of retry-y)
assert_eq "$(jq -r .accepted <<<"$p")" "$NY" "the retried batch committed: all $NY readings accepted"
CONFIRMED=$((CONFIRMED + NY))
invoke_batch retry-y-again "$(leader_addr)" 60s "$Y" || fail "the second retry did not commit: $(tail -n 2 "$WORK/retry-y-again.log")"
p=$(payload_of retry-y-again)
assert_eq "$(jq -r --arg r "$R_REPLAYED" '"\(.accepted) \([.rejections[] | select(.reason == $r)] | length)"' <<<"$p")" "0 $NY" \
  "a second retry of the same batch: 0 accepted, all $NY rejected as $R_REPLAYED"
wait_peers_equal 60 || fail "peers did not reach the same height"
assert_eq "$(readings_on utility)/$(readings_on operator)" "$((cu + NY))/$((co + NY))" "the batch is on both peers exactly once"
RUN4="| 4. Operator chaincode server SIGKILLed mid-batch, restarted, batch retried twice | $NY | $NY | 1 of 3 (the killed one) |"
log "phase 4 took $((SECONDS - T4)) s"
fi

# --- totals ------------------------------------------------------------------------------------
ON_LEDGER=$(readings_on utility)
{
  echo "| fault | readings submitted | committed (client told) | transactions failed |"
  echo "| --- | ---: | ---: | --- |"
  echo "$RUN1"
  echo "$RUN2"
  echo "$RUN3A"
  [[ -z "$RUN3B" ]] || echo "$RUN3B"
  echo "$RUN4"
  echo
  echo "Totals: submitted $SUBMITTED, committed as the clients were told $CONFIRMED, on the ledger $ON_LEDGER (both peers), **lost $LOST**."
  echo "(On the ledger may exceed committed: a transaction whose commit the client did not see, for"
  echo "example during a view change or a peer restart, may still have been ordered; it is then"
  echo "stored once, and a retry of it is rejected as \`$R_REPLAYED\`.)"
  echo
  echo "Orderer panics: 0 (any would have failed the suite); orderers restarted other than by the test: 0."
} >"$TABLE"
cat "$TABLE"
assert_eq "$LOST" 0 "lost readings over all faults"
((ON_LEDGER >= CONFIRMED)) || fail "the ledger holds $ON_LEDGER readings, fewer than the $CONFIRMED confirmed"
pass "faults under load: submitted $SUBMITTED, confirmed $CONFIRMED, on the ledger $ON_LEDGER, lost 0 ($((SECONDS - T0)) s of faults; no orderer panicked)"
net down
