#!/usr/bin/env bash
# Builds the meter module: bcami-sdk-wasm as a wasm32-unknown-unknown cdylib with no imports,
# a 32 KiB stack first in linear memory (finishing a head-end handshake uses 22 KiB of it), the
# `meter` profile (opt-level s, LTO, stripped), and path prefixes remapped so the bytes do not
# depend on where the repository or the cargo home is. Installs the toolchain first
# (install-wasm-toolchain.sh picks the route).
# Output: <target>/meter-wasm/bcami_sdk_wasm.wasm; prints its size and SHA-256 (last line).
# The SHA-256 is checked against sdk/wasm/module.sha256 for this route and toolchain: a change to
# the meter's code (sdk/core, sdk/wasm) or to a dependency changes it, so after such a change run
#   BCAMI_PIN_MODULE=1 scripts/build-meter-wasm.sh
# which rewrites this toolchain's line, and commit the file.
# Environment: BCAMI_METER_STACK (bytes, default 32768), BCAMI_WASM_ROUTE (see the installer),
#              BCAMI_PIN_MODULE=1 (record this build's hash instead of checking it).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT=$TARGET_DIR/meter-wasm
STACK=${BCAMI_METER_STACK:-32768}

"$SCRIPT_DIR/install-wasm-toolchain.sh"
route=$(cat "$OUT/route")
cd "$REPO"

remap=(--remap-path-prefix="$REPO=/bcami" --remap-path-prefix="${CARGO_HOME:-$HOME/.cargo}=/cargo")
link=(-C "link-arg=-zstack-size=$STACK" -C link-arg=--stack-first -C link-arg=--export=__stack_pointer)
case $route in
rustup)
  build_dir=$TARGET_DIR
  RUSTFLAGS="${remap[*]}" cargo rustc --locked -p bcami-sdk-wasm --lib --profile meter \
    --target wasm32-unknown-unknown --crate-type cdylib -- "${link[@]}"
  ;;
debian)
  # Its own target dir: another rustc, and core/alloc built from /usr/lib/rustlib/src.
  build_dir=$OUT/debian
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="${remap[*]} --remap-path-prefix=/usr/lib/rustlib/src/rust=/rust" \
    cargo rustc --locked -Zbuild-std=core,alloc -p bcami-sdk-wasm --lib --profile meter \
    --target wasm32-unknown-unknown --crate-type cdylib --target-dir "$build_dir" -- \
    -C linker=wasm-ld "${link[@]}"
  ;;
esac
cp "$build_dir/wasm32-unknown-unknown/meter/bcami_sdk_wasm.wasm" "$OUT/bcami_sdk_wasm.wasm"
sha=$(sha256sum "$OUT/bcami_sdk_wasm.wasm" | cut -d' ' -f1)
case $route in
rustup) rustc_version=$(rustc --version) ;;
debian) rustc_version=$(/usr/bin/rustc --version) ;;
esac
pinned=$(awk -F' [|] ' -v r="$route" -v v="$rustc_version" '$2 == r && $3 == v { print $1 }' \
  "$REPO/sdk/wasm/module.sha256")
echo "build-meter-wasm: route $route ($rustc_version), $OUT/bcami_sdk_wasm.wasm"
if [[ ${BCAMI_PIN_MODULE:-0} == 1 ]]; then
  pins=$REPO/sdk/wasm/module.sha256
  awk -F' [|] ' -v r="$route" -v v="$rustc_version" '!($2 == r && $3 == v)' "$pins" >"$pins.new"
  echo "$sha | $route | $rustc_version" >>"$pins.new"
  mv "$pins.new" "$pins"
  echo "build-meter-wasm: pinned $sha for $route, $rustc_version in sdk/wasm/module.sha256"
  pinned=$sha
elif [[ -z $pinned ]]; then
  echo "build-meter-wasm: note: no pinned hash for this toolchain in sdk/wasm/module.sha256"
elif [[ $pinned != "$sha" ]]; then
  echo "build-meter-wasm: FAILED: sha256 $sha, but sdk/wasm/module.sha256 pins $pinned for $rustc_version" \
    "(after a change to the meter's code: BCAMI_PIN_MODULE=1 $0)" >&2
  exit 1
fi
echo "build-meter-wasm: $(stat -c %s "$OUT/bcami_sdk_wasm.wasm") bytes, sha256 $sha${pinned:+ (as pinned)}"
