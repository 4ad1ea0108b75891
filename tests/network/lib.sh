#!/usr/bin/env bash
# Shared helpers for the network tests. Source it; it expects TEST_NAME and
# sets up a private network location (port base + run dir) for the test.
#   BCAMI_PORT_BASE  defaults to a per-test value passed to net_setup
#   BCAMI_RUN_DIR    defaults to a fresh temp dir
# shellcheck disable=SC2034
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LIB_DIR/../.." && pwd)
NETWORK=$REPO/scripts/network.sh
PEER_CLI=$REPO/scripts/peer-cli.sh
# shellcheck source=scripts/contract-api.sh
source "$REPO/scripts/contract-api.sh"

log() { printf '[%s] %s\n' "${TEST_NAME:-test}" "$*"; }
fail() {
  printf '[%s] FAIL: %s\n' "${TEST_NAME:-test}" "$*" >&2
  exit 1
}
pass() { printf '[%s] ok: %s\n' "${TEST_NAME:-test}" "$*"; }

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() { [[ "$1" == "$2" ]] || fail "$3: expected '$2', got '$1'"; pass "$3"; }
# assert_ge ACTUAL MIN WHAT
assert_ge() {
  [[ "$1" =~ ^[0-9]+$ ]] || fail "$3: '$1' is not a number"
  (($1 >= $2)) || fail "$3: expected >= $2, got $1"
  pass "$3"
}
# assert_contains HAYSTACK NEEDLE WHAT
assert_contains() { [[ "$1" == *"$2"* ]] || fail "$3: output does not contain '$2': $1"; pass "$3"; }
# assert_deadline OUTPUT CHECK: the peer CLI gave up waiting for the commit. It words its deadline
# "timed out waiting for txid" or, when the deadline hit while the peer was delivering,
# "context deadline exceeded" (DeadlineExceeded), depending on timing.
assert_deadline() {
  [[ "$1" =~ timed\ out|[Dd]eadline\ ?[Ee]xceeded ]] || fail "$2: not a deadline error: $1"
  pass "$2"
}

# net_setup PORT_BASE: private port base and run dir; down on exit.
# meter_sim_bin: sets METER_SIM to $BCAMI_METER_SIM (scripts/test.sh sets it to the build it
# made), or to a release build made now; and loads the contract's names from it
# (scripts/contract-api.sh: contract_fn, contract_reason).
meter_sim_bin() {
  if [[ -n "${BCAMI_METER_SIM:-}" ]]; then
    METER_SIM=$BCAMI_METER_SIM
  else
    log "building meter-sim (cargo build --release -p meter-sim)"
    (cd "$REPO" && cargo build --release -q -p meter-sim) || fail "cargo build --release -p meter-sim"
    METER_SIM=${CARGO_TARGET_DIR:-$REPO/target}/release/meter-sim
  fi
  [[ -x "$METER_SIM" ]] || fail "meter-sim: $METER_SIM is not an executable"
  contract_api_load "$METER_SIM" || fail "meter-sim api"
}

