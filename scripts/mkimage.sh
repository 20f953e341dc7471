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
# The blobs are named by their sha256; the JSON is small enough to write
# by hand (no python: the kit's VMs have none).
blobs=$layout/blobs/sha256
sha() { sha256sum "$1" | cut -d' ' -f1; }
# put FILE stores FILE as a blob, and prints a descriptor of it.
put() { # FILE MEDIATYPE
	d=$(sha "$1")
	cp "$1" "$blobs/$d"
	printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$(stat -c %s "$1")"
}
# json S prints S as a JSON string.
json() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }
# The DiffID names the uncompressed layer; the digest the gzipped blob.
diffid=$(sha "$tmp/layer.tar")
created=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Cmd":[%s],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$arch" "$created" "$(json "$cmd")" "$diffid" >"$tmp/config.json"
config=$(put "$tmp/config.json" application/vnd.oci.image.config.v1+json)
layer=$(put "$tmp/layer.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
	"$config" "$layer" >"$tmp/manifest.json"
manifest=$(put "$tmp/manifest.json" application/vnd.oci.image.manifest.v1+json)
printf '{"schemaVersion":2,"manifests":[%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}\n' \
	"${manifest%\}}" >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}\n' >"$layout/oci-layout"
echo "mkimage: wrote an OCI image layout of $rootfs to $layout"
