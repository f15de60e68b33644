#!/usr/bin/env bash
# Builds DPDK's l3fwd example, ci/bench.sh's third peer (run in exact-match mode: -E), and
# prints the binary's path on stdout; what it does goes to stderr.
# Its sources come from Debian's dpdk-doc package (examples/l3fwd, built with examples/common
# beside it, by their Makefile against `pkg-config libdpdk`); ci/bench/l3fwd.patch (each
# change explained at its top) is applied to a copy in ${CARGO_TARGET_DIR:-target}/l3fwd.
# The build is kept there and redone when the patch, this script, dpdk-doc or libdpdk change.
# Installs what it needs if missing (as root): dpdk-doc, make, patch, gcc, pkg-config,
# libdpdk-dev, and python3 for ci/bench/l3fwd-rules.py.
# Usage: ci/bench/l3fwd.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EXAMPLES=/usr/share/dpdk/examples
PATCH=ci/bench/l3fwd.patch
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$TARGET"
OUT=$(cd "$TARGET" && pwd)/l3fwd

need=()
[ -f "$EXAMPLES/l3fwd/main.c" ] && [ -d "$EXAMPLES/common" ] || need+=(dpdk-doc)
command -v make >/dev/null || need+=(make)
command -v patch >/dev/null || need+=(patch)
command -v cc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libdpdk 2>/dev/null || need+=(libdpdk-dev)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "l3fwd.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "l3fwd.sh: please install: ${need[*]}" >&2; exit 1
  fi
fi

doc_version=$(dpkg-query -W -f='${Version}' dpdk-doc 2>/dev/null || echo unknown)
stamp=$( { cat "$PATCH" ci/bench/l3fwd.sh; echo "dpdk-doc $doc_version"; pkg-config --modversion libdpdk; } | sha256sum | cut -d' ' -f1)
bin="$OUT/l3fwd/build/l3fwd-shared"
if [ -x "$bin" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi

echo "l3fwd.sh: building l3fwd from $EXAMPLES (dpdk-doc $doc_version) with $PATCH into $OUT" >&2
tmp=$(mktemp -d "$OUT.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -r "$EXAMPLES/l3fwd" "$EXAMPLES/common" "$tmp/"
if ! patch -d "$tmp" -p1 --batch --quiet --fuzz=0 <"$PATCH" >&2; then
  echo "l3fwd.sh: $PATCH does not apply to $EXAMPLES (dpdk-doc $doc_version); it is made for DPDK 22.11's l3fwd" >&2
  exit 1
fi
make -s -C "$tmp/l3fwd" >&2 || { echo "l3fwd.sh: make failed in $tmp/l3fwd" >&2; exit 1; }
echo "$stamp" >"$tmp/stamp"
# The finished build replaces the old one in one step (a bench reading the old one keeps
# its open binary).
rm -rf "$OUT"
mv "$tmp" "$OUT"
trap - EXIT
echo "$bin"
