#!/bin/sh
# Compare sxb's dm-verity hashing with `veritysetup format` on a 200 MiB
# file, in one run; prints both times per operation and ours/veritysetup.
set -eu
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench FormatVsVeritysetup -benchtime "${BENCHTIME:-5x}" ./builtins/verity
