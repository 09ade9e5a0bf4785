#!/bin/bash
# Parity check: compares two system/configuration extension images, e.g. the
# jq sysext sxb builds and the one mkosi builds for the same project
# (bench/mkosi.sh --parity runs it on both). Reports:
#   - the GPT: partition count, types, names, attribute flags
#   - the file system type of the root partition
#   - paths only in one image
#   - for common paths: type, mode (incl. setuid), owner, size, symlink
#     target, sha256 of file contents, xattrs, hard-link groups
#   - the extension-release file, key by key
#   - mtimes (summarised: distinct values per image; not a difference sxb
#     aims to remove, see below)
# Each difference is printed with a hint about its likely cause where the
# cause is a known, deliberate difference between the tools; every other
# difference is marked "UNEXPLAINED". Exit status: 0 when the file trees are
# equal (ignoring mtimes), 1 when they differ, 2 on a usage/tool error.
#
# How: the root partition is located with sfdisk -J, mounted read-only (loop,
# offset, sizelimit) in a private mount namespace, and walked with python3
# (lstat, listxattr, sha256). Needs root, sfdisk, python3, a kernel with the
# image's file system (erofs or squashfs).
#
# Usage: bench/parity.sh [--names A,B] [--keep-manifests DIR] A.raw B.raw
set -euo pipefail

NAMES=A,B
KEEPDIR=
while [ $# -gt 0 ]; do
	case "$1" in
	--names) NAMES=$2; shift 2 ;;
	--names=*) NAMES=${1#--names=}; shift ;;
	--keep-manifests) KEEPDIR=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "parity.sh: unknown flag $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# = 2 ] || { echo "usage: parity.sh [--names A,B] A.raw B.raw" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "parity.sh: needs root (loop mounts)" >&2; exit 2; }
