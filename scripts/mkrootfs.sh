#!/bin/sh
# mkrootfs.sh builds the small root file system that steps 03 and later
# pivot into: one statically linked busybox and a symlink for each of its
# applets, plus the handful of files under /etc that programs expect.
#
# Usage: scripts/mkrootfs.sh [DIR]
#   DIR defaults to $GOCELL_ROOTFS, or /var/lib/gocell-lessons/rootfs.
#   BUSYBOX=/path/to/busybox picks the binary (default: the one on PATH,
#   which must be statically linked: Debian's and Ubuntu's busybox-static).
#   OWNER=UID:GID picks who owns the files on the host (default
#   100000:100000, see below).
#
# Why the files belong to uid 100000 and not to root: from step 06 on, the
# container runs in a user namespace where root inside is uid 100000
# outside (the steps' default --uid-map 0:100000:65536). Owned by 100000,
# the files are root's inside, so the container can use its root file
# system. Steps 03 to 05 run as the host's real root, which may use any
# file whoever owns it; there `ls -l` shows the owner as 100000.
#
# It works offline: everything comes from the host. The directory is built
# beside its final place and renamed into it, so a half-built root file
# system is never left where the steps look for one.
#
# Keep DIR on the machine's own disk. pivot_root(2) and overlayfs upper
# directories do not work on shared folders (vboxsf, NFS, 9p), which is
# why the default is not under /vagrant.
set -eu

dir=${1:-${GOCELL_ROOTFS:-/var/lib/gocell-lessons/rootfs}}
busybox=${BUSYBOX:-$(command -v busybox || true)}
owner=${OWNER:-100000:100000}

die() {
	echo "mkrootfs: $*" >&2
	exit 1
}

[ -n "$busybox" ] || die "no busybox found; install it: sudo apt-get install busybox-static"
[ -x "$busybox" ] || die "$busybox is not executable"
# A dynamically linked busybox would need the host's libc inside the
# container, where there is none. ldd says "not a dynamic executable"
# (or "statically linked") for a static one.
if command -v ldd >/dev/null 2>&1 && ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; install busybox-static, or set BUSYBOX to a static one"
fi

parent=$(dirname "$dir")
mkdir -p "$parent"
# Shared folders break pivot_root and overlay; refuse them early, with the
# reason, instead of failing later inside a step.
fstype=$(stat -f -c %T "$parent" 2>/dev/null || echo unknown)
case "$fstype" in
vboxsf | nfs | nfs4 | v9fs | 9p | fuseblk | smb2 | cifs)
	die "$parent is on $fstype, a shared folder; pivot_root and overlayfs need a local disk (try /var/lib/gocell-lessons/rootfs)"
	;;
esac

tmp=$(mktemp -d "$parent/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

for d in bin sbin usr/bin usr/sbin etc proc sys dev tmp root home var/tmp; do
	mkdir -p "$tmp/$d"
done
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
chmod 700 "$tmp/root"

cp "$busybox" "$tmp/bin/busybox"
chmod 755 "$tmp/bin/busybox"
# busybox --list-full prints each applet with its usual directory,
# e.g. "bin/sh" or "usr/bin/awk".
"$busybox" --list-full | while read -r applet; do
	case "$applet" in
	bin/busybox) continue ;;
	esac
	mkdir -p "$tmp/$(dirname "$applet")"
	ln -sf /bin/busybox "$tmp/$applet"
done

cat >"$tmp/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$tmp/etc/group" <<'GROUP'
root:x:0:
tty:x:5:
nogroup:x:65534:
GROUP
echo gocell >"$tmp/etc/hostname"
cat >"$tmp/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
::1	localhost
HOSTS
cat >"$tmp/etc/os-release" <<'OSREL'
NAME="gocell busybox"
ID=gocell
PRETTY_NAME="gocell busybox root file system"
OSREL
# The tests look for this marker to recognise the root file system from
# the host, through /proc/PID/root.
# "v2" is the layout's version: scripts/provision.sh rebuilds an older one.
echo "gocell rootfs v2, busybox $("$busybox" | head -n 1 | awk '{print $2}'), owner $owner" >"$tmp/etc/gocell-rootfs"
chmod 755 "$tmp"
# -h: change the symlinks themselves, not busybox through them.
chown -R -h "$owner" "$tmp"

rm -rf "$dir.old"
if [ -e "$dir" ]; then
	mv "$dir" "$dir.old"
fi
mv "$tmp" "$dir"
trap - EXIT INT TERM
rm -rf "$dir.old"
echo "mkrootfs: built $dir ($(ls "$dir/bin" | wc -l) entries in /bin, owned by $owner) from $busybox"
