#!/usr/bin/env bash
# One RBAC decision (src/auth/rbac.c) with 1,000 RoleBindings and 200 Roles over 50 namespaces
# plus the built-in roles (issue 12's target: < 5 us median), the index beside the scan of
# every binding (the baseline) in the same run, pinned to one core. Exits non-zero if the two
# ever decide differently. Sizes: ARGS="ROLEBINDINGS ROLES NAMESPACES REQUESTS".
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/libtrainyard.a
read -ra libs <<<"$(pkg-config --libs libuv yaml-0.1 jansson sqlite3)"
mkdir -p build/bench
cc -std=gnu17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wno-missing-field-initializers -Isrc -D_GNU_SOURCE -o build/bench/rbac_bench \
    bench/lib/rbac_bench.c build/libtrainyard.a "${libs[@]}" -ldl -lm
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
# shellcheck disable=SC2086 # ARGS is a list of sizes
taskset -c 0 build/bench/rbac_bench ${ARGS:-1000 200 50 20000}
