#!/usr/bin/env bash
# The store with 10,000 PyTorchJobs (examples/fashion-mnist's job, defaulted) in SQLite:
# durable create rate, then in a fresh process the reopen time and RSS, beside baselines
# (raw JSON size, SQLite alone reading the rows, jansson alone parsing them).
# Targets (issue 3): RSS < 64 MB, reopen < 1 s.  N=... to change the count.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/libtrainyard.a
pkgs="libuv yaml-0.1 jansson sqlite3"
mkdir -p build/bench
cc -std=gnu17 -O2 -g -Isrc -D_GNU_SOURCE $(pkg-config --cflags $pkgs) -o build/bench/store_bench \
    bench/lib/store_bench.c build/libtrainyard.a $(pkg-config --libs $pkgs) -ldl -lm
dir=$(mktemp -d /var/tmp/trainyard-store-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
build/bench/store_bench populate "$dir/store.db" "${N:-10000}"
echo "database: $(du -sh "$dir" | cut -f1) on disk ($(ls "$dir" | tr '\n' ' '))"
build/bench/store_bench load "$dir/store.db"
