#!/usr/bin/env bash
# End-to-end conformance of the Rust chaincode shim (crate fabric-shim), driven with the `peer`
# CLI against the live network. Deploys the conformance fixture (crate fabric-shim-conformance)
# as chaincode `conformance`, then checks, each with a PASS/FAIL line:
#   cross-org read, range over 250 keys, write batching and GET_STATE_MULTIPLE on the live peer
#   (counted by the peer's operations endpoint), pagination with bookmark, composite partial range,
#   history of 3 versions, event in the committed block, contract error message at the CLI,
#   a panic failing only its transaction, 200 concurrent invocations, server killed and
#   restarted without redeploy, a server with a TLS certificate from the wrong CA refused, and
#   a second deployment with mutual TLS (client certificates required by our server).
#
# usage: tests/e2e/10-shim-conformance.sh   (with network.env sourced, or BCAMI_RUN_DIR set)
# Environment: BCAMI_RUN_DIR (default <repo>/run), BCAMI_SHIM_CONCURRENCY (default 200)
# Exit: 0 if every check passed, 1 otherwise. Scratch files and logs: $BCAMI_RUN_DIR/e2e-shim/.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=shim-e2e
# shellcheck source=tests/e2e/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
CC=conformance
CONCURRENCY=${BCAMI_SHIM_CONCURRENCY:-200}
WORK=$RUN/e2e-shim
rm -rf "$WORK"
mkdir -p "$WORK"
RID=$(date +%s)$$
ROGUE_PID=""

