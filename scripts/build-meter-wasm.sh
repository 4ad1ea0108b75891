#!/usr/bin/env bash
# Builds a meter module as a wasm32-unknown-unknown cdylib with no imports, its stack (32 KiB for
# the meter module: finishing a head-end handshake uses 22 KiB; 24 KiB for the anonymous one)
# first in linear memory, the `meter` profile
# (opt-level s, LTO, stripped), and path prefixes remapped so the bytes do not depend on where
# the repository or the cargo home is. Installs the toolchain first (install-wasm-toolchain.sh
# picks the route).
# Usage: build-meter-wasm.sh [meter|anon]
#   meter (default)  bcami-sdk-wasm (sdk/wasm): keys, registration, reading, rotation, the
#                    meter's side of the head-end session
#   anon             bcami-sdk-wasm-anon (sdk/wasm-anon): the anonymous reading
# Output: <target>/meter-wasm/<lib>.wasm; prints its size and SHA-256 (last line).
# The SHA-256 is checked against the crate's module.sha256 for this route and toolchain: a change
# to the module's code (its crate, sdk/wasm-rt, and sdk/core or sdk/anon) or to a dependency
# changes it, so after such a change run
#   BCAMI_PIN_MODULE=1 scripts/build-meter-wasm.sh [meter|anon]
# which rewrites this toolchain's line, and commit the file.
# Environment: BCAMI_METER_STACK (bytes, default: the module's), BCAMI_WASM_ROUTE (see the installer),
#              BCAMI_PIN_MODULE=1 (record this build's hash instead of checking it).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT=$TARGET_DIR/meter-wasm
case ${1:-meter} in
meter) crate=bcami-sdk-wasm crate_dir=sdk/wasm stack=32768 ;;
# The pairing check of a credential needs more stack than a reading (BENCHMARKS.md).
anon) crate=bcami-sdk-wasm-anon crate_dir=sdk/wasm-anon stack=24576 ;;
*)
  echo "usage: $0 [meter|anon]" >&2
  exit 2
  ;;
esac
STACK=${BCAMI_METER_STACK:-$stack}
lib=${crate//-/_}
pins=$REPO/$crate_dir/module.sha256

"$SCRIPT_DIR/install-wasm-toolchain.sh"
route=$(cat "$OUT/route")
cd "$REPO"

remap=(--remap-path-prefix="$REPO=/bcami" --remap-path-prefix="${CARGO_HOME:-$HOME/.cargo}=/cargo")
link=(-C "link-arg=-zstack-size=$STACK" -C link-arg=--stack-first -C link-arg=--export=__stack_pointer)
case $route in
rustup)
  build_dir=$TARGET_DIR
  RUSTFLAGS="${remap[*]}" cargo rustc --locked -p "$crate" --lib --profile meter \
    --target wasm32-unknown-unknown --crate-type cdylib -- "${link[@]}"
  ;;
debian)
  # Its own target dir: another rustc, and core/alloc built from /usr/lib/rustlib/src.
  build_dir=$OUT/debian
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="${remap[*]} --remap-path-prefix=/usr/lib/rustlib/src/rust=/rust" \
    cargo rustc --locked -Zbuild-std=core,alloc -p "$crate" --lib --profile meter \
    --target wasm32-unknown-unknown --crate-type cdylib --target-dir "$build_dir" -- \
    -C linker=wasm-ld "${link[@]}"
  ;;
esac
cp "$build_dir/wasm32-unknown-unknown/meter/$lib.wasm" "$OUT/$lib.wasm"
sha=$(sha256sum "$OUT/$lib.wasm" | cut -d' ' -f1)
case $route in
rustup) rustc_version=$(rustc --version) ;;
debian) rustc_version=$(/usr/bin/rustc --version) ;;
esac
pinned=$(awk -F' [|] ' -v r="$route" -v v="$rustc_version" '$2 == r && $3 == v { print $1 }' "$pins")
echo "build-meter-wasm: route $route ($rustc_version), $OUT/$lib.wasm"
if [[ ${BCAMI_PIN_MODULE:-0} == 1 ]]; then
  awk -F' [|] ' -v r="$route" -v v="$rustc_version" '!($2 == r && $3 == v)' "$pins" >"$pins.new"
  echo "$sha | $route | $rustc_version" >>"$pins.new"
  mv "$pins.new" "$pins"
  echo "build-meter-wasm: pinned $sha for $route, $rustc_version in $crate_dir/module.sha256"
  pinned=$sha
elif [[ -z $pinned ]]; then
  echo "build-meter-wasm: note: no pinned hash for this toolchain in $crate_dir/module.sha256"
elif [[ $pinned != "$sha" ]]; then
  echo "build-meter-wasm: FAILED: sha256 $sha, but $crate_dir/module.sha256 pins $pinned for $rustc_version" \
    "(after a change to the meter's code: BCAMI_PIN_MODULE=1 $0 ${1:-meter})" >&2
  exit 1
fi
echo "build-meter-wasm: $(stat -c %s "$OUT/$lib.wasm") bytes, sha256 $sha${pinned:+ (as pinned)}"
