#!/usr/bin/env bash
# Runs Fabric's `peer` CLI as one identity of the running BC-AMI network, against
# that identity's own org peer, with TLS.
#
# usage: scripts/peer-cli.sh [--via PEER_ORG] ORG ROLE PEER_ARGS...
#   ORG   utility | operator
#   ROLE  admin | client1 | client2
#   --via the org whose peer to talk to (default: ORG's own), e.g. to read the other
#         org's copy of the ledger
# e.g.   scripts/peer-cli.sh operator client1 chaincode query -C ami -n bcami -c '{"Args":["ping"]}'
#
# For `chaincode invoke`, `lifecycle ... approveformyorg|commit` and `channel update`
# the orderer flags are added for you (-o orderer1 --tls --cafile <orderer TLS CA>)
# unless you pass -o/--orderer yourself; for `chaincode invoke` both orgs' peers are
# added as endorsers unless you pass --peerAddresses yourself.
#
# Environment: BCAMI_RUN_DIR (default <repo>/run) locates network.env.
# Exit code: the peer CLI's; 2 on usage errors; 1 if no network is up.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
RUN=${BCAMI_RUN_DIR:-$REPO/run}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}
via=""
if [[ "${1:-}" == --via ]]; then
  via=${2:-}
  shift 2 || usage
fi
(($# >= 3)) || usage
org=$1 role=$2
shift 2
via=${via:-$org}
for o in "$org" "$via"; do
  case $o in utility | operator) ;; *)
    echo "peer-cli: unknown org '$o' (utility, operator)" >&2
    exit 2
    ;;
  esac
done
case $role in admin | client1 | client2) ;; *)
  echo "peer-cli: unknown role '$role' (admin, client1, client2)" >&2
  exit 2
  ;;
esac
if [[ ! -f "$RUN/network.env" ]]; then
  echo "peer-cli: no network in $RUN (no network.env); run scripts/network.sh up" >&2
  exit 1
fi
# shellcheck source=/dev/null
source "$RUN/network.env"

ORG=${org^^}
ROLE=${role^^}
mspid_var=BCAMI_${ORG}_MSPID
VIA=${via^^}
addr_var=BCAMI_${VIA}_PEER_ADDRESS
ca_var=BCAMI_${VIA}_PEER_TLS_CA
msp_var=BCAMI_${ORG}_MSP_${ROLE}

args=("$@")
has_flag() {
  local a f
  for a in "${args[@]}"; do
    for f in "$@"; do [[ "$a" == "$f" || "$a" == "$f="* ]] && return 0; done
  done
  return 1
}
sub="${args[0]:-} ${args[1]:-} ${args[2]:-} ${args[3]:-}"
extra=()
if [[ "$sub" =~ ^(chaincode\ invoke|channel\ update|lifecycle\ chaincode\ (approveformyorg|commit)) ]] &&
  ! has_flag -o --orderer; then
  extra+=(-o "$BCAMI_ORDERER_ADDRESS" --tls --cafile "$BCAMI_ORDERER_TLS_CA")
fi
if [[ "$sub" =~ ^chaincode\ invoke ]] && ! has_flag --peerAddresses; then
  extra+=(--peerAddresses "$BCAMI_UTILITY_PEER_ADDRESS" --tlsRootCertFiles "$BCAMI_UTILITY_PEER_TLS_CA"
    --peerAddresses "$BCAMI_OPERATOR_PEER_ADDRESS" --tlsRootCertFiles "$BCAMI_OPERATOR_PEER_TLS_CA")
fi

export FABRIC_CFG_PATH
# INFO: `chaincode invoke` reports its result ("Chaincode invoke successful...")
# only at INFO level; Fabric v3.1.1 also logs every gRPC connection step at INFO, which
# says nothing here (grpc=warning), and a query's set-up ("InitCmdFactory: Entry"), so a query
# logs warnings only. Logs go to stderr; query payloads to stdout.
if [[ "$sub" =~ ^chaincode\ query ]]; then
  export FABRIC_LOGGING_SPEC=${FABRIC_LOGGING_SPEC:-warning}
else
  export FABRIC_LOGGING_SPEC=${FABRIC_LOGGING_SPEC:-grpc=warning:info}
fi
export CORE_PEER_TLS_ENABLED=true
export CORE_PEER_LOCALMSPID=${!mspid_var}
export CORE_PEER_MSPCONFIGPATH=${!msp_var}
export CORE_PEER_TLS_ROOTCERT_FILE=${!ca_var}
export CORE_PEER_ADDRESS=${!addr_var}
exec "$BCAMI_FABRIC_BIN/peer" "${args[@]}" "${extra[@]}"
