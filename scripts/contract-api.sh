# shellcheck shell=bash
# The contract's names for scripts, from bcami-api through `meter-sim api`, so that no script
# spells a contract function or a rejection code (only tests/e2e/20-contract-cli.sh does, as the
# integrator's peer-CLI test). Source it, then:
#   contract_api_load METER_SIM   reads the table once (sets CONTRACT_API)
#   contract_fn KEY               a function's name, e.g. `contract_fn SUBMIT_READINGS`
#   contract_reason KEY           a per-reading rejection code, e.g. `contract_reason REPLAYED`
#   contract_limit KEY            a limit, e.g. `contract_limit MAX_BATCH`
# Keys are bcami-api's Rust names in SCREAMING_SNAKE_CASE (`meter-sim api` lists them). A key
# bcami-api does not have fails (status 1, the reason on stderr), so a function removed or
# renamed in Rust fails the scripts loudly instead of sending a name the contract refuses.

contract_api_load() {
  CONTRACT_API=$("$1" api) || {
    echo "contract-api: '$1 api' failed" >&2
    return 1
  }
}

_contract_api() { # JQ_PATH KEY WHAT
  if [[ -z "${CONTRACT_API:-}" ]]; then
    echo "contract-api: call contract_api_load first" >&2
    return 1
  fi
  jq -er --arg k "$2" "$1 // empty" <<<"$CONTRACT_API" || {
    echo "contract-api: bcami-api has no $3 $2 (see meter-sim api)" >&2
    return 1
  }
}

# shellcheck disable=SC2016 # $k is jq's variable
contract_fn() { _contract_api '.functions[$k].name' "$1" function; }
# shellcheck disable=SC2016
contract_reason() { _contract_api '.reject_reasons[$k]' "$1" "rejection code"; }
# shellcheck disable=SC2016
contract_limit() { _contract_api '.limits[$k]' "$1" limit; }
