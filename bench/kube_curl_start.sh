#!/usr/bin/env bash
# What linking libcurl would cost every exec of trainyard (it is exec'd once per pod, as the
# pod's supervisor): `trainyard --version` as built (libcurl loaded with dlopen by src/kube only
# when a client is made) beside the same objects linked with -lcurl. Median of 5 rounds of
# N execs each.
#   bench/kube_curl_start.sh [N]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
make -s build/trainyard
linked=$(mktemp /tmp/trainyard-curl-XXXXXX)
trap 'rm -f "$linked"' EXIT
# The release link line with libcurl added (and kept although nothing calls it, as a direct
# link would keep it once src/kube called curl_* directly).
cc -O2 -o "$linked" build/obj/src/main.o build/libtrainyard.a \
  $(pkg-config --libs libuv yaml-0.1 jansson sqlite3) -Wl,--no-as-needed -lcurl -Wl,--as-needed -ldl -lm
per_exec_us() {
  local b=$1 s e
  s=$(date +%s%N)
  for ((i = 0; i < n; i++)); do "$b" --version >/dev/null; done
  e=$(date +%s%N)
  echo $(((e - s) / n / 1000))
}
dl=(); ln=()
for r in 1 2 3 4 5; do
  dl+=("$(per_exec_us build/trainyard)")
  ln+=("$(per_exec_us "$linked")")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
echo "machine: nproc=$(nproc) libs: dlopen=$(ldd build/trainyard | wc -l) linked=$(ldd "$linked" | wc -l) shared objects"
echo "trainyard --version, libcurl dlopened (as built): $(median "${dl[@]}") us per exec"
echo "trainyard --version, libcurl linked (baseline):   $(median "${ln[@]}") us per exec"
