#!/usr/bin/env bash
# Installs what builds the meter side for 32-bit targets (wasm32-unknown-unknown for wasmtime,
# thumbv7em-none-eabihf for a Cortex-M4F) and a `size` tool, on a fresh machine with no manual
# step. Two routes, tried in this order:
#   rustup   `rustup target add` for the active toolchain (the rust-std of each target comes
#            from the Rust release server). Links with the toolchain's rust-lld.
#   debian   where rustup cannot add targets: Debian's rustc-web (1.96, bookworm-security) with
#            rust-web-src, building core and alloc from source (cargo -Zbuild-std with
#            RUSTC_BOOTSTRAP=1), linked with wasm-ld / ld.lld from Debian's lld.
# Both also install binutils-arm-none-eabi (arm-none-eabi-size) when apt-get can.
# Writes the chosen route to <repo>/target/meter-wasm/route (read by build-meter-wasm.sh and
# build-meter-cortex-m4.sh). Idempotent: when the route's parts are present it says so and exits
# in about a second.
#
# Environment: BCAMI_WASM_ROUTE=rustup|debian forces a route.
# Exit codes: 0 ok; 1 no route could be installed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
OUT=${CARGO_TARGET_DIR:-$REPO/target}/meter-wasm
mkdir -p "$OUT"
LOG=$OUT/install.log
TARGETS=(wasm32-unknown-unknown thumbv7em-none-eabihf)
DEBIAN_PACKAGES=(rustc-web rust-web-src lld)

say() { echo "install-wasm-toolchain: $*"; }

sudo=()
((EUID == 0)) || sudo=(sudo -n)
apt_updated=0
apt_install() { # PACKAGE...: installs the missing ones; fails if apt-get cannot
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || return 1
  say "apt-get install ${missing[*]} (log: $LOG)"
  if ((!apt_updated)); then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$LOG" 2>&1 || return 1
    apt_updated=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$LOG" 2>&1
}

rustup_route() {
  command -v rustup >/dev/null || return 1
  local installed t missing=()
  installed=$(rustup target list --installed 2>/dev/null) || return 1
  for t in "${TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
  done
  if ((${#missing[@]})); then
    say "rustup target add ${missing[*]} (log: $LOG)"
    timeout 600 rustup target add "${missing[@]}" >>"$LOG" 2>&1 || return 1
  fi
}

debian_route() {
  apt_install "${DEBIAN_PACKAGES[@]}" || return 1
  [[ -x /usr/bin/rustc && -d /usr/lib/rustlib/src/rust/library ]] && command -v wasm-ld >/dev/null
}

route=${BCAMI_WASM_ROUTE:-}
if [[ -z $route || $route == rustup ]] && rustup_route; then
  route=rustup
elif [[ -z $route || $route == debian ]] && debian_route; then
  route=debian
else
  say "FAILED: neither rustup nor Debian's rustc-web could provide ${TARGETS[*]} (see $LOG)" >&2
  exit 1
fi
# A size tool for the Cortex-M4 image: arm-none-eabi-size, else llvm-size.
apt_install binutils-arm-none-eabi || say "binutils-arm-none-eabi not installed; llvm-size will do if present"
echo "$route" >"$OUT/route"
case $route in
rustup) say "route rustup: $(rustc --version), targets ${TARGETS[*]}" ;;
debian) say "route debian: $(/usr/bin/rustc --version) with -Zbuild-std=core,alloc" ;;
esac
