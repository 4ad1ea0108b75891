#!/usr/bin/env bash
# BFT fault tolerance of the ordering service (issues 2 and 10):
#   4 orderers, f = 1. Kill ONE orderer (the view-0 leader) by pid: a transaction
#   still commits; restart it. Then kill TWO: the new leader (read from the orderers' /metrics)
#   and the leader of the view after it, so the survivors' view change aims at a dead leader: a
#   transaction does NOT commit within a bound and the CLI says so. Restart both: every node
#   converges to the same height and the transaction submitted without quorum is committed
#   (pending work not lost). This is quorum lost together with the leader, the case where the
#   2023 snapshot's SmartBFT livelocked in CI (RELIABILITY Findings 8: it lost orderer2, the
#   leader of view 1, and orderer3, the leader of view 2). The old leader returns first and
#   the next view's leader 30 s later, after the view change to it has timed out and escalated.
set -euo pipefail
TEST_NAME=bft-faults
# shellcheck source=tests/network/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
net_setup 7300
NO_QUORUM_BOUND=${NO_QUORUM_BOUND:-45}
# Seconds the restarted network may sit idle before traffic resumes (see "Converge" below).
IDLE_BOUND=${IDLE_BOUND:-60}

net up
envfile
read -r o1 o2 _ _ <<<"$BCAMI_ORDERER_ADDRESSES"

h=$(peer_height utility)
submit_tx utility "$o1" v1 120 || fail "baseline transaction did not commit with all 4 orderers up"
wait_peer_heights $((h + 1)) 60 || fail "peer heights did not grow after the baseline transaction"
pass "baseline transaction committed with 4/4 orderers"

kill "$(pid_of orderer1)"
log "killed orderer1 (pid $(pid_of orderer1), the view-0 leader)"
h=$(peer_height utility)
start=$SECONDS
# Leader crash: the followers complain after RequestComplainTimeout / heartbeat
# timeout (20 s) and change view; allow generously for a loaded machine.
submit_tx operator "$o2" v2 240 || fail "transaction did not commit with 3/4 orderers (f=1 crash tolerated?)"
wait_peer_heights $((h + 1)) 120 || fail "peer heights did not grow with 3/4 orderers"
pass "transaction committed with 3/4 orderers (leader down) in $((SECONDS - start)) s"

net start-node orderer1
log "restarted orderer1"
start=$SECONDS
until [[ "$(orderer_height orderer1)" == "$(orderer_height orderer3)" ]]; do
  ((SECONDS - start < 120)) || fail "orderer1 did not catch up within 120 s"
  sleep 1
done
leader=$(current_leader)
log "orderer1 caught up; the orderers report orderer$leader as leader (views: $(views))"
[[ "$leader" =~ ^[2-4]$ ]] || fail "after orderer1's crash the survivors should report a new leader, got '$leader'"
next=$((leader % 4 + 1))
kill "$(pid_of "orderer$leader")" "$(pid_of "orderer$next")"
log "killed orderer$leader (the leader) and orderer$next (the next view's leader); 2/4 orderers left, below the quorum of 3"
survivor=""
for n in 1 2 3 4; do
  if ((n != leader && n != next)); then survivor=$(cut -d' ' -f"$n" <<<"$BCAMI_ORDERER_ADDRESSES") && break; fi
done
h=$(peer_height utility)
rc=0
out=$(submit_tx utility "$survivor" v3-pending "$NO_QUORUM_BOUND" 2>&1) || rc=$?
log "CLI output: $(grep -m1 -E '^Error|timed out waiting' <<<"$out" || tail -n 1 <<<"$out")"
((rc != 0)) || fail "a transaction committed with only 2/4 orderers; BFT must not order without quorum"
[[ "$(peer_height utility)" == "$h" && "$(peer_height operator)" == "$h" ]] ||
  fail "a peer's height changed with only 2/4 orderers"
assert_deadline "$out" "the CLI reports that the transaction did not commit within ${NO_QUORUM_BOUND} s"
log "as expected: no commit within ${NO_QUORUM_BOUND} s with 2/4 orderers"
# The survivors' view change cannot complete without a quorum; every ViewChangeTimeout (20 s)
# they aim at a further view. Findings 8 needs the lost nodes to return after that escalation.
log "views of the survivors (installed/aimed at): $(views)"

# The worst order: the old leader returns first, so it and the survivors form a quorum for the
# view change to the next view, whose leader is still down; that view change times out
# (ViewChangeTimeout 20 s) and escalates to the view after, and only then does the next view's
# leader return, still in the old view.
net start-node "orderer$leader"
log "restarted orderer$leader; views $(views)"
sleep 30
log "30 s later, views $(views)"
net start-node "orderer$next"
log "restarted orderer$next; views $(views)"
# Converge: all 6 nodes at the same height, above h (the pending tx committed). An orderer that
# returns having missed exactly the last decision may wait for the next one before it syncs: seen
# once in CI under load (heights 4 4 4 3 4 4 for 300 s, the returning orderer idle one block
# behind; RELIABILITY.md Findings 8). So if the nodes have not converged after IDLE_BOUND s
# idle, the pending transaction must be on both peers, then traffic resumes (the post-recovery
# transaction), and every node must converge after it.
converged() { # HEIGHT: sets heights; true when all 6 nodes agree above HEIGHT
  heights=()
  for n in orderer1 orderer2 orderer3 orderer4; do heights+=("$(orderer_height "$n")"); done
  heights+=("$(peer_height utility || echo -)" "$(peer_height operator || echo -)")
  [[ $(printf '%s\n' "${heights[@]}" | sort -u | wc -l) == 1 && "${heights[0]}" =~ ^[0-9]+$ ]] &&
    ((heights[0] > $1))
}
pending_committed() {
  assert_eq "$(approved_version utility)" v3-pending "the transaction submitted without quorum was committed after the restart"
}
start=$SECONDS
resumed=""
until converged "$h"; do
  if [[ -z $resumed ]] && ((SECONDS - start >= IDLE_BOUND)); then
    log "not converged after $IDLE_BOUND s idle (heights ${heights[*]}): traffic resumes"
    wait_peer_heights $((h + 1)) 60 || fail "the pending transaction did not reach both peers within $((IDLE_BOUND + 60)) s of the restarts"
    pending_committed
    submit_tx utility "$o1" v4 240 || fail "transaction after recovery did not commit"
    pass "transaction after recovery committed"
    resumed=yes
  fi
  ((SECONDS - start < 300)) || fail "heights did not converge above $h within 300 s: ${heights[*]}"
  sleep 2
done
pass "all 6 nodes converged at height ${heights[0]} (> $h) in $((SECONDS - start)) s${resumed:+, after traffic resumed}; views $(views)"
panics=$(orderer_panics)
[[ -z "$panics" ]] || fail "an orderer panicked: $panics"
pass "no orderer panicked"
if [[ -z $resumed ]]; then
  pending_committed
  submit_tx utility "$o1" v4 240 || fail "transaction after recovery did not commit"
  pass "transaction after recovery committed"
fi

net down
