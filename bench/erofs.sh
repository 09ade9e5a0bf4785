#!/bin/sh
# Compares builtins/erofs with mkfs.erofs 1.8 (the version current
# distributions ship), uncompressed and with each compression at its default
# level, on a Debian bookworm base tree (systemd + udev, ~125 MB, built once
# with sxb and cached): wall time, CPU time, image size and peak RSS of each
# process, measured alternately in the same run, reported as ratios (ours /
# mkfs.erofs).
#
#   bench/erofs.sh [benchtime] [algorithms]   e.g. bench/erofs.sh 5x 'none|lz4|zstd'
#
# mkfs.erofs 1.8 comes from a Debian trixie root (SXB_EROFS_UTILS_ROOT,
# default /var/tmp/sxb-tools/trixie-erofs, made with mmdebstrap on first use,
# as root). SXB_EROFS_BENCH_TREE overrides the tree; the base tree and its
# download cache live in ${SXB_EROFS_BENCH_DIR:-$TMPDIR/sxb-erofs-bench}.
set -eu
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
: "${SXB_EROFS_UTILS_ROOT:=/var/tmp/sxb-tools/trixie-erofs}"
export SXB_EROFS_UTILS_ROOT
if [ ! -x "$SXB_EROFS_UTILS_ROOT/usr/bin/mkfs.erofs" ]; then
	command -v mmdebstrap >/dev/null || { echo "erofs.sh: no mkfs.erofs 1.8 in $SXB_EROFS_UTILS_ROOT and no mmdebstrap to make one" >&2; exit 2; }
	mkdir -p "$(dirname "$SXB_EROFS_UTILS_ROOT")"
	mmdebstrap --variant=essential --include=erofs-utils trixie "$SXB_EROFS_UTILS_ROOT" http://deb.debian.org/debian >&2
fi
dir=${SXB_EROFS_BENCH_DIR:-${TMPDIR:-/tmp}/sxb-erofs-bench}
if [ -z "${SXB_EROFS_BENCH_TREE:-}" ]; then
	ws=$dir/base-ws
	if [ ! -d "$ws/sxb-out/base" ]; then
		mkdir -p "$ws"
		: >"$ws/WORKSPACE.star"
		cat >"$ws/BUILD.star" <<'STAR'
base_image(
    name = "base",
    distribution = "debian",
    release = "bookworm",
    packages = ["systemd", "udev"],
)
STAR
		go build -o "$dir/sxb" ./cmd/sxb
		(cd "$ws" && XDG_CACHE_HOME="$dir/cache" "$dir/sxb" build --progress=plain :base >&2)
	fi
	SXB_EROFS_BENCH_TREE=$ws/sxb-out/base
	export SXB_EROFS_BENCH_TREE
fi
echo "tree: $SXB_EROFS_BENCH_TREE ($(du -sh "$SXB_EROFS_BENCH_TREE" | cut -f1))" >&2
exec go test -run '^$' -bench "VsMkfs/(${2:-none|lz4|lz4hc|zstd|deflate})\$" -benchtime "${1:-3x}" -timeout 60m ./builtins/erofs
