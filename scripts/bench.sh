#!/usr/bin/env bash
# bench.sh times `gocell run --rm IMAGE /bin/true` beside `runc run` and
# `crun run` on the same busybox root file system, N runs each (default
# 30), and prints the median of each and the ratio gocell/crun.
#
# Usage: sudo scripts/bench.sh [N]
# Needs: runc, crun (Debian's packages), busybox-static, Go, python3.
#
# crun 1.8 refuses a hybrid cgroup layout (v1 controllers beside an empty
# cgroup2 at /sys/fs/cgroup/unified); it runs here in a private mount
# namespace where that cgroup2 mount is unmounted, which leaves it a plain
# v1 layout. Nothing outside that namespace changes.
set -euo pipefail
n=${1:-30}
repo=$(cd "$(dirname "$0")/.." && pwd)
for tool in runc crun python3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: run as root: sudo scripts/bench.sh" >&2; exit 1; }

tmp=$(mktemp -d /var/tmp/gocell-bench.XXXXXX)
cleanup() {
	"$tmp/gocell" --root "$tmp/root" rm -f $("$tmp/gocell" --root "$tmp/root" ps -a -q 2>/dev/null) >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "bench: building gocell and a busybox root file system"
(cd "$repo" && CGO_ENABLED=0 go build -o "$tmp/gocell" ./final)
OWNER=0:0 sh "$repo/scripts/mkrootfs.sh" "$tmp/rootfs" >/dev/null

# An OCI image layout of that root file system, for gocell import.
sh "$repo/scripts/mkimage.sh" "$tmp/rootfs" "$tmp/layout" >/dev/null
"$tmp/gocell" --root "$tmp/root" import "$tmp/layout" bench:latest >/dev/null

# An OCI bundle for runc and crun: the same root file system, and the
# default spec with /bin/true and no terminal.
mkdir -p "$tmp/bundle"
cp -a "$tmp/rootfs" "$tmp/bundle/rootfs"
(cd "$tmp/bundle" && runc spec)
python3 - "$tmp/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"))
PY

# time_runs NAME COMMAND...: runs COMMAND n times (with $i set), prints
# the median wall time in milliseconds.
time_runs() {
	local name=$1; shift
	local times=()
	for i in $(seq 1 "$n"); do
		local t0 t1
		t0=$(date +%s%N)
		"$@" >/dev/null 2>&1 || { echo "bench: $name run $i failed: $*" >&2; exit 1; }
		t1=$(date +%s%N)
		times+=($(( (t1 - t0) / 1000 )))
	done
	printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s %.2f\n", name, m/1000}'
}
export -f time_runs
export n tmp

echo "bench: $n runs each of /bin/true"
results=$(
	# runc's and crun's default spec give the container a network
	# namespace with only lo: gocell's --network none is the same thing.
	# Its default, a bridge with a veth pair, costs more; both are shown.
	time_runs gocell sh -c '"$tmp/gocell" --root "$tmp/root" run --rm --network none bench:latest /bin/true'
	time_runs gocell-bridge sh -c '"$tmp/gocell" --root "$tmp/root" run --rm bench:latest /bin/true'
	time_runs runc sh -c 'runc run --bundle "$tmp/bundle" gocell-bench-$$-$RANDOM'
	unshare -m bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null || true
		time_runs crun sh -c "crun run --bundle \"$tmp/bundle\" gocell-bench-\$\$-\$RANDOM"'
)
echo "$results" | awk '{printf "  %-13s median %8.2f ms\n", $1, $2}'
echo "$results" | awk '$1=="gocell"{g=$2} $1=="crun"{c=$2} $1=="runc"{r=$2} END {printf "  gocell/crun %.2f   gocell/runc %.2f\n", g/c, g/r}'
