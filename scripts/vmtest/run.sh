#!/usr/bin/env bash
# run.sh runs gocell's privileged, kernel-level tests inside a throwaway VM:
# a stock Debian kernel booted by qemu, with cgroup v2, on an initramfs that
# holds busybox, the kernel modules the steps need, the lessons' rootfs and
# the statically linked test binaries. Nothing on the host is touched, so it
# is safe to run on a laptop, and the kernel is the same everywhere.
#
# Usage: scripts/vmtest/run.sh [PACKAGE...]
#   PACKAGE: a directory or go package pattern, e.g. ./03-mount or ./final/...
#   Default: every step directory ([0-9][0-9]-*), ./final/... and
#   ./internal/learn/cleanup.
#   Packages without test files are skipped.
#
# Settings (environment):
#   VMTEST_CGROUP=v2|v1     cgroup layout in the VM (default v2)
#   VMTEST_RUN=REGEXP       only run matching tests (go test -run)
#   VMTEST_TEST_ARGS=...    more test binary flags, e.g. -test.short
#   VMTEST_TEST_TIMEOUT=8m  per package (go test -timeout)
#   VMTEST_TIMEOUT=SECONDS  the whole VM, from boot to power-off (default 1200)
#   VMTEST_ACCEL=auto|kvm|tcg  (default auto: KVM if it really works)
#   VMTEST_MEM=2048 VMTEST_SMP=2   VM size (MiB, CPUs)
#   VMTEST_APPEND=...       more kernel command line; unknown NAME=value words
#                           become environment variables of init and the tests
#   VMTEST_CACHE=DIR        where the kernel .deb is kept
#                           (default /var/cache/gocell-vmtest as root)
#   VMTEST_KERNEL="PACKAGE VERSION"  boot another kernel than kernel.version
#   VMTEST_KERNEL_STRICT=1  fail if the pinned kernel is no longer served
#   VMTEST_LOGDIR=DIR       keep console.log and results.log there
#   VMTEST_VERBOSE=1        also print the kernel console
#   VMTEST_TRANSCRIPTS=DIR  run no tests: record the chapters' console
#                           blocks instead (make transcripts), and write
#                           the recordings into DIR/lessons/transcripts;
#                           PACKAGE arguments are then chapters (03-mount.md)
#
# Exit status: 0 only if every package's tests ran and passed and the VM
# reported that it finished. A kernel panic, a hang (VMTEST_TIMEOUT), a
# missing result: all are failures.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

cgroup=${VMTEST_CGROUP:-v2}
test_timeout=${VMTEST_TEST_TIMEOUT:-8m}
vm_timeout=${VMTEST_TIMEOUT:-1200}
accel=${VMTEST_ACCEL:-auto}
mem=${VMTEST_MEM:-2048}
smp=${VMTEST_SMP:-2}
if [ -n "${VMTEST_CACHE:-}" ]; then
	cache=$VMTEST_CACHE
elif [ "$(id -u)" = 0 ]; then
	cache=/var/cache/gocell-vmtest
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/gocell-vmtest
fi

say() { echo "vmtest: $*" >&2; }
die() {
	echo "vmtest: FAIL: $*" >&2
	exit 1
}
# now prints seconds since the epoch with two decimals, for timings.
now() { date +%s.%N | cut -c1-13; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
t0=$(now)

case "$cgroup" in v1 | v2) ;; *) die "VMTEST_CGROUP must be v1 or v2, not $cgroup" ;; esac

# ---- tools ----
need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found; install it: sudo apt-get install $2"
}
need qemu-system-x86_64 qemu-system-x86
need dpkg-deb dpkg
need depmod kmod
need modprobe kmod
need cpio cpio
need go golang
need apt-get apt
busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || die "busybox not found; install it: sudo apt-get install busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; install busybox-static"
fi

