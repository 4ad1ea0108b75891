#!/usr/bin/env bash
# Network life cycle (issue 2): up; up again is a no-op; osnadmin shows all 4
# orderers with `ami` active; both peers joined; a transaction commits and both
# peers' heights grow; down leaves no process behind; down twice; up -> down -> up.
set -euo pipefail
TEST_NAME=lifecycle
# shellcheck source=tests/network/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
net_setup 7100

net up
envfile
pids_before=$(cat "$BCAMI_RUN_DIR"/pids/*.pid | sort | tr '\n' ' ')
assert_eq "$(wc -w <<<"$pids_before")" 6 "6 processes started (4 orderers, 2 peers)"

out=$(net up 2>&1)
assert_contains "$out" "already up" "up on a running network says so"
assert_eq "$(cat "$BCAMI_RUN_DIR"/pids/*.pid | sort | tr '\n' ' ')" "$pids_before" "up twice leaves the processes untouched"

status=$(net status)
log "status:"$'\n'"$status"
assert_eq "$(grep -c ' running ' <<<"$status")" 6 "status: 6 processes running"

for n in orderer1 orderer2 orderer3 orderer4; do
  info=$(orderer_info "$n")
  assert_eq "$(jq -r '"\(.name) \(.status) \(.consensusRelation)"' <<<"$info")" "ami active consenter" "osnadmin: $n has ami active as a consenter"
done
for org in utility operator; do
  assert_contains "$("$PEER_CLI" "$org" admin channel list 2>&1)" "ami" "$org peer has joined ami"
done

h=$(peer_height utility)
assert_ge "$h" 1 "utility peer height"
submit_tx utility "$BCAMI_ORDERER_ADDRESS" v1 120 || fail "transaction did not commit"
submit_tx operator "$BCAMI_ORDERER_ADDRESS" v1 120 || fail "transaction did not commit"
wait_peer_heights $((h + 2)) 60 || fail "peer heights did not grow by 2"
pass "two transactions committed; both peers' heights grew"

net down
[[ ! -e "$BCAMI_RUN_DIR" ]] || fail "down left $BCAMI_RUN_DIR behind"
for p in $pids_before; do
  ! kill -0 "$p" 2>/dev/null || fail "pid $p still running after down"
done
assert_eq "$(network_processes | wc -l)" 0 "down: no process of the network remains"
out=$(net down 2>&1) || fail "down twice failed: $out"
assert_contains "$out" "nothing to do" "down twice is fine"

net up
assert_eq "$(net status | grep -c ' running ')" 6 "up -> down -> up: 6 processes running"
submit_tx utility "$BCAMI_ORDERER_ADDRESS" v1 120 || fail "transaction did not commit on the second network"
pass "up -> down -> up: a transaction commits"
net down
assert_eq "$(network_processes | wc -l)" 0 "final down: no process of the network remains"
