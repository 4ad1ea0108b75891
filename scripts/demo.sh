#!/usr/bin/env bash
# The BC-AMI demo, end to end, with one command: meters -> data concentrators -> Fabric -> MDMS.
#
#   1. installs what is missing (Fabric binaries: scripts/install-fabric.sh)
#   2. brings the network up (scripts/network.sh up; nothing to do if it is up)
#   3. deploys the BC-AMI chaincode (skipped when it already answers; BCAMI_DEMO_REDEPLOY=1 forces)
#   4. meter-sim run: provisions and registers the meters (each with its own key), then sends a
#      day of half-hourly synthetic household readings through the concentrators
#   5. meter-sim mdms export: as the MDMS, fetches every committed reading of this run, verifies
#      its signature against the registered key, decrypts it and compares it with what the meter
#      logged as sent
#   6. prints a short summary; exits non-zero if any committed reading does not decrypt to
#      exactly what its meter sent
#   7. anonymous readings (the DAA paper): meter-sim anon issue rolls the credential epoch,
#      meter-sim anon run enrols fresh meters, has each report the current period anonymously
#      through the concentrators (some of them twice), and traces every double report; the
#      period's aggregate is shown next to the true sum, with the double reports caught and the
#      meters traced
# Running it again works: the meters, keys and registrations are reused from the state folder and
# the next day of readings is sent.
#
# usage: scripts/demo.sh
# Environment:
#   BCAMI_RUN_DIR          network run dir (default <repo>/run), as for scripts/network.sh
#   BCAMI_DEMO_STATE       meter-sim state folder (default <repo>/.state/demo)
#   BCAMI_DEMO_METERS      meters (default 200)
#   BCAMI_DEMO_DAYS        days of half-hourly readings per meter (default 1)
#   BCAMI_DEMO_BATCH       readings per transaction (default 100)
#   BCAMI_DEMO_CONCENTRATORS  data concentrators (default 2)
#   BCAMI_DEMO_REDEPLOY    1 to deploy the chaincode even if it answers
#   BCAMI_DEMO_ANON_METERS meters of the anonymous phase (default 20; 0 skips it)
# Exit codes: 0 all readings verified; 1 a step failed; 3 an MDMS check failed, or the anonymous
# aggregate differs from the true sum, or a double report was missed or mistraced.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
RUN=${BCAMI_RUN_DIR:-$REPO/run}
export BCAMI_RUN_DIR=$RUN
STATE=${BCAMI_DEMO_STATE:-$REPO/.state/demo}
METERS=${BCAMI_DEMO_METERS:-200}
DAYS=${BCAMI_DEMO_DAYS:-1}
BATCH=${BCAMI_DEMO_BATCH:-100}
CONCENTRATORS=${BCAMI_DEMO_CONCENTRATORS:-2}
ANON_METERS=${BCAMI_DEMO_ANON_METERS:-20}
LOGS=$STATE/logs

say() { printf '\n==> demo: %s\n' "$*"; }
die() {
  printf 'demo: ERROR: %s\n' "$*" >&2
  printf 'demo: logs: %s (demo), %s (network)\n' "$LOGS" "$RUN/logs" >&2
  exit 1
}

mkdir -p "$LOGS"
command -v jq >/dev/null || die "jq is required (apt-get install jq)"
command -v cargo >/dev/null || die "cargo is required (install Rust: https://rustup.rs)"
printf 'demo: logs in %s; network logs in %s\n' "$LOGS" "$RUN/logs"

say "installing what is missing"
"$SCRIPT_DIR/install-fabric.sh" 2>&1 | tee "$LOGS/install.log" ||
  die "install-fabric.sh failed (see $LOGS/install.log)"

say "bringing the network up (run dir $RUN)"
"$SCRIPT_DIR/network.sh" up 2>&1 | tee "$LOGS/network-up.log" ||
  die "network.sh up failed (see $LOGS/network-up.log)"

say "building meter-sim"
(cd "$REPO" && cargo build --release -p meter-sim) 2>&1 | tee "$LOGS/build.log" >&2 ||
  die "cargo build -p meter-sim failed (see $LOGS/build.log)"
METER_SIM=${CARGO_TARGET_DIR:-$REPO/target}/release/meter-sim
[[ -x "$METER_SIM" ]] || die "no meter-sim binary at $METER_SIM"
# The contract's names come from bcami-api (scripts/contract-api.sh), never spelled here.
# shellcheck source=scripts/contract-api.sh
source "$SCRIPT_DIR/contract-api.sh"
contract_api_load "$METER_SIM" || die "meter-sim api failed"
COUNTS_QUERY=$(jq -cn --arg f "$(contract_fn GET_COUNTS)" '{Args: [$f]}')

answers() {
  "$SCRIPT_DIR/peer-cli.sh" utility admin chaincode query -C ami -n bcami \
    -c "$COUNTS_QUERY" >/dev/null 2>&1
}
if [[ "${BCAMI_DEMO_REDEPLOY:-0}" != 1 ]] && answers; then
  say "the bcami chaincode is deployed and answers; not redeploying (BCAMI_DEMO_REDEPLOY=1 forces)"
