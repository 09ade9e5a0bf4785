#!/bin/sh
# Benchmark: a Debian bookworm base (systemd + udev + the Essential
# packages, 83 packages) installed into a directory, cold (empty caches,
# indexes and packages downloaded) and warm (everything cached), by
#   sxb        builtins/deb via bench/debinstall (resolve + download + unpack,
#              no maintainer scripts; and warm with -scripts: the scripts
#              and triggers run by the tree's dpkg in builtins/sandbox)
#   apt-get    apt-get update + apt-get install --download-only into a
#              private state dir + dpkg-deb -x of each package (apt's
#              "install into a directory" without maintainer scripts)
#   mmdebstrap --variant=essential --include=systemd,udev,usr-is-merged (a
#              complete install with maintainer scripts, for reference)
# all in the same run, and prints the ratios.
#
# Usage: bench/deb.sh [RUNS]   (needs root for mmdebstrap, hyperfine, network)
set -eu
RUNS=${1:-3}
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
W=$(mktemp -d /var/tmp/sxb-bench-deb.XXXXXX)
trap 'rm -rf "$W"' EXIT
go build -o "$W/debinstall" ./bench/debinstall
MIRROR=http://deb.debian.org/debian

# apt state in $W/apt, target in $W/out.
mkdir -p "$W/apt/etc/apt/sources.list.d" "$W/apt/etc/apt/preferences.d" "$W/apt/etc/apt/apt.conf.d"
KR=/usr/share/keyrings/debian-archive-keyring.gpg
cat > "$W/apt/etc/apt/sources.list" <<EOS
deb [signed-by=$KR] $MIRROR bookworm main
deb [signed-by=$KR] $MIRROR bookworm-updates main
deb [signed-by=$KR] http://deb.debian.org/debian-security bookworm-security main
EOS
cat > "$W/apt/apt.conf" <<EOS
Dir::Etc "$W/apt/etc/apt";
Dir::State "$W/apt/state";
Dir::State::Status "$W/apt/status";
Dir::Cache "$W/apt/cache";
APT::Architecture "amd64";
APT::Architectures "amd64";
APT::Install-Recommends "false";
Acquire::Languages "none";
APT::Sandbox::User "root";
EOS
touch "$W/apt/status"
export APT_CONFIG="$W/apt/apt.conf"

# The same package set for everyone: what sxb resolves (verified equal to
# apt's choice by builtins/deb's TestBookwormMatchesApt).
PKGS=$("$W/debinstall" -names -cache "$W/warm")
NPKGS=$(echo "$PKGS" | tr ',' '\n' | wc -l)
echo "packages: $NPKGS" >&2
APTPKGS=$(echo "$PKGS" | tr ',' ' ')
"$W/debinstall" -cache "$W/warm" "$W/out" # warm the sxb cache once
rm -rf "$W/out" "$W/out.meta.json"

cat > "$W/apt.sh" <<EOS
#!/bin/sh
set -e
mkdir -p "$W/apt/state/lists/partial" "$W/apt/cache/archives/partial"
apt-get -qq update
apt-get -qq install -y --download-only $APTPKGS >/dev/null
mkdir -p "$W/out"
for f in "$W/apt/cache/archives/"*.deb; do dpkg-deb -x "\$f" "$W/out"; done
EOS
chmod +x "$W/apt.sh"
"$W/apt.sh" # warm the apt caches once

hyperfine --runs "$RUNS" --export-json "$W/result.json" \
	-n sxb-cold --prepare "rm -rf '$W/cold' '$W/out' '$W/out.meta.json'" "'$W/debinstall' -cache '$W/cold' '$W/out'" \
	-n sxb-warm --prepare "rm -rf '$W/out' '$W/out.meta.json'" "'$W/debinstall' -cache '$W/warm' '$W/out'" \
	-n sxb-warm-scripts --prepare "rm -rf '$W/out' '$W/out.meta.json'" "'$W/debinstall' -scripts -cache '$W/warm' '$W/out' >/dev/null 2>&1" \
	-n apt-get-cold --prepare "rm -rf '$W/out' '$W/apt/state' '$W/apt/cache'" "'$W/apt.sh'" \
	-n apt-get-warm --prepare "rm -rf '$W/out'" "'$W/apt.sh'" \
	-n mmdebstrap-essential --prepare "rm -rf '$W/out'" \
	"env -u APT_CONFIG mmdebstrap --quiet --variant=essential --include=systemd,udev,usr-is-merged bookworm '$W/out' $MIRROR"

python3 - "$W/result.json" <<'EOP'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
for k, v in r.items():
    print(f"{k:22s} {v:7.2f} s")
print(f"apt-get cold / sxb cold     = {r['apt-get-cold']/r['sxb-cold']:.1f}x")
print(f"apt-get warm / sxb warm     = {r['apt-get-warm']/r['sxb-warm']:.1f}x")
print(f"mmdebstrap / sxb cold       = {r['mmdebstrap-essential']/r['sxb-cold']:.1f}x")
print(f"mmdebstrap / sxb warm       = {r['mmdebstrap-essential']/r['sxb-warm']:.1f}x")
print(f"mmdebstrap / sxb warm with scripts = {r['mmdebstrap-essential']/r['sxb-warm-scripts']:.1f}x")
print(f"scripts cost (warm)         = {r['sxb-warm-scripts']-r['sxb-warm']:.2f} s")
EOP
