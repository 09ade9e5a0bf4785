#!/bin/sh
# parity.sh: compare "sxb mkosi summary --json" with "mkosi --json summary"
# for mkosi project directories, on every setting sxb reports. Needs an
# mkosi source tree (MKOSI_SRC, e.g. a checkout of github.com/systemd/mkosi)
# and an sxb binary (SXB). Not part of go test: mkosi is not a dependency.
#   MKOSI_SRC=/path/to/mkosi SXB=/path/to/sxb testdata/parity.sh DIR... [-- mkosi args]
set -eu
: "${MKOSI_SRC:?set MKOSI_SRC to an mkosi source tree}"
: "${SXB:=sxb}"
status=0
for d in "$@"; do
	a=$(mktemp) b=$(mktemp)
	(cd "$d" && PYTHONPATH="$MKOSI_SRC" python3 -m mkosi --json summary) >"$a" 2>/dev/null || { echo "$d: mkosi failed"; status=1; continue; }
	(cd "$d" && "$SXB" mkosi summary --json) >"$b" 2>/dev/null || { echo "$d: sxb failed"; status=1; continue; }
	python3 - "$d" "$a" "$b" <<'PY' || status=1
import json, sys
d, a, b = sys.argv[1:]
ref = json.load(open(a))["Images"]
got = json.load(open(b))["Images"]
bad = 0
if [i["Image"] for i in ref] != [i["Image"] for i in got]:
    print(f"{d}: image order: mkosi {[i['Image'] for i in ref]} sxb {[i['Image'] for i in got]}")
    bad = 1
for r, g in zip(ref, got):
    for k, v in sorted(g.items()):
        if k not in r:
            print(f"{d}: {g['Image']}: {k} not in mkosi output")
            bad = 1
        elif r[k] != v:
            print(f"{d}: {g['Image']}: {k}: mkosi {r[k]!r} sxb {v!r}")
            bad = 1
n = sum(len(g) for g in got)
print(f"{d}: {'DIFFERENT' if bad else 'same'} ({len(got)} images, {n} values compared)")
sys.exit(bad)
PY
	rm -f "$a" "$b"
done
exit $status
