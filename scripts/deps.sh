#!/usr/bin/env bash
# Installs the Debian packages trainyard needs to build, test and run its examples.
# Quick when everything is already there: it asks dpkg first and calls apt only for what is missing.
set -euo pipefail
pkgs=(
  build-essential pkg-config
  libuv1-dev libyaml-dev libjansson-dev zlib1g-dev   # the binary and the C examples
  libsqlite3-dev                                      # the server's store
  libmicrohttpd-dev                                   # the API server (trainyard server)
  libcriterion-dev                                    # unit tests
  clang libclang-rt-14-dev                            # make fuzz: clang and libFuzzer's runtime
  python3-pytest python3-kubernetes python3-torch     # end-to-end tests, PyTorch example
  dataset-fashion-mnist                               # training data for the examples
  procps                                              # pgrep/ps for the no-orphan tests
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
