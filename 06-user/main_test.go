package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

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
	args := append(runArgs(t, "--hostname", "cell-06"), celltest.ReadyCommand...)
	c := celltest.Start(t, args...)

	celltest.AssertNamespaces(t, c.Pid, added...)
	assert.Equal(t, "cell-06", celltest.HostnameOf(t, c.Pid), "hostname inside, read through setns(2)")
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
	c := celltest.Start(t, runArgs(t, "sh", "-c", "ping -c1 -W2 10.77.6.1 >/dev/null && echo ready; read line || true")...)
	celltest.AssertNamespaces(t, c.Pid, added...)

	addrs := celltest.Addrs(t, c.Pid)
	require.Len(t, addrs, 2, "interfaces inside: %v", addrs)
	assert.Equal(t, []string{"127.0.0.1/8"}, addrs["lo"])
	require.Len(t, addrs["eth0"], 1, "eth0's addresses: %v", addrs)
	ip, network, err := net.ParseCIDR(addrs["eth0"][0])
	require.NoError(t, err)
	assert.Equal(t, "10.77.6.0/24", network.String())
	assert.NotEqual(t, "10.77.6.1", ip.String(), "the bridge's own address")
	assert.Equal(t, "10.77.6.1", celltest.DefaultGateway(t, c.Pid))

	veth := fmt.Sprintf("veth06-%d", c.Pid)
	assert.Contains(t, celltest.BridgePorts(t, "gocell06"), veth, "the host's veth end is on the bridge")
	lease := filepath.Join("/run/gocell-lessons/06-user", ip.String())
	assert.FileExists(t, lease, "the address is leased")
	assert.True(t, celltest.Ping(t, ip.String()), "host pings the container at %s", ip)

	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, c)
	assert.False(t, celltest.HostLink(veth), "veth %s left on the host", veth)
	assert.False(t, celltest.HostLink("gocell06"), "the bridge is left though no run uses it")
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
	assert.Len(t, celltest.BridgePorts(t, "gocell06"), 2)

	// b pings a: the exit status of ping becomes b's.
	b.Send(t, addrA+"\n")
	res := b.Stop(t)
	assert.Equal(t, 0, res.Code, "container b could not ping a at %s: %s", addrA, res.Stderr)
	assert.True(t, celltest.HostLink("gocell06"), "a still uses the bridge")
	assert.Equal(t, []string{fmt.Sprintf("veth06-%d", a.Pid)}, celltest.BridgePorts(t, "gocell06"))

	res = a.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, a)
	celltest.AssertNoLeaks(t, before, b)
	assert.False(t, celltest.HostLink("gocell06"))
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
	assert.False(t, celltest.HostLink("gocell06"))
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
	celltest.AssertFails(t, 125, []string{`not an IPv4 network`}, runArgs(t, "--subnet", "10.77.6.0/33", "true")...)
	celltest.AssertFails(t, 125, []string{"prefix length must be between 16 and 29"}, runArgs(t, "--subnet", "10.0.0.0/8", "true")...)
	// Loopback's 127.0.0.1/8 is the host's: refused before anything is made.
	celltest.AssertFails(t, 125, []string{"overlaps the host's network 127.0.0.1/8 on lo"}, runArgs(t, "--subnet", "127.0.5.0/24", "true")...)
	assert.False(t, celltest.HostLink("gocell06"))
	celltest.AssertFails(t, 125, []string{`--uid-map "0:100000": not three numbers`}, runArgs(t, "--uid-map", "0:100000", "true")...)
	celltest.AssertFails(t, 125, []string{`--gid-map "0:x:5": "x" is not an id`}, runArgs(t, "--gid-map", "0:x:5", "true")...)
	celltest.AssertFails(t, 125, []string{"the count must be at least 1"}, runArgs(t, "--uid-map", "0:100000:0", "true")...)
	celltest.AssertFails(t, 125, []string{"must start at 0 inside"}, runArgs(t, "--uid-map", "1:100000:10", "true")...)
}

// TestUsage needs no root: help, a missing command and an unknown verb.
func TestUsage(t *testing.T) {
	res := celltest.Run(t, "--help")
	assert.Equal(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "usage: 06-user run [flags] COMMAND")
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
