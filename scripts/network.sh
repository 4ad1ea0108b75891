#!/usr/bin/env bash
# The BC-AMI native Fabric test network: 4 SmartBFT orderers, one peer for each
# of the Utility and Operator orgs, channel `ami`, chaincode-as-a-service.
# Every process runs on 127.0.0.1, writes a pid file and a log under the run dir.
#
# usage: scripts/network.sh COMMAND [ARGS]
#   up                       start the network (installs Fabric if needed)
#   down                     stop every process this network started, remove the run dir
#   status                   each process: running or not, block height on `ami`
#   deploy [OPTIONS]         build, package, install, approve, commit and start a chaincode
#   env                      print the path of network.env (source it)
#   stop-node NAME           stop one node (orderer1..orderer4, utility-peer, operator-peer)
#   start-node NAME          start a node stopped with stop-node (or that crashed); a peer is
#                            ready when gossip shows it the other org's peer again
#   stop-chaincode NAME [ORG]     stop a chaincode's server(s)
#   restart-chaincode NAME [ORG]  (re)start a chaincode's server(s), same package id
#   help
#
# Environment:
#   BCAMI_PORT_BASE  first port of the 100-port block the network uses (default 7000)
#   BCAMI_RUN_DIR    run dir: pids, logs, crypto, ledgers, network.env (default <repo>/run)
#   BCAMI_FABRIC_DIR Fabric install prefix (default <repo>/.fabric)
#   BCAMI_TIMEOUT    seconds to wait for each readiness condition (default 180)
#   BCAMI_BIN_DIR    prebuilt workspace binaries: deploy --package PKG runs $BCAMI_BIN_DIR/PKG
#                    instead of building it (scripts/test.sh points it at cargo test's build)
#   BCAMI_USER_KEYS  key algorithm of the peer orgs' users (client1, client2): ecdsa (default)
#                    or ed25519 (Fabric 3); the org admins stay ECDSA, as cryptogen makes them
#
# Exit codes: 0 ok; 1 failure; 2 usage error; 3 (status) network not fully running.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
FABRIC_DIR=${BCAMI_FABRIC_DIR:-$REPO/.fabric}
BIN=$FABRIC_DIR/bin
RUN=${BCAMI_RUN_DIR:-$REPO/run}
TIMEOUT=${BCAMI_TIMEOUT:-180}
USER_KEYS=${BCAMI_USER_KEYS:-ecdsa}
CHANNEL=ami
CCAAS_BUILDER=$REPO/fabric-network/ccaas-builder
ORDERERS=(orderer1 orderer2 orderer3 orderer4)
ORGS=(utility operator)
NODES=("${ORDERERS[@]}" utility-peer operator-peer)

say() { printf 'network: %s\n' "$*"; }
warn() { printf 'network: WARNING: %s\n' "$*" >&2; }
die() {
  printf 'network: ERROR: %s\n' "$*" >&2
  exit 1
}
usage_error() {
  printf 'network: ERROR: %s\n' "$*" >&2
  printf 'usage: %s up|down|status|deploy|env|stop-node|start-node|stop-chaincode|restart-chaincode|help\n' "$0" >&2
  exit 2
}

# ---------------------------------------------------------------------------
# Ports. Everything derives from BASE; see fabric-network/README.md.
# ---------------------------------------------------------------------------
load_base() {
  # A running network keeps the base it was started with.
  if [[ -f "$RUN/state/port_base" ]]; then
    BASE=$(cat "$RUN/state/port_base")
    if [[ -n "${BCAMI_PORT_BASE:-}" && "$BCAMI_PORT_BASE" != "$BASE" ]]; then
      warn "BCAMI_PORT_BASE=$BCAMI_PORT_BASE ignored: the network in $RUN was started with base $BASE"
    fi
  else
    BASE=${BCAMI_PORT_BASE:-7000}
  fi
  if ! [[ "$BASE" =~ ^[0-9]+$ ]] || ((BASE < 1024 || BASE > 65435)); then
    usage_error "BCAMI_PORT_BASE must be an integer in 1024..65435 (got '$BASE')"
  fi
}
orderer_port() { echo $((BASE + ${1#orderer} - 1)); }
orderer_admin_port() { echo $((BASE + 10 + ${1#orderer} - 1)); }
orderer_ops_port() { echo $((BASE + 20 + ${1#orderer} - 1)); }
org_offset() { case $1 in utility) echo 30 ;; operator) echo 40 ;; *) die "unknown org '$1'" ;; esac }
peer_port() { echo $((BASE + $(org_offset "$1"))); }
peer_cc_port() { echo $((BASE + $(org_offset "$1") + 1)); }
peer_ops_port() { echo $((BASE + $(org_offset "$1") + 2)); }
org_index() { case $1 in utility) echo 0 ;; operator) echo 1 ;; esac }
cc_server_port() { echo $((BASE + 50 + 2 * $1 + $(org_index "$2"))); } # slot org

network_ports() {
  local o org
  for o in "${ORDERERS[@]}"; do
    orderer_port "$o"
    orderer_admin_port "$o"
    orderer_ops_port "$o"
  done
  for org in "${ORGS[@]}"; do
    peer_port "$org"
    peer_cc_port "$org"
    peer_ops_port "$org"
  done
}

port_in_use() {
  # A successful connect means something listens. Pure bash: no ss/lsof needed.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------
# Paths of crypto material
# ---------------------------------------------------------------------------
CRYPTO=$RUN/crypto
ORDERER_ORG_DIR=$CRYPTO/ordererOrganizations/orderer.bcami.local
ORDERER_MSPID=OrdererMSP # as fabric-network/configtx.yaml.tmpl names it
org_domain() { echo "$1.bcami.local"; }
org_mspid() { case $1 in utility) echo UtilityMSP ;; operator) echo OperatorMSP ;; esac }
org_dir() { echo "$CRYPTO/peerOrganizations/$(org_domain "$1")"; }
orderer_dir() { echo "$ORDERER_ORG_DIR/orderers/$1.orderer.bcami.local"; }
orderer_tls_ca() { echo "$ORDERER_ORG_DIR/tlsca/tlsca.orderer.bcami.local-cert.pem"; }
orderer_admin_tls() { echo "$ORDERER_ORG_DIR/users/Admin@orderer.bcami.local/tls"; }
orderer_admin_msp() { echo "$ORDERER_ORG_DIR/users/Admin@orderer.bcami.local/msp"; }
peer_dir() { echo "$(org_dir "$1")/peers/peer0.$(org_domain "$1")"; }
peer_tls_ca() { echo "$(org_dir "$1")/tlsca/tlsca.$(org_domain "$1")-cert.pem"; }
user_msp() {
  local org=$1 role=$2 user
  case $role in
    admin) user=Admin ;;
    client1) user=User1 ;;
    client2) user=User2 ;;
    *) die "unknown role '$role' (admin, client1, client2)" ;;
  esac
  echo "$(org_dir "$org")/users/$user@$(org_domain "$org")/msp"
}

pid_file() { echo "$RUN/pids/$1.pid"; }
log_file() { echo "$RUN/logs/$1.log"; }

# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------
# Prints the pid if the named process is alive AND is still the program we started
# (guards against a recycled pid).
live_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Every process we start carries BCAMI_NETWORK_PROCESS=<run dir> (see spawn).
  if [[ -r "/proc/$pid/environ" ]] && ! grep -qazxF -e "BCAMI_NETWORK_PROCESS=$RUN" "/proc/$pid/environ" 2>/dev/null; then
    return 1
  fi
  echo "$pid"
}

# spawn NAME ENVFILE PROGRAM ARGS... — start detached, record pid, log to the run dir.
spawn() {
  local name=$1 envfile=$2
  shift 2
  local log
  log=$(log_file "$name")
  # setsid: the process outlives this script and ignores the terminal's Ctrl-C;
  # `down` stops it by pid. Fabric/chaincode settings come only from the env file.
  (
    local v
    for v in $(compgen -e); do
      case $v in CORE_* | ORDERER_* | FABRIC_* | CHAINCODE_*) unset "$v" ;; esac
    done
    set -a
    # shellcheck disable=SC1090
    source "$envfile"
    set +a
    export BCAMI_NETWORK_PROCESS=$RUN
    exec setsid "$@" >>"$log" 2>&1 </dev/null
  ) &
  local pid=$! i
  echo "$pid" >"$(pid_file "$name")"
  # Until the subshell has exec'd, /proc/PID/environ is still this script's and live_pid calls
  # the process foreign (seen once on a loaded machine: "exited during start-up" for an orderer
  # that was starting). Wait for the exec — milliseconds — so every later check is sound.
  for ((i = 0; i < 500; i++)); do
    live_pid "$name" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.01
  done
  warn "$name (pid $pid) had not started its program after 5 s"
}

