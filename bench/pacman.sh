#!/usr/bin/env bash
# Benchmark of builtins/pacman against pacman, in the same run, on a
# generated signed mirror the size of Arch's core + extra (about 14800
# small packages, .sig files beside them):
#   resolve cold   databases read and parsed    vs pacman -Syp
#   resolve warm   parsed databases cached      vs pacman -Sp (synced)
#   install        copy from file://, SHA-256 and signature checks,
#                  unpacking, local database    vs pacman -S --noscriptlet
# Ratios are printed as "sxb/pacman time ratio". Needs root and Debian's
# pacman-package-manager for the comparison. Usage: bench/pacman.sh [count]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
go test ./builtins/pacman/ -run '^$' -bench CoreExtra -benchtime "${1:-3}x" -timeout 60m