cleanup() {
  if [[ -n "$ROGUE_PID" ]] && kill -0 "$ROGUE_PID" 2>/dev/null; then
    kill "$ROGUE_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

args_json() { jq -cn '{Args: $ARGS.positional}' --args "$@"; }
# query ORG FUNCTION ARGS... → payload on stdout
query() {
  local org=$1
  shift
  "$REPO/scripts/peer-cli.sh" "$org" client1 chaincode query -C "$BCAMI_CHANNEL" -n "$CC" -c "$(args_json "$@")"
}
# invoke ORG FUNCTION ARGS... → the CLI's full output on stdout; waits for the commit.
invoke() {
  local org=$1
  shift
  "$REPO/scripts/peer-cli.sh" "$org" client1 chaincode invoke -C "$BCAMI_CHANNEL" -n "$CC" \
    --waitForEvent --waitForEventTimeout 120s --connTimeout 60s -c "$(args_json "$@")" 2>&1
}
# The payload of a successful invoke, from the CLI's "result: status:200 payload:\"...\"" line
# (Fabric v3.1.1 puts two spaces before payload).
payload_of() { sed -n 's/.*result: status:200 *payload:"\(.*\)" *$/\1/p' <<<"$1" | tail -n1; }
committed_valid() { grep -q 'committed with status (VALID)' <<<"$1"; }

# --- deploy -----------------------------------------------------------------------------------
say "deploying the conformance fixture (log: $WORK/deploy.log)"
if "$REPO/scripts/network.sh" deploy --name "$CC" --package fabric-shim-conformance \
  --probe-args '{"Args":["ping"]}' >"$WORK/deploy.log" 2>&1; then
  pass "deploy conformance fixture as CCaaS on both orgs"
else
  fail "deploy conformance fixture" "see $WORK/deploy.log"
  tail -n 20 "$WORK/deploy.log"
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  exit 1
fi

# --- write on one org's peer, read on the other's ---------------------------------------------
out=$(invoke utility put "xorg-$RID" "value-$RID") || true
got=$(query operator get "xorg-$RID" 2>&1) || true
if committed_valid "$out" && [[ "$got" == "value-$RID" ]]; then
  pass "write via Utility peer, read via Operator peer"
else
  fail "cross-org write/read" "invoke: $(tail -n1 <<<"$out"); read: $got"
fi

# --- range over 250 keys (3 peer batches of 100) ----------------------------------------------
P="r$RID-"
out=$(invoke operator putmany "$P" 250) || true
got=$(query utility range "$P" "r$RID." 2>&1) || true
count=$(jq -r '.count' <<<"$got" 2>/dev/null || echo "?")
sorted=$(jq -r '.keys == (.keys | sort) and .keys[0] == "'"${P}00000"'" and .keys[249] == "'"${P}00249"'"' <<<"$got" 2>/dev/null || echo false)
if committed_valid "$out" && [[ "$count" == 250 && "$sorted" == true ]]; then
  pass "range query over 250 keys returns all 250 in order"
else
  fail "range over 250 keys" "count=$count sorted=$sorted"
fi

# --- write batching and GET_STATE_MULTIPLE, as the peer counts them ---------------------------
# The peer counts every request of a chaincode by type (chaincode_shim_requests_received on its
# operations endpoint, /metrics). With the peer advertising both (Fabric v3.1.1's core.yaml), a
# 250-write transaction must reach it as one WRITE_BATCH_STATE and no PUT_STATE, and a 5-key
# read as one GET_STATE_MULTIPLE and no GET_STATE; a peer that stops advertising them fails this.
# shim_requests ORG TYPE: the utility or operator peer's count for this chaincode's package.
shim_requests() {
  local addr
  local v="BCAMI_${1^^}_PEER_OPERATIONS_ADDRESS"
  addr=${!v:-}
  curl -fsS --max-time 5 "http://$addr/metrics" 2>/dev/null |
    awk -v t="type=\"$2\"" -v c="chaincode=\"${CC}_" -v ch="channel=\"$BCAMI_CHANNEL\"" '
      $1 ~ /^chaincode_shim_requests_received\{/ && index($1, t) && index($1, c) && index($1, ch) { n += $2 }
      END { printf "%d\n", n }'
}
counts() { for t in PUT_STATE WRITE_BATCH_STATE GET_STATE GET_STATE_MULTIPLE; do printf '%s ' "$(shim_requests "$1" "$t")"; done; }
read -r u_put0 u_wb0 u_get0 u_gm0 <<<"$(counts utility)"
read -r o_put0 o_wb0 _ _ <<<"$(counts operator)"
W="w$RID-"
out=$(invoke utility putmany "$W" 250) || true
read -r u_put1 u_wb1 _ _ <<<"$(counts utility)"
read -r o_put1 o_wb1 _ _ <<<"$(counts operator)"
if committed_valid "$out" && ((u_wb1 - u_wb0 == 1 && u_put1 == u_put0 && o_wb1 - o_wb0 == 1 && o_put1 == o_put0)); then
  pass "250 writes travel as one WRITE_BATCH_STATE and no PUT_STATE (both peers' counters)"
else
  fail "write batching" "WRITE_BATCH_STATE utility +$((u_wb1 - u_wb0)) operator +$((o_wb1 - o_wb0)), PUT_STATE utility +$((u_put1 - u_put0)) operator +$((o_put1 - o_put0)); invoke: $(tail -n1 <<<"$out")"
fi
got=$(query utility getmany "${W}00000" "${W}00007" "${W}00249" "${W}00250" "${W}00100" 2>&1) || true
read -r _ _ u_get2 u_gm2 <<<"$(counts utility)"
if [[ "$got" == '["v0","v7","v249",null,"v100"]' ]] && ((u_gm2 - u_gm0 == 1 && u_get2 == u_get0)); then
  pass "a 5-key read is one GET_STATE_MULTIPLE and no GET_STATE, values in key order"
else
  fail "GET_STATE_MULTIPLE" "answer $got; GET_STATE_MULTIPLE +$((u_gm2 - u_gm0)), GET_STATE +$((u_get2 - u_get0))"
fi

# --- pagination with bookmark ------------------------------------------------------------------
p1=$(query utility page "$P" "r$RID." 100 "" 2>&1) || true
b1=$(jq -r '.bookmark' <<<"$p1" 2>/dev/null || echo "?")
p2=$(query utility page "$P" "r$RID." 100 "$b1" 2>&1) || true
b2=$(jq -r '.bookmark' <<<"$p2" 2>/dev/null || echo "?")
p3=$(query utility page "$P" "r$RID." 100 "$b2" 2>&1) || true
n1=$(jq -r '.keys | length' <<<"$p1" 2>/dev/null || echo "?")
f2=$(jq -r '.keys[0]' <<<"$p2" 2>/dev/null || echo "?")
n3=$(jq -r '.keys | length' <<<"$p3" 2>/dev/null || echo "?")
b3=$(jq -r '.bookmark' <<<"$p3" 2>/dev/null || echo "?")
if [[ "$n1" == 100 && "$b1" == "${P}00100" && "$f2" == "${P}00100" && "$b2" == "${P}00200" && "$n3" == 50 && "$b3" == "" ]]; then
  pass "paginated range: pages of 100/100/50 linked by bookmarks"
else
  fail "pagination" "page1=$n1 bookmark1=$b1 page2-first=$f2 bookmark2=$b2 page3=$n3 bookmark3=$b3"
fi

# --- composite keys: partial-key range ---------------------------------------------------------
T="meter$RID"
ok=1
for kv in "A 1 x" "A 2 y" "B 1 z"; do
  read -r a1 a2 v <<<"$kv"
  out=$(invoke utility putcomp "$T" "$a1" "$a2" "$v") || true
  committed_valid "$out" || ok=0
done
partial=$(query operator comprange "$T" A 2>&1) || true
whole=$(query operator comprange "$T" 2>&1) || true
want='[["'"$T"'",["A","1"],"x"],["'"$T"'",["A","2"],"y"]]'
if ((ok)) && [[ "$partial" == "$want" && $(jq 'length' <<<"$whole" 2>/dev/null) == 3 ]]; then
  pass "composite-key partial range returns exactly the matching keys, split"
else
  fail "composite partial range" "partial=$partial whole=$whole"
fi

# --- history of a key with 3 versions ----------------------------------------------------------
H="h$RID"
txids=()
for v in v1 v2 v3; do
  out=$(invoke operator put "$H" "$v") || true
  txids+=("$(payload_of "$out")")
done
hist=$(query utility history "$H" 2>&1) || true
hv=$(jq -r '[.[].value] | join(",")' <<<"$hist" 2>/dev/null || echo "?")
ht=$(jq -r '[.[].tx_id] | join(",")' <<<"$hist" 2>/dev/null || echo "?")
if [[ "$hv" == "v3,v2,v1" && "$ht" == "${txids[2]},${txids[1]},${txids[0]}" && -n "${txids[0]}" ]]; then
  pass "history: 3 versions, newest first, with their transaction ids"
else
  fail "history" "values=$hv txids=$ht expected ${txids[*]}"
fi

# --- event in the committed block ---------------------------------------------------------------
out=$(invoke utility event "shim.e2e" "payload-$RID") || true
etx=$(payload_of "$out")
found=""
if committed_valid "$out" && [[ -n "$etx" ]]; then
  orderer=(-o "$BCAMI_ORDERER_ADDRESS" --tls --cafile "$BCAMI_ORDERER_TLS_CA")
  "$REPO/scripts/peer-cli.sh" utility admin channel fetch newest "$WORK/newest.pb" -c "$BCAMI_CHANNEL" "${orderer[@]}" >"$WORK/fetch.log" 2>&1 || true
  "$BCAMI_FABRIC_BIN/configtxlator" proto_decode --type common.Block --input "$WORK/newest.pb" >"$WORK/newest.json" 2>>"$WORK/fetch.log" || true
  top=$(jq -r '.header.number // empty' "$WORK/newest.json" 2>/dev/null || true)
  for ((n = ${top:-0}; n >= 0 && n > ${top:-0} - 6; n--)); do
    "$REPO/scripts/peer-cli.sh" utility admin channel fetch "$n" "$WORK/b$n.pb" -c "$BCAMI_CHANNEL" "${orderer[@]}" >>"$WORK/fetch.log" 2>&1 || continue
    "$BCAMI_FABRIC_BIN/configtxlator" proto_decode --type common.Block --input "$WORK/b$n.pb" >"$WORK/b$n.json" 2>>"$WORK/fetch.log" || continue
    found=$(jq -c --arg tx "$etx" '[.. | objects | select(has("event_name") and .tx_id == $tx)] | first // empty' "$WORK/b$n.json")
    [[ -n "$found" ]] && break
  done
fi
epay=$(jq -r '.payload // empty' <<<"${found:-{\}}" | base64 -d 2>/dev/null || true)
if [[ -n "$found" && $(jq -r '.event_name' <<<"$found") == "shim.e2e" && $(jq -r '.chaincode_id' <<<"$found") == "$CC" && "$epay" == "payload-$RID" ]]; then
  pass "chaincode event (name, payload, chaincode id, tx id) is in the committed block"
else
  fail "event in block" "tx=$etx event=${found:-none} (see $WORK/fetch.log)"
fi

# --- contract error reaches the CLI with its message -------------------------------------------
rc=0
out=$(invoke operator fail 418 "kettle-$RID is a teapot") || rc=$?
if ((rc != 0)) && grep -q "status:418" <<<"$out" && grep -q "kettle-$RID is a teapot" <<<"$out"; then
  pass "contract error: CLI shows status 418 and the contract's message"
else
  fail "contract error at the CLI" "rc=$rc output: $(tail -n2 <<<"$out")"
fi

# --- a panic fails only its own transaction -------------------------------------------------------
rc=0
out=$(invoke utility panic "boom-$RID") || rc=$?
after=$(query operator get "xorg-$RID" 2>&1) || true
if ((rc != 0)) && grep -q "chaincode panicked: boom-$RID" <<<"$out" && [[ "$after" == "value-$RID" ]]; then
  pass "panic fails that transaction (500 with the panic text); the server keeps serving"
else
  fail "panic isolation" "rc=$rc output: $(tail -n1 <<<"$out"); next query: $after"
fi

# --- creator identity (MSP id, NodeOU role, DN), tx info, transient data ----------------------------
cu=$(query utility creator 2>&1) || true
ca=$("$REPO/scripts/peer-cli.sh" operator admin chaincode query -C "$BCAMI_CHANNEL" -n "$CC" -c '{"Args":["creator"]}' 2>&1) || true
if [[ $(jq -r '.msp_id + "/" + .role' <<<"$cu" 2>/dev/null) == "$BCAMI_UTILITY_MSPID/client" &&
  $(jq -r '.msp_id + "/" + .role' <<<"$ca" 2>/dev/null) == "$BCAMI_OPERATOR_MSPID/admin" &&
  $(jq -r '.subject' <<<"$cu" 2>/dev/null) == CN=User1@* ]]; then
  pass "creator: MSP id, NodeOU role (client/admin) and subject DN from the real certificates"
else
  fail "creator identity" "utility client1: $cu; operator admin: $ca"
fi
ti=$(query operator txinfo a b 2>&1) || true
now=$(date +%s)
if [[ $(jq -r '.channel + "/" + .function + "/" + (.args | join(","))' <<<"$ti" 2>/dev/null) == "$BCAMI_CHANNEL/txinfo/a,b" &&
  $(jq -r '.tx_id | length' <<<"$ti" 2>/dev/null) == 64 &&
  $(jq -r --argjson now "$now" '(.seconds - $now) | fabs < 300' <<<"$ti" 2>/dev/null) == true ]]; then
  pass "transaction info: channel, 64-hex tx id, proposal timestamp, function and args"
else
  fail "transaction info" "$ti"
fi
tr=$("$REPO/scripts/peer-cli.sh" utility client1 chaincode query -C "$BCAMI_CHANNEL" -n "$CC" \
  -c '{"Args":["transient","secret"]}' --transient "{\"secret\":\"$(printf 'hush-%s' "$RID" | base64)\"}" 2>&1) || true
if [[ "$tr" == "hush-$RID" ]]; then
  pass "transient map reaches the contract"
else
  fail "transient data" "$tr"
fi

# --- 200 concurrent invocations -----------------------------------------------------------------
say "starting $CONCURRENCY concurrent invocations"
C="c$RID-"
mkdir -p "$WORK/concurrent"
pids=()
for ((i = 0; i < CONCURRENCY; i++)); do
  org=utility
  ((i % 2)) && org=operator
  # 200 CLI processes start at once on a small machine: give their gRPC dials time (the peer
  # CLI's default is 3 s for peers and orderer alike).
  CORE_PEER_CLIENT_CONNTIMEOUT=60s invoke "$org" put "$C$(printf '%05d' "$i")" "val$i" >"$WORK/concurrent/$i.out" 2>&1 &
  pids+=($!)
done
cli_failed=0
for p in "${pids[@]}"; do wait "$p" || cli_failed=$((cli_failed + 1)); done
# Each `put` returns its own transaction id. Under this load the CLI's own commit wait sometimes
# misses the block on one peer after the other reported VALID ("timed out waiting for txid on all
# peers"); such a transaction is still committed, so take its id from the VALID line.
valid=0 mismatched=0
: >"$WORK/concurrent/results"
for f in "$WORK"/concurrent/*.out; do
  o=$(cat "$f")
  vtx=$(sed -n 's/.*txid \[\([0-9a-f]*\)\] committed with status (VALID).*/\1/p' <<<"$o" | head -n1)
  [[ -n "$vtx" ]] || continue
  valid=$((valid + 1))
  res=$(payload_of "$o")
  [[ -z "$res" || "$res" == "$vtx" ]] || mismatched=$((mismatched + 1))
  echo "${res:-$vtx}" >>"$WORK/concurrent/results"
done
distinct=$(sort -u "$WORK/concurrent/results" | grep -c . || true)
count=$(query utility range "$C" "c$RID." 2>/dev/null | jq -r '.count' 2>/dev/null || echo "?")
if [[ "$valid" == "$CONCURRENCY" && "$distinct" == "$CONCURRENCY" && "$count" == "$CONCURRENCY" && "$mismatched" == 0 ]]; then
  pass "$CONCURRENCY concurrent invocations all committed VALID with distinct results (CLI wait flakes: $cli_failed)"
else
  fail "$CONCURRENCY concurrent invocations" "valid=$valid distinct=$distinct keys=$count result≠txid=$mismatched cli-exit≠0=$cli_failed (outputs in $WORK/concurrent)"
fi

# --- chaincode server killed, restarted, next invocation works without redeploy -------------------
seq_before=$("$REPO/scripts/peer-cli.sh" utility admin lifecycle chaincode querycommitted -C "$BCAMI_CHANNEL" -n "$CC" -O json 2>/dev/null | jq -r '.sequence' || echo "?")
killed=0
for org in utility operator; do
  pidf=$RUN/pids/cc-$CC-$org.pid
  if [[ -f "$pidf" ]] && kill -KILL "$(cat "$pidf")" 2>/dev/null; then killed=$((killed + 1)); fi
done
sleep 1
rc=0
down=$(query utility get "xorg-$RID" 2>&1) || rc=$?
"$REPO/scripts/network.sh" restart-chaincode "$CC" >"$WORK/restart.log" 2>&1 || true
out=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  out=$(invoke utility put "restart-$RID" "back") || true
  committed_valid "$out" && break
  sleep 3
done
seq_after=$("$REPO/scripts/peer-cli.sh" utility admin lifecycle chaincode querycommitted -C "$BCAMI_CHANNEL" -n "$CC" -O json 2>/dev/null | jq -r '.sequence' || echo "?")
if ((killed == 2 && rc != 0)) && committed_valid "$out" && [[ "$seq_before" == "$seq_after" ]]; then
  pass "servers killed (invocations fail), restarted, next invocation commits; no redeploy (sequence $seq_after)"
else
  fail "kill and restart" "killed=$killed query-while-down-rc=$rc ($(tail -n1 <<<"$down")) sequence $seq_before→$seq_after; last: $(tail -n1 <<<"$out")"
fi

# --- a server with a TLS certificate from the wrong CA is refused --------------------------------
envf=$RUN/state/cc-$CC-utility.env
rogue=$WORK/rogue-ca
mkdir -p "$rogue"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$rogue/ca.key" 2>/dev/null
openssl req -new -x509 -key "$rogue/ca.key" -out "$rogue/ca.crt" -days 1 -subj "/CN=rogue CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$rogue/server.key" 2>/dev/null
openssl req -new -key "$rogue/server.key" -subj "/CN=rogue server" -out "$rogue/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$rogue/ext"
openssl x509 -req -in "$rogue/server.csr" -CA "$rogue/ca.crt" -CAkey "$rogue/ca.key" -CAcreateserial \
  -days 1 -extfile "$rogue/ext" -out "$rogue/server.crt" 2>/dev/null
cc_log=$RUN/logs/cc-$CC-utility.log
cc_offset=$(stat -c %s "$cc_log" 2>/dev/null || echo 0)
"$REPO/scripts/network.sh" stop-chaincode "$CC" utility >>"$WORK/restart.log" 2>&1 || true
graceful=$(tail -c +"$((cc_offset + 1))" "$cc_log" | grep -cE 'shutdown requested|server stopped' || true)
if [[ "$graceful" == 2 ]] && ! grep -q 'ignored SIGTERM' "$WORK/restart.log"; then
  pass "SIGTERM: the server drains, closes the peer stream and exits by itself"
else
  fail "graceful shutdown on SIGTERM" "server log lines: $graceful; see $cc_log"
fi
peer_log=$RUN/logs/utility-peer.log
offset=$(stat -c %s "$peer_log" 2>/dev/null || echo 0)
(
  set -a
  # shellcheck source=/dev/null
  source "$envf"
  set +a
  export CHAINCODE_TLS_CERT=$rogue/server.crt CHAINCODE_TLS_KEY=$rogue/server.key
  exec "$BCAMI_CC_BINARY"
) >"$WORK/rogue-server.log" 2>&1 &
ROGUE_PID=$!
sleep 1
rc=0
out=$(query utility get "xorg-$RID" 2>&1) || rc=$?
sleep 1
why=$(tail -c +"$((offset + 1))" "$peer_log" | grep -m1 -oE 'x509: certificate signed by unknown authority|tls: failed to verify certificate[^"]*' || true)
kill "$ROGUE_PID" 2>/dev/null || true
wait "$ROGUE_PID" 2>/dev/null || true
ROGUE_PID=""
"$REPO/scripts/network.sh" restart-chaincode "$CC" utility >>"$WORK/restart.log" 2>&1 || true
if ((rc != 0)) && [[ -n "$why" ]] && kill -0 "$(cat "$RUN/pids/cc-$CC-utility.pid")" 2>/dev/null; then
  pass "server with a certificate from the wrong CA refused; peer log: \"$why\""
else
  fail "wrong-CA server" "query rc=$rc; peer log reason: '${why:-none}'; CLI: $(tail -n1 <<<"$out")"
fi
restored=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  restored=$(query utility get "xorg-$RID" 2>&1) || true
  [[ "$restored" == "value-$RID" ]] && break
  sleep 3
done
if [[ "$restored" == "value-$RID" ]]; then
  pass "genuine server restored after the wrong-CA test"
else
  fail "restore after wrong-CA test" "query: $restored"
fi

# --- mutual TLS: the server requires the peer's client certificate ------------------------------
MTLS=$CC-mtls
if "$REPO/scripts/network.sh" deploy --name "$MTLS" --package fabric-shim-conformance --client-auth \
  --probe-args '{"Args":["ping"]}' >"$WORK/deploy-mtls.log" 2>&1; then
  pu=$("$REPO/scripts/peer-cli.sh" utility client1 chaincode query -C "$BCAMI_CHANNEL" -n "$MTLS" -c '{"Args":["ping"]}' 2>&1) || true
  po=$("$REPO/scripts/peer-cli.sh" operator client1 chaincode query -C "$BCAMI_CHANNEL" -n "$MTLS" -c '{"Args":["ping"]}' 2>&1) || true
  if [[ "$pu" == pong && "$po" == pong ]] && grep -q 'client_auth=true' "$RUN/logs/cc-$MTLS-utility.log"; then
    pass "mutual TLS (CHAINCODE_CLIENT_CA_CERT): both peers connect with their client certificates"
  else
    fail "mutual TLS" "utility: $pu; operator: $po"
  fi
else
  fail "mutual TLS deploy" "see $WORK/deploy-mtls.log"
fi

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