stop_pid_of() {
  local name=$1 pid i
  pid=$(live_pid "$name") || {
    rm -f "$(pid_file "$name")"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$(pid_file "$name")"
  say "stopped $name (pid $pid)"
}

wait_until() { # DESCRIPTION TIMEOUT COMMAND...
  local what=$1 limit=$2 start
  shift 2
  start=$SECONDS
  until "$@"; do
    if ((SECONDS - start >= limit)); then
      return 1
    fi
    sleep 0.5
  done
  say "$what (after $((SECONDS - start)) s)"
}


# ---------------------------------------------------------------------------
# Fabric CLI wrappers
# ---------------------------------------------------------------------------
# as_peer ORG ROLE peer-args... : run the peer CLI as ORG's ROLE against ORG's peer.
as_peer() {
  local org=$1 role=$2
  shift 2
  env FABRIC_CFG_PATH="$RUN/config" \
    FABRIC_LOGGING_SPEC="${FABRIC_LOGGING_SPEC:-WARNING}" \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_LOCALMSPID="$(org_mspid "$org")" \
    CORE_PEER_MSPCONFIGPATH="$(user_msp "$org" "$role")" \
    CORE_PEER_TLS_ROOTCERT_FILE="$(peer_tls_ca "$org")" \
    CORE_PEER_ADDRESS="127.0.0.1:$(peer_port "$org")" \
    "$BIN/peer" "$@"
}

osnadmin() { # ORDERER osnadmin-args...
  local o=$1 tls
  shift
  tls=$(orderer_admin_tls)
  "$BIN/osnadmin" "$@" -o "127.0.0.1:$(orderer_admin_port "$o")" \
    --ca-file "$(orderer_tls_ca)" --client-cert "$tls/client.crt" --client-key "$tls/client.key"
}

# Height of `ami` on a node, or "-" when it cannot be read.
node_height() {
  local node=$1 out
  case $node in
    orderer*)
      out=$(osnadmin "$node" channel list --channelID "$CHANNEL" 2>/dev/null | sed 1d) || true
      jq -r '.height // "-"' <<<"$out" 2>/dev/null || echo -
      ;;
    *-peer)
      out=$(as_peer "${node%-peer}" admin channel getinfo -c "$CHANNEL" 2>/dev/null |
        sed -n 's/^Blockchain info: //p') || true
      jq -r '.height // "-"' <<<"$out" 2>/dev/null || echo -
      ;;
  esac
}

