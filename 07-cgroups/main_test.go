package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The namespaces this step adds; every other kind must stay the host's.
var added = []string{"uts", "pid", "mnt", "ipc", "net", "user"}

// The mounts the container must have, and no others.
var mountPoints = []string{"/", "/proc", "/dev", "/dev/null", "/dev/zero",
	"/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/pts",
	"/dev/shm", "/dev/mqueue", "/sys"}

func TestMain(m *testing.M) { celltest.Main(m, main) }

// runArgs is "run --rootfs ROOTFS" followed by args.
func runArgs(t *testing.T, args ...string) []string {
	return append([]string{"run", "--rootfs", celltest.Rootfs(t)}, args...)
}

// TestUTS runs a container and looks at it from the host: a new UTS
// namespace with the hostname we asked for, the host's name untouched,
// and nothing left afterwards.
func TestUTS(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	args := append(runArgs(t, "--hostname", "cell-07"), celltest.ReadyCommand...)
	c := celltest.Start(t, args...)

	celltest.AssertNamespaces(t, c.Pid, added...)
	assert.Equal(t, "cell-07", celltest.HostnameOf(t, c.Pid), "hostname inside, read through setns(2)")
	host, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, before.Hostname, host, "the host's hostname must not change")

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
	celltest.AssertNoLeaks(t, before, c)
}

// TestPID1 checks, in /proc/PID/status, that the command is process 1 of
// its own PID namespace, and that when it exits the kernel kills what it
// left running in the namespace (a sleep in the background here).
func TestPID1(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	c := celltest.Start(t, runArgs(t, "sh", "-c", "sleep 1000 & echo ready; read line || true")...)

	celltest.AssertNamespaces(t, c.Pid, added...)
	nspid := celltest.NSpid(t, c.Pid)
	require.Len(t, nspid, 2, "NSpid: one pid on the host, one in the new namespace")
	assert.Equal(t, c.Pid, nspid[0])
	assert.Equal(t, 1, nspid[1], "the command is pid 1 in its namespace")
	kids := celltest.Children(c.Pid)
	require.Len(t, kids, 1, "the background sleep")
	// Not necessarily 2: the Go runtime's threads took pids (thread ids)
	// before the exec.
	sleep := celltest.NSpid(t, kids[0])
	require.Len(t, sleep, 2)
	assert.Greater(t, sleep[1], 1, "the sleep has a small pid of the namespace")
	assert.Less(t, sleep[1], 100)

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	// AssertNoLeaks finds the sleep if it survived its init.
	celltest.AssertNoLeaks(t, before, c)
}

// TestMountIsolation looks at the container's file system from the host:
// its root is the rootfs, its mount table is its own and minimal, the
// host's mount table gains nothing, host files are out of reach, and its
// /proc shows only its own processes.
func TestMountIsolation(t *testing.T) {
	celltest.RequirePriv(t)
	rootfs := celltest.Rootfs(t)
	hostOnly, err := os.CreateTemp("", "gocell-host-only-")
	require.NoError(t, err)
	hostOnly.Close()
	defer os.Remove(hostOnly.Name())

	before := celltest.Snapshot(t)
	c := celltest.Start(t, runArgs(t, celltest.ReadyCommand...)...)

	celltest.AssertNamespaces(t, c.Pid, added...)
	celltest.AssertMountsUnchanged(t, before)
	celltest.AssertRoot(t, c.Pid, rootfs)
	celltest.AssertUnreachable(t, c.Pid, hostOnly.Name())
	celltest.AssertUnreachable(t, c.Pid, "/usr/lib/os-release")
	mounts := celltest.AssertMountPoints(t, c.Pid, mountPoints...)
	for _, m := range mounts {
		switch m.MountPoint {
		case "/proc":
			assert.Equal(t, "proc", m.FSType)
		case "/sys":
			assert.Equal(t, "sysfs", m.FSType)
			assert.True(t, strings.HasPrefix(m.Options, "ro,"), "/sys must be read-only: %s", m.Options)
		case "/dev/pts":
			assert.Equal(t, "devpts", m.FSType)
		case "/dev/mqueue":
			assert.Equal(t, "mqueue", m.FSType)
		}
	}
	assert.Equal(t, []string{"1"}, celltest.ContainerProcs(t, c.Pid), "the container's /proc shows only its shell")
	// Its null is the real null device, 1:3.
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join("/proc", itoa(c.Pid), "root/dev/null"), &st))
	assert.Equal(t, uint64(1<<8|3), st.Rdev, "/dev/null is char 1:3")

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, c)
}

