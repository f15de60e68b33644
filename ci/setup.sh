#!/usr/bin/env bash
# Installs what building and testing rvs needs. Sourced by ci/test.sh and ci/run-default.sh.
# Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required" >&2; exit 1; }
command -v cc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
# DPDK 22.11 (Debian) for dataplane/dpdk-sys: headers and libs, the PMD plugins, dpdk-testpmd,
# and libclang for bindgen.
if ! pkg-config --exists libdpdk 2>/dev/null || ! command -v dpdk-testpmd >/dev/null; then
  need+=(dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config)
fi
# keepalived 2.2 (Debian): the keepalived.conf tests check their fixtures with its
# --config-test.
command -v keepalived >/dev/null || need+=(keepalived)
# BIRD 2 and hping3: ci/netns.sh exception-flood (BGP and BFD over the kernel interface
# under a flood) and unresolved (a flood toward next hops that never answer).
command -v bird >/dev/null || need+=(bird2)
command -v hping3 >/dev/null || need+=(hping3)
# openssl: the SSL_GET test's TLS server (openssl s_server) and its certificate.
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install: ${need[*]}" >&2; exit 1
  fi
fi
