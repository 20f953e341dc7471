#!/bin/sh
# init.sh is PID 1 of the throwaway test VM that scripts/vmtest/run.sh boots.
# run.sh copies it into the initramfs as /init; the kernel runs it with
# busybox's sh once it has unpacked the initramfs.
#
# It runs twice, in two stages:
#
#   1. On the initramfs itself ("rootfs"). pivot_root(2) refuses to move
#      that root away (it fails with EINVAL: rootfs can never be
#      unmounted), and the container steps need pivot_root. So stage 1
#      copies everything into a tmpfs and switch_root(8)s into it, which
#      runs this script again from the tmpfs.
#   2. On the tmpfs: mount the usual pseudo file systems, cgroup v2 (or v1
#      on request), load the kernel modules, then run every test binary in
#      /gocell-tests, one after the other, and power off.
#
# How results reach the host: everything the tests print goes to the
# second serial port, /dev/ttyS1, which run.sh shows and parses. The
# kernel's own messages stay on the console, /dev/ttyS0, so an OOM-kill
# report in the middle of a test cannot break a line run.sh must read.
# After each package it prints a line
#     GOCELL-VMTEST-RESULT: <package dir> <exit status>
# and at the very end
#     GOCELL-VMTEST-DONE
# A run that lacks either (a kernel panic, a hang, init dying) is a
# failure on the host, never a pass.
#
# Settings come from /etc/gocell-vmtest.conf, written by run.sh.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

# The initramfs holds only /bin/busybox and /bin/sh. Make a link for every
# other applet (mount, modprobe, ip, ...) at its usual place; busybox needs
# /proc to find itself. Stage 2 finds them copied already.
if [ ! -e /bin/mount ]; then
	/bin/busybox mkdir -p /proc
	/bin/busybox mount -t proc proc /proc
	/bin/busybox --install -s
	/bin/busybox umount /proc
fi

# Out is the channel to the host. Before stage 2 has set it up, write to
# the console.
out=/dev/console
say() {
	echo "vmtest: $*" >"$out"
}
# die powers off without the DONE marker, which run.sh reports as failure.
die() {
	say "FATAL: $*"
	echo "GOCELL-VMTEST-FATAL: $*" >"$out"
	poweroff -f
	sleep 10
}