// TestIPCIsolation makes a System V shared memory segment on the host and
// one in the container's IPC namespace (joined with setns(2)), and checks
// that neither side sees the other's, by key and in /proc/sysvipc/shm.
func TestIPCIsolation(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	c := celltest.Start(t, runArgs(t, celltest.ReadyCommand...)...)
	celltest.AssertNamespaces(t, c.Pid, added...)

	hostKey, cellKey := 0x67630000+os.Getpid()%0xffff, 0x67640000+os.Getpid()%0xffff
	hostID, err := unix.SysvShmGet(hostKey, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	require.NoError(t, err, "shmget on the host")
	defer unix.SysvShmCtl(hostID, unix.IPC_RMID, nil)
	// Without an IPC namespace of its own, the "container's" segment is
	// the host's, and would outlive the test.
	defer func() {
		if id, err := unix.SysvShmGet(cellKey, 0, 0); err == nil {
			unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		}
	}()

	err = celltest.InNamespace(c.Pid, "ipc", func() error {
		// The host's segment does not exist here.
		_, err := unix.SysvShmGet(hostKey, 0, 0)
		assert.ErrorIs(t, err, unix.ENOENT, "host's key seen inside")
		assert.NotContains(t, shmKeys(t), hostKey, "/proc/sysvipc/shm inside")
		// Make one here; the host must not see it.
		_, err = unix.SysvShmGet(cellKey, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
		if err != nil {
			return err
		}
		assert.Contains(t, shmKeys(t), cellKey, "/proc/sysvipc/shm inside")
		return nil
	})
	require.NoError(t, err)
	_, err = unix.SysvShmGet(cellKey, 0, 0)
	assert.ErrorIs(t, err, unix.ENOENT, "container's key seen on the host")
	assert.NotContains(t, shmKeys(t), cellKey, "/proc/sysvipc/shm on the host")
	assert.Contains(t, shmKeys(t), hostKey, "/proc/sysvipc/shm on the host")

	// The container's segment goes with its IPC namespace.
	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, c)
}

// shmKeys reads the keys of the shared memory segments in the calling
// thread's IPC namespace from /proc/sysvipc/shm (see proc(5)).
func shmKeys(t *testing.T) []int {
	b, err := os.ReadFile("/proc/sysvipc/shm")
	require.NoError(t, err)
	var keys []int
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 0 {
			k, err := strconv.Atoi(f[0])
			require.NoError(t, err)
			keys = append(keys, k)
		}
	}
	return keys
}

// TestNetwork checks the container's network from outside, through
// netlink in its namespace: exactly lo and eth0, an address of the step's
// subnet, a default route via the bridge; host and container ping each
// other; afterwards no veth, bridge port, bridge or lease is left.
func TestNetwork(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	// The container pings the bridge before it says it is ready.
	c := celltest.Start(t, runArgs(t, "sh", "-c", "ping -c1 -W2 10.77.7.1 >/dev/null && echo ready; read line || true")...)
	celltest.AssertNamespaces(t, c.Pid, added...)

	addrs := celltest.Addrs(t, c.Pid)
	require.Len(t, addrs, 2, "interfaces inside: %v", addrs)
	assert.Equal(t, []string{"127.0.0.1/8"}, addrs["lo"])
	require.Len(t, addrs["eth0"], 1, "eth0's addresses: %v", addrs)
	ip, network, err := net.ParseCIDR(addrs["eth0"][0])
	require.NoError(t, err)
	assert.Equal(t, "10.77.7.0/24", network.String())
	assert.NotEqual(t, "10.77.7.1", ip.String(), "the bridge's own address")
	assert.Equal(t, "10.77.7.1", celltest.DefaultGateway(t, c.Pid))

	veth := fmt.Sprintf("veth07-%d", c.Pid)
	assert.Contains(t, celltest.BridgePorts(t, "gocell07"), veth, "the host's veth end is on the bridge")
	lease := filepath.Join("/run/gocell-lessons/07-cgroups", ip.String())
	assert.FileExists(t, lease, "the address is leased")
	assert.True(t, celltest.Ping(t, ip.String()), "host pings the container at %s", ip)

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, c)
	assert.False(t, celltest.HostLink(veth), "veth %s left on the host", veth)
	assert.False(t, celltest.HostLink("gocell07"), "the bridge is left though no run uses it")
	assert.NoFileExists(t, lease, "the lease is left")
}

