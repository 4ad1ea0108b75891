#!/usr/bin/env bash
# Builds the Cortex-M4F size image (sdk/wasm/src/bin/cortex-m4-image.rs: reset handler, .data and
# .bss set-up, one reading built in a loop) for thumbv7em-none-eabihf with the `meter` profile,
# linked with sdk/wasm/cortex-m4.ld, and prints `size` of it: the code and data a firmware image
# carries to build a reading. Installs the toolchain first (install-wasm-toolchain.sh).
# Output: <target>/meter-wasm/cortex-m4-image (ELF); the last line is `size`'s.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT=$TARGET_DIR/meter-wasm
TARGET=thumbv7em-none-eabihf

"$SCRIPT_DIR/install-wasm-toolchain.sh"
route=$(cat "$OUT/route")
cd "$REPO"

remap=(--remap-path-prefix="$REPO=/bcami" --remap-path-prefix="${CARGO_HOME:-$HOME/.cargo}=/cargo")
link=(-C "link-arg=-T$REPO/sdk/wasm/cortex-m4.ld" -C link-arg=--nmagic)
case $route in
rustup)
  build_dir=$TARGET_DIR
  RUSTFLAGS="${remap[*]}" cargo rustc --locked -p bcami-sdk-wasm --bin cortex-m4-image \
    --features cortex-m4-image --profile meter --target "$TARGET" -- "${link[@]}"
  ;;
debian)
  build_dir=$OUT/debian
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="${remap[*]} --remap-path-prefix=/usr/lib/rustlib/src/rust=/rust" \
    cargo rustc --locked -Zbuild-std=core,alloc -p bcami-sdk-wasm --bin cortex-m4-image \
    --features cortex-m4-image --profile meter --target "$TARGET" --target-dir "$build_dir" -- \
    -C linker=ld.lld "${link[@]}"
  ;;
esac
cp "$build_dir/$TARGET/meter/cortex-m4-image" "$OUT/cortex-m4-image"
if command -v arm-none-eabi-size >/dev/null; then
  size_tool=arm-none-eabi-size
elif command -v llvm-size >/dev/null; then
  size_tool=llvm-size
else
  echo "build-meter-cortex-m4: no size tool (arm-none-eabi-size or llvm-size)" >&2
  exit 1
fi
echo "build-meter-cortex-m4: route $route, $OUT/cortex-m4-image ($size_tool)"
"$size_tool" "$OUT/cortex-m4-image"
