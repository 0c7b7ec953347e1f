#!/usr/bin/env bash
# Installs the system packages phi4mac's tests need, if they are missing:
# clang (>= 15) compiles the .metal kernels as C++ for the Metal emulator and
# as C++ for OpenCL for the syntax check. Idempotent; quiet when all is there.
set -euo pipefail

need=()
command -v clang++-15 >/dev/null 2>&1 || command -v clang++-16 >/dev/null 2>&1 || need+=(clang-15)

[ ${#need[@]} -eq 0 ] && exit 0

case "$(uname -s)" in
Darwin)
	echo "deps: install the Xcode command line tools (xcode-select --install) for clang" >&2
	exit 1
	;;
esac
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: please install: ${need[*]} (needs apt-get, which this system lacks)" >&2
	exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
