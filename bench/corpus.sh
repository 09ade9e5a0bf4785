#!/bin/bash
# Corpus check (not a benchmark): runs sxb on mkosi projects as they are
# found in the wild and compares what it reads with what mkosi reads.
# For each project directory given:
#   summary  `sxb mkosi summary --json` against mkosi's `mkosi --json summary`:
#            every setting sxb prints, image by image, must equal mkosi's;
#            the column counts the (image, setting) pairs that differ
#   images   the images mkosi lists (by name; the main image by its Output=)
#            against the targets `sxb query //...` lists for the project
#   build    `sxb query --output=json`: targets buildable / all, and the
#            reasons of the unbuildable ones (grouped, in the log)
#   --build  `sxb build` of every buildable Format=sysext|confext|disk image
#            of Distribution=debian (the only archive reachable from CI
#            machines): built / tried
# and prints one table row per project. Details (both summaries, the diff,
# query output, build logs) go to the log directory.
#
# mkosi runs from a source checkout (--mkosi-src DIR, its bin/ is put first
# on PATH so sxb also finds its resources there, as it would an installed
# mkosi): `fetch github:systemd/mkosi` then
#   git --git-dir=/work/.mirror/systemd+mkosi/repo archive v26 | tar -x -C DIR
# mkosi only parses here (summary); it never builds.
#
# Builds write where mkosi would (OutputDirectory=, default the project
# directory), so run it on copies of the projects.
#
# Usage: bench/corpus.sh [--mkosi-src DIR] [--sxb BIN] [--build] [--logs DIR]
#                        [--profile P]... PROJECT_DIR...
#   --mkosi-src DIR  mkosi source checkout (default $MKOSI_SRC, else the
#                    mkosi on PATH)
#   --sxb BIN        sxb binary (default: built from this checkout)
#   --build          also build the plain Debian extensions
#   --logs DIR       where details go (default: a new /tmp/sxb-corpus.*)
#   --profile P      passed to both tools (repeatable)
# Exit status: 0 when the checks ran (differences are reported, not judged),
# 2 on a usage or tool error.
set -uo pipefail

MKOSI_SRC=${MKOSI_SRC:-}
SXB=
BUILD=0
LOGS=
PROFILES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--mkosi-src) MKOSI_SRC=$2; shift 2 ;;
	--sxb) SXB=$2; shift 2 ;;
	--build) BUILD=1; shift ;;
	--logs) LOGS=$2; shift 2 ;;
	--profile) PROFILES+=("$2"); shift 2 ;;
	-h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "corpus.sh: unknown flag $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: corpus.sh [--mkosi-src DIR] [--sxb BIN] [--build] PROJECT_DIR..." >&2; exit 2; }
