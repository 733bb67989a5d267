#!/usr/bin/env bash
# Installs the Debian packages trainyard needs to build, test and run its examples.
# Quick when everything is already there: it asks dpkg first and calls apt only for what is missing.
set -euo pipefail
pkgs=(
  build-essential pkg-config
  libuv1-dev libyaml-dev libjansson-dev zlib1g-dev   # the binary and the C examples
  libarchive-dev                                      # image layers (loaded at run time)
  crun busybox-static                                 # containers from images; their tests
  libsqlite3-dev                                      # the server's store
  libmicrohttpd-dev                                   # the API server (trainyard server)
  libgnutls28-dev                                     # keys, certificates, tokens (src/auth)
  libcurl4-openssl-dev                                # the Kubernetes client (src/kube, dlopened)
  libnftables-dev                                     # the Service proxy (dlopened)
  libcriterion-dev                                    # unit tests
  clang libclang-rt-14-dev                            # make fuzz: clang and libFuzzer's runtime
  python3-pytest python3-kubernetes python3-torch     # end-to-end tests, PyTorch example
  dataset-fashion-mnist                               # training data for the examples
  procps                                              # pgrep/ps for the no-orphan tests
  iproute2                                            # ip: the pod network tests look at links
  nftables                                            # nft: the Service tests read the rules
  openssl                                             # certificates for the Kubernetes client's TLS test
  python3-optuna python3-cmaes                        # bench/hpo.sh: Optuna's samplers as baseline
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The server's tests and docs use kubectl; any kubectl on PATH will do, else Debian's.
need_kubectl=0
command -v kubectl >/dev/null 2>&1 || need_kubectl=1
# The install tests validate the manifests with npm packages (tests/e2e/npm, installed into
# build/npm): any node and npm on PATH will do, else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && [ $need_kubectl -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

# Another apt or dpkg (unattended-upgrades, a second make) may hold the locks: wait for it
# (up to 10 minutes) instead of failing. DPkg::Lock::Timeout covers dpkg's lock; the lists
# lock of `apt-get update` is retried here.
apt_get() {
  local err
  for _ in $(seq 1 120); do
    if err=$($sudo apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1 >/dev/null); then
      return 0
    fi
    if ! grep -q 'Could not get lock\|Unable to acquire\|is another process using it' <<<"$err"; then
      echo "$err" >&2
      return 1
    fi
    echo "deps: waiting for another package manager to finish" >&2
    sleep "${DEPS_LOCK_RETRY_S:-5}"
  done
  echo "$err" >&2
  return 1
}

apt_get update -qq
if [ $need_kubectl -eq 1 ]; then
  # Debian calls it kubectl from trixie on, kubernetes-client before.
  for k in kubectl kubernetes-client; do
    if apt-cache policy "$k" 2>/dev/null | grep -q 'Candidate: [^(]'; then
      missing+=("$k")
      break
    fi
  done
  [ ${#missing[@]} -gt 0 ] && [[ " ${missing[*]} " == *" kube"* ]] ||
    echo "deps: no kubectl package found: install kubectl to use trainyard server with it" >&2
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
apt_get install -y -qq --no-install-recommends "${missing[@]}"