else
  say "deploying the bcami chaincode"
  "$SCRIPT_DIR/network.sh" deploy --probe-args "$COUNTS_QUERY" 2>&1 |
    tee "$LOGS/deploy.log" || die "network.sh deploy failed (see $LOGS/deploy.log)"
fi

# Readings are exported from the moment this run starts: the check covers exactly this run.
FROM_MS=$(($(date +%s) * 1000))

say "meter-sim run: $METERS meters x $DAYS day(s) of half-hourly readings, batches of $BATCH, $CONCENTRATORS concentrators"
rc=0
"$METER_SIM" --state "$STATE" run --network-env "$RUN/network.env" \
  --meter-prefix DEMO --meters "$METERS" --days "$DAYS" --interval 30m --batch "$BATCH" \
  --concentrators "$CONCENTRATORS" --no-verify --json \
  >"$LOGS/run.json" 2> >(tee "$LOGS/run.log" >&2) || rc=$?
((rc == 0)) || die "meter-sim run failed with exit code $rc (see $LOGS/run.log)"

say "meter-sim mdms export: verify, decrypt and compare every committed reading of this run"
rc=0
"$METER_SIM" --state "$STATE" mdms export --network-env "$RUN/network.env" \
  --from "$FROM_MS" --out "$LOGS/readings.csv" --state-meters-only --json \
  >"$LOGS/export.json" 2> >(tee "$LOGS/export.log" >&2) || rc=$?
((rc == 0 || rc == 3)) || die "meter-sim mdms export failed with exit code $rc (see $LOGS/export.log)"

committed=$(jq -r '.committed' "$LOGS/run.json")
submitted=$(jq -r '.submitted' "$LOGS/run.json")
meters=$(jq -r '.meters' "$LOGS/run.json")
unregistered=$(jq -r '.meters_unregistered' "$LOGS/run.json")
rejected=$(jq -r '[.rejected[]] | add // 0' "$LOGS/run.json")
reasons=$(jq -r '.rejected | to_entries | map("\(.key)=\(.value)") | join(", ")' "$LOGS/run.json")
rate=$(jq -r '.readings_per_s | floor' "$LOGS/run.json")
p50=$(jq -r '.latency.p50_ms | floor' "$LOGS/run.json")
p99=$(jq -r '.latency.p99_ms | floor' "$LOGS/run.json")
exported=$(jq -r '.exported' "$LOGS/export.json")
failed=$(jq -r '.failed | length' "$LOGS/export.json")
matched=$(jq -r '.sent_log.matched // 0' "$LOGS/export.json")
mismatched=$(jq -r '(.sent_log.mismatched // []) | length' "$LOGS/export.json")
missing=$(jq -r '(.sent_log.missing // []) | length' "$LOGS/export.json")
mismatches=$((failed + mismatched + missing))

say "summary"
printf '  meters      %s (%s could not register; see %s)\n' "$meters" "$unregistered" "$LOGS/run.log"
printf '  submitted   %s readings\n' "$submitted"
printf '  committed   %s\n' "$committed"
printf '  rejected    %s%s\n' "$rejected" "${reasons:+ ($reasons)}"
printf '  exported    %s by the MDMS, %s identical to what the meters sent\n' "$exported" "$matched"
printf '  mismatches  %s (failed verification %s, different value %s, missing %s)\n' \
  "$mismatches" "$failed" "$mismatched" "$missing"
printf '  readings/s  %s committed (submit-to-commit p50 %s ms, p99 %s ms)\n' "$rate" "$p50" "$p99"
printf '  files       %s (CSV), %s, %s\n' "$LOGS/readings.csv" "$LOGS/run.json" "$LOGS/export.json"
anon_rc=0
if ((ANON_METERS > 0)); then
  say "anonymous readings: meter-sim anon issue (a new credential epoch), then anon run with $ANON_METERS meters, 10 % of them reporting twice"
  "$METER_SIM" --state "$STATE" anon issue --network-env "$RUN/network.env" \
    2> >(tee "$LOGS/anon-issue.log" >&2) || die "meter-sim anon issue failed (see $LOGS/anon-issue.log)"
  "$METER_SIM" --state "$STATE" anon run --network-env "$RUN/network.env" \
    --meters "$ANON_METERS" --concentrators "$CONCENTRATORS" --double-share 0.1 --replays 2 \
    2> >(tee "$LOGS/anon-run.log" >&2) | tee "$LOGS/anon-run.txt" || anon_rc=$?
  ((anon_rc == 0 || anon_rc == 3)) || die "meter-sim anon run failed with exit code $anon_rc (see $LOGS/anon-run.log)"
fi

if ((anon_rc == 3)); then
  printf 'demo: FAILED: the anonymous aggregate or the double reports disagree with what the meters sent (see %s)\n' "$LOGS/anon-run.txt" >&2
  exit 3
fi
if ((mismatches > 0 || rc == 3 || matched != committed)); then
  printf 'demo: FAILED: not every committed reading came back exactly as sent (see %s)\n' "$LOGS/export.log" >&2
  exit 3
fi
printf '\ndemo: OK: every committed reading decrypted to exactly the value its meter sent\n'