command -v python3 >/dev/null || { echo "corpus.sh: needs python3" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$SXB" ]; then
	SXB=$(mktemp -d /tmp/sxb-corpus-bin.XXXXXX)/sxb
	(cd "$REPO" && PATH=/usr/local/go/bin:$PATH go build -o "$SXB" ./cmd/sxb) || { echo "corpus.sh: building sxb failed" >&2; exit 2; }
fi
SXB=$(readlink -f "$SXB")
if [ -n "$MKOSI_SRC" ]; then
	MKOSI_SRC=$(readlink -f "$MKOSI_SRC")
	[ -x "$MKOSI_SRC/bin/mkosi" ] || { echo "corpus.sh: $MKOSI_SRC/bin/mkosi not found" >&2; exit 2; }
	export PATH=$MKOSI_SRC/bin:$PATH
fi
command -v mkosi >/dev/null || { echo "corpus.sh: no mkosi (give --mkosi-src)" >&2; exit 2; }
[ -n "$LOGS" ] || LOGS=$(mktemp -d /tmp/sxb-corpus.XXXXXX)
mkdir -p "$LOGS"
echo "mkosi: $(mkosi --version 2>&1 | head -1) ($(command -v mkosi)); sxb: $SXB; logs: $LOGS"

PROFARGS=()
for p in "${PROFILES[@]}"; do PROFARGS+=(--profile "$p"); done

# compare.py: summary differences, image list, buildability, build list.
COMPARE=$(mktemp /tmp/sxb-corpus-compare.XXXXXX.py)
trap 'rm -f "$COMPARE"' EXIT
cat >"$COMPARE" <<'EOF'
import json, re, sys, collections

def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except Exception:
        return None

mode, log = sys.argv[1], sys.argv[2]
mk = load(log + "/mkosi.summary.json")
sx = load(log + "/sxb.summary.json")
q = load(log + "/sxb.query.json")
mkimgs = {i["Image"]: i for i in (mk or {}).get("Images", [])}
sximgs = {i["Image"]: i for i in (sx or {}).get("Images", [])}

def norm(v):
    # mkosi reads its resources from a temporary copy
    # (/tmp/tmpXXXX/resources/...), sxb from where they are installed.
    s = json.dumps(v, sort_keys=True)
    s = re.sub(r'"/[^"]*?/(?:tmp[a-z0-9_]{8}|mkosi)/resources/', '"RESOURCES/', s)
    return s

def expected(img):
    # mkosi skips a Format=none image without build scripts: nothing to do.
    return img.get("Format") != "none" or img.get("BuildScripts")

def target_name(img):
    # sxb names the main image after its Output=, the others after the image.
    return img.get("Output") or "main" if img["Image"] == "main" else img["Image"]

if mode == "row":
    out = []
    if mk is None:
        summ = "mkosi failed"
    elif sx is None:
        summ = "sxb failed"
    else:
        diffs, extra = [], []
        for name in sorted(set(mkimgs) | set(sximgs)):
            if name not in sximgs or name not in mkimgs:
                diffs.append(f"{name}: only in {'mkosi' if name in mkimgs else 'sxb'}")
                continue
            for k, v in sximgs[name].items():
                if k not in mkimgs[name]:
                    extra.append(f"{name}.{k}: not printed by this mkosi")
                elif norm(mkimgs[name][k]) != norm(v):
                    diffs.append(f"{name}.{k}: sxb {json.dumps(v)} mkosi {json.dumps(mkimgs[name][k])}")
        with open(log + "/summary.diff", "w") as f:
            f.write("".join(l + "\n" for l in diffs + extra))
        summ = "equal" if not diffs else f"{len(diffs)} differ"
    want = {target_name(i) for i in mkimgs.values() if expected(i)}
    targets = {}
    for t in q or []:
        targets[t["label"].rsplit(":", 1)[-1]] = t
    missing = sorted(want - set(targets))
    extra = sorted(set(targets) - want)
    imgs = f"{len(want & set(targets))}/{len(want)}"
    if missing:
        imgs += " -" + ",".join(missing)
    if extra:
        imgs += " +" + ",".join(extra)
    if q is None:
        imgs = "query failed"
    nb = sum(1 for t in targets.values() if t.get("buildable"))
    reasons = collections.Counter()
    for t in targets.values():
        for u in t.get("unbuildable") or []:
            if u.get("target") == t["label"]:
                r = u["reason"]
                r = r.split(": ", 1)[1] if r.startswith("image ") and ": " in r else r
                reasons[r] += 1
    with open(log + "/unbuildable.txt", "w") as f:
        for r, n in reasons.most_common():
            f.write(f"{n:3d}  {r}\n")
    print(f"{summ}\t{imgs}\t{nb}/{len(targets)}")
elif mode == "buildlist":
    # Buildable Debian extensions: the images worth a real build here.
    byname = {target_name(i): i for i in mkimgs.values()}
    for t in q or []:
        name = t["label"].rsplit(":", 1)[-1]
        img = byname.get(name)
        if not t.get("buildable") or img is None:
            continue
        if img.get("Format") in ("sysext", "confext", "disk") and img.get("Distribution") == "debian":
            print(t["label"])
EOF

printf '%-44s %-14s %-30s %-9s %s\n' project summary "images (sxb/mkosi)" buildable built
for dir in "$@"; do
	dir=$(readlink -f "$dir")
	name=$(echo "${dir#/}" | tr / _ | tail -c 60)
	log=$LOGS/$name
	mkdir -p "$log"
	(cd "$dir" && mkosi "${PROFARGS[@]}" --json summary >"$log/mkosi.summary.json" 2>"$log/mkosi.summary.err") || rm -f "$log/mkosi.summary.json"
	"$SXB" mkosi summary --json "${PROFARGS[@]}" "$dir" >"$log/sxb.summary.json" 2>"$log/sxb.summary.err" || rm -f "$log/sxb.summary.json"
	(cd "$dir" && "$SXB" query --output=json "${PROFARGS[@]}" //... >"$log/sxb.query.json" 2>"$log/sxb.query.err") || rm -f "$log/sxb.query.json"
	row=$(python3 "$COMPARE" row "$log")
	built=-
	if [ "$BUILD" = 1 ]; then
		ok=0 tried=0
		for label in $(python3 "$COMPARE" buildlist "$log"); do
			tried=$((tried + 1))
			blog=$log/build.$(echo "${label#*:}" | tr / _).log
			if (cd "$dir" && "$SXB" build "${PROFARGS[@]}" "$label" >"$blog" 2>&1); then
				ok=$((ok + 1))
			fi
		done
		built=$ok/$tried
	fi
	IFS=$'\t' read -r summ imgs nb <<<"$row"
	printf '%-44s %-14s %-30s %-9s %s\n' "$(echo "$dir" | tail -c 44)" "$summ" "$imgs" "$nb" "$built"
done