# ---- clean up on every path ----
# One temp dir holds everything this run builds; the trap removes it and
# stops qemu (through its timeout wrapper) however we leave: success,
# failure, Ctrl-C or kill.
work=$(mktemp -d "${TMPDIR:-/tmp}/gocell-vmtest.XXXXXX")
vm_pid=
tail_pid=
# Half-written cache entries are built in temp dirs inside the cache, so
# that the final rename is atomic; they go too.
cache_tmp=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	[ ${#cache_tmp[@]} -eq 0 ] || rm -rf "${cache_tmp[@]}"
	if [ -n "$vm_pid" ] && kill -0 "$vm_pid" 2>/dev/null; then
		kill -TERM "$vm_pid" 2>/dev/null || true
		wait "$vm_pid" 2>/dev/null || true
	fi
	if [ -n "$tail_pid" ]; then
		kill "$tail_pid" 2>/dev/null || true
		wait "$tail_pid" 2>/dev/null || true
	fi
	if [ -n "${VMTEST_LOGDIR:-}" ]; then
		mkdir -p "$VMTEST_LOGDIR"
		cp "$work"/*.log "$VMTEST_LOGDIR"/ 2>/dev/null || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- 1. the kernel package ----
# The pin is the first non-comment line of kernel.version; VMTEST_KERNEL
# ("PACKAGE VERSION") tries another kernel without editing it.
if [ -n "${VMTEST_KERNEL:-}" ]; then
	read -r kpkg kver <<<"$VMTEST_KERNEL"
else
	read -r kpkg kver < <(grep -v '^[[:space:]]*\(#\|$\)' "$here/kernel.version" | head -n 1)
fi
[ -n "${kpkg:-}" ] && [ -n "${kver:-}" ] || die "no PACKAGE VERSION line in $here/kernel.version"
mkdir -p "$cache"

# served PKG VER says whether apt knows that version of that package.
served() {
	apt-cache madison "$1" 2>/dev/null | awk -v v="$2" '$3 == v { f = 1 } END { exit !f }'
}
# fetch PKG VER downloads PKG=VER into the cache (once).
fetch() {
	local deb="$cache/${1}_${2}_amd64.deb" dl
	[ -s "$deb" ] && return 0
	dl=$(mktemp -d "$cache/.dl.XXXXXX")
	cache_tmp+=("$dl")
	# APT::Sandbox::User=root: apt's _apt user may not write our dir.
	if ! (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$1=$2" >&2); then
		rm -rf "$dl"
		return 1
	fi
	mv "$dl"/*.deb "$deb" && rm -rf "$dl"
}

kdeb=$cache/${kpkg}_${kver}_amd64.deb
tf=$(now)
if [ -s "$kdeb" ]; then
	say "kernel $kpkg $kver (cached in $cache)"
else
	# apt's package lists can be missing (fresh machine) or older than
	# the pin; refresh them only then, as apt-get update is slow-ish.
	if ! served "$kpkg" "$kver"; then
		say "apt does not know $kpkg $kver; running apt-get update"
		apt-get update -qq >&2 || say "apt-get update failed; trying anyway"
	fi
	if served "$kpkg" "$kver" && fetch "$kpkg" "$kver"; then
		say "kernel $kpkg $kver downloaded ($(du -h "$kdeb" | cut -f1)) in $(since "$tf")"
	else
		msg="the pinned kernel $kpkg $kver is no longer served by the package mirror."
		how="Move the pin in scripts/vmtest/kernel.version (it says how)."
		[ "${VMTEST_KERNEL_STRICT:-}" != 1 ] || die "$msg $how"
		# Resolve the kernel the metapackage points at today.
		kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
		kver=$(apt-cache policy "$kpkg" 2>/dev/null | awk '/Candidate:/ { print $2 }')
		[ -n "$kpkg" ] && [ -n "$kver" ] && [ "$kver" != "(none)" ] ||
			die "$msg And linux-image-cloud-amd64 cannot be resolved either. $how"
		say "WARNING: $msg"
		say "WARNING: using today's $kpkg $kver instead. $how The new line is:"
		say "WARNING:     $kpkg $kver"
		kdeb=$cache/${kpkg}_${kver}_amd64.deb
		fetch "$kpkg" "$kver" || die "cannot download $kpkg $kver"
		echo "$kpkg $kver" >"$cache/resolved"
	fi
fi
# Keep only the kernel in use: an old pin's package is dead weight.
find "$cache" -maxdepth 1 -name 'linux-image-*.deb' ! -path "$kdeb" -delete
t_fetch=$(since "$tf")

# ---- 2. kernel and modules ----
# From the .deb we need only vmlinuz and ~30 of its ~1100 modules. Picking
# them costs a few seconds, so the result (vmlinuz, modules.cpio) is
# cached too, keyed by the package and modules.list.
tb=$(now)
modules=$(grep -v '^[[:space:]]*\(#\|$\)' "$here/modules.list" | tr '\n' ' ')
# Recording the chapters needs an eth0, as the class VM has.
transcripts=${VMTEST_TRANSCRIPTS:-}
[ -z "$transcripts" ] || modules+="virtio_pci virtio_net virtio_blk "
kkey=$(echo "$kpkg $kver $modules" | sha256sum | cut -c1-16)
kbundle=$cache/kernel-$kkey
if [ ! -s "$kbundle/modules.cpio" ]; then
	kx=$work/kernel
	mkdir -p "$kx"
	dpkg-deb -x "$kdeb" "$kx"
	kernel_release=$(basename "$(ls -d "$kx"/lib/modules/*/ | head -n 1)")
	[ -f "$kx/boot/vmlinuz-$kernel_release" ] ||
		die "$kdeb holds no /boot/vmlinuz-$kernel_release"
	# The package ships no modules.dep: make one, so modprobe can answer
	# "what does nf_tables need?" (nfnetlink, libcrc32c... from other
	# folders).
	depmod -b "$kx" "$kernel_release"

	ms=$work/modules-stage
	mods=$ms/lib/modules/$kernel_release
	mkdir -p "$mods"
	for m in $modules; do
		# -C /dev/null: ignore the host's /etc/modprobe.d. Lines are
		# "insmod /path/x.ko [options]" or "builtin name".
		deps=$(modprobe -C /dev/null -d "$kx" -S "$kernel_release" --show-depends "$m" 2>&1) ||
			die "kernel $kernel_release has no module $m (scripts/vmtest/modules.list): $deps"
		echo "$deps" | awk '$1 == "insmod" { print $2 }' | while read -r ko; do
			rel=${ko#"$kx"/lib/modules/"$kernel_release"/}
			mkdir -p "$mods/$(dirname "$rel")"
			# Debian's 6.1 modules are plain .ko. Unpack compressed
			# ones, in case a later kernel compresses them: busybox's
			# modprobe may not read .ko.xz or .ko.zst.
			case "$ko" in
			*.ko.xz) xz -dc "$ko" >"$mods/${rel%.xz}" ;;
			*.ko.zst) zstd -qdc "$ko" >"$mods/${rel%.zst}" ;;
			*.ko.gz) gzip -dc "$ko" >"$mods/${rel%.gz}" ;;
			*) cp "$ko" "$mods/$rel" ;;
			esac
		done
	done
	cp "$kx/lib/modules/$kernel_release"/modules.{builtin,builtin.modinfo,order} "$mods/"
	# And a modules.dep for the VM's modprobe, covering just these.
	depmod -b "$ms" "$kernel_release"

	bundle=$(mktemp -d "$cache/.kernel.XXXXXX")
	cache_tmp+=("$bundle")
	chmod 755 "$bundle"
	cp "$kx/boot/vmlinuz-$kernel_release" "$bundle/vmlinuz"
	echo "$kernel_release" >"$bundle/release"
	find "$mods" -name '*.ko' | wc -l >"$bundle/nmods"
	(cd "$ms" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc --quiet -R 0:0) >"$bundle/modules.cpio"
	rm -rf "$kx" "$ms"
	# Keep only this bundle; rename makes it appear whole or not at all.
	find "$cache" -maxdepth 1 -name 'kernel-*' ! -name "kernel-$kkey" -exec rm -rf {} +
	# mv -T fails if a run beside us got there first; its copy is as good.
	mv -T "$bundle" "$kbundle" 2>/dev/null || true
