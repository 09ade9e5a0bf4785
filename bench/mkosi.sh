#!/bin/bash
# Benchmark: sxb against mkosi 25 building the SAME project, in the same run:
# a Debian bookworm base (Format=directory, Packages=systemd,udev) and a jq
# sysext on top of it (Format=sysext, Overlay=yes, BaseTrees=%O/base), the
# seed's first example (examples/mkosi-sysext). The sxb side is the
# equivalent BUILD.star: base_image(packages=["systemd","udev"]) +
# sysext(base=..., packages=["jq"]).
#
# Scenarios (each tool in turn, same machine, same network):
#   a  cold            empty caches, everything downloaded (sxb writes a
#                      --trace, logs/sxb.a.trace.json; its peak memory is
#                      reported)
#   b  warm            rebuild with nothing changed (RUNS runs, hyperfine)
#   c  change          the sysext's packages change: jq -> jq,htop
#   d  cold, debs kept output/action caches dropped, package downloads and
#                      indexes kept
# and prints a table with the times, the ratio mkosi/sxb and image sizes.
# Timings are reported, never judged.
#
# Caches, chosen to be the same kinds on both sides:
#   sxb    $XDG_CACHE_HOME/sxb: sha256/ (downloads) + deb-index/ (parsed
#          indexes) = "package cache"; actions/, pins/, labels/ = "action cache"
#   mkosi  PackageCacheDirectory=mkosi.pkgcache (apt lists + .debs) = "package
#          cache"; Incremental=yes + CacheDirectory=mkosi.cache (the base tree
#          after package installation, mkosi's only reuse of build results;
#          mkosi never caches Overlay=yes/BaseTrees= images) = "action cache".
# Freshness: by default the scenarios run sxb with SXB_REFRESH=0 (re-resolve
# against the archive on every build) and mkosi with --cache-only=never (apt
# update on every build). The warm scenario is also measured in each tool's
# default mode (sxb reuses a resolution for 1h; mkosi -f with the default
# CacheOnly=auto, which here still syncs the metadata: see logs/). mkosi has
# no input-aware up-to-date check: without -f it skips an image whose output
# exists, whatever changed, and with a Format=none top-level image it rebuilds
# every subimage; so "mkosi -f build" is its rebuild.
# "Cold" means empty local caches; the network path may hold a caching proxy,
# so the very first run on a machine can be slower for both tools.
#
# Deviations from the seed's mkosi.conf, each needed to run it here or to be
# fair, and stated in the output:
#   - Format=none for the top-level image: otherwise mkosi 25 also builds a
#     "main" disk image (ext4, ~250 MB) that sxb does not build.
#   - mkosi.sandbox/etc/apt/sources.list.d/mkosi.sources lists the suites sxb
#     reads (bookworm, -updates, -security; binary only): mkosi's default list
#     adds deb-src and debian-debug (the latter unreachable here).
#   - Packages are comma-separated (Packages=systemd udev is one name to
#     mkosi 25).
# Not changed: apt (in mkosi) satisfies init-system-helpers' "usrmerge |
# usr-is-merged" with usrmerge, which pulls in perl (8 more packages, ~60 MB);
# sxb's resolver prefers usr-is-merged as it lays out merged /usr itself.
# --same-set pins usrmerge away in mkosi's apt (Pin-Priority: -1) so both
# install the same package set.
#
# mkosi runs from a trixie root ($SXB_BENCH_TOOLS, default
# /var/tmp/sxb-bench-tools/trixie, made with mmdebstrap on first use, holding mkosi 25, systemd-repart 257, erofs-utils,
# bubblewrap, apt, debian-archive-keyring) through chroot in a private mount
# namespace: the root is bind-mounted on itself (mkosi's sandbox needs "/" to
# be a mount point), /proc, /dev, /sys are bind-mounted, and the work
# directory appears as /sxb-bench inside. Nothing in the root is changed
# except the empty mount point /sxb-bench.
#
# Usage (as root, network to deb.debian.org):
#   bench/mkosi.sh [--runs N] [--parity] [--parity-packages LIST] [--same-set] [--keep]
#     --runs N    warm runs per tool (default 3)
#     --parity    after the runs, compare the two jq sysexts (bench/parity.sh),
#                 from scenarios c (jq,htop) and d (jq)
#     --parity-packages LIST  also build the sysext with LIST (comma-separated)
#                 with both tools after the runs and compare those (implies --parity)
#     --same-set  mkosi's apt may not install usrmerge (see above)
#     --keep      keep the work directory (printed) instead of deleting it
#   SXB_BENCH_DIR=DIR   work directory (default: a new /var/tmp/sxb-bench-mkosi.*)
#   SXB_BENCH_SETTLE=S  seconds to wait after deleting caches before a cold
#                       run (default: 61 on ext4 without a journal, else 0)
set -euo pipefail