// TestTwoAtOnce runs two containers at the same time: they get different
// addresses and reach each other across the bridge, and the bridge goes
// only when the second one ends.
func TestTwoAtOnce(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	a := celltest.Start(t, runArgs(t, celltest.ReadyCommand...)...)
	b := celltest.Start(t, runArgs(t, "sh", "-c", "echo ready; read peer; ping -c1 -W2 $peer")...)
	addrA := strings.Split(celltest.Addrs(t, a.Pid)["eth0"][0], "/")[0]
	addrB := strings.Split(celltest.Addrs(t, b.Pid)["eth0"][0], "/")[0]
	assert.NotEqual(t, addrA, addrB, "two runs, one address")
	assert.Len(t, celltest.BridgePorts(t, "gocell07"), 2)

	// b pings a: the exit status of ping becomes b's.
	b.Send(t, addrA+"\n")
	res := b.Stop(t)
	assert.Equal(t, 0, res.Code, "container b could not ping a at %s: %s", addrA, res.Stderr)
	assert.True(t, celltest.HostLink("gocell07"), "a still uses the bridge")
	assert.Equal(t, []string{fmt.Sprintf("veth07-%d", a.Pid)}, celltest.BridgePorts(t, "gocell07"))

	res = a.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, a)
	celltest.AssertNoLeaks(t, before, b)
	assert.False(t, celltest.HostLink("gocell07"))
}

// TestKilledRunCleansUp kills the container from the host: the step still
// removes its veth, lease and bridge.
func TestKilledRunCleansUp(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	c := celltest.Start(t, runArgs(t, celltest.ReadyCommand...)...)
	require.NoError(t, syscall.Kill(c.Pid, syscall.SIGKILL))
	res := c.Stop(t)
	assert.Equal(t, 128+9, res.Code)
	celltest.AssertNoLeaks(t, before, c)
	assert.False(t, celltest.HostLink("gocell07"))
}

// TestUserNamespace checks the id maps and the container's credentials
// from the host, and that root inside owns what it creates as uid 100000
// outside but cannot do what only the host's root can.
func TestUserNamespace(t *testing.T) {
	celltest.RequirePriv(t)
	rootfs := celltest.Rootfs(t)
	// A file of the host's root, readable by all, inside the rootfs.
	hostFile := filepath.Join(rootfs, "tmp", fmt.Sprintf("host-root-%d", os.Getpid()))
	require.NoError(t, os.WriteFile(hostFile, []byte("host\n"), 0o644))
	require.NoError(t, os.Chown(hostFile, 0, 0))
	defer os.Remove(hostFile)
	created := filepath.Join(rootfs, "tmp", fmt.Sprintf("created-%d", os.Getpid()))
	defer os.Remove(created)
	inside := strings.TrimPrefix(created, rootfs)

	before := celltest.Snapshot(t)
	c := celltest.Start(t, runArgs(t, "sh", "-c", "touch "+inside+" && echo ready; read line || true")...)
	celltest.AssertNamespaces(t, c.Pid, added...)

	for _, file := range []string{"uid_map", "gid_map"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", c.Pid, file))
		require.NoError(t, err)
		assert.Equal(t, []string{"0", "100000", "65536"}, strings.Fields(string(data)), file)
	}
	// The kernel's view from outside: the container's root is uid 100000.
	assert.Equal(t, []string{"100000", "100000", "100000", "100000"}, statusField(t, c.Pid, "Uid:"))
	assert.Equal(t, []string{"100000", "100000", "100000", "100000"}, statusField(t, c.Pid, "Gid:"))
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(created, &st))
	assert.Equal(t, uint32(100000), st.Uid, "a file root created inside belongs to 100000 on the host")
	assert.Equal(t, uint32(100000), st.Gid)
	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, c)

	// Root inside has every capability, but only in its own namespaces.
	script := `exec 2>&1; id -u; grep CapEff /proc/self/status;
		mknod /tmp/null c 1 3 2>&1;
		echo changed >> ` + strings.TrimPrefix(hostFile, rootfs) + ` 2>&1;
		cat /proc/sys/kernel/panic > /proc/sys/kernel/panic 2>&1; true`
	res = celltest.Run(t, runArgs(t, "-q", "sh", "-c", script)...)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "0\nCapEff:\t000001ffffffffff", "uid 0 with all capabilities inside")
	assert.Contains(t, res.Stdout, "mknod: /tmp/null: Operation not permitted")
	assert.Contains(t, res.Stdout, "Permission denied")
	data, err := os.ReadFile(hostFile)
	require.NoError(t, err)
	assert.Equal(t, "host\n", string(data), "the host root's file must be unchanged")
	assert.NoFileExists(t, filepath.Join(rootfs, "tmp/null"))
}