orderer_channel_state() { # prints "status consensusRelation" or nothing
  osnadmin "$1" channel list --channelID "$CHANNEL" 2>/dev/null | sed 1d |
    jq -r '"\(.status) \(.consensusRelation)"' 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------
write_env_file() { # write KEY=VALUE lines to a file, shell-quoted
  local f=$1
  shift
  : >"$f"
  local kv
  for kv in "$@"; do
    printf '%s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$f"
  done
}

orderer_env() {
  local o=$1 d
  d=$(orderer_dir "$o")
  write_env_file "$RUN/state/$o.env" \
    "FABRIC_CFG_PATH=$RUN/config" \
    "FABRIC_LOGGING_SPEC=${BCAMI_FABRIC_LOGGING_SPEC:-INFO}" \
    "ORDERER_GENERAL_LISTENADDRESS=127.0.0.1" \
    "ORDERER_GENERAL_LISTENPORT=$(orderer_port "$o")" \
    "ORDERER_GENERAL_LOCALMSPID=$ORDERER_MSPID" \
    "ORDERER_GENERAL_LOCALMSPDIR=$d/msp" \
    "ORDERER_GENERAL_TLS_ENABLED=true" \
    "ORDERER_GENERAL_TLS_PRIVATEKEY=$d/tls/server.key" \
    "ORDERER_GENERAL_TLS_CERTIFICATE=$d/tls/server.crt" \
    "ORDERER_GENERAL_TLS_ROOTCAS=[$d/tls/ca.crt]" \
    "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE=$d/tls/server.crt" \
    "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY=$d/tls/server.key" \
    "ORDERER_GENERAL_BOOTSTRAPMETHOD=none" \
    "ORDERER_CHANNELPARTICIPATION_ENABLED=true" \
    "ORDERER_FILELEDGER_LOCATION=$RUN/data/$o/ledger" \
    "ORDERER_CONSENSUS_WALDIR=$RUN/data/$o/wal" \
    "ORDERER_CONSENSUS_SNAPDIR=$RUN/data/$o/snap" \
    "ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:$(orderer_admin_port "$o")" \
    "ORDERER_ADMIN_TLS_ENABLED=true" \
    "ORDERER_ADMIN_TLS_CERTIFICATE=$d/tls/server.crt" \
    "ORDERER_ADMIN_TLS_PRIVATEKEY=$d/tls/server.key" \
    "ORDERER_ADMIN_TLS_ROOTCAS=[$d/tls/ca.crt]" \
    "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED=true" \
    "ORDERER_ADMIN_TLS_CLIENTROOTCAS=[$(orderer_tls_ca)]" \
    "ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:$(orderer_ops_port "$o")" \
    "ORDERER_METRICS_PROVIDER=prometheus"
}

peer_env() {
  local org=$1 d
  d=$(peer_dir "$org")
  write_env_file "$RUN/state/$org-peer.env" \
    "FABRIC_CFG_PATH=$RUN/config" \
    "FABRIC_LOGGING_SPEC=${BCAMI_FABRIC_LOGGING_SPEC:-INFO}" \
    "CORE_PEER_ID=peer0.$(org_domain "$org")" \
    "CORE_PEER_ADDRESS=127.0.0.1:$(peer_port "$org")" \
    "CORE_PEER_LISTENADDRESS=127.0.0.1:$(peer_port "$org")" \
    "CORE_PEER_CHAINCODEADDRESS=127.0.0.1:$(peer_cc_port "$org")" \
    "CORE_PEER_CHAINCODELISTENADDRESS=127.0.0.1:$(peer_cc_port "$org")" \
    "CORE_PEER_GOSSIP_BOOTSTRAP=127.0.0.1:$(peer_port "$org")" \
    "CORE_PEER_GOSSIP_EXTERNALENDPOINT=127.0.0.1:$(peer_port "$org")" \
    "CORE_PEER_GOSSIP_RECONNECTINTERVAL=2s" \
    "CORE_PEER_GOSSIP_MEMBERSHIPTRACKERINTERVAL=1s" \
    "CORE_PEER_LOCALMSPID=$(org_mspid "$org")" \
    "CORE_PEER_MSPCONFIGPATH=$d/msp" \
    "CORE_PEER_TLS_ENABLED=true" \
    "CORE_PEER_TLS_CERT_FILE=$d/tls/server.crt" \
    "CORE_PEER_TLS_KEY_FILE=$d/tls/server.key" \
    "CORE_PEER_TLS_ROOTCERT_FILE=$d/tls/ca.crt" \
    "CORE_PEER_FILESYSTEMPATH=$RUN/data/$org-peer" \
    "CORE_LEDGER_SNAPSHOTS_ROOTDIR=$RUN/data/$org-peer/snapshots" \
    "CORE_OPERATIONS_LISTENADDRESS=127.0.0.1:$(peer_ops_port "$org")" \
    "CORE_METRICS_PROVIDER=prometheus" \
    "CORE_VM_ENDPOINT=" \
    "CORE_CHAINCODE_EXTERNALBUILDERS=[{name: bcami_ccaas, path: $CCAAS_BUILDER}]"
}

start_node() {
  local node=$1 pid
  if pid=$(live_pid "$node"); then
    say "$node already running (pid $pid)"
    return 0
  fi
  case $node in
    orderer[1-4])
      spawn "$node" "$RUN/state/$node.env" "$BIN/orderer"
      ;;
    utility-peer | operator-peer)
      spawn "$node" "$RUN/state/$node.env" "$BIN/peer" node start
      ;;
    *) usage_error "unknown node '$node' (one of: ${NODES[*]})" ;;
  esac
  say "started $node (pid $(cat "$(pid_file "$node")"), log $(log_file "$node"))"
}

node_ops_port() {
  case $1 in
    orderer*) orderer_ops_port "$1" ;;
    *-peer) peer_ops_port "${1%-peer}" ;;
  esac
}

wait_healthy() {
  local node=$1
  if ! wait_until "$node healthy" "$TIMEOUT" node_healthy "$node"; then
    tail -n 20 "$(log_file "$node")" >&2 || true
    die "$node did not become healthy within ${TIMEOUT} s (log: $(log_file "$node"))"
  fi
}
node_healthy() {
  live_pid "$1" >/dev/null || {
    tail -n 20 "$(log_file "$1")" >&2 || true
    die "$1 exited during start-up (log: $(log_file "$1"))"
  }
  local body
  body=$(curl -sS --max-time 2 "http://127.0.0.1:$(node_ops_port "$1")/healthz" 2>/dev/null) || return 1
  # A peer whose vm.endpoint is still set registers a docker health check, which fails here.
  if grep -q '"component": *"docker"' <<<"$body"; then
    die "$1 runs a Docker health check: vm.endpoint is not empty (CORE_VM_ENDPOINT= had no effect); /healthz says: $body"
  fi
  grep -q '"OK"' <<<"$body"
}

render_template() { # SRC DST
  local args=(-e "s#@CRYPTO@#$CRYPTO#g") o org up
  for o in "${ORDERERS[@]}"; do
    up=${o^^}
    args+=(-e "s#@${up}_PORT@#$(orderer_port "$o")#g")
  done
  for org in "${ORGS[@]}"; do
    up=${org^^}
    args+=(-e "s#@${up}_PEER_PORT@#$(peer_port "$org")#g")
  done
  sed "${args[@]}" "$1" >"$2"
  if grep -q '@[A-Z0-9_]*@' "$2"; then
    die "unreplaced placeholder in $2: $(grep -o '@[A-Z0-9_]*@' "$2" | head -n1)"
  fi
}

network_pids_alive() { # prints names of live / dead nodes into two globals
  LIVE=()
  DEAD=()
  local n
  for n in "${NODES[@]}"; do
    if live_pid "$n" >/dev/null; then LIVE+=("$n"); else DEAD+=("$n"); fi
  done
}

