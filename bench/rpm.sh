#!/usr/bin/env bash
# Benchmarks of builtins/rpm against the reference tools, in the same run:
#   BenchmarkResolveLarge  resolve on a generated 40000-package repository,
#                          cold (parsing metadata) and warm (parsed cache),
#                          vs dnf --assumeno install (cold and warm cache)
#   BenchmarkInstall       unpack a 4000-file ~64 MiB package (cache warm)
#                          vs rpm -i --root --noscripts --nodeps (as root)
# Ratios are printed as "sxb/<tool> ... ratio". Usage: bench/rpm.sh [count]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
go test ./builtins/rpm/ -run '^$' -bench 'ResolveLarge|Install' -benchtime "${1:-3}x" -timeout 30m
