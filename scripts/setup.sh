#!/usr/bin/env bash
# Installs the system packages Stratus needs to build, if they are missing:
# libclang (bindgen for the RocksDB bindings) and a C++ compiler (RocksDB builds from source).
set -euo pipefail

need=()
if ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; then
  need+=(libclang-dev)
fi
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is not installed (https://rustup.rs)" >&2; exit 1; }

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
