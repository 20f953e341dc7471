#!/bin/sh
# mkimage.sh turns a root file system directory into an OCI image layout
# that `gocell import` (or any OCI tool) reads: one gzipped layer, an
# image config and a manifest, each stored under its sha256. It works
# offline, so a class can run `gocell` without a registry:
#
#   sudo scripts/mkrootfs.sh                        # if not done yet
#   sudo scripts/mkimage.sh /var/lib/gocell-lessons/rootfs /tmp/busybox-oci
#   sudo gocell import /tmp/busybox-oci busybox:latest
#
# Usage: scripts/mkimage.sh ROOTFS LAYOUT [CMD]   (CMD defaults to sh)
# Files keep their numeric owners; the steps' rootfs belongs to uid
# 100000 (see mkrootfs.sh), so build one with OWNER=0:0 for an image
# whose files belong to root, as images usually do.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 ROOTFS LAYOUT [CMD]" >&2; exit 2; }
rootfs=$1
layout=$2
cmd=${3:-sh}
[ -d "$rootfs" ] || { echo "mkimage: $rootfs is not a directory" >&2; exit 1; }
command -v python3 >/dev/null || { echo "mkimage: python3 is needed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$layout/blobs/sha256"
tar -C "$rootfs" --numeric-owner -cf "$tmp/layer.tar" .
gzip -n -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
# The image's architecture is the machine's, in the names OCI uses (Go's
# GOARCH): the busybox in the root file system is this machine's, and
# an arm64 class VM on Apple Silicon must not label it amd64.
case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) echo "mkimage: no OCI name for architecture $(uname -m) (amd64 and arm64 are known)" >&2; exit 1 ;;
esac
python3 - "$tmp" "$layout" "$cmd" "$arch" <<'PY'
import hashlib, json, os, shutil, sys, time
tmp, layout, cmd, arch = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
blobs = os.path.join(layout, "blobs/sha256")
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
def put(data, media):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return {"mediaType": media, "digest": "sha256:" + d, "size": len(data)}
# The DiffID names the uncompressed layer; the digest the gzipped blob.
diffid, layer = sha(tmp + "/layer.tar"), sha(tmp + "/layer.tar.gz")
shutil.copy(tmp + "/layer.tar.gz", os.path.join(blobs, layer))
created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))))
config = put(json.dumps({"architecture": arch, "os": "linux", "created": created,
    "config": {"Cmd": [cmd], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diffid]}}).encode(),
    "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config,
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + layer, "size": os.path.getsize(tmp + "/layer.tar.gz")}]}).encode(),
    "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PY
echo "mkimage: wrote an OCI image layout of $rootfs to $layout"