net_setup() {
  export BCAMI_PORT_BASE=${BCAMI_PORT_BASE:-$1}
  if [[ -z "${BCAMI_RUN_DIR:-}" ]]; then
    BCAMI_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bcami-${TEST_NAME:-test}.XXXXXX")/run
  fi
  export BCAMI_RUN_DIR
  trap net_teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  log "port base $BCAMI_PORT_BASE, run dir $BCAMI_RUN_DIR"
}
net_teardown() {
  local rc=$?
  if [[ -d "$BCAMI_RUN_DIR" ]]; then
    if ((rc != 0)); then
      log "test failed; last lines of the node logs:"
      tail -n 5 "$BCAMI_RUN_DIR"/logs/*.log 2>/dev/null | sed 's/^/    /' || true
    fi
    "$NETWORK" down >/dev/null 2>&1 || true
  fi
  rmdir "$(dirname "$BCAMI_RUN_DIR")" 2>/dev/null || true
  exit "$rc"
}

net() { "$NETWORK" "$@"; }

envfile() {
  # shellcheck source=/dev/null
  source "$BCAMI_RUN_DIR/network.env"
}

pid_of() { cat "$BCAMI_RUN_DIR/pids/$1.pid"; }

# Height of `ami` as seen by a peer (utility|operator).
peer_height() {
  "$PEER_CLI" "$1" admin channel getinfo -c ami 2>/dev/null | sed -n 's/^Blockchain info: //p' | jq -r .height
}
# Height and status of `ami` on an orderer (orderer1..4), via osnadmin.
orderer_info() {
  envfile
  local admin i=${1#orderer}
  admin=$(cut -d' ' -f"$i" <<<"$BCAMI_ORDERER_ADMIN_ADDRESSES")
  "$BCAMI_FABRIC_BIN/osnadmin" channel list --channelID ami -o "$admin" --ca-file "$BCAMI_ORDERER_TLS_CA" \
    --client-cert "$BCAMI_ORDERER_ADMIN_TLS_CERT" --client-key "$BCAMI_ORDERER_ADMIN_TLS_KEY" --no-status
}
orderer_height() { orderer_info "$1" 2>/dev/null | jq -r .height 2>/dev/null || echo -; }

# wait_peer_heights MIN TIMEOUT: both peers reach MIN within TIMEOUT seconds.
wait_peer_heights() {
  local min=$1 limit=$2 start=$SECONDS u o
  while true; do
    u=$(peer_height utility || true)
    o=$(peer_height operator || true)
    if [[ "$u" =~ ^[0-9]+$ && "$o" =~ ^[0-9]+$ ]] && ((u >= min && o >= min)); then
      log "peer heights utility=$u operator=$o (>= $min after $((SECONDS - start)) s)"
      return 0
    fi
    if ((SECONDS - start >= limit)); then
      log "peer heights utility=$u operator=$o: still below $min after $limit s"
      return 1
    fi
    sleep 1
  done
}

# submit_tx ORG ORDERER_ADDRESS VERSION WAIT_SECONDS: commits a transaction that
# needs no chaincode server: ORG's admin approves a definition of the test-only
# chaincode `nettest` (sequence 1, never committed) with the given version. Each
# call with a new version is a new endorsed transaction and a new block. The CLI
# waits up to WAIT_SECONDS for the commit event; exit 0 means committed on ORG's
# peer. (A channel config update would do too, but needs both orgs' and the orderers'
# signatures; an approval needs one admin.)
submit_tx() {
  local org=$1 orderer=$2 version=$3 wait=$4
  envfile
  "$PEER_CLI" "$org" admin lifecycle chaincode approveformyorg -C ami -n nettest -v "$version" \
    --sequence 1 -o "$orderer" --tls --cafile "$BCAMI_ORDERER_TLS_CA" --waitForEventTimeout "${wait}s"
}

# approved_version ORG: the version of ORG's approval of `nettest`, as committed.
approved_version() {
  "$PEER_CLI" "$1" admin lifecycle chaincode queryapproved -C ami -n nettest -O json 2>/dev/null |
    jq -r '.version // empty'
}

# Pids of the running processes of this test's network: network.sh marks every
# process it starts with BCAMI_NETWORK_PROCESS=<run dir> in its environment.
network_processes() {
  local f
  for f in /proc/[0-9]*/environ; do
    if grep -qazxF -e "BCAMI_NETWORK_PROCESS=$BCAMI_RUN_DIR" "$f" 2>/dev/null; then
      basename "$(dirname "$f")"
    fi
  done
  return 0
}

org_var() { # ORG NAME -> value of BCAMI_<ORG>_<NAME>
  local v="BCAMI_${1^^}_$2"
  echo "${!v}"
}

# A PATH with every directory that holds a `go` executable removed.
path_without_go() {
  local d out=""
  local IFS=:
  for d in $PATH; do
    [[ -x "$d/go" ]] && continue
    out+="${out:+:}$d"
  done
  echo "$out"
}

# Operations endpoints (/metrics, plain HTTP): orderer N at BASE+20+N-1, peers at BASE+32, +42.
ops_port() { # orderer1..4 | utility | operator
  case $1 in
    orderer[1-4]) echo $((BCAMI_PORT_BASE + 19 + ${1#orderer})) ;;
    utility) echo $((BCAMI_PORT_BASE + 32)) ;;
    operator) echo $((BCAMI_PORT_BASE + 42)) ;;
  esac
}
# node_metric NODE NAME: the value of NAME{channel="ami"} on NODE's /metrics; empty if absent or
# the node does not answer.
node_metric() {
  { curl -fsS --max-time 2 "http://127.0.0.1:$(ops_port "$1")/metrics" 2>/dev/null || true; } |
    awk -v want="$2{channel=\"ami\"}" '$1 == want { print $2; exit }'
}
# current_leader: the SmartBFT leader (orderer number) as the running orderers report it
# (consensus_smartbft_view_leader_id); the value most of them report, empty if none answers.
current_leader() {
  local n
  for n in orderer1 orderer2 orderer3 orderer4; do node_metric "$n" consensus_smartbft_view_leader_id; done |
    awk '/^[1-4]$/ { c[$1]++ } END { for (l in c) if (c[l] > best) { best = c[l]; who = l } print who }'
}
# views: "orderer1=V1/N1 ..." — each orderer's installed view (consensus_smartbft_view_number)
# and the view its view changer aims at (consensus_smartbft_viewchange_next_view); - if down.
views() {
  local n out=""
  for n in orderer1 orderer2 orderer3 orderer4; do
    out+="$n=$(node_metric "$n" consensus_smartbft_view_number)/$(node_metric "$n" consensus_smartbft_viewchange_next_view) "
  done
  echo "${out% }"
}
# orderer_panics: "orderer: first panic line" for every orderer whose log has a Go panic.
orderer_panics() {
  local n line
  for n in orderer1 orderer2 orderer3 orderer4; do
    line=$(grep -a -m1 -E '^panic:|PANI' "$BCAMI_RUN_DIR/logs/$n.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220 || true)
    [[ -z "$line" ]] || echo "$n: $line"
  done
}
