#!/usr/bin/env bash
# bench.sh times `gocell run --rm IMAGE /bin/true` beside `runc run` and
# `crun run` on the same busybox root file system, and `gocell-runtime
# run` on the very bundle runc and crun run, N runs each (default 30),
# and prints the median of each and the ratios to crun and runc.
#
# With --scale, it measures instead how gocell does as containers pile
# up: with 1, 20 and 100 containers running (sleep, --network none), the
# median of 10 `run --rm` and of 10 `ps`, and the memory (PSS, from
# /proc/PID/smaps_rollup) of the processes gocell keeps per container on
# the host, its monitors (each a gocell-shim once its container runs).
#
# Usage: sudo scripts/bench.sh [N]
#        sudo scripts/bench.sh --scale
# Needs: runc, crun (Debian's packages), busybox-static, Go, python3.
set -euo pipefail
scale=false
if [ "${1:-}" = --scale ]; then
	scale=true
	shift
fi
n=${1:-30}
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: N is a number of runs (1 or more), not \"$n\"" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
for tool in runc crun python3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: run as root: sudo scripts/bench.sh" >&2; exit 1; }

tmp=$(mktemp -d /var/tmp/gocell-bench.XXXXXX)
# system reset also writes back net.ipv4.ip_forward, which gocell
# switched on for its bridge if it was off; rm -rf alone would lose the
# record of the old value.
cleanup() {
	"$tmp/gocell" --root "$tmp/root" system reset --force >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# conmon_bench measures the reference for the memory a container costs
# on the host: podman's conmon, one per container, with 20 sleeping
# containers (runc as the runtime: crun 1.8 refuses a hybrid cgroup
# layout; cgroupfs; --network none). podman keeps some state outside the
# directories given to it: what did not exist before goes after.
conmon_bench() {
	local p=(podman --root "$tmp/pm/root" --runroot "$tmp/pm/run" --tmpdir "$tmp/pm/tmp"
		--volumepath "$tmp/pm/volumes" --runtime runc --cgroup-manager cgroupfs
		--events-backend none --storage-driver overlay)
	local fresh=() d cgroups_fresh=true
	for d in /run/libpod /run/containers /run/runc /var/lib/containers; do
		[ -e "$d" ] || fresh+=("$d")
	done
	# podman's parent cgroup, in every hierarchy (cgroupfs).
	compgen -G "/sys/fs/cgroup/*libpod_parent" >/dev/null && cgroups_fresh=false
	compgen -G "/sys/fs/cgroup/*/libpod_parent" >/dev/null && cgroups_fresh=false
	tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
	"${p[@]}" import --quiet "$tmp/rootfs.tar" localhost/bench:latest >/dev/null
	local i
	for i in $(seq 1 20); do
		# --ulimit: podman's default nproc and nofile need CAP_SYS_RESOURCE,
		# which a root without it (some VMs) lacks.
		"${p[@]}" run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
			localhost/bench:latest sleep 100000 >/dev/null
	done
	sleep 1
	python3 - "$tmp/pm" <<'PY'
import os, sys
root = sys.argv[1].encode()
pss = rss = n = 0
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        cmd = open("/proc/%s/cmdline" % p, "rb").read()
        if os.path.basename(cmd.split(b"\0")[0]) != b"conmon" or root not in cmd:
            continue
        for line in open("/proc/%s/smaps_rollup" % p):
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
        n += 1
    except OSError:
        pass
print("  podman's conmon, 20 running: %.2f MiB PSS, %.2f MiB RSS per container (%d conmons)" % (
    pss / n / 1024, rss / n / 1024, n))
PY
	"${p[@]}" rm --all --force --time 0 >/dev/null || true
	"${p[@]}" system reset --force >/dev/null 2>&1 || true
	# What podman's storage may still hold mounted below its root.
	grep -o " $tmp/pm[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	for d in "${fresh[@]}"; do
		rm -rf "$d"
	done
	if $cgroups_fresh; then
		# The conmons have ended, but may be zombies for a moment yet,
		# which keep their cgroup busy (rmdir(2): EBUSY): try for 10 s.
		for _ in $(seq 1 50); do
			for d in /sys/fs/cgroup/libpod_parent /sys/fs/cgroup/*/libpod_parent; do
				if [ -d "$d" ]; then
					find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
				fi
			done
			compgen -G "/sys/fs/cgroup/*/libpod_parent" >/dev/null ||
				compgen -G "/sys/fs/cgroup/libpod_parent" >/dev/null || break
			sleep 0.2
		done
	fi
	return 0
}

echo "bench: building gocell, gocell-shim, gocell-runtime and a busybox root file system"
(cd "$repo" && CGO_ENABLED=0 go build -o "$tmp/gocell" ./final &&
	CGO_ENABLED=0 go build -o "$tmp/gocell-shim" ./final/cmd/gocell-shim &&
	CGO_ENABLED=0 go build -o "$tmp/gocell-runtime" ./final/cmd/gocell-runtime)
OWNER=0:0 sh "$repo/scripts/mkrootfs.sh" "$tmp/rootfs" >/dev/null

# An OCI image layout of that root file system, for gocell import.
sh "$repo/scripts/mkimage.sh" "$tmp/rootfs" "$tmp/layout" >/dev/null
"$tmp/gocell" --root "$tmp/root" import "$tmp/layout" bench:latest >/dev/null

if $scale; then
	echo "bench: gocell with 1, 20 and 100 containers running"
	python3 - "$tmp" <<'PY'
import os, statistics, subprocess, sys, time
tmp = sys.argv[1]
gocell = [tmp + "/gocell", "--root", tmp + "/root"]

def timed(args, times=10):
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        subprocess.run(gocell + args, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1000

def monitors():
    # What gocell keeps on the host per container: its monitor, which a
    # detached container's becomes gocell-shim once it runs; the states
    # name them.
    import glob, json
    pids = []
    for f in glob.glob(tmp + "/root/containers/*/state.json"):
        st = json.load(open(f))
        if st.get("status") == "running" and st.get("monitor"):
            pids.append(str(st["monitor"]))
    return pids

def pss_kib(pid):
    for line in open("/proc/%s/smaps_rollup" % pid):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0

running = 0
print("  %-10s %12s %10s %16s %16s" % ("running", "run --rm", "ps", "PSS/container", "RSS/container"))
for level in (1, 20, 100):
    while running < level:
        subprocess.run(gocell + ["run", "-d", "--network", "none", "--name", "s%d" % running,
                                 "bench:latest", "sleep", "100000"],
                       check=True, stdout=subprocess.DEVNULL)
        running += 1
    time.sleep(1)
    pids = monitors()
    pss = sum(pss_kib(p) for p in pids) / len(pids) / 1024
    rss = 0
    for p in pids:
        for line in open("/proc/%s/status" % p):
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
    rss = rss / len(pids) / 1024
    run = timed(["run", "--rm", "--network", "none", "bench:latest", "/bin/true"])
    ps = timed(["ps"])
    print("  %-10d %9.2f ms %7.2f ms %12.2f MiB %12.2f MiB" % (level, run, ps, pss, rss))
PY
	"$tmp/gocell" --root "$tmp/root" system reset --force >/dev/null
	if command -v podman >/dev/null; then
		conmon_bench
	else
		echo "bench: no podman (apt-get install podman): conmon, the reference, not measured"
	fi
	exit 0
fi

# An OCI bundle for runc, crun and gocell-runtime: the same root file
# system, and runc's default spec with /bin/true and no terminal.
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

# The timing itself, in Python for a clock that costs no process. gocell,
# runc and crun take turns, run 1 of each, then run 2 of each, and so on,
# so a slow spell of the machine (writeback, another job) hits them all
# alike. gocell with its default bridge network runs after them, on its
# own: the kernel dismantles a network namespace with a veth pair in the
# background, for some milliseconds after the container has gone, which
# would slow down whichever run came next. sync first: the dirty pages of
# the builds above would otherwise be written back during the first runs,
# inside their fsyncs.
#
# crun 1.8 refuses this machine's hybrid cgroup layout (v1 controllers
# beside an empty cgroup2 at /sys/fs/cgroup/unified), so all three run in
# a private mount namespace where that cgroup2 mount is unmounted: a plain
# v1 layout, the same for everyone. Nothing outside that namespace changes.
sync
echo "bench: $n runs each of /bin/true, taking turns"
unshare -m python3 - "$n" "$tmp" <<'PY'
import os, statistics, subprocess, sys, time
n, tmp = int(sys.argv[1]), sys.argv[2]
subprocess.run(["umount", "/sys/fs/cgroup/unified"], stderr=subprocess.DEVNULL)
gocell = [tmp + "/gocell", "--root", tmp + "/root", "run", "--rm"]
variants = {
    # runc's and crun's default spec give the container a network
    # namespace with only lo: gocell's --network none is the same thing.
    # Its default, a bridge with a veth pair, costs more; both are shown.
    "gocell": gocell + ["--network", "none", "bench:latest", "/bin/true"],
    "runc": ["runc", "run", "--bundle", tmp + "/bundle"],
    "crun": ["crun", "run", "--bundle", tmp + "/bundle"],
    "gocell-runtime": [tmp + "/gocell-runtime", "--root", tmp + "/runtime-state", "run", "--bundle", tmp + "/bundle"],
    "gocell-bridge": gocell + ["bench:latest", "/bin/true"],
}
times = {name: [] for name in variants}

def run(name, i):
    argv = variants[name]
    if name in ("runc", "crun", "gocell-runtime"):
        argv = argv + ["gocell-bench-%d-%d" % (os.getpid(), i)]
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    times[name].append(time.perf_counter() - t0)
    if r.returncode != 0:
        sys.exit("bench: %s run %d failed (exit %d): %s" % (
            name, i + 1, r.returncode, r.stderr.decode().strip()))

for i in range(n):
    for name in ("gocell", "runc", "crun", "gocell-runtime"):
        run(name, i)
for i in range(n):
    run("gocell-bridge", i)
med = {name: statistics.median(t) * 1000 for name, t in times.items()}
for name, m in med.items():
    print("  %-14s median %8.2f ms   min %8.2f   max %8.2f" % (
        name, m, min(times[name]) * 1000, max(times[name]) * 1000))
print("  gocell/crun %.2f   gocell/runc %.2f" % (
    med["gocell"] / med["crun"], med["gocell"] / med["runc"]))
print("  gocell-runtime/crun %.2f   gocell-runtime/runc %.2f" % (
    med["gocell-runtime"] / med["crun"], med["gocell-runtime"] / med["runc"]))
print("  gocell-bridge/gocell %.2f" % (med["gocell-bridge"] / med["gocell"]))
PY
