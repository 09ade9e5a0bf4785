#!/bin/bash
# The remote cache against nginx with WebDAV on the loopback, in one run:
#
#  1. tree: a 125 MB, 10,000-file directory through the cache as sxb sends
#     it (one chunked tar stream) and as an REAPI Tree (a blob per file);
#     upload and download times (bench/remotetree).
#  2. e2e: the locked bookworm base + jq sysext (examples/debian): a cold
#     build with an empty cache, then, on "machine B" (empty cache, a
#     network namespace with only the loopback and nginx), the same build
#     from the remote cache; times, their ratio, and byte-identity.
#
# Usage: bench/remotecache.sh [tree|e2e]...   (default: both; e2e needs
# root and the network). SXB_BENCH_DIR keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(tree e2e)
work=${SXB_BENCH_DIR:-$(mktemp -d /var/tmp/sxb-remote-bench.XXXXXX)}
mkdir -p "$work"
[ -n "${SXB_BENCH_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
go build -o "$work/sxb" ./cmd/sxb
go build -o "$work/remotetree" ./bench/remotetree

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx" "$work/store"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work/nginx/body;
	proxy_temp_path $work/nginx/proxy;
	fastcgi_temp_path $work/nginx/fastcgi;
	uwsgi_temp_path $work/nginx/uwsgi;
	scgi_temp_path $work/nginx/scgi;
	server {
		listen 127.0.0.1:$port;
		root $work/store;
		client_max_body_size 0;
		location / { dav_methods PUT DELETE; create_full_put_path on; }
	}
}
EOF
nginx_pid=
start_nginx() {
	rm -f "$work/nginx/nginx.pid"
	nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
	nginx_pid=$!
	while [ ! -s "$work/nginx/nginx.pid" ]; do sleep 0.05; done
}
stop_nginx() { [ -z "$nginx_pid" ] || { kill "$nginx_pid"; wait "$nginx_pid" || true; nginx_pid=; }; }
trap 'stop_nginx; [ -n "${SXB_BENCH_DIR:-}" ] || rm -rf "$work"' EXIT
url=http://127.0.0.1:$port

for part in "${parts[@]}"; do
case $part in
tree)
	start_nginx
	echo "== tree: 10,000 files, 125 MB through nginx on the loopback"
	"$work/remotetree" -url "$url" -store "$work/store" -work "$work/tree"
	stop_nginx
	rm -rf "$work/store"/* "$work/tree"
	;;
e2e)
	ws=$work/ws
	mkdir -p "$ws/img"
	: >"$ws/WORKSPACE.star"
	cp examples/debian/BUILD.star "$ws/img/"
	cd "$ws"
	export SXB_REFRESH=0
	echo "== e2e: locked bookworm base + jq sysext"
	XDG_CACHE_HOME=$work/cache-lock "$work/sxb" lock --progress=plain //img:jq >/dev/null 2>&1
	t0=$(date +%s.%N)
	XDG_CACHE_HOME=$work/cache-a "$work/sxb" build --progress=plain //img:jq >/dev/null 2>"$work/cold.log"
	t1=$(date +%s.%N)
	cp sxb-out/img/jq.raw "$work/jq.cold.raw"
	cp -a sxb-out/img/bookworm "$work/bookworm.cold"
	start_nginx
	XDG_CACHE_HOME=$work/cache-a "$work/sxb" build --progress=plain --remote-cache="$url" //img:jq >/dev/null 2>"$work/upload.log"
	tail -1 "$work/upload.log"
	stop_nginx
	rm -rf sxb-out
	cat >"$work/offline.sh" <<EOF
ip link set lo up
rm -f "$work/nginx/nginx.pid"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pid=\$!
while [ ! -s "$work/nginx/nginx.pid" ]; do sleep 0.05; done
t0=\$(date +%s.%N)
XDG_CACHE_HOME=$work/cache-b "$work/sxb" build --progress=plain --remote-cache="$url" --remote-upload=false //img:jq >/dev/null 2>"$work/remote.log"
rc=\$?
t1=\$(date +%s.%N)
kill \$pid; wait \$pid
echo "\$t0 \$t1" >"$work/remote.time"
exit \$rc
EOF
	unshare -n sh "$work/offline.sh"
	read r0 r1 <"$work/remote.time"
	tail -1 "$work/remote.log"
	cmp sxb-out/img/jq.raw "$work/jq.cold.raw" && echo "jq.raw: byte-identical"
	diff -r --no-dereference sxb-out/img/bookworm "$work/bookworm.cold" && echo "bookworm tree: identical"
	python3 - "$t0" "$t1" "$r0" "$r1" <<'EOF'
import sys
t0, t1, r0, r1 = map(float, sys.argv[1:])
cold, remote = t1 - t0, r1 - r0
print(f"cold (empty cache, downloads) {cold:.2f}s   remote hit (empty cache, offline netns) {remote:.2f}s   remote/cold {remote/cold:.3f} ({cold/remote:.1f}x faster)")
EOF
	cd - >/dev/null
	;;
*)
	echo "unknown part $part (want tree or e2e)" >&2
	exit 2
	;;
esac
done
