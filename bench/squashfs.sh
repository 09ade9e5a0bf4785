#!/bin/sh
# Compares sxb's squashfs writer (builtins/squashfs) with mksquashfs on a
# real ~200 MB tree, gzip and zstd, 128 KiB blocks, two workers each, in the
# same run; prints times, sizes and ratios (ours / mksquashfs).
#
#   bench/squashfs.sh                 # copies /usr/share/doc + /usr/lib/python3.* to a temp tree
#   SXB_BENCH_TREE=/some/dir bench/squashfs.sh
#   COUNT=3 bench/squashfs.sh         # iterations per compressor (default 3)
set -eu
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if [ -z "${SXB_BENCH_TREE:-}" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir "$tmp/tree"
	cp -a /usr/share/doc "$tmp/tree/doc"
	for p in /usr/lib/python3.*; do
		[ -d "$p" ] && cp -a "$p" "$tmp/tree/"
	done
	SXB_BENCH_TREE=$tmp/tree
	export SXB_BENCH_TREE
fi
echo "tree: $SXB_BENCH_TREE ($(du -sh "$SXB_BENCH_TREE" | cut -f1))" >&2
go test -run '^$' -bench 'VsMksquashfs' -benchtime "${COUNT:-3}x" ./builtins/squashfs/