if [ "$1" != "--stage2" ]; then
	# ---- Stage 1: copy the initramfs into a tmpfs and switch to it. ----
	mount -t proc proc /proc
	mkdir -p /newroot
	# No size= limit: tmpfs only takes memory for what is stored.
	# Equivalent of the default is half the RAM; the tests' own files
	# live on other tmpfs mounts (/tmp), so half is plenty.
	mount -t tmpfs -o mode=755 tmpfs /newroot ||
		die "cannot mount the tmpfs for the new root"
	# cp -a keeps modes, owners, symlinks and hard links. Skip the mount
	# points: /proc is live, /newroot is where we copy to.
	for f in /* /.[!.]*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		case "$f" in
		/proc | /newroot) continue ;;
		esac
		cp -a "$f" /newroot/ || die "copying $f into the tmpfs failed"
	done
	mkdir -p /newroot/proc
	umount /proc
	# switch_root deletes the initramfs' files (freeing their memory),
	# makes /newroot the root and runs /init --stage2 as PID 1.
	exec switch_root /newroot /init --stage2
	die "switch_root failed"
fi

# ---- Stage 2: a normal-looking Linux system on a tmpfs root. ----

# The pseudo file systems every program expects. Equivalent of what a
# distribution's init does at boot.
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
# POSIX shared memory (shm_open) lives on /dev/shm, POSIX message queues on
# mqueue; 04-ipc looks at both.
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
# /tmp must allow exec (no noexec): tests copy their own binary there to
# run it as uid 65534. Mode 1777 lets that user write there too.
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run

# From here on, talk to the host over ttyS1. raw: no \r added to each \n,
# no echo of anything the host might send back.
if [ -c /dev/ttyS1 ]; then
	stty -F /dev/ttyS1 raw -echo 2>/dev/null
	out=/dev/ttyS1
else
	say "no /dev/ttyS1; results go to the console"
fi

. /etc/gocell-vmtest.conf || die "no /etc/gocell-vmtest.conf"

hostname gocell-vmtest
say "kernel $(uname -r) ($(uname -v))"
say "accel ${VMTEST_ACCEL_USED:-unknown}, $(nproc) CPUs, $(free -m | awk '/Mem:/ {print $2}') MiB RAM"
say "a CPU stuck for $(cat /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout) s is a stall; panic_on_rcu_stall=$(cat /proc/sys/kernel/panic_on_rcu_stall)"

# ---- cgroups ----
if [ "$VMTEST_CGROUP" = v1 ]; then
	# The layout of a cgroup v1 ("legacy") host, e.g. a systemd host
	# booted with systemd.unified_cgroup_hierarchy=0: a tmpfs at
	# /sys/fs/cgroup holding one hierarchy per controller, plus an empty
	# cgroup2 at unified/.
	# Equivalent of: mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory
	mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
	for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
		mkdir -p /sys/fs/cgroup/$c
		mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c ||
			die "cannot mount the cgroup v1 $c hierarchy"
	done
	mkdir -p /sys/fs/cgroup/unified
	mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
	say "cgroup v1: $(ls /sys/fs/cgroup | tr '\n' ' ')"
	GOCELL_VMTEST_CGROUP=v1
else
	# cgroup v2 ("unified"): one tree, at /sys/fs/cgroup.
	# Equivalent of: mount -t cgroup2 cgroup2 /sys/fs/cgroup
	mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup ||
		die "cannot mount cgroup2"
	# A controller works in a child cgroup only if its parent lists it
	# in cgroup.subtree_control. The root cgroup is exempt from the "no
	# internal processes" rule, so init may stay in it while we enable
	# every controller the kernel offers, as systemd does.
	avail=$(cat /sys/fs/cgroup/cgroup.controllers)
	for c in $avail; do
		echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control ||
			die "cannot enable the $c controller"
	done
	enabled=$(cat /sys/fs/cgroup/cgroup.subtree_control)
	say "cgroup v2 at /sys/fs/cgroup; controllers enabled for children: $enabled"
	GOCELL_VMTEST_CGROUP=v2
fi
export GOCELL_VMTEST_CGROUP

# ---- kernel modules ----
# run.sh copied only the modules in modules.list and their dependencies,
# and ran depmod, so modprobe finds them and loads dependencies first.
for m in $VMTEST_MODULES; do
	modprobe "$m" || die "modprobe $m failed"
done
say "modules loaded: $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"

# Loopback, which a fresh kernel leaves down.
ip link set lo up

# systemd makes every mount shared, so that mounts propagate between
# namespaces; learners' machines all run it. Do the same, so that a step
# that forgot `mount --make-rprivate /` leaks mounts (and fails pivot_root
# with EINVAL) here, as it would there.
mount --make-rshared /

# ---- or: record the chapters (make transcripts) ----
# The class VM's look, where the chapters show it (transcripts.sh made
# the files): its host name, an eth0 as VirtualBox's NAT gives it, dash
# as /bin/sh (Ubuntu's), ping for users (systemd's ping_group_range).
if [ "${VMTEST_TRANSCRIPTS:-0}" = 1 ]; then
	hostname gocell-vm
	ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
		ip route add default via 10.0.2.2 || die "no eth0"
	echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
	# The class VM's disk (ext4, run.sh made it): the lessons' state and
	# /tmp live on it, as there.
	# The same paths on the disk as in the VM, so that mountinfo shows
	# them as the class VM's would.
	mkdir -p /disk && mount /dev/vda /disk || die "no disk"
	mkdir -p /disk/var/lib/gocell-lessons /disk/tmp && chmod 1777 /disk/tmp
	cp -a /var/lib/gocell-lessons/. /disk/var/lib/gocell-lessons/ ||
		die "cannot copy the rootfs to the disk"
	rm -rf /var/lib/gocell-lessons && mkdir /var/lib/gocell-lessons
	mount --bind /disk/var/lib/gocell-lessons /var/lib/gocell-lessons
	mount --bind /disk/tmp /tmp
	ln -sf /usr/local/bin/dash /bin/sh
	ln -sf /usr/local/bin/bash /bin/bash
	chown 1000:1000 /home/vagrant
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	export HOME=/root
	say "recording the chapters: ${VMTEST_CHAPTERS:-all}"
	cd /vagrant || die "no /vagrant"
	# shellcheck disable=SC2086
	transcript play -o /run/transcripts $VMTEST_CHAPTERS >"$out" 2>&1
	rc=$?
	echo "GOCELL-TRANSCRIPTS-BEGIN" >"$out"
	if [ -d /run/transcripts ]; then
		tar -C /run/transcripts -cf - . | gzip | base64 >"$out"
	fi
	echo "GOCELL-TRANSCRIPTS-END $rc" >"$out"
	echo "GOCELL-VMTEST-DONE" >"$out"
	sync
	poweroff -f
	sleep 3600
fi

# ---- leaks ----
# Each test must clean up what it made. What the VM looked like before
# the first test is the baseline; after each package, anything new is
# reported as a LEAK line (a warning: the tests' own checks decide).
snapshot() {
	grep -v ' /proc/[0-9]' /proc/mounts | sort >"$1.mounts"
	ip -o link show | awk -F': ' '{ print $2 }' | sort >"$1.links"
	find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null |
		grep -v '^/sys/fs/cgroup/[^/]*$' | sort >"$1.cgroups.deep"
	find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort >"$1.cgroups.top"
}
report_leaks() {
	snapshot /run/after
	for kind in mounts links cgroups.top cgroups.deep; do
		grep -vxF -f "/run/base.$kind" "/run/after.$kind" | while read -r l; do
			say "LEAK: $1 left ${kind%%.*}: $l"
		done
	done
	# Processes: everything but kernel threads ([name]) and this script,
	# PID 1, with its forks (busybox sh runs ps and awk in forks of itself).
	ps -o pid,args | awk 'NR > 1 && $2 !~ /^\[/ && $0 !~ /\/init --stage2/' >/run/after.procs
	while read -r p args; do
		say "LEAK: $1 left process $p: $args (killed)"
		kill -9 "$p" 2>/dev/null
	done </run/after.procs
	# Report each leftover once: it is the next package's baseline.
	for kind in mounts links cgroups.top cgroups.deep; do
		mv "/run/after.$kind" "/run/base.$kind"
	done
}
snapshot /run/base

# ---- the tests ----
export HOME=/root
export GOCELL_PRIV_TESTS=1
export GOCELL_ROOTFS=/var/lib/gocell-lessons/rootfs
# The gocell-shim run.sh built, for the tests of final/.
[ -x /gocell-tests/gocell-shim ] && export GOCELL_TEST_SHIM=/gocell-tests/gocell-shim
say "running ${VMTEST_PACKAGES:-no packages}"
mkfifo /run/vmtest.out
for pkg in $VMTEST_PACKAGES; do
	# The binary is named after the package directory, with / as _.
	name=$(echo "$pkg" | tr / _)
	# Run in the package's directory of a copy of the source tree, as
	# `go test` does, so tests can read testdata/ and relative paths.
	cd "/src/$pkg" || die "no /src/$pkg"
	echo "=== VMTEST PACKAGE $pkg" >"$out"
	start=$(date +%s)
	# The binary writes into a pipe (a FIFO), as under `go test`, not
	# onto the serial terminal (which would, e.g., turn on colour); cat
	# copies it to the host. A process the tests leave behind may keep
	# the pipe open, so we wait for the test binary, not for cat.
	cat /run/vmtest.out >"$out" &
	catpid=$!
	# VMTEST_TEST_ARGS holds several flags: leave it unquoted.
	# shellcheck disable=SC2086
	"/gocell-tests/$name.test" -test.v -test.count=1 \
		-test.timeout="$VMTEST_TEST_TIMEOUT" $VMTEST_TEST_ARGS \
		</dev/null >/run/vmtest.out 2>&1
	rc=$?
	i=0
	while kill -0 "$catpid" 2>/dev/null && [ $i -lt 20 ]; do
		usleep 100000
		i=$((i + 1))
	done
	kill "$catpid" 2>/dev/null
	wait "$catpid" 2>/dev/null
	end=$(date +%s)
	cd /
	report_leaks "$pkg"
	echo "GOCELL-VMTEST-RESULT: $pkg $rc $((end - start))s" >"$out"
done

echo "GOCELL-VMTEST-DONE" >"$out"
sync
poweroff -f
# poweroff -f does not return; if it somehow does, do not let PID 1 exit
# (that panics the kernel): wait for the host's timeout.
sleep 3600