RUNS=3
PARITY=0
KEEP=0
PARITY_PACKAGES=
SAME_SET=0
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS=$2; shift 2 ;;
	--runs=*) RUNS=${1#--runs=}; shift ;;
	--parity) PARITY=1; shift ;;
	--parity-packages) PARITY=1; PARITY_PACKAGES=$2; shift 2 ;;
	--parity-packages=*) PARITY=1; PARITY_PACKAGES=${1#--parity-packages=}; shift ;;
	--same-set) SAME_SET=1; shift ;;
	--keep) KEEP=1; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "mkosi.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

[ "$(id -u)" = 0 ] || { echo "mkosi.sh: needs root (mkosi, chroot, mount namespaces)" >&2; exit 2; }
TOOLS=${SXB_BENCH_TOOLS:-/var/tmp/sxb-bench-tools/trixie}
if [ ! -x "$TOOLS/usr/bin/mkosi" ]; then
	command -v mmdebstrap >/dev/null || { echo "mkosi.sh: no mkosi in $TOOLS and no mmdebstrap to make one (apt-get install mmdebstrap, or set SXB_BENCH_TOOLS)" >&2; exit 2; }
	echo "mkosi.sh: making the tools root $TOOLS (mmdebstrap trixie)" >&2
	mkdir -p "$(dirname "$TOOLS")"
	mmdebstrap --variant=apt --include=mkosi,systemd-repart,erofs-utils,squashfs-tools,bubblewrap,debian-archive-keyring,cryptsetup-bin,systemd-container,zstd,xz-utils,uidmap,python3 \
		trixie "$TOOLS" http://deb.debian.org/debian >&2 || { echo "mkosi.sh: mmdebstrap failed" >&2; exit 2; }
fi
for t in hyperfine bc unshare chroot; do command -v $t >/dev/null || { echo "mkosi.sh: needs $t" >&2; exit 2; }; done

REPO=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH
if [ -n "${SXB_BENCH_DIR:-}" ]; then
	W=$SXB_BENCH_DIR
	mkdir -p "$W"
else
	W=$(mktemp -d /var/tmp/sxb-bench-mkosi.XXXXXX)