// TestOtherIDMap asks for another map and finds it in the kernel. The
// root file system must belong to the new root: the test makes a copy
// owned by 200000:300000.
func TestOtherIDMap(t *testing.T) {
	celltest.RequirePriv(t)
	rootfs := celltest.Rootfs(t)
	celltest.AssertFails(t, 125, []string{rootfs + " belongs to 100000:100000 on the host, but root inside is 200000:300000", "OWNER=200000:300000 scripts/mkrootfs.sh"},
		runArgs(t, "--uid-map", "0:200000:1000", "--gid-map", "0:300000:10", "true")...)

	other := celltest.CopyRootfs(t, 200000, 300000)
	before := celltest.Snapshot(t)
	args := append([]string{"run", "--rootfs", other, "--uid-map", "0:200000:1000", "--gid-map", "0:300000:10"}, celltest.ReadyCommand...)
	c := celltest.Start(t, args...)
	uid, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", c.Pid))
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "200000", "1000"}, strings.Fields(string(uid)))
	gid, err := os.ReadFile(fmt.Sprintf("/proc/%d/gid_map", c.Pid))
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "300000", "10"}, strings.Fields(string(gid)))
	assert.Equal(t, "200000", statusField(t, c.Pid, "Uid:")[0])
	assert.Equal(t, "300000", statusField(t, c.Pid, "Gid:")[0])
	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, c)
}

// statusField returns the values of a line of /proc/PID/status.
func statusField(t *testing.T, pid int, name string) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return nil
}

// The v1 and v2 names of the files the limits are written to.
func limitFile(v2 bool, v1name, v2name string) string {
	if v2 {
		return v2name
	}
	return v1name
}

// TestMemoryLimit checks from cgroupfs that --memory is in effect and
// that a process allocating more is OOM-killed, counted by the kernel
// and reported by the step; and that the cgroup is gone afterwards.
func TestMemoryLimit(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	// dd allocates a 64M buffer and fills it: more than the 32M limit.
	c := celltest.Start(t, runArgs(t, "--memory", "32M", "sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo ready; read line || true")...)
	dirs, v2 := celltest.CgroupDirs(t, c.Pid)
	dir := dirs["memory"]
	require.Contains(t, dir, "/gocell-lessons/07-cgroups-", "the container's memory cgroup (from /proc/PID/cgroup)")
	assert.Equal(t, "33554432", celltest.ReadCgroupValue(t, dir, limitFile(v2["memory"], "memory.limit_in_bytes", "memory.max"), ""))
	assert.Equal(t, "1", celltest.ReadCgroupValue(t, dir, limitFile(v2["memory"], "memory.oom_control", "memory.events"), "oom_kill"), "the kernel counted one OOM kill")

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "memory limit hit: 1 process(es) OOM-killed")
	assert.NoDirExists(t, dir, "the cgroup must be removed")
	celltest.AssertNoLeaks(t, before, c)
}