UP_STARTED=0
up_cleanup() {
  local rc=$?
  if [[ $UP_STARTED == 1 && "${BCAMI_KEEP_ON_FAILURE:-0}" == 1 ]]; then
    warn "up failed; BCAMI_KEEP_ON_FAILURE=1, so $RUN and its processes are left for inspection"
  elif [[ $UP_STARTED == 1 ]]; then
    warn "up failed; stopping what it started and removing $RUN"
    stop_all
    rm -rf "$RUN"
  fi
  exit "$rc"
}

cmd_up() {
  if [[ -d "$RUN" && -f "$RUN/.bcami-run" ]]; then
    load_base
    network_pids_alive
    if ((${#DEAD[@]} == 0)) && [[ -f "$RUN/network.env" ]]; then
      say "network already up in $RUN (port base $BASE); nothing to do. Connection details: $RUN/network.env"
      return 0
    fi
    if ((${#LIVE[@]} > 0)); then
      die "the network in $RUN is partly running (stopped: ${DEAD[*]}); use 'network.sh start-node NAME' or 'network.sh down' first"
    fi
    say "removing the leftover run dir $RUN (no process of it is running)"
    rm -rf "$RUN"
  elif [[ -e "$RUN" && -n "$(ls -A "$RUN" 2>/dev/null)" ]]; then
    die "$RUN exists and is not a BC-AMI run dir; refusing to use it (set BCAMI_RUN_DIR)"
  fi
  BCAMI_PORT_BASE=${BCAMI_PORT_BASE:-7000}
  load_base

  local p busy=()
  for p in $(network_ports); do
    if port_in_use "$p"; then busy+=("$p"); fi
  done
  if ((${#busy[@]} > 0)); then
    die "port(s) ${busy[*]} on 127.0.0.1 already in use (the network needs ports $BASE..$((BASE + 49)) from BCAMI_PORT_BASE=$BASE); stop whatever listens there or choose another BCAMI_PORT_BASE. Nothing was started."
  fi
  local tool
  for tool in curl jq sed tar setsid; do
    command -v "$tool" >/dev/null || die "'$tool' is required but not installed"
  done

  "$SCRIPT_DIR/install-fabric.sh" || die "Fabric is not installed and install-fabric.sh failed (see above); nothing was started"

  local t0=$SECONDS
  trap up_cleanup EXIT
  trap 'exit 130' INT TERM
  UP_STARTED=1
  mkdir -p "$RUN"/{config,state,pids,logs,data,artifacts}
  touch "$RUN/.bcami-run"
  echo "$BASE" >"$RUN/state/port_base"

  say "run dir $RUN, port base $BASE"
  # Fabric's own sample configs, copied from the module cache by install-fabric.sh, are used
  # unedited; every setting that differs comes from the environment (peer_env, orderer_env).
  # Fabric v3.1.1 always offers the BFT consenter (no Consensus.Type needed) and its peer
  # honours empty environment values, which empties vm.endpoint (CORE_VM_ENDPOINT=: no Docker,
  # only external builders). node_healthy checks the effect: the peer's /healthz has no
  # docker check.
  cp "$FABRIC_DIR/config/core.yaml" "$FABRIC_DIR/config/orderer.yaml" "$RUN/config/"
  chmod u+w "$RUN/config/"*.yaml

  say "generating crypto material (cryptogen) in $CRYPTO"
  case $USER_KEYS in ecdsa | ed25519) ;; *) die "BCAMI_USER_KEYS=$USER_KEYS: expected ecdsa or ed25519" ;; esac
  sed "s/PublicKeyAlgorithm: ecdsa # users/PublicKeyAlgorithm: $USER_KEYS # users/" \
    "$REPO/fabric-network/crypto-config.yaml" >"$RUN/config/crypto-config.yaml"
  grep -q "PublicKeyAlgorithm: $USER_KEYS # users" "$RUN/config/crypto-config.yaml" ||
    die "fabric-network/crypto-config.yaml has no users' PublicKeyAlgorithm line to set"
  "$BIN/cryptogen" generate --config="$RUN/config/crypto-config.yaml" --output="$CRYPTO" >"$RUN/logs/cryptogen.log" 2>&1 ||
    die "cryptogen failed (log: $RUN/logs/cryptogen.log)"

  say "creating the genesis block of channel '$CHANNEL' (configtxgen, BFT, 4 consenters)"
  render_template "$REPO/fabric-network/configtx.yaml.tmpl" "$RUN/config/configtx.yaml"
  FABRIC_CFG_PATH="$RUN/config" "$BIN/configtxgen" -profile AmiChannel -channelID "$CHANNEL" \
    -outputBlock "$RUN/artifacts/$CHANNEL.block" >"$RUN/logs/configtxgen.log" 2>&1 ||
    die "configtxgen failed (log: $RUN/logs/configtxgen.log)"

  local o org
  for o in "${ORDERERS[@]}"; do
    orderer_env "$o"
    start_node "$o"
  done
  for org in "${ORGS[@]}"; do
    peer_env "$org"
    start_node "$org-peer"
  done
  for o in "${ORDERERS[@]}"; do wait_healthy "$o"; done

  for o in "${ORDERERS[@]}"; do
    osnadmin "$o" channel join --channelID "$CHANNEL" --config-block "$RUN/artifacts/$CHANNEL.block" \
      >>"$RUN/logs/osnadmin.log" 2>&1 || die "osnadmin channel join failed on $o (log: $RUN/logs/osnadmin.log)"
  done
  say "joined ${ORDERERS[*]} to '$CHANNEL'"

  for org in "${ORGS[@]}"; do wait_healthy "$org-peer"; done
  for org in "${ORGS[@]}"; do
    as_peer "$org" admin channel join -b "$RUN/artifacts/$CHANNEL.block" >>"$RUN/logs/peer-cli.log" 2>&1 ||
      die "peer channel join failed for $org-peer (log: $RUN/logs/peer-cli.log)"
  done
  say "joined utility-peer and operator-peer to '$CHANNEL'"

  for o in "${ORDERERS[@]}"; do
    wait_until "$o: channel '$CHANNEL' active" "$TIMEOUT" orderer_active "$o" ||
      die "$o did not report channel '$CHANNEL' active (log: $(log_file "$o"))"
  done
  for org in "${ORGS[@]}"; do
    wait_until "$org-peer: channel '$CHANNEL' at height >= 1" "$TIMEOUT" peer_has_channel "$org" ||
      die "$org-peer did not report channel '$CHANNEL' (log: $(log_file "$org-peer"))"
  done
  for org in "${ORGS[@]}"; do wait_gossip "$org-peer"; done

  write_network_env
  write_network_json
  UP_STARTED=0
  trap - EXIT INT TERM
  say "network up in $((SECONDS - t0)) s"
  say "  crypto material:    $CRYPTO"
  say "  logs and pid files: $RUN/logs, $RUN/pids"
  say "  connection details: $RUN/network.env (source it; see fabric-network/README.md)"
  say "                      $RUN/network.json (the same for programs: bcami_client::Network)"
  say "  peer CLI:           scripts/peer-cli.sh utility|operator admin|client1|client2 <peer args>"
}

orderer_active() { [[ "$(orderer_channel_state "$1")" == "active consenter" ]]; }
# metric NODE NAME LABELS: the value of a Prometheus sample on NODE's operations endpoint
# (/metrics), e.g. metric orderer1 consensus_BFT_leader_id 'channel="ami"'; empty if absent.
metric() {
  { curl -fsS --max-time 2 "http://127.0.0.1:$(node_ops_port "$1")/metrics" 2>/dev/null || true; } |
    awk -v want="$2{$3}" '$1 == want { print $2; exit }'
}
# A peer's Gateway can plan an endorsement by both orgs only once gossip has shown it the other
# org's peer on the channel (after joining, or after a restart); until then every submit fails
# with "no combination of peers can be derived". The peer's channel membership gauge says so.
peer_sees_other() {
  local n
  n=$(metric "$1" gossip_membership_total_peers_known "channel=\"$CHANNEL\"")
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1))
}
wait_gossip() { # NODE
  wait_until "$1: sees the other org's peer (gossip; its Gateway can endorse with both orgs)" "$TIMEOUT" \
    peer_sees_other "$1" || die "$1 did not see the other org's peer within $TIMEOUT s (log: $(log_file "$1"))"
}
peer_has_channel() { local h; h=$(node_height "$1-peer"); [[ "$h" =~ ^[0-9]+$ ]] && ((h >= 1)); }

# export NAME="VALUE" lines, readable by bash, sh and simple parsers (values are
# paths and addresses; anything needing escapes is refused).
export_line() {
  [[ "$2" != *[\"\$\`\\]* ]] || die "value of $1 contains a quote, \$, \` or \\: $2"
  printf 'export %s="%s"\n' "$1" "$2"
}

write_network_env() {
  local f=$RUN/network.env addrs="" admin_addrs="" o org up
  for o in "${ORDERERS[@]}"; do
    addrs+="${addrs:+ }127.0.0.1:$(orderer_port "$o")"
    admin_addrs+="${admin_addrs:+ }127.0.0.1:$(orderer_admin_port "$o")"
  done
  {
    echo "# BC-AMI network connection details; source this file. Written by scripts/network.sh up."
    export_line BCAMI_REPO "$REPO"
    export_line BCAMI_RUN_DIR "$RUN"
    export_line BCAMI_PORT_BASE "$BASE"
    export_line BCAMI_FABRIC_BIN "$BIN"
    export_line FABRIC_CFG_PATH "$RUN/config"
    export_line BCAMI_CHANNEL "$CHANNEL"
    export_line BCAMI_CRYPTO_DIR "$CRYPTO"
    export_line BCAMI_ORDERER_ADDRESS "127.0.0.1:$(orderer_port orderer1)"
    export_line BCAMI_ORDERER_ADDRESSES "$addrs"
    export_line BCAMI_ORDERER_ADMIN_ADDRESSES "$admin_addrs"
    export_line BCAMI_ORDERER_TLS_CA "$(orderer_tls_ca)"
    export_line BCAMI_ORDERER_ADMIN_TLS_CERT "$(orderer_admin_tls)/client.crt"
    export_line BCAMI_ORDERER_ADMIN_TLS_KEY "$(orderer_admin_tls)/client.key"
    for org in "${ORGS[@]}"; do
      up=${org^^}
      export_line "BCAMI_${up}_MSPID" "$(org_mspid "$org")"
      export_line "BCAMI_${up}_PEER_ADDRESS" "127.0.0.1:$(peer_port "$org")"
      export_line "BCAMI_${up}_PEER_TLS_CA" "$(peer_tls_ca "$org")"
      export_line "BCAMI_${up}_PEER_OPERATIONS_ADDRESS" "127.0.0.1:$(peer_ops_port "$org")"
      export_line "BCAMI_${up}_MSP_ADMIN" "$(user_msp "$org" admin)"
      export_line "BCAMI_${up}_MSP_CLIENT1" "$(user_msp "$org" client1)"
      export_line "BCAMI_${up}_MSP_CLIENT2" "$(user_msp "$org" client2)"
    done
  } >"$f"
}

# network.json: the connection details for programs (read by bcami_client::Network). Values
# pass the same check as network.env's, so they need no JSON escaping.
json_str() {
  [[ "$1" != *[\"\$\`\\]* ]] || die "value contains a quote, \$, \` or \\: $1"
  printf '"%s"' "$1"
}

write_network_json() {
  local org sep=""
  {
    printf '{\n  "repo": %s,\n  "runDir": %s,\n  "channel": %s,\n' \
      "$(json_str "$REPO")" "$(json_str "$RUN")" "$(json_str "$CHANNEL")"
    printf '  "orderer": {"address": %s, "tlsCa": %s, "mspId": %s, "adminMsp": %s},\n' \
      "$(json_str "127.0.0.1:$(orderer_port orderer1)")" "$(json_str "$(orderer_tls_ca)")" "$(json_str "$ORDERER_MSPID")" \
      "$(json_str "$(orderer_admin_msp)")"
    for org in "${ORGS[@]}"; do
      printf '%s  "%s": {\n    "mspId": %s,\n    "peerAddress": %s,\n    "peerTlsCa": %s,\n' "$sep" "$org" \
        "$(json_str "$(org_mspid "$org")")" "$(json_str "127.0.0.1:$(peer_port "$org")")" \
        "$(json_str "$(peer_tls_ca "$org")")"
      printf '    "msp": {"admin": %s, "client1": %s, "client2": %s}\n  }' \
        "$(json_str "$(user_msp "$org" admin)")" "$(json_str "$(user_msp "$org" client1)")" \
        "$(json_str "$(user_msp "$org" client2)")"
      sep=$',\n'
    done
    printf '\n}\n'
  } >"$RUN/network.json"
}

# ---------------------------------------------------------------------------
# down / status
# ---------------------------------------------------------------------------
stop_all() {
  local f
  shopt -s nullglob
  # Chaincode servers first, then peers, then orderers.
  for f in "$RUN"/pids/cc-*.pid "$RUN"/pids/*-peer.pid "$RUN"/pids/orderer*.pid; do
    stop_pid_of "$(basename "$f" .pid)"
  done
  shopt -u nullglob
}

cmd_down() {
  if [[ ! -e "$RUN" ]]; then
    say "no network in $RUN; nothing to do"
    return 0
  fi
  if [[ ! -f "$RUN/.bcami-run" ]]; then
    die "$RUN is not a BC-AMI run dir (no .bcami-run marker); refusing to delete it"
  fi
  load_base
  stop_all
  rm -rf "$RUN"
  say "network down; removed $RUN"
}

cmd_status() {
  if [[ ! -f "$RUN/.bcami-run" ]]; then
    say "no network in $RUN"
    return 3
  fi
  load_base
  local n pid state height all=0 seen_cc=""
  printf '%-24s %-8s %-8s %s\n' PROCESS STATE PID "HEIGHT($CHANNEL)"
  for n in "${NODES[@]}"; do
    if pid=$(live_pid "$n"); then
      state=running
      height=$(node_height "$n")
    else
      state=stopped pid=- height=-
      all=3
    fi
    printf '%-24s %-8s %-8s %s\n' "$n" "$state" "$pid" "$height"
  done
  local f
  shopt -s nullglob
  for f in "$RUN"/pids/cc-*.pid "$RUN"/state/cc-*.env; do
    n=$(basename "${f%.*}")
    [[ " $seen_cc " == *" $n "* ]] && continue
    seen_cc+=" $n"
    if pid=$(live_pid "$n"); then state=running; else state=stopped pid=-; fi
    printf '%-24s %-8s %-8s %s\n' "$n" "$state" "$pid" "(chaincode server)"
  done
  shopt -u nullglob
  return "$all"
}

# ---------------------------------------------------------------------------
# deploy: chaincode as a service
# ---------------------------------------------------------------------------
cc_slot() { # NAME -> stable slot number 0..24 for the chaincode's server ports
  local name=$1 f=$RUN/state/chaincode-slots n=0 line
  touch "$f"
  while read -r line; do
    [[ "$line" == "$name" ]] && {
      echo "$n"
      return
    }
    n=$((n + 1))
  done <"$f"
  ((n < 25)) || die "too many chaincode names (25 max per network)"
  echo "$name" >>"$f"
  echo "$n"
}

ensure_cc_ca() {
  local ca=$RUN/chaincode-ca
  [[ -f "$ca/ca.crt" ]] && return 0
  mkdir -p "$ca"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/ca.key" 2>/dev/null
  openssl req -new -x509 -key "$ca/ca.key" -out "$ca/ca.crt" -days 3650 -subj "/O=BC-AMI test network/CN=bcami chaincode CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  say "created chaincode TLS CA $ca/ca.crt"
}

issue_cc_cert() { # DIR CN EKU(serverAuth|clientAuth)
  local dir=$1 cn=$2 eku=$3 ca=$RUN/chaincode-ca
  mkdir -p "$dir"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$eku.key" 2>/dev/null
  openssl req -new -key "$dir/$eku.key" -subj "/O=BC-AMI test network/CN=$cn" -out "$dir/$eku.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' "$eku" >"$dir/$eku.ext"
  openssl x509 -req -in "$dir/$eku.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 825 -extfile "$dir/$eku.ext" -out "$dir/$eku.crt" 2>/dev/null
  rm -f "$dir/$eku.csr" "$dir/$eku.ext"
}

source_var() { # FILE NAME: value of NAME after sourcing FILE, in a subshell
  # shellcheck disable=SC1090
  (source "$1" && printf '%s' "${!2}")
}

cc_env_file() { echo "$RUN/state/cc-$1-$2.env"; }

start_cc_server() { # NAME ORG
  local name=$1 org=$2 proc="cc-$1-$2" pid envf
  envf=$(cc_env_file "$name" "$org")
  [[ -f "$envf" ]] || die "chaincode '$name' was never deployed on this network (no $envf)"
  if pid=$(live_pid "$proc"); then
    say "$proc already running (pid $pid)"
    return 0
  fi
  local bin
  bin=$(source_var "$envf" BCAMI_CC_BINARY)
  spawn "$proc" "$envf" "$bin"
  sleep 1
  if ! live_pid "$proc" >/dev/null; then
    tail -n 20 "$(log_file "$proc")" >&2 || true
    die "chaincode server $proc exited right after start (log: $(log_file "$proc")); is '$bin' a CCaaS server that reads CHAINCODE_SERVER_ADDRESS / CHAINCODE_ID / CHAINCODE_TLS_CERT / CHAINCODE_TLS_KEY?"
  fi
  say "started $proc (pid $(cat "$(pid_file "$proc")"), log $(log_file "$proc"))"
}

# Any chaincode response — success or an error from the contract — proves the
# peer reached the server; launch/connection failures do not.
probe_cc() { # NAME ORG ARGS_JSON
  local out rc=0
  out=$(as_peer "$2" client1 chaincode query -C "$CHANNEL" -n "$1" -c "$3" 2>&1) || rc=$?
  printf '%s\n' "$out" >>"$RUN/logs/deploy-$1.log"
  if ((rc == 0)); then return 0; fi
  if grep -qiE 'could not launch|connection refused|failed to connect|error starting|timeout expired|registration|not successfully defined|make sure the chaincode|transport|handshake|certificate|deadline exceeded|unavailable' <<<"$out"; then
    return 1
  fi
  grep -q 'status:' <<<"$out"
}

cmd_deploy() {
  local name=bcami pkg=bcami-chaincode binary="" probe='{"Args":["ping"]}' client_auth=0
  while (($#)); do
    case $1 in
      --name) name=${2:?--name needs a value}; shift 2 ;;
      --package) pkg=${2:?--package needs a value}; shift 2 ;;
      --binary) binary=${2:?--binary needs a value}; shift 2 ;;
      --probe-args) probe=${2:?--probe-args needs a JSON value}; shift 2 ;;
      --client-auth) client_auth=1; shift ;;
      -h | --help)
        cat <<EOF
usage: network.sh deploy [--name NAME] [--package CARGO_PKG] [--binary PATH] [--probe-args JSON] [--client-auth]
  --name NAME         chaincode name on channel '$CHANNEL' (default bcami)
  --package PKG       cargo package to build with 'cargo build --release -p PKG'; the server is
                      target/release/PKG (default bcami-chaincode), or \$BCAMI_BIN_DIR/PKG when
                      BCAMI_BIN_DIR is set (no build)
  --binary PATH       use this prebuilt CCaaS server instead of building with cargo
  --probe-args JSON   the query that proves the server answers (default '{"Args":["ping"]}';
                      any chaincode response, even an error, counts)
  --client-auth       mutual TLS: the server gets CHAINCODE_CLIENT_CA_CERT, the peer a client cert
EOF
        return 0 ;;
      *) usage_error "deploy: unknown option '$1'" ;;
    esac
  done
  [[ "$name" =~ ^[[:alnum:]][[:alnum:]_.+-]*$ ]] || usage_error "deploy: invalid chaincode name '$name'"
  [[ -f "$RUN/network.env" ]] || die "no network in $RUN; run 'network.sh up' first"
  load_base
  network_pids_alive
  ((${#DEAD[@]} == 0)) || die "network not fully running (stopped: ${DEAD[*]}); see 'network.sh status'"
  command -v openssl >/dev/null || die "openssl is required for deploy"
  local t0=$SECONDS

  if [[ -z "$binary" && -n "${BCAMI_BIN_DIR:-}" ]]; then
    binary=$BCAMI_BIN_DIR/$pkg
    [[ -x "$binary" ]] || die "BCAMI_BIN_DIR=$BCAMI_BIN_DIR has no executable '$pkg'; build it there or unset BCAMI_BIN_DIR"
    say "chaincode server: the prebuilt $binary (BCAMI_BIN_DIR)"
  fi
  if [[ -z "$binary" ]]; then
    command -v cargo >/dev/null || die "cargo not found; install Rust or pass --binary PATH"
    say "building chaincode server: cargo build --release -p $pkg"
    (cd "$REPO" && cargo build --release -p "$pkg") || die "cargo build --release -p $pkg failed (see above)"
    binary=${CARGO_TARGET_DIR:-$REPO/target}/release/$pkg
    [[ -x "$binary" ]] || die "cargo built '$pkg' but there is no executable $binary; does the crate have a binary named '$pkg'?"
  fi
  [[ -x "$binary" ]] || die "chaincode server binary '$binary' not found or not executable"
  binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

  # Sequence: one past the committed definition, if any.
  local committed seq=1 org
  committed=$(as_peer utility admin lifecycle chaincode querycommitted -C "$CHANNEL" -n "$name" -O json 2>/dev/null || true)
  if [[ -n "$committed" ]]; then
    seq=$(($(jq -r '.sequence' <<<"$committed") + 1))
  fi
  local digest version slot dir
  digest=$(sha256sum "$binary" | cut -c1-12)
  version="$digest"
  slot=$(cc_slot "$name")
  if [[ -n "$committed" && "$(jq -r '.version' <<<"$committed")" == "$version" ]] &&
    [[ -f "$(cc_env_file "$name" utility)" && -f "$(cc_env_file "$name" operator)" ]] &&
    [[ "$(source_var "$(cc_env_file "$name" utility)" BCAMI_CC_BINARY)" == "$binary" ]]; then
    say "chaincode '$name' sequence $((seq - 1)) already runs this server binary (sha256 $digest...); making sure its servers are up"
    for org in "${ORGS[@]}"; do start_cc_server "$name" "$org"; done
    for org in "${ORGS[@]}"; do
      wait_until "$name answers on $org-peer" "$TIMEOUT" probe_cc "$name" "$org" "$probe" ||
        die "chaincode '$name' did not answer on $org-peer within ${TIMEOUT} s (deploy log $RUN/logs/deploy-$name.log, server log $(log_file "cc-$name-$org"))"
    done
    say "chaincode '$name' is deployed and up to date; nothing else to do"
    return 0
  fi
  dir=$RUN/chaincode/$name/seq$seq
  rm -rf "$dir"
  mkdir -p "$dir"
  say "deploying chaincode '$name' (sequence $seq, server $binary, sha256 $digest...)"
  ensure_cc_ca

  local port pkgid policy="AND('UtilityMSP.peer','OperatorMSP.peer')"
  declare -A PKGIDS
  for org in "${ORGS[@]}"; do
    port=$(cc_server_port "$slot" "$org")
    issue_cc_cert "$dir/$org/tls" "$name-$org" serverAuth
    local conn
    conn=$(jq -n --arg addr "127.0.0.1:$port" --rawfile ca "$RUN/chaincode-ca/ca.crt" \
      '{address: $addr, dial_timeout: "10s", tls_required: true, root_cert: $ca}')
    if ((client_auth)); then
      issue_cc_cert "$dir/$org/tls" "peer0.$org" clientAuth
      conn=$(jq --rawfile c "$dir/$org/tls/clientAuth.crt" --rawfile k "$dir/$org/tls/clientAuth.key" \
        '. + {client_auth_required: true, client_cert: $c, client_key: $k}' <<<"$conn")
    fi
    mkdir -p "$dir/$org/src" "$dir/$org/pkg"
    printf '%s\n' "$conn" >"$dir/$org/src/connection.json"
    jq -n --arg lbl "${name}_${digest}" '{type: "ccaas", label: $lbl}' >"$dir/$org/pkg/metadata.json"
    tar -C "$dir/$org/src" -czf "$dir/$org/pkg/code.tar.gz" connection.json
    tar -C "$dir/$org/pkg" -czf "$dir/$org/$name-$org.tgz" metadata.json code.tar.gz
    pkgid=$(as_peer "$org" admin lifecycle chaincode calculatepackageid "$dir/$org/$name-$org.tgz")
    PKGIDS[$org]=$pkgid
    local out
    if ! out=$(as_peer "$org" admin lifecycle chaincode install "$dir/$org/$name-$org.tgz" 2>&1); then
      grep -q 'already successfully installed' <<<"$out" || {
        printf '%s\n' "$out" >&2
        die "install of $name on $org-peer failed"
      }
    fi
    say "installed on $org-peer: $pkgid"
  done

  for org in "${ORGS[@]}"; do
    stop_pid_of "cc-$name-$org"
    write_env_file "$(cc_env_file "$name" "$org")" \
      "BCAMI_CC_BINARY=$binary" \
      "CHAINCODE_SERVER_ADDRESS=127.0.0.1:$(cc_server_port "$slot" "$org")" \
      "CHAINCODE_ID=${PKGIDS[$org]}" \
      "CORE_CHAINCODE_ID_NAME=${PKGIDS[$org]}" \
      "CHAINCODE_TLS_DISABLED=false" \
      "CHAINCODE_TLS_CERT=$dir/$org/tls/serverAuth.crt" \
      "CHAINCODE_TLS_KEY=$dir/$org/tls/serverAuth.key" \
      "RUST_LOG=${RUST_LOG:-info}" \
      "PATH=$PATH" \
      "HOME=${HOME:-/tmp}"
    if ((client_auth)); then
      echo "CHAINCODE_CLIENT_CA_CERT=$RUN/chaincode-ca/ca.crt" >>"$(cc_env_file "$name" "$org")"
    fi
    port=$(cc_server_port "$slot" "$org")
    if port_in_use "$port"; then
      die "port $port (chaincode server for $name/$org) is already in use"
    fi
    start_cc_server "$name" "$org"
  done

  local orderer_args=(-o "127.0.0.1:$(orderer_port orderer1)" --tls --cafile "$(orderer_tls_ca)")
  for org in "${ORGS[@]}"; do
    as_peer "$org" admin lifecycle chaincode approveformyorg "${orderer_args[@]}" -C "$CHANNEL" \
      -n "$name" -v "$version" --package-id "${PKGIDS[$org]}" --sequence "$seq" \
      --signature-policy "$policy" --waitForEventTimeout "${TIMEOUT}s" >>"$RUN/logs/deploy-$name.log" 2>&1 ||
      die "approveformyorg for $org failed (log: $RUN/logs/deploy-$name.log)"
    say "approved for $(org_mspid "$org")"
  done
  as_peer utility admin lifecycle chaincode commit "${orderer_args[@]}" -C "$CHANNEL" \
    -n "$name" -v "$version" --sequence "$seq" --signature-policy "$policy" \
    --peerAddresses "127.0.0.1:$(peer_port utility)" --tlsRootCertFiles "$(peer_tls_ca utility)" \
    --peerAddresses "127.0.0.1:$(peer_port operator)" --tlsRootCertFiles "$(peer_tls_ca operator)" \
    --waitForEventTimeout "${TIMEOUT}s" >>"$RUN/logs/deploy-$name.log" 2>&1 ||
    die "commit of $name sequence $seq failed (log: $RUN/logs/deploy-$name.log)"
  say "committed '$name' sequence $seq with endorsement policy $policy"

  for org in "${ORGS[@]}"; do
    if ! wait_until "$name answers on $org-peer" "$TIMEOUT" probe_cc "$name" "$org" "$probe"; then
      die "chaincode '$name' did not answer on $org-peer within ${TIMEOUT} s; last CLI output in $RUN/logs/deploy-$name.log, server log $(log_file "cc-$name-$org"), peer log $(log_file "$org-peer")"
    fi
  done
  {
    export_line BCAMI_CC_NAME "$name"
    export_line BCAMI_CC_SEQUENCE "$seq"
    export_line BCAMI_CC_UTILITY_PACKAGE_ID "${PKGIDS[utility]}"
    export_line BCAMI_CC_OPERATOR_PACKAGE_ID "${PKGIDS[operator]}"
    export_line BCAMI_CC_UTILITY_ADDRESS "127.0.0.1:$(cc_server_port "$slot" utility)"
    export_line BCAMI_CC_OPERATOR_ADDRESS "127.0.0.1:$(cc_server_port "$slot" operator)"
    export_line BCAMI_CC_TLS_CA "$RUN/chaincode-ca/ca.crt"
  } >"$RUN/chaincode/$name/chaincode.env"
  say "chaincode '$name' deployed (sequence $seq) in $((SECONDS - t0)) s; details: $RUN/chaincode/$name/chaincode.env, deploy log $RUN/logs/deploy-$name.log"
}

cc_orgs_arg() { # [ORG] -> list of orgs
  if [[ -n "${1:-}" ]]; then
    case $1 in utility | operator) echo "$1" ;; *) usage_error "unknown org '$1' (utility, operator)" ;; esac
  else
    echo "${ORGS[@]}"
  fi
}

# ---------------------------------------------------------------------------
main() {
  local cmd=${1:-}
  [[ -n "$cmd" ]] || usage_error "missing command"
  shift
  case $cmd in
    up) (($# == 0)) || usage_error "up takes no arguments"; cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    deploy) cmd_deploy "$@" ;;
    env)
      [[ -f "$RUN/network.env" ]] || die "no network in $RUN; run 'network.sh up' first"
      echo "$RUN/network.env"
      ;;
    stop-node | start-node)
      [[ $# == 1 ]] || usage_error "$cmd needs a node name (one of: ${NODES[*]})"
      [[ " ${NODES[*]} " == *" $1 "* ]] || usage_error "unknown node '$1' (one of: ${NODES[*]})"
      [[ -f "$RUN/.bcami-run" ]] || die "no network in $RUN"
      load_base
      if [[ $cmd == stop-node ]]; then
        live_pid "$1" >/dev/null || say "$1 is not running"
        stop_pid_of "$1"
      else
        local was_running=0
        live_pid "$1" >/dev/null && was_running=1
        start_node "$1"
        wait_healthy "$1"
        [[ $1 != *-peer ]] || ((was_running)) || wait_gossip "$1"
      fi
      ;;
    stop-chaincode | restart-chaincode)
      [[ $# -ge 1 ]] || usage_error "$cmd needs a chaincode name"
      [[ -f "$RUN/.bcami-run" ]] || die "no network in $RUN"
      load_base
      local org
      for org in $(cc_orgs_arg "${2:-}"); do
        stop_pid_of "cc-$1-$org"
        [[ $cmd == restart-chaincode ]] && start_cc_server "$1" "$org"
      done
      ;;
    help | -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *) usage_error "unknown command '$cmd'" ;;
  esac
}

main "$@"