fi
W=$(cd "$W" && pwd)
cleanup() {
	if [ "$KEEP" = 1 ]; then
		echo "work directory kept: $W" >&2
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
mkdir -p "$W/logs"
log() { echo "mkosi.sh: $*" >&2; }

# --- the two projects -------------------------------------------------------

(cd "$REPO" && go build -o "$W/sxb" ./cmd/sxb)

P=$W/mkosi # the mkosi project
mkdir -p "$P/mkosi.images/base" "$P/mkosi.images/jq" "$P/mkosi.sandbox/etc/apt/sources.list.d"
cat >"$P/mkosi.conf" <<'EOF'
[Distribution]
Distribution=debian
Release=bookworm

[Output]
# the seed builds no top-level image; without this mkosi 25 builds a disk
Format=none
OutputDirectory=mkosi.output

[Build]
CacheDirectory=mkosi.cache
PackageCacheDirectory=mkosi.pkgcache
Incremental=yes

[Validation]
Verity=no
EOF
cat >"$P/mkosi.images/base/mkosi.conf" <<'EOF'
[Output]
Format=directory

[Content]
Packages=systemd,udev
EOF
jq_conf() { # jq_conf PACKAGES(comma-separated)
	cat >"$P/mkosi.images/jq/mkosi.conf" <<EOF
[Config]
Dependencies=base

[Output]
Format=sysext
Overlay=yes

[Validation]
Verity=no

[Content]
BaseTrees=%O/base
Packages=$1
EOF
}
cat >"$P/mkosi.sandbox/etc/apt/sources.list.d/mkosi.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
if [ "$SAME_SET" = 1 ]; then
	# apt takes the first alternative even when the second is requested too;
	# a negative pin leaves it usr-is-merged.
	mkdir -p "$P/mkosi.sandbox/etc/apt/preferences.d"
	printf 'Package: usrmerge\nPin: release *\nPin-Priority: -1\n' >"$P/mkosi.sandbox/etc/apt/preferences.d/no-usrmerge"
fi

S=$W/sxb-ws # the sxb workspace
mkdir -p "$S"
: >"$S/WORKSPACE.star"
build_star() { # build_star PACKAGES(comma-separated)
	local list
	list=$(echo "$1" | sed 's/[^,][^,]*/"&"/g; s/,/, /g')
	cat >"$S/BUILD.star" <<EOF
base = base_image(
    name = "base",
    distribution = "debian",
    release = "bookworm",
    packages = ["systemd", "udev"],
)

sysext(
    name = "jq",
    base = base,
    packages = [$list],
)
EOF
}

# Runners: small scripts so that hyperfine can call them without a shell.
cat >"$W/run-sxb" <<EOF
#!/bin/sh
# run-sxb [sxb build flags]: sxb build :jq in the bench workspace
cd "$S" && XDG_CACHE_HOME="$W/sxb-cache" exec "$W/sxb" build --progress=plain "\$@" :jq
EOF
cat >"$W/run-mkosi" <<EOF
#!/bin/sh
# run-mkosi [mkosi args]: mkosi from the tools root on the bench project
exec unshare --mount --propagation private sh -eu -c '
	T="$TOOLS"
	mount --bind "\$T" "\$T"
	mount --rbind /proc "\$T/proc"
	mount --rbind /dev "\$T/dev"
	mount --rbind /sys "\$T/sys"
	mount --bind "$W" "\$T/sxb-bench"
	cd /
	exec chroot "\$T" sh -c "cd /sxb-bench/mkosi && exec mkosi --workspace-directory=/sxb-bench/mkosi-ws \$*"
' run-mkosi "\$@"
EOF
chmod +x "$W/run-sxb" "$W/run-mkosi"
mkdir -p "$TOOLS/sxb-bench" "$W/mkosi-ws"

# --- measuring --------------------------------------------------------------

declare -A T # T[tool.scenario] = seconds
now() { date +%s.%N; }
# timed KEY CMD...: runs CMD once, output to logs/KEY.log, stores seconds.
timed() {
	local key=$1 t0 t1
	shift
	log "$key: $*"
	t0=$(now)
	if ! "$@" >"$W/logs/$key.log" 2>&1; then
		echo "mkosi.sh: $key failed, last lines of $W/logs/$key.log:" >&2
		tail -20 "$W/logs/$key.log" >&2
		KEEP=1
		exit 1
	fi
	t1=$(now)
	T[$key]=$(echo "$t1 - $t0" | bc -l)
}
# hf KEY RUNS WARMUP CMD...: hyperfine median of RUNS runs after WARMUP runs;
# the builds' output is kept in logs/KEY.log.
hf() {
	local key=$1 runs=$2 warmup=$3
	shift 3
	log "$key: ${runs}x $*"
	if ! hyperfine -N --show-output --warmup "$warmup" --runs "$runs" --export-json "$W/logs/$key.json" \
		"$*" >"$W/logs/$key.log" 2>&1; then
		echo "mkosi.sh: $key failed, see $W/logs/$key.log" >&2
		tail -20 "$W/logs/$key.log" >&2
		KEEP=1
		exit 1
	fi
	T[$key]=$(grep -o '"median": *[0-9.e+-]*' "$W/logs/$key.json" | head -1 | sed 's/.*: *//')
}
sxb_cold() { rm -rf "$W/sxb-cache" "$S/sxb-out"; }
sxb_keep_debs() { rm -rf "$W/sxb-cache/sxb/actions" "$W/sxb-cache/sxb/pins" "$W/sxb-cache/sxb/labels" "$S/sxb-out"; }
mkosi_cold() { rm -rf "$P/mkosi.cache" "$P/mkosi.pkgcache" "$P/mkosi.output" && mkdir -p "$P/mkosi.cache" "$P/mkosi.pkgcache"; }
mkosi_keep_debs() { rm -rf "$P/mkosi.cache" "$P/mkosi.output" && mkdir -p "$P/mkosi.cache"; }
# settle: after a tool's caches were deleted, wait until the file system
# lets their inodes be reused. ext4 without a journal (this machine's root
# file system) skips every inode freed in the last 60 s when it allocates a
# new one, rescanning them at each allocation: a build starting right after
# "rm -rf" of ~12,000 cache files spent ~2 s of system time in that scan
# (perf: find_inode_bit -> recently_deleted), which no user's cold build
# pays. sync first (a dirty inode table block extends the window to 360 s),
# then wait SXB_BENCH_SETTLE seconds (default 61 on such a file system, 0
# otherwise). Both tools get the same treatment.
settle() {
	local s=${SXB_BENCH_SETTLE:-}
	if [ -z "$s" ]; then
		s=0
		local dev
		dev=$(findmnt -n -o SOURCE --target "$W" 2>/dev/null || true)
		if [ "$(findmnt -n -o FSTYPE --target "$W" 2>/dev/null || true)" = ext4 ] &&
			[ "$(cat "/sys/fs/ext4/${dev##*/}/journal_task" 2>/dev/null || true)" = "<none>" ]; then
			s=61
		fi
	fi
	sync
	if [ "$s" != 0 ]; then
		log "settling the file system for ${s}s (see settle in bench/mkosi.sh)"
		sleep "$s"
	fi
}
size() { if [ -e "$1" ]; then du -sb --apparent-size "$1" | cut -f1; else echo 0; fi; }
mib() { echo "scale=1; $1 / 1048576" | bc -l; }

FRESH_SXB="env SXB_REFRESH=0 $W/run-sxb"
FRESH_MKOSI="$W/run-mkosi --cache-only=never"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# a: cold
jq_conf jq
build_star jq
sxb_cold
settle
timed sxb.a $FRESH_SXB --trace="$W/logs/sxb.a.trace.json"
mkosi_cold
settle
timed mkosi.a $FRESH_MKOSI -f build
SXB_IMG_SIZE=$(size "$S/sxb-out/jq.raw")
MKOSI_IMG_SIZE=$(size "$P/mkosi.output/jq.raw")
SXB_BASE_SIZE=$(du -sb "$S/sxb-out/base" | cut -f1)
MKOSI_BASE_SIZE=$(du -sb "$P/mkosi.output/base" | cut -f1)
SXB_PKG=$(du -sb "$W/sxb-cache/sxb/sha256" "$W/sxb-cache/sxb/deb-index" | awk '{s+=$1} END {print s}')
MKOSI_PKG=$(du -sb "$P/mkosi.pkgcache" | cut -f1)

# b: warm, nothing changed
# (the default modes get one warm-up run: the fresh runs leave mkosi without
# a metadata cache)
hf sxb.b "$RUNS" 0 $FRESH_SXB
hf sxb.b_default "$RUNS" 1 "$W/run-sxb"
hf mkosi.b "$RUNS" 0 $FRESH_MKOSI -f build
hf mkosi.b_default "$RUNS" 1 "$W/run-mkosi" -f build

# c: the sysext's packages change
jq_conf jq,htop
build_star jq,htop
timed sxb.c $FRESH_SXB
timed mkosi.c $FRESH_MKOSI -f build
SXB_IMG2_SIZE=$(size "$S/sxb-out/jq.raw")
MKOSI_IMG2_SIZE=$(size "$P/mkosi.output/jq.raw")
mkdir -p "$W/parity"
cp "$S/sxb-out/jq.raw" "$W/parity/jq,htop.sxb.raw"
cp "$P/mkosi.output/jq.raw" "$W/parity/jq,htop.mkosi.raw"

# d: cold with the package downloads cached (back to jq only)
jq_conf jq
build_star jq
sxb_keep_debs
settle
timed sxb.d $FRESH_SXB
mkosi_keep_debs
settle
timed mkosi.d $FRESH_MKOSI -f build
cp "$S/sxb-out/jq.raw" "$W/parity/jq.sxb.raw"
cp "$P/mkosi.output/jq.raw" "$W/parity/jq.mkosi.raw"
SXB_BASE_PKGS=$(grep -c '^Package:' "$S/sxb-out/base/var/lib/dpkg/status")
MKOSI_BASE_PKGS=$(grep -c '^Package:' "$P/mkosi.output/base/var/lib/dpkg/status")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

if [ -n "$PARITY_PACKAGES" ]; then
	jq_conf "$PARITY_PACKAGES"
	build_star "$PARITY_PACKAGES"
	timed sxb.p "$W/run-sxb"
	timed mkosi.p "$W/run-mkosi" -f build
	cp "$S/sxb-out/jq.raw" "$W/parity/$PARITY_PACKAGES.sxb.raw"
	cp "$P/mkosi.output/jq.raw" "$W/parity/$PARITY_PACKAGES.mkosi.raw"
fi

# --- report -----------------------------------------------------------------

row() { # row LABEL SXBKEY MKOSIKEY
	local s=${T[$2]:-} m=${T[$3]:-}
	if [ -n "$s" ] && [ -n "$m" ]; then
		printf '%-44s %9.2f %9.2f %8.1fx\n' "$1" "$s" "$m" "$(echo "$m / $s" | bc -l)"
	elif [ -n "$m" ]; then
		printf '%-44s %9s %9.2f %9s\n' "$1" "-" "$m" "-"
	fi
}
echo
echo "sxb $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?') vs $(chroot "$TOOLS" mkosi --version 2>/dev/null), $(nproc) cores, $(date -u +%FT%TZ)"
echo "project: bookworm base (systemd, udev) + jq sysext (erofs, no verity); work dir $W"
echo "mkosi project = the seed's + top-level Format=none, sources bookworm{,-updates,-security} (no deb-src/debug), comma lists$([ "$SAME_SET" = 0 ] || echo ', usrmerge pinned away')"
echo "load average at start: $LOAD_START, at end: $LOAD_END (other work on the machine skews times)"
echo "sxb cold build: $(grep -o 'peak memory [0-9.]* [KMG]iB' "$W/logs/sxb.a.log" || echo 'peak memory ?'), trace in logs/sxb.a.trace.json (go run ./bench/tracesvg FILE > FILE.svg draws it)"
echo
printf '%-44s %9s %9s %9s\n' "scenario (seconds)" "sxb" "mkosi" "mkosi/sxb"
row "a  cold (empty caches, downloads)" sxb.a mkosi.a
row "b  warm, nothing changed (median of $RUNS)" sxb.b mkosi.b
row "b' warm, default freshness" sxb.b_default mkosi.b_default
row "c  sysext packages jq -> jq,htop" sxb.c mkosi.c
row "d  cold, package downloads cached" sxb.d mkosi.d
echo
echo "fresh = sxb with SXB_REFRESH=0, mkosi with --cache-only=never (apt update each build);"
echo "b' = each tool's defaults: sxb reuses a resolution for 1h; mkosi -f, CacheOnly=auto (still syncs metadata here)."
echo
printf '%-44s %9s %9s\n' "sizes (MiB)" "sxb" "mkosi"
printf '%-44s %9s %9s\n' "jq sysext image (jq.raw)" "$(mib "$SXB_IMG_SIZE")" "$(mib "$MKOSI_IMG_SIZE")"
printf '%-44s %9s %9s\n' "jq+htop sysext image" "$(mib "$SXB_IMG2_SIZE")" "$(mib "$MKOSI_IMG2_SIZE")"
printf '%-44s %9s %9s\n' "base tree (directory)" "$(mib "$SXB_BASE_SIZE")" "$(mib "$MKOSI_BASE_SIZE")"
printf '%-44s %9s %9s\n' "package cache after a (debs + indexes)" "$(mib "$SXB_PKG")" "$(mib "$MKOSI_PKG")"
printf '%-44s %9s %9s\n' "packages in the base" "$SXB_BASE_PKGS" "$MKOSI_BASE_PKGS"

if [ "$PARITY" = 1 ]; then
	for set in jq jq,htop ${PARITY_PACKAGES:+"$PARITY_PACKAGES"}; do
		echo
		echo "=== parity of the sysext with packages $set"
		"$REPO/bench/parity.sh" --names sxb,mkosi "$W/parity/$set.sxb.raw" "$W/parity/$set.mkosi.raw" || true
	done
fi
