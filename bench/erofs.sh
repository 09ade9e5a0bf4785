#!/bin/sh
# Compares builtins/erofs with mkfs.erofs (uncompressed) on a ~230 MB copy of
# /usr (and on five copies, ~1.1 GB): wall time, image size and peak RSS of
# each process, measured in the same run. The copies are cached under
# ${SXB_EROFS_BENCH_DIR:-$TMPDIR/sxb-erofs-bench}.
#   bench/erofs.sh [benchtime]   e.g. bench/erofs.sh 5x
set -eu
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
exec go test -run '^$' -bench 'VsMkfs' -benchtime "${1:-3x}" -timeout 30m ./builtins/erofs