// TestPidsLimit runs a fork loop: the kernel refuses forks at --pids and
// counts them, and the number of tasks in the cgroup never exceeds it.
func TestPidsLimit(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	// The loop runs in a subshell, which exits when a fork fails; the
	// sleeps it started stay, as children of the container's init.
	loop := "(i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done) 2>/dev/null; echo ready; read line || true"
	c := celltest.Start(t, runArgs(t, "--pids", "12", "sh", "-c", loop)...)
	dirs, _ := celltest.CgroupDirs(t, c.Pid)
	dir := dirs["pids"]
	require.Contains(t, dir, "/gocell-lessons/07-cgroups-")
	assert.Equal(t, "12", celltest.ReadCgroupValue(t, dir, "pids.max", ""))
	current, err := strconv.Atoi(celltest.ReadCgroupValue(t, dir, "pids.current", ""))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, current, 10, "the loop ran into the limit")
	assert.LessOrEqual(t, current, 12, "never more tasks than pids.max")
	events, err := strconv.Atoi(celltest.ReadCgroupValue(t, dir, "pids.events", "max"))
	require.NoError(t, err)
	assert.Greater(t, events, 0, "the kernel counted refused forks")

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "pids limit hit")
	assert.NoDirExists(t, dir)
	celltest.AssertNoLeaks(t, before, c)
}

// TestCPULimit runs a busy loop under --cpus 0.5 and measures, in
// /proc/PID/stat, the CPU time it gets over three seconds: about half a
// CPU, never much more; the kernel counts the throttled periods.
func TestCPULimit(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	c := celltest.Start(t, runArgs(t, "--cpus", "0.5", "sh", "-c", "while :; do :; done & echo ready; read line || true")...)
	dirs, v2 := celltest.CgroupDirs(t, c.Pid)
	dir := dirs["cpu"]
	require.Contains(t, dir, "/gocell-lessons/07-cgroups-")
	if v2["cpu"] {
		assert.Equal(t, "50000 100000", celltest.ReadCgroupValue(t, dir, "cpu.max", ""))
	} else {
		assert.Equal(t, "50000", celltest.ReadCgroupValue(t, dir, "cpu.cfs_quota_us", ""))
		assert.Equal(t, "100000", celltest.ReadCgroupValue(t, dir, "cpu.cfs_period_us", ""))
	}
	kids := celltest.Children(c.Pid)
	require.Len(t, kids, 1, "the busy loop")
	start, t0 := celltest.CPUTime(t, kids[0]), time.Now()
	time.Sleep(3 * time.Second)
	used := float64(celltest.CPUTime(t, kids[0])-start) / 100 // clock ticks: 100 a second
	share := used / time.Since(t0).Seconds()
	t.Logf("the busy loop used %.2f of a CPU", share)
	assert.Less(t, share, 0.65, "the quota is half a CPU")
	assert.Greater(t, share, 0.2, "the loop should get a fair part of its half CPU")
	throttled, err := strconv.Atoi(celltest.ReadCgroupValue(t, dir, "cpu.stat", "nr_throttled"))
	require.NoError(t, err)
	assert.Greater(t, throttled, 10, "periods in which the quota ran out")

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "cpu limit hit")
	assert.NoDirExists(t, dir)
	celltest.AssertNoLeaks(t, before, c)
}

// TestCommandSeesHostname checks the standard PATH and the hostname as the
// command itself sees them.
func TestCommandSeesHostname(t *testing.T) {
	celltest.RequirePriv(t)
	res := celltest.Run(t, runArgs(t, "-q", "--hostname", "inside", "hostname")...)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "inside\n", res.Stdout)
	assert.Empty(t, res.Stderr, "-q must silence the narration")

	res = celltest.Run(t, runArgs(t, "-q", "sh", "-c", "echo $$")...)
	assert.Equal(t, "1\n", res.Stdout, "the shell's own pid")

	// ps reads the new /proc: only the shell and ps itself.
	res = celltest.Run(t, runArgs(t, "-q", "sh", "-c", "ps -o comm=; true")...)
	assert.ElementsMatch(t, []string{"sh", "ps"}, strings.Fields(res.Stdout), "ps inside")
}

// TestExitStatus checks that the command's exit status becomes the
// step's, and that death by a signal is reported as 128+N.
func TestExitStatus(t *testing.T) {
	celltest.RequirePriv(t)
	assert.Equal(t, 7, celltest.Run(t, runArgs(t, "-q", "sh", "-c", "exit 7")...).Code)

	// A PID namespace's init is protected: a SIGKILL sent from inside the
	// namespace is ignored (pid_namespaces(7)), so the shell survives.
	res := celltest.Run(t, runArgs(t, "-q", "sh", "-c", "kill -9 $$; echo survived")...)
	assert.Equal(t, "survived\n", res.Stdout)

	// From the host, SIGKILL always works; the step reports 128+9.
	c := celltest.Start(t, runArgs(t, celltest.ReadyCommand...)...)
	require.NoError(t, syscall.Kill(c.Pid, syscall.SIGKILL))
	res = c.Stop(t)
	assert.Equal(t, 128+9, res.Code)
	assert.Contains(t, res.Stderr, "SIGKILL")
	assert.NotContains(t, res.Stderr, "\x1b[", "NO_COLOR is set: no colour codes")
}

