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

# An OCI image layout of that root file system, for gocell import: one
# gzipped layer, a config and a manifest, addressed by their sha256.
layout=$tmp/layout
mkdir -p "$layout/blobs/sha256"
tar -C "$tmp/rootfs" --numeric-owner -cf "$tmp/layer.tar" .
gzip -n -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
python3 - "$tmp" <<'PY'
import hashlib, json, os, shutil, sys
tmp = sys.argv[1]; blobs = os.path.join(tmp, "layout/blobs/sha256")
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
    return h.hexdigest()
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
diffid, layer = sha(tmp + "/layer.tar"), sha(tmp + "/layer.tar.gz")
shutil.copy(tmp + "/layer.tar.gz", os.path.join(blobs, layer))
config = put(json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diffid]}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
    "digest": "sha256:" + layer, "size": os.path.getsize(tmp + "/layer.tar.gz")}]}).encode())
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(tmp + "/layout/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(tmp + "/layout/oci-layout", "w"))
PY
"$tmp/gocell" --root "$tmp/root" import "$layout" bench:latest >/dev/null

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
	time_runs gocell sh -c '"$tmp/gocell" --root "$tmp/root" run --rm bench:latest /bin/true'
	time_runs runc sh -c 'runc run --bundle "$tmp/bundle" gocell-bench-$$-$RANDOM'
	unshare -m bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null || true
		time_runs crun sh -c "crun run --bundle \"$tmp/bundle\" gocell-bench-\$\$-\$RANDOM"'
)
echo "$results" | awk '{printf "  %-7s median %8.2f ms\n", $1, $2}'
echo "$results" | awk '$1=="gocell"{g=$2} $1=="crun"{c=$2} $1=="runc"{r=$2} END {printf "  gocell/crun %.2f   gocell/runc %.2f\n", g/c, g/r}'