fi
kernel_release=$(cat "$kbundle/release")
nmods=$(cat "$kbundle/nmods")
vmlinuz=$kbundle/vmlinuz
stage=$work/initramfs
mkdir -p "$stage"

t_kernel=$(since "$tb")

# ---- 3. the test binaries ----
tb=$(now)
chapters=()
if [ -n "$transcripts" ]; then
	chapters=("$@")
	set --
	# shellcheck source=scripts/vmtest/transcripts.sh
	. "$here/transcripts.sh"
fi
# go list tells which packages have tests (a package without test files
# gives no binary) and where they are, relative to the module root.
if [ -n "$transcripts" ]; then
	pkgs=()
elif [ $# -eq 0 ]; then
	# Step directory names have no spaces: splitting is what we want.
	# shellcheck disable=SC2046
	set -- $(ls -d [0-9][0-9]-*/ 2>/dev/null | sed 's#^#./#; s#/$##')
	[ -d final ] && set -- "$@" ./final/...
	# The learner's loop needs the go command, which the VM has not; its
	# clean-up of dead runs, which must find cgroups on v2 too, needs none.
	[ -d internal/learn/cleanup ] && set -- "$@" ./internal/learn/cleanup
	# The Chinese pages' parity with the English ones needs only files.
	[ -d lessons/zh ] && set -- "$@" ./lessons/zh
	[ $# -gt 0 ] || die "no step directories ([0-9][0-9]-*) or final/ in $repo"
fi
[ -n "$transcripts" ] || pkgs=()
[ -n "$transcripts" ] || while read -r dir ntest nxtest; do
	[ $((ntest + nxtest)) -gt 0 ] || continue
	pkgs+=("${dir#"$repo"/}")
done < <(go list -f '{{.Dir}} {{len .TestGoFiles}} {{len .XTestGoFiles}}' "$@")
[ -n "$transcripts" ] || [ ${#pkgs[@]} -gt 0 ] || die "none of $* has test files"
mkdir -p "$stage/gocell-tests"
# Static (CGO_ENABLED=0): the initramfs has no C library. One go command
# for all packages links them in parallel, about twice as fast; it names
# each binary after the last element of its path, so it is used only when
# those are unique (final/internal/x and 0N-x could clash).
bt=$stage/gocell-tests
if [ ${#pkgs[@]} -eq 0 ]; then
	: # recording transcripts: no tests
elif [ -z "$(printf '%s\n' "${pkgs[@]##*/}" | sort | uniq -d)" ]; then
	CGO_ENABLED=0 go test -c -o "$bt/" "${pkgs[@]/#/./}" ||
		die "cannot build the tests"
	for p in "${pkgs[@]}"; do
		[ "${p##*/}" = "${p//\//_}" ] || mv "$bt/${p##*/}.test" "$bt/${p//\//_}.test"
	done
else
	for p in "${pkgs[@]}"; do
		CGO_ENABLED=0 go test -c -o "$bt/${p//\//_}.test" "./$p" ||
			die "cannot build the tests of ./$p"
	done
fi
for p in "${pkgs[@]}"; do
	[ -x "$bt/${p//\//_}.test" ] || die "no test binary for ./$p"
done
# The tests of final/ hand detached containers over to gocell-shim, which
# the VM has no go command to build: init.sh names this one in
# GOCELL_TEST_SHIM.
if [ ${#pkgs[@]} -gt 0 ] && [ -d final/cmd/gocell-shim ]; then
	CGO_ENABLED=0 go build -o "$bt/gocell-shim" ./final/cmd/gocell-shim ||
		die "cannot build ./final/cmd/gocell-shim"
fi
t_gobuild=$(since "$tb")

# ---- 4. the initramfs ----
ti=$(now)
# busybox is the VM's whole userland. Only /bin/sh is linked here, for
# init's #! line; init makes the other applet links itself with
# `busybox --install -s`, in milliseconds (one ln per applet here would
# cost a few seconds of process start-ups).
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,src}
cp "$busybox" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp "$here/init.sh" "$stage/init"
chmod 755 "$stage/init"
chmod 1777 "$stage/tmp"
cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
[ -z "$transcripts" ] || transcripts_stage
# Every distribution has os-release; tests use it as a host file that
# must be out of a container's reach.
mkdir -p "$stage/usr/lib"
cat >"$stage/usr/lib/os-release" <<'EOF'
NAME="gocell vmtest"
ID=gocell-vmtest
PRETTY_NAME="gocell throwaway test VM (busybox on a Debian kernel)"
EOF
ln -s ../usr/lib/os-release "$stage/etc/os-release"
# The root file system the steps pivot into, built the way a learner
# builds it (make rootfs), at the path the steps use by default. Building
# it takes ~10 s (hundreds of tiny processes), so the result is kept in
# the cache as a cpio archive, keyed by the script and busybox; the kernel
# unpacks concatenated cpio archives one after the other, so it is simply
# appended to the initramfs below.
# Bump "v2" when the way the archive is made changes.
rootfs_key=$({ echo v2; cat "$repo/scripts/mkrootfs.sh" "$busybox"; } | sha256sum | cut -c1-16)
rootfs_cpio=$cache/rootfs-$rootfs_key.cpio
if [ ! -s "$rootfs_cpio" ]; then
	rs=$work/rootfs-stage
	mkdir -p "$rs/var/lib/gocell-lessons"
	BUSYBOX=$busybox "$repo/scripts/mkrootfs.sh" "$rs/var/lib/gocell-lessons/rootfs" >/dev/null ||
		die "scripts/mkrootfs.sh failed"
	# No -R here: mkrootfs.sh chowns the files to the user namespace's
	# root (OWNER, 100000 by default) and 06-user relies on that.
	(cd "$rs" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc --quiet) >"$work/rootfs.cpio"
	# Copy, then rename within the cache: readers never see half a file.
	cache_tmp+=("$rootfs_cpio.$$")
	cp "$work/rootfs.cpio" "$rootfs_cpio.$$"
	mv "$rootfs_cpio.$$" "$rootfs_cpio"
	rm -f "$work/rootfs.cpio"
	rm -rf "$rs"
	# Keep only the newest rootfs archive.
	find "$cache" -maxdepth 1 -name 'rootfs-*.cpio' ! -name "rootfs-$rootfs_key.cpio" -delete
fi
# A copy of the source tree: tests run in their package's directory, as
# under go test, and may read testdata/ or a lesson. The chapters are
# recorded in /vagrant, where the class VM has the repository.
srcdir=src
[ -z "$transcripts" ] || srcdir=vagrant
mkdir -p "$stage/$srcdir" git ls-files skips
# .git and ignored files; fall back to everything but .git.
if git -C "$repo" rev-parse >/dev/null 2>&1; then
	git -C "$repo" ls-files -co --exclude-standard -z
else
	(cd "$repo" && find . -path ./.git -prune -o ! -type d -print0)
fi | (cd "$repo" && cpio -p0dm --quiet "$stage/$srcdir" 2>/dev/null) || true
for p in "${pkgs[@]}"; do mkdir -p "$stage/src/$p"; done
# What init should do: plain shell assignments, sourced by init.
{
	echo "VMTEST_PACKAGES='${pkgs[*]}'"
	echo "VMTEST_MODULES='$modules'"
	echo "VMTEST_CGROUP=$cgroup"
	echo "VMTEST_TEST_TIMEOUT=$test_timeout"
	echo "VMTEST_TEST_ARGS='${VMTEST_RUN:+-test.run=$VMTEST_RUN} ${VMTEST_TEST_ARGS:-}'"
	[ -z "$transcripts" ] || echo "VMTEST_TRANSCRIPTS=1 VMTEST_CHAPTERS='${chapters[*]}'"
} >"$stage/etc/gocell-vmtest.conf"
# cpio "newc" is the format the kernel unpacks. It is not compressed:
# the VM reads it from the host's memory, and compressing 100+ MB of Go
# binaries costs more time (here and in the guest) than it saves.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$work/initramfs.cpio"
cat "$kbundle/modules.cpio" "$rootfs_cpio" >>"$work/initramfs.cpio"
initrd_size=$(du -m "$work/initramfs.cpio" | cut -f1)
rm -rf "$stage"
t_initramfs=$(since "$ti")

# ---- 5. pick the accelerator ----
# KVM is ~10x faster, but on some machines /dev/kvm exists and qemu still
# aborts with it (nested virtualisation without the needed features). A
# cheap probe finds out: boot the kernel with no initramfs; it panics at
# once ("VFS: Unable to mount root fs") and, with -no-reboot, qemu exits.
# If that panic shows up on the console, KVM works.
qemu_base=(qemu-system-x86_64 -nodefaults -no-user-config -display none
	-nic none -no-reboot)
if [ "$accel" = auto ]; then
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		if timeout -k 5 30 "${qemu_base[@]}" -accel kvm -cpu host -m 256 \
			-kernel "$vmlinuz" -append "console=ttyS0 panic=-1" \
			-serial "file:$work/kvm-probe.log" </dev/null >/dev/null 2>&1 &&
			grep -q 'Kernel panic' "$work/kvm-probe.log"; then
			accel=kvm
		else
			say "/dev/kvm exists but qemu cannot use it; using TCG (software emulation)"
		fi
	fi
fi
case "$accel" in
kvm) cpu=host ;;
tcg) cpu=max ;;
*) die "VMTEST_ACCEL must be auto, kvm or tcg, not $accel" ;;
esac

# ---- 6. boot ----
# Serial port 1 (ttyS0) is the kernel console, kept in console.log; port 2
# (ttyS1) carries the tests' output and result markers to results.log.
# -nic none: the VM has no network device at all; its tests use only
# loopback and network namespaces they make inside the VM.
# Kernel command line: panic=-1 reboots at once on a panic, and
# -no-reboot turns that reboot into qemu exiting, so a panic ends the run
# instead of hanging it. A CPU stuck in the kernel for a minute is a hang
# too: the RCU stall detector reports it with a backtrace of every CPU
# (loglevel=5 lets those through; quiet would hide them) and then panics
# (kernel.panic_on_rcu_stall), so the run ends with the evidence instead
# of sitting out VMTEST_TIMEOUT. 60 s is far beyond what even software
# emulation on a busy host needs.
cmdline="console=ttyS0 panic=-1 loglevel=5 rcupdate.rcu_cpu_stall_timeout=60"
cmdline+=" sysctl.kernel.panic_on_rcu_stall=1 VMTEST_ACCEL_USED=$accel ${VMTEST_APPEND:-}"
: >"$work/results.log"
: >"$work/console.log"
say "booting Linux $kernel_release ($kpkg $kver) with qemu, accel $accel, $smp CPUs, $mem MiB, cgroup $cgroup"
say "packages: ${pkgs[*]}"
tv=$(now)
nic=()
# restrict=on: the VM's eth0 reaches nothing outside it, not even the
# host; it is there to have an address, as the class VM's is.
if [ -n "$transcripts" ]; then
	# Drop qemu_base's "-nic none".
	q=()
	for ((i = 0; i < ${#qemu_base[@]}; i++)); do
		if [ "${qemu_base[i]}" = -nic ]; then
			i=$((i + 1))
			continue
		fi
		q+=("${qemu_base[i]}")
	done
	qemu_base=("${q[@]}")
	nic=(-nic user,model=virtio-net-pci,restrict=on)
	# And a disk, ext4 as the class VM's: overlayfs needs xattrs that
	# Debian 6.1's tmpfs lacks, and idmapped mounts (--userns) a file
	# system that has them.
	truncate -s 1G "$work/disk.img"
	mkfs.ext4 -q -F "$work/disk.img" || die "mkfs.ext4 failed (apt-get install e2fsprogs)"
	nic+=(-drive "file=$work/disk.img,format=raw,if=virtio")
fi
timeout -k 10 "$vm_timeout" "${qemu_base[@]}" "${nic[@]}" -accel "$accel" -cpu "$cpu" \
	-smp "$smp" -m "$mem" -kernel "$vmlinuz" -initrd "$work/initramfs.cpio" \
	-append "$cmdline" \
	-serial "file:$work/console.log" -serial "file:$work/results.log" \
	</dev/null >"$work/qemu.log" 2>&1 &
vm_pid=$!
# Show the tests' output as it comes. tail exits soon after qemu does.
# (The recordings of make transcripts come as base64: not worth showing.)
tail -n +1 -f --pid="$vm_pid" "$work/results.log" |
	sed -u '/^GOCELL-TRANSCRIPTS-BEGIN$/,/^GOCELL-TRANSCRIPTS-END/{/^GOCELL-TRANSCRIPTS-END/!d}' &
tail_pid=$!
vm_rc=0
wait "$vm_pid" || vm_rc=$?
vm_pid=
wait "$tail_pid" 2>/dev/null || true
tail_pid=
t_vm=$(since "$tv")

# ---- 7. verdict ----
# Drop any \r in case the guest could not make ttyS1 raw.
tr -d '\r' <"$work/results.log" >"$work/results.txt"
mv "$work/results.txt" "$work/results.log"
log=$work/results.log
[ -z "$transcripts" ] || transcripts_verdict
ok=1
problems=()
if [ "$vm_rc" = 124 ] || [ "$vm_rc" = 137 ]; then
	ok=0
	problems+=("the VM did not finish within VMTEST_TIMEOUT=${vm_timeout}s; it was killed")
elif [ "$vm_rc" != 0 ]; then
	ok=0
	problems+=("qemu failed (exit $vm_rc): $(tail -n 3 "$work/qemu.log" | tr '\n' ' ')")
fi
if grep -q '^GOCELL-VMTEST-FATAL:' "$log"; then
	ok=0
	problems+=("init gave up: $(grep '^GOCELL-VMTEST-FATAL:' "$log" | head -n 1 | cut -d' ' -f2-)")
fi
if grep -q 'Kernel panic' "$work/console.log"; then
	ok=0
	problems+=("the kernel panicked: $(grep -m1 'Kernel panic' "$work/console.log")")
fi
# go test's summary lines, one per package: ok / FAIL.
summary=()
failed_pkgs=0
for p in "${pkgs[@]}"; do
	line=$(grep "^GOCELL-VMTEST-RESULT: $p " "$log" | tail -n 1 || true)
	if [ -z "$line" ]; then
		ok=0
		failed_pkgs=$((failed_pkgs + 1))
		summary+=("FAIL	github.com/gocell/gocell/$p	(no result: the VM stopped before it finished)")
		continue
	fi
	read -r _ _ rc secs <<<"$line"
	if [ "$rc" = 0 ]; then
		summary+=("ok  	github.com/gocell/gocell/$p	$secs")
	else
		ok=0
		failed_pkgs=$((failed_pkgs + 1))
		summary+=("FAIL	github.com/gocell/gocell/$p	$secs (exit $rc)")
	fi
done
if ! grep -q '^GOCELL-VMTEST-DONE' "$log"; then
	ok=0
	problems+=("the VM never reported GOCELL-VMTEST-DONE")
fi

# Kernel trouble is worth seeing even when the tests passed.
kernel_trouble='BUG:|Oops|WARNING: CPU|Call Trace|Kernel panic|Out of memory'
kernel_trouble+='|detected stalls|soft lockup|blocked for more than'
if [ "${VMTEST_VERBOSE:-}" = 1 ]; then
	say "---- kernel console ----"
	cat "$work/console.log" >&2
elif grep -Eq "$kernel_trouble" "$work/console.log"; then
	say "---- the kernel console reported problems ----"
	# || true: head may stop reading before grep or sed have written
	# everything (SIGPIPE), which under pipefail would end this script
	# before its verdict.
	grep -E -A3 "$kernel_trouble" "$work/console.log" | head -n 40 >&2 || true
	# A stall or a panic comes with backtraces: show the first in full.
	if grep -Eq 'detected stalls|soft lockup|Kernel panic' "$work/console.log"; then
		say "---- from the first stall or panic on ----"
		sed -n '/detected stalls\|soft lockup\|Kernel panic/,$p' "$work/console.log" |
			head -n 120 >&2 || true
	fi
elif [ ${#problems[@]} -gt 0 ]; then
	# The VM itself went wrong: its last words may say why.
	say "---- last lines of the kernel console ----"
	tail -n 30 "$work/console.log" >&2
fi

# Count the top-level tests as go test -v prints them.
passed=$(grep -c '^--- PASS: ' "$log" || true)
failed=$(grep -c '^--- FAIL: ' "$log" || true)
skipped=$(grep -c '^--- SKIP: ' "$log" || true)
# A package can fail with no "--- FAIL" line (a panic in TestMain, a
# timeout, a VM that died): count it once so the line never says 0 failed
# on a failed run.
if [ "$ok" = 0 ] && [ "$failed" = 0 ]; then
	failed=$((failed_pkgs > 0 ? failed_pkgs : 1))
fi

echo
printf '%s\n' "${summary[@]}"
controllers=$(grep -m1 '^vmtest: cgroup' "$log" | sed 's/^vmtest: //' || true)
say "kernel $kernel_release ($kpkg $kver), accel $accel, ${controllers:-cgroup setup not reported}"
say "timings: kernel fetch $t_fetch, kernel+modules $t_kernel, test build $t_gobuild, initramfs ${t_initramfs} (${initrd_size} MB, $nmods modules), VM boot+tests+poweroff $t_vm, total $(since "$t0")"
if grep -q '^vmtest: LEAK' "$log"; then
	say "WARNING: tests left things behind in the VM (a test bug: each test must clean up):"
	grep '^vmtest: LEAK' "$log" >&2
fi
for p in "${problems[@]}"; do say "FAIL: $p"; done
echo "vmtest: $passed passed, $failed failed, $skipped skipped"
[ "$ok" = 1 ]
