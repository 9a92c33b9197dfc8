#!/usr/bin/env bash
# Installs the Debian 12 packages baton builds and runs with. Idempotent: skips what is present,
# so `make` calls it every time at no cost.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config make python3
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libxxhash-dev
  libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libcli11-dev prometheus-cpp-dev
  libgtest-dev libbenchmark-dev
  libeigen3-dev libfaiss-dev libopenblas-dev
  libgloo-dev iproute2 openmpi-bin libopenmpi-dev stress-ng
  libtorch-dev python3-torch python3-torchvision python3-pil
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