// TestBadInput checks each kind of bad input: one clear line, the right
// exit code, and nothing left behind.
func TestBadInput(t *testing.T) {
	celltest.RequirePriv(t)
	celltest.AssertFails(t, 127, []string{"no-such-command: command not found", "PATH="}, runArgs(t, "no-such-command")...)
	// bash is on the host but not in the busybox rootfs: the command is
	// looked up inside the container.
	celltest.AssertFails(t, 127, []string{"bash: command not found"}, runArgs(t, "bash")...)
	celltest.AssertFails(t, 126, []string{"/etc/passwd: not an executable file"}, runArgs(t, "/etc/passwd")...)
	celltest.AssertFails(t, 127, []string{"/no/such/program: no such file"}, runArgs(t, "/no/such/program")...)
	celltest.AssertFails(t, 125, []string{"sethostname", "EINVAL"}, runArgs(t, "--hostname", strings.Repeat("x", 65), "true")...)
	celltest.AssertFails(t, 125, []string{"/nonexistent/rootfs: not a directory", "scripts/mkrootfs.sh"}, "run", "--rootfs", "/nonexistent/rootfs", "sh")
	celltest.AssertFails(t, 125, []string{"the host's own /"}, "run", "--rootfs", "/", "sh")
	celltest.AssertRootRequired(t, runArgs(t, "/bin/sh")...)
	celltest.AssertFails(t, 125, []string{`--subnet "banana": not an IPv4 network`}, runArgs(t, "--subnet", "banana", "true")...)
	celltest.AssertFails(t, 125, []string{`not an IPv4 network`}, runArgs(t, "--subnet", "10.77.7.0/33", "true")...)
	celltest.AssertFails(t, 125, []string{"prefix length must be between 16 and 29"}, runArgs(t, "--subnet", "10.0.0.0/8", "true")...)
	// Loopback's 127.0.0.1/8 is the host's: refused before anything is made.
	celltest.AssertFails(t, 125, []string{"overlaps the host's network 127.0.0.1/8 on lo"}, runArgs(t, "--subnet", "127.0.5.0/24", "true")...)
	assert.False(t, celltest.HostLink("gocell07"))
	celltest.AssertFails(t, 125, []string{`--uid-map "0:100000": not three numbers`}, runArgs(t, "--uid-map", "0:100000", "true")...)
	celltest.AssertFails(t, 125, []string{`--gid-map "0:x:5": "x" is not an id`}, runArgs(t, "--gid-map", "0:x:5", "true")...)
	celltest.AssertFails(t, 125, []string{"the count must be at least 1"}, runArgs(t, "--uid-map", "0:100000:0", "true")...)
	celltest.AssertFails(t, 125, []string{"must start at 0 inside"}, runArgs(t, "--uid-map", "1:100000:10", "true")...)
	for _, bad := range [][]string{
		{"--memory", "12XB", `--memory "12XB": not a size`},
		{"--memory", "0", `--memory "0": not a size`},
		{"--memory", "1M", "at least 16M"},
		{"--memory", "-5M", `--memory "-5M": not a size`},
		{"--pids", "abc", `--pids "abc": not a whole number`},
		{"--pids", "3", "at least 10"},
		{"--cpus", "0", `--cpus "0": not a number of CPUs between 0.01`},
		{"--cpus", "-1", `--cpus "-1"`},
		{"--cpus", "1000", `--cpus "1000"`},
		{"--cpuset", "99", `--cpuset "99": CPU 99 is not online; this machine has 0-`},
		{"--cpuset", "0-a", `"0-a" is not a CPU or a range of CPUs`},
	} {
		celltest.AssertFails(t, 125, []string{bad[2]}, runArgs(t, bad[0], bad[1], "true")...)
	}
}

