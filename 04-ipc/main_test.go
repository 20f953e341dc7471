package main

import (
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
var added = []string{"uts", "pid", "mnt", "ipc"}

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
	args := append(runArgs(t, "--hostname", "cell-04"), celltest.ReadyCommand...)
	c := celltest.Start(t, args...)

	celltest.AssertNamespaces(t, c.Pid, added...)
	assert.Equal(t, "cell-04", celltest.HostnameOf(t, c.Pid), "hostname inside, read through setns(2)")
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
}

// TestUsage needs no root: help, a missing command and an unknown verb.
func TestUsage(t *testing.T) {
	res := celltest.Run(t, "--help")
	assert.Equal(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "usage: 04-ipc run [flags] COMMAND")
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
