#!/usr/bin/env bash
# Install the system packages cachee needs to build and test, if missing:
# the xxHash header (the engine's hash), a C compiler and make, and
# redis-server (the Redis peer of the benchmarks).  Runs apt-get only when
# something is missing (and only as root).
set -euo pipefail
need=()
[ -f /usr/include/xxhash.h ] || need+=(libxxhash-dev)
command -v redis-server >/dev/null || need+=(redis-server)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "cachee needs these packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || {
  apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null
}