// TestUsage needs no root: help, a missing command and an unknown verb.
func TestUsage(t *testing.T) {
	res := celltest.Run(t, "--help")
	assert.Equal(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "usage: 07-cgroups run [flags] COMMAND")
	assert.Contains(t, res.Stderr, "-hostname")
	assert.Contains(t, res.Stderr, "-rootfs")

	res = celltest.Run(t, "run")
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.LastLine(), "no command given")

	res = celltest.Run(t, "frobnicate")
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.Stderr, `unknown command "frobnicate"`)

	res = celltest.Run(t, "run", "--no-such-flag", "sh")
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.Stderr, "flag provided but not defined")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestFindCgroups reads the three layouts from mountinfo text, without
// root: v2, v1 with cpu and cpuacct sharing a tree, and hybrid.
func TestFindCgroups(t *testing.T) {
	v2 := "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
	l := findCgroups(v2)
	assert.Equal(t, "/sys/fs/cgroup", l.unified)
	assert.Empty(t, l.v1)

	v1 := "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n" +
		"31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n" +
		"34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
		"38 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
	l = findCgroups(v1)
	assert.Equal(t, "", l.unified)
	assert.Equal(t, "/sys/fs/cgroup/cpu,cpuacct", l.v1["cpu"])
	assert.Equal(t, "/sys/fs/cgroup/memory", l.v1["memory"])
	assert.Equal(t, "/sys/fs/cgroup/pids", l.v1["pids"])

	hybrid := v1 + "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
	l = findCgroups(hybrid)
	assert.Equal(t, "/sys/fs/cgroup/unified", l.unified)
	assert.Equal(t, "/sys/fs/cgroup/memory", l.v1["memory"])
}

// TestCgroupFilesV2 makes a run's cgroup in a fake v2 tree in a temporary
// directory, without root, and checks every file written.
func TestCgroupFilesV2(t *testing.T) {
	quiet = true
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), nil, 0o644))
	layout = cgroupLayout{unified: root, v1: map[string]string{}}
	memoryBytes, pidsMax, cpuQuota = 64<<20, 50, 150000
	defer func() { memoryBytes, pidsMax, cpuQuota, cgroupDirs = 0, 0, 0, nil }()
	// A real cgroup2 file system creates the files; the fake needs them.
	dir := filepath.Join(root, "gocell-lessons", "run-1")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.swap.max"), nil, 0o644))

	require.NoError(t, makeCgroups("run-1", controllers))
	assert.Equal(t, []string{dir}, cgroupDirs)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "+memory +pids +cpu", read("cgroup.subtree_control"))
	assert.Equal(t, "+memory +pids +cpu", read("gocell-lessons/cgroup.subtree_control"))
	assert.Equal(t, "67108864", read("gocell-lessons/run-1/memory.max"))
	assert.Equal(t, "0", read("gocell-lessons/run-1/memory.swap.max"))
	assert.Equal(t, "50", read("gocell-lessons/run-1/pids.max"))
	assert.Equal(t, "150000 100000", read("gocell-lessons/run-1/cpu.max"))
	assert.Empty(t, joinCgroupDirsV1(), "nothing to join by hand on v2")
}

// TestCgroupFilesV1 does the same on a fake v1 tree: one directory per
// controller, nested under the test's own cgroup, with the v1 files.
func TestCgroupFilesV1(t *testing.T) {
	quiet = true
	root := t.TempDir()
	layout = cgroupLayout{v1: map[string]string{}}
	for _, c := range controllers {
		layout.v1[c] = filepath.Join(root, c)
	}
	memoryBytes, pidsMax, cpuQuota = 32<<20, 20, 50000
	defer func() { memoryBytes, pidsMax, cpuQuota, cgroupDirs = 0, 0, 0, nil }()

	require.NoError(t, makeCgroups("run-2", nil))
	require.Len(t, cgroupDirs, 3)
	read := func(dir, file string) string {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		return string(b)
	}
	for _, dir := range cgroupDirs {
		assert.True(t, strings.HasSuffix(dir, "/gocell-lessons/run-2"), dir)
	}
	assert.Equal(t, "33554432", read(cgroupDirs[0], "memory.limit_in_bytes"))
	assert.Equal(t, "20", read(cgroupDirs[1], "pids.max"))
	assert.Equal(t, "100000", read(cgroupDirs[2], "cpu.cfs_period_us"))
	assert.Equal(t, "50000", read(cgroupDirs[2], "cpu.cfs_quota_us"))
	assert.Equal(t, cgroupDirs, joinCgroupDirsV1())
}