NA=${NAMES%%,*}
NB=${NAMES#*,}
IMG_A=$(readlink -f "$1")
IMG_B=$(readlink -f "$2")
TMP=$(mktemp -d /tmp/sxb-parity.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# manifest IMAGE OUT: writes OUT.gpt (partition summary) and OUT.tsv (one
# line per path) for the root partition of IMAGE.
manifest() {
	local img=$1 out=$2
	sfdisk -J "$img" >"$out.sfdisk.json"
	python3 - "$out.sfdisk.json" >"$out.gpt" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["partitiontable"]
print(f'partitions={len(t["partitions"])} first-lba={t["firstlba"]} disk-uuid={t["id"]}')
for i, p in enumerate(t["partitions"]):
    attrs = p.get("attrs", "")
    bits = []
    for a in attrs.replace(",", " ").split():
        if a.startswith("GUID:"):
            for b in a[5:].split(","):
                bits.append({"60": "read-only", "59": "grow-fs", "62": "hidden", "63": "no-auto"}.get(b, "bit" + b))
        else:
            bits.append(a)
    print(f'p{i+1}.type={p["type"]} p{i+1}.name={p.get("name", "")} p{i+1}.flags={",".join(bits) or "-"} p{i+1}.start={p["start"]} p{i+1}.sectors={p["size"]} p{i+1}.uuid={p["uuid"]}')
EOF
	# the first partition whose GPT type is a root or usr partition, else the first
	local start size
	read -r start size < <(python3 - "$out.sfdisk.json" <<'EOF'
import json, sys
ps = json.load(open(sys.argv[1]))["partitiontable"]["partitions"]
# verity/signature partitions have names ending in -verity / -verity-sig
data = [p for p in ps if not p.get("name", "").endswith(("-verity", "-verity-sig"))] or ps
print(data[0]["start"] * 512, data[0]["size"] * 512)
EOF
	)
	dd if="$img" of="$out.part" bs=1M iflag=skip_bytes,count_bytes skip="$start" count="$size" status=none
	local fstype
	fstype=$(blkid -o value -s TYPE "$out.part" 2>/dev/null || echo unknown)
	echo "root.fs=$fstype" >>"$out.gpt"
	mkdir -p "$out.mnt"
	unshare --mount --propagation private sh -euc '
		mount -o ro,loop -t "$1" "$2" "$3"
		python3 - "$3" "$4" >"$4" <<"PY"
import hashlib, os, stat, sys
root = sys.argv[1]
rows = []
inode_paths = {}
def walk(rel):
    full = os.path.join(root, rel) if rel else root
    st = os.lstat(full)
    m = st.st_mode
    kind = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l", stat.S_IFCHR: "c",
            stat.S_IFBLK: "b", stat.S_IFIFO: "p", stat.S_IFSOCK: "s"}[stat.S_IFMT(m)]
    extra = "-"
    size = "-"
    if kind == "f":
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        extra = h.hexdigest()
        size = str(st.st_size)
        if st.st_nlink > 1:
            inode_paths.setdefault(st.st_ino, []).append(rel)
        if rel.startswith(("usr/lib/extension-release.d/extension-release.", "etc/extension-release.d/extension-release.")):
            with open(full, "rb") as f, open(sys.argv[2] + ".release", "wb") as o:
                o.write(f.read())
    elif kind == "l":
        extra = os.readlink(full)
    elif kind in "cb":
        extra = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    try:
        xs = sorted(os.listxattr(full, follow_symlinks=False))
        xattrs = ";".join(f"{x}={os.getxattr(full, x, follow_symlinks=False).hex()}" for x in xs) or "-"
    except OSError:
        xattrs = "?"
    rows.append([rel or ".", kind, "%04o" % stat.S_IMODE(m), f"{st.st_uid}:{st.st_gid}", size, extra, xattrs, str(int(st.st_mtime)), "-"])
    if kind == "d":
        for name in sorted(os.listdir(full)):
            walk(os.path.join(rel, name) if rel else name)
walk("")
links = {}
for ino, paths in inode_paths.items():
    for p in paths:
        links[p] = "+".join(sorted(paths))
for r in rows:
    r[8] = links.get(r[0], "-")
    print("\t".join(r))
PY
	' mnt "$fstype" "$out.part" "$out.mnt" "$out.tsv"
	rmdir "$out.mnt"
	rm -f "$out.part"
}

manifest "$IMG_A" "$TMP/a"
manifest "$IMG_B" "$TMP/b"
if [ -n "$KEEPDIR" ]; then
	mkdir -p "$KEEPDIR"
	cp "$TMP/a.tsv" "$KEEPDIR/$NA.tsv"
	cp "$TMP/b.tsv" "$KEEPDIR/$NB.tsv"
fi

python3 - "$TMP/a" "$TMP/b" "$NA" "$NB" "$IMG_A" "$IMG_B" <<'EOF'
import sys, re
a, b, na, nb, ia, ib = sys.argv[1:]

def load(prefix):
    rows = {}
    for line in open(prefix + ".tsv"):
        f = line.rstrip("\n").split("\t")
        rows[f[0]] = dict(kind=f[1], mode=f[2], owner=f[3], size=f[4], content=f[5], xattrs=f[6], mtime=f[7], links=f[8])
    return rows, open(prefix + ".gpt").read().splitlines()

A, ga = load(a)
B, gb = load(b)

# Known, deliberate differences between sxb and mkosi, by path pattern.
HINTS = [
    (r"^usr/share/doc(/|$)", "documentation: with_docs/Documentation handling"),
    (r"^usr/share/(man|info|locale)(/|$)", "man/info/locale files: docs or locale filtering"),
    (r"^usr/lib/extension-release\.d/", "extension-release file, compared key by key below"),
    (r"^usr/lib/os-release$", "os-release is never shipped in an extension"),
    (r"(^|/)ld\.so\.cache$", "ldconfig cache (maintainer script / trigger output)"),
    (r"\.pyc$|(^|/)__pycache__(/|$)", "byte-compiled python files (py3compile in postinst): sxb's scripts see SOURCE_DATE_EPOCH, so they are hash-based (PEP 552); mkosi's, without it, embed the source's mtime"),
    (r"^usr/share/info/dir", "install-info trigger output"),
    (r"gdk-pixbuf-2.0/.*/loaders.cache$|gio/modules/giomodule.cache$|glib-2.0/schemas/gschemas.compiled$|gtk-[234].0/.*/immodules.cache$",
     "cache generated by a postinst/trigger (gdk-pixbuf-query-loaders, gio-querymodules, glib-compile-schemas); sxb runs no triggers"),
    (r"^usr/share/mime/", "update-mime-database (shared-mime-info trigger) output; sxb runs no triggers"),
    (r"^usr/share/icons/.*/icon-theme.cache$", "gtk-update-icon-cache trigger output"),
]
def hint(path):
    for pat, why in HINTS:
        if re.search(pat, path):
            return why
    return "UNEXPLAINED"

def short(s, n=16):
    return s if len(s) <= n else s[:n] + "…"

print(f"parity: {na}={ia}")
print(f"        {nb}={ib}")
print()
# GPT and file system, field by field, with the known causes of differences
# between sxb and mkosi (systemd-repart 257).
def fields(lines):
    d = {}
    for l in lines:
        for kv in l.split():
            k, _, v = kv.partition("=")
            d[k] = v
    return d
GPT_HINTS = {
    "first-lba": "repart (libfdisk) aligns a disk larger than 4 MiB to 1 MiB: first-lba 2048, "
                 "first partition at LBA 2048; sxb always uses first-lba 34 / LBA 40 "
                 "(builtins/disk/layout.go usableArea): sxb differs from repart here",
    "start": "see first-lba",
    "flags": "sxb's default layout sets ReadOnly=yes (builtins/disk/default.go); mkosi's "
             "sysext-unsigned.repart.d has no ReadOnly=, so repart applies its GrowFileSystem default",
    "disk-uuid": "mkosi runs repart with --seed random (Seed= unset): new UUIDs every build; "
                 "sxb derives them from a seed of the output name (rules/build/targets.go seedFor)",
    "uuid": "see disk-uuid",
    "sectors": "file system size: different erofs writers (sxb vs mkfs.erofs via repart), "
               "different contents/xattrs, and a 1 MiB-aligned start",
}
fa, fb = fields(ga), fields(gb)
print("GPT / file system:")
for k in list(dict.fromkeys(list(fa) + list(fb))):
    x, y = fa.get(k, "(none)"), fb.get(k, "(none)")
    if x == y:
        print(f"  same {k}: {x}")
    else:
        why = GPT_HINTS.get(k.split(".")[-1], "UNEXPLAINED")
        print(f"  DIFF {k}: {na}={x} {nb}={y}  [{why}]")

pa, pb = set(A), set(B)
only_a = sorted(pa - pb)
only_b = sorted(pb - pa)
common = sorted(pa & pb)
print()
print(f"paths: {na} {len(pa)}, {nb} {len(pb)}, common {len(common)}, only in {na} {len(only_a)}, only in {nb} {len(only_b)}")

def group(paths):
    # collapse a directory and everything below it to one line
    out = []
    for p in paths:
        if out and (p.startswith(out[-1][0] + "/")):
            out[-1][1] += 1
        else:
            out.append([p, 1])
    return out

ndiff = 0
nunexp = 0
for name, only, rows in ((na, only_a, A), (nb, only_b, B)):
    if not only:
        continue
    print(f"only in {name}:")
    shown = {}  # hint -> [lines shown, entries and paths not shown]
    for p, n in group(only):
        r = rows[p]
        why = hint(p)
        more = f" (+{n-1} below)" if n > 1 else ""
        c = shown.setdefault(why, [0, 0, 0])
        if c[0] < 8 or why == "UNEXPLAINED":
            print(f"  {r['kind']} {p}{more}  [{why}]")
            c[0] += 1
        else:
            c[1] += 1
            c[2] += n
        ndiff += n
        if why == "UNEXPLAINED":
            nunexp += n
    for why, (_, lines, paths) in shown.items():
        if lines:
            print(f"  … {lines} more entries ({paths} paths) [{why}]")

fields = ["kind", "mode", "owner", "size", "content", "xattrs", "links"]
changed = []
for p in common:
    d = [f for f in fields if A[p][f] != B[p][f]]
    if d:
        changed.append((p, d))
def xnames(v):
    return set() if v in ("-", "?") else {x.split("=", 1)[0] for x in v.split(";")}

def show(f, v):
    if f == "xattrs":
        return ",".join(sorted(xnames(v))) or "none"
    return short(v)

def overlay_only(p):
    # the xattrs differ only by overlayfs bookkeeping (user.overlay.* / trusted.overlay.*)
    diff = xnames(A[p]["xattrs"]) ^ xnames(B[p]["xattrs"])
    return diff and all(re.match(r"^(user|trusted)\.overlay\.", x) for x in diff)

if changed:
    print("different in both:")
    hidden = {}
    for p, d in changed:
        desc = ", ".join(f"{f} {show(f, A[p][f])} vs {show(f, B[p][f])}" for f in d)
        why = hint(p)
        if d == ["xattrs"] and overlay_only(p):
            why = "overlayfs bookkeeping xattrs of an Overlay=yes upper directory, copied into the image"
        if why == "UNEXPLAINED":
            nunexp += 1
        c = hidden.setdefault(why, [0, 0])
        if c[0] < 8 or why == "UNEXPLAINED":
            print(f"  {p}: {desc}  [{why}]")
            c[0] += 1
        else:
            c[1] += 1
    for why, (_, n) in hidden.items():
        if n:
            print(f"  … {n} more paths [{why}]")
    ndiff += len(changed)
else:
    print("common paths: identical type, mode, owner, size, contents, xattrs and hard links")

# extension-release, key by key (order kept)
def release(prefix):
    try:
        lines = open(prefix + ".tsv.release").read().splitlines()
    except FileNotFoundError:
        return None
    kv = []
    for l in lines:
        l = l.strip()
        if l and not l.startswith("#") and "=" in l:
            k, v = l.split("=", 1)
            kv.append((k, v.strip('"\'')))
    return kv
ra, rb = release(a), release(b)
print()
if ra is None or rb is None:
    print(f"extension-release: {na} {'found' if ra is not None else 'MISSING'}, {nb} {'found' if rb is not None else 'MISSING'}")
    ndiff += 1
    nunexp += 1
else:
    da, db = dict(ra), dict(rb)
    print(f"extension-release ({na} order: {' '.join(k for k, _ in ra)}; {nb} order: {' '.join(k for k, _ in rb)}):")
    for k in list(dict.fromkeys([k for k, _ in ra] + [k for k, _ in rb])):
        x, y = da.get(k), db.get(k)
        mark = "  same" if x == y else "  DIFF"
        print(f"{mark} {k}: {na}={x!r}" + ("" if x == y else f" {nb}={y!r}  [UNEXPLAINED]"))
        if x != y:
            ndiff += 1
            nunexp += 1
    if [k for k, _ in ra] != [k for k, _ in rb]:
        print("  DIFF key order  [UNEXPLAINED]")
        ndiff += 1
        nunexp += 1

mt_a = sorted({r["mtime"] for r in A.values()})
mt_b = sorted({r["mtime"] for r in B.values()})
print()
print(f"mtimes: {na} {len(mt_a)} distinct ({', '.join(mt_a[:3])}{'…' if len(mt_a) > 3 else ''}), "
      f"{nb} {len(mt_b)} distinct ({', '.join(mt_b[:3])}{'…' if len(mt_b) > 3 else ''})")
print("  (sxb sets every mtime to SOURCE_DATE_EPOCH, 0 when unset, for reproducible images;"
      " mkosi keeps the mtimes dpkg extracted unless SOURCE_DATE_EPOCH is set)")
print()
print(f"result: {ndiff} differing path(s), {nunexp} of them without a known cause (mtimes not counted)")
sys.exit(1 if ndiff else 0)
EOF