// joinCgroupDirsV1 lists the directories joinCgroup writes a pid into.
func joinCgroupDirsV1() []string {
	var dirs []string
	for _, dir := range cgroupDirs {
		if layout.unified == "" || !strings.HasPrefix(dir, layout.unified+"/") {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// TestParseSize needs no root.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "512K": 512 << 10, "64M": 64 << 20, "64m": 64 << 20, "1G": 1 << 30, "2gb": 2 << 30, "16MB": 16 << 20} {
		got, err := parseSize(in)
		assert.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"12XB", "", "B", "M", "-1M", "0", "1.5G", "64 M", "9999999999G", "1KM", "1MK"} {
		_, err := parseSize(in)
		assert.Error(t, err, in)
	}
}

// TestCPUSet pins a busy loop to the last CPU with --cpuset and watches it
// from outside: its Cpus_allowed_list, the cgroup's cpuset.cpus, and the
// CPU it last ran on (field 39 of /proc/PID/stat, proc(5)), sampled for
// half a second: never another one.
func TestCPUSet(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	last := strconv.Itoa(runtime.NumCPU() - 1)
	c := celltest.Start(t, runArgs(t, "--cpuset", last, "sh", "-c", "while :; do :; done & echo ready; read line || true")...)
	kids := celltest.Children(c.Pid)
	require.Len(t, kids, 1, "the busy loop")
	assert.Equal(t, []string{last}, statusField(t, kids[0], "Cpus_allowed_list:"))
	dirs := celltest.ProcCgroupDirs(t, kids[0])
	dir, v1 := dirs["cpuset"]
	if !v1 {
		dir = dirs[""]
	}
	require.Contains(t, dir, "/gocell-lessons/07-cgroups-", "the container's cpuset cgroup")
	assert.Equal(t, last, celltest.ReadCgroupValue(t, dir, "cpuset.cpus", ""))
	if v1 {
		// Filled from the parent, or no task could have joined.
		assert.NotEmpty(t, celltest.ReadCgroupValue(t, dir, "cpuset.mems", ""))
	} else {
		assert.Equal(t, last, celltest.ReadCgroupValue(t, dir, "cpuset.cpus.effective", ""))
	}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", kids[0]))
		require.NoError(t, err)
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
		seen[f[36]] = true // field 39, counted from the state, field 3
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, map[string]bool{last: true}, seen, "the CPUs the busy loop ran on")

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.NoDirExists(t, dir)
	celltest.AssertNoLeaks(t, before, c)
}

// TestCPUSetFilesV1: on v1 the new cpuset cgroups start empty, and are
// filled top down, the parent's values first, then ours.
func TestCPUSetFilesV1(t *testing.T) {
	quiet = true
	root := t.TempDir()
	lessons := filepath.Join(root, "gocell-lessons")
	run := filepath.Join(lessons, "run-3")
	require.NoError(t, os.MkdirAll(run, 0o755))
	for dir, values := range map[string][2]string{root: {"0-3\n", "0\n"}, lessons: {"", ""}, run: {"", ""}} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cpuset.cpus"), []byte(values[0]), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cpuset.mems"), []byte(values[1]), 0o644))
	}
	cpuset = "2"
	defer func() { cpuset = "" }()
	require.NoError(t, writeLimitsV1("cpuset", run))
	read := func(dir, file string) string {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "0-3", read(lessons, "cpuset.cpus"))
	assert.Equal(t, "0", read(lessons, "cpuset.mems"))
	assert.Equal(t, "0", read(run, "cpuset.mems"))
	assert.Equal(t, "2", read(run, "cpuset.cpus"))
}

// TestParseCPUList needs no root.
func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("0-2,5,2")
	require.NoError(t, err)
	assert.Equal(t, map[int]bool{0: true, 1: true, 2: true, 5: true}, got)
	for _, bad := range []string{"", "a", "1-", "-1", "3-1", "1,,2", "0-5000"} {
		_, err := parseCPUList(bad)
		assert.Error(t, err, bad)
	}
}
