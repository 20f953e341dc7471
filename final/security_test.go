package main

// The attacks of issue 9, each against the defence that stops it. A
// crafted image, a neighbour container, a caller's leftover capabilities,
// a host user: each test plays one, and checks from outside (the
// kernel's /proc, mountinfo, statfs, the file system) that it got
// nowhere. Each would succeed against the code before its defence.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/gocell/gocell/internal/celltest"
	"github.com/gocell/gocell/internal/testimage"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// dockerCapMask is Docker's default capability set less CAP_MKNOD, as
// CapBnd, CapPrm and CapEff of /proc/PID/status print it.
const dockerCapMask = "00000000a00425fb"

// imageWith pushes busybox with one more layer of files as name, pulls it
// into e's root, and returns its reference.
func (e *env) imageWith(t *testing.T, name string, files []testimage.File) string {
	t.Helper()
	host := strings.SplitN(e.image, "/", 2)[0]
	img := testimage.Image(t, v1.Config{Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		testimage.BusyboxLayer(t), testimage.Layer(t, files))
	ref := testimage.Push(t, host, "hostile/"+name+":1", img)
	res := gocell(t, "pull", ref)
	require.Equal(t, 0, res.Code, res.Stderr)
	return ref
}

// TestHostileMountPoints runs images whose /proc, /sys or /dev is not a
// directory of their own but a symlink elsewhere, or a file, and one
// whose /etc/hosts leads into /proc. The first is the attack of issue 9:
// /proc -> /realproc/self/root/D1 made gocell mount a procfs at
// /realproc, then read a forged cap_last_cap of 0 through /proc, and run
// the container with every capability and a writable procfs. Each must be
// refused, before anything runs, with nothing left.
func TestHostileMountPoints(t *testing.T) {
	e := setup(t)
	corePattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		files []testimage.File
		want  string
	}{
		{"proc-loop", []testimage.File{{Name: "proc", Link: "/realproc/self/root/D1"},
			{Name: "realproc/self/root/D1", Link: "/realproc"},
			{Name: "D1/sys/kernel/cap_last_cap", Body: "0\n"}}, "/proc: a symlink"},
		{"sys-link", []testimage.File{{Name: "sys", Link: "/tmp"}}, "/sys: a symlink"},
		{"dev-link", []testimage.File{{Name: "dev", Link: "/tmp"}}, "/dev: a symlink"},
		{"proc-file", []testimage.File{{Name: "proc", Body: "not a directory"}}, "/proc"},
		{"hosts-into-proc", []testimage.File{{Name: "etc/hosts", Link: "/proc/sys/kernel/core_pattern"}},
			"/etc/hosts leads, through a symlink of the image, to /proc/sys/kernel/core_pattern: refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := e.imageWith(t, tc.name, tc.files)
			before := celltest.Snapshot(t)
			res := gocell(t, "run", "--rm", "--network", "none", ref, "sh", "-c",
				"grep Cap /proc/self/status") // never runs
			assert.Equal(t, 125, res.Code, res.Stderr)
			assert.Contains(t, res.Stderr, tc.want)
			assert.NotContains(t, res.Stdout, "Cap")
			celltest.AssertMountsUnchanged(t, before)
			assert.Zero(t, findProcess(e.root, ""), "a process of the container is left")
			assert.Empty(t, strings.TrimSpace(gocell(t, "ps", "-a", "-q").Stdout), "--rm removed it")
		})
	}
	now, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	require.NoError(t, err)
	assert.Equal(t, string(corePattern), string(now))

	// A volume whose destination leads into /sys or /proc, or to the
	// root itself, is refused too; and seeding it, which runs before
	// /proc and /sys are mounted, copies nothing of them: the monitor,
	// as the host's root, would read what the masks hide (/sys/firmware,
	// /proc/1/environ with the environment of whoever ran gocell).
	for i, target := range []string{"/sys/firmware", "/proc/1", "/"} {
		ref := e.imageWith(t, fmt.Sprintf("data-%d", i), []testimage.File{{Name: "data", Link: target}})
		vol := fmt.Sprintf("v%d", i)
		res := gocell(t, "run", "--rm", "--network", "none", "-v", vol+":/data", ref, "true")
		assert.Equal(t, 125, res.Code, res.Stderr)
		if target == "/" {
			assert.Contains(t, res.Stderr, "/data resolves to the container's root", target)
		} else {
			assert.Contains(t, res.Stderr, "/data leads, through a symlink of the image, to "+target+": refused", target)
		}
		entries, err := os.ReadDir(filepath.Join(e.root, "volumes", vol, "_data"))
		require.NoError(t, err)
		assert.Empty(t, entries, "the volume got a copy of %s", target)
	}
}

// TestMasks looks at a container's mount table from outside: /proc, /sys
// and /dev are the kernel's own file systems with Docker's flags, every
// masked path this kernel has is covered, the read-only ones are
// read-only, and writing through them fails inside.
func TestMasks(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "m", "--network", "none", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	cmd := pidOf(t, "m")
	mounts := map[string]celltest.Mount{}
	for _, m := range celltest.Mounts(t, strconv.Itoa(cmd)) {
		mounts[m.MountPoint] = m
	}
	for point, want := range map[string]struct{ fstype, opts string }{
		"/proc":     {"proc", "rw,nosuid,nodev,noexec"},
		"/sys":      {"sysfs", "ro,nosuid,nodev,noexec"},
		"/dev":      {"tmpfs", "rw,nosuid"},
		"/dev/pts":  {"devpts", "rw,nosuid,noexec"},
		"/proc/sys": {"proc", "ro,nosuid,nodev,noexec"},
		"/proc/irq": {"proc", "ro,nosuid,nodev,noexec"},
	} {
		m, ok := mounts[point]
		if assert.True(t, ok, "%s is a mount point", point) {
			assert.Equal(t, want.fstype, m.FSType, point)
			assert.True(t, strings.HasPrefix(m.Options, want.opts), "%s: %s, want %s…", point, m.Options, want.opts)
		}
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
		"/proc/interrupts", "/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap"} {
		if _, err := os.Stat(p); err != nil {
			continue // this kernel has none: nothing to hide
		}
		m, ok := mounts[p]
		assert.True(t, ok, "%s is masked", p)
		assert.Contains(t, []string{"tmpfs", "devtmpfs"}, m.FSType, "%s: masked by a tmpfs or /dev/null", p)
	}
	res = gocell(t, "exec", "m", "sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid; echo $?; "+
		"echo x > /sys/kernel/uevent_helper; echo $?; cat /proc/keys | wc -c")
	assert.Equal(t, "1\n1\n0\n", res.Stdout, res.Stderr)
	assert.Contains(t, res.Stderr, "Read-only file system")
}

// TestCapabilities starts gocell the way a careless caller might: with
// CAP_SYS_ADMIN and CAP_SYS_MODULE inheritable, and CAP_SYS_ADMIN
// ambient. Root's execve(2) turns inheritable capabilities into permitted
// ones (CVE-2022-24769), so the container's command would have them,
// past its bounding set, unless they are cleared. From outside, its
// /proc/PID/status must show Docker's set and nothing inheritable or
// ambient; a command run as another user, no capabilities at all.
func TestCapabilities(t *testing.T) {
	e := setup(t)
	run := withCaps(t, unix.CAP_SYS_ADMIN, unix.CAP_SYS_MODULE)
	res := run("run", "-d", "--name", "c", "--network", "none", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	cmd := pidOf(t, "c")
	assert.Equal(t, []string{"0000000000000000"}, statusLine(t, cmd, "CapInh:"))
	assert.Equal(t, []string{"0000000000000000"}, statusLine(t, cmd, "CapAmb:"))
	for _, set := range []string{"CapPrm:", "CapEff:", "CapBnd:"} {
		assert.Equal(t, []string{dockerCapMask}, statusLine(t, cmd, set), set)
	}
	res = run("exec", "-u", "1000", "c", "grep", "Cap", "/proc/self/status")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "CapPrm:\t0000000000000000")
	assert.Contains(t, res.Stdout, "CapEff:\t0000000000000000")
	assert.Contains(t, res.Stdout, "CapInh:\t0000000000000000")
	assert.Contains(t, res.Stdout, "CapBnd:\t"+dockerCapMask)
}

// withCaps returns a runner of gocell whose process starts with caps in
// its inheritable set, and the first of them ambient too. The caps are
// raised on a locked thread, which is then thrown away.
func withCaps(t *testing.T, caps ...int) func(args ...string) celltest.Result {
	self, err := os.Executable()
	require.NoError(t, err)
	return func(args ...string) celltest.Result {
		type result struct {
			res celltest.Result
			err error
		}
		done := make(chan result)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread goes
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				done <- result{err: err}
				return
			}
			for _, c := range caps {
				data[c/32].Inheritable |= 1 << (c % 32)
			}
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				done <- result{err: err}
				return
			}
			cmd := exec.Command(self, args...)
			cmd.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1", "NO_COLOR=1")
			cmd.SysProcAttr = &syscall.SysProcAttr{AmbientCaps: []uintptr{uintptr(caps[0])}}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if _, ok := err.(*exec.ExitError); ok {
				err = nil
			}
			done <- result{celltest.Result{Code: cmd.ProcessState.ExitCode(),
				Stdout: stdout.String(), Stderr: stderr.String()}, err}
		}()
		r := <-done
		require.NoError(t, r.err)
		return r.res
	}
}

// TestSeccomp: every process of a container runs under the filter
// (Seccomp: 2 in /proc/PID/status), so container root cannot make a
// user namespace, in which it would have every capability again and
// could mount file systems. seccomp=unconfined turns the filter off
// (and so shows what it prevents), a profile of the user's replaces it,
// no-new-privileges sets the flag, and each container has a session
// keyring of its own.
func TestSeccomp(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "s", "--network", "none", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	id := state(t, "s")["id"].(string)
	cmd := pidOf(t, "s")
	assert.Equal(t, []string{"2"}, statusLine(t, cmd, "Seccomp:"))
	assert.Equal(t, []string{"0"}, statusLine(t, cmd, "NoNewPrivs:"))
	res = gocell(t, "exec", "s", "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U -r true && echo escaped")
	assert.Equal(t, "Seccomp:\t2\n", res.Stdout, res.Stderr)
	assert.Contains(t, res.Stderr, "Operation not permitted")
	// The container's session keyring, as the host's /proc/keys lists
	// it; none of the host's.
	keys, err := os.ReadFile("/proc/keys")
	require.NoError(t, err)
	assert.Contains(t, string(keys), "_ses."+id)

	res = gocell(t, "run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined",
		"--security-opt", "no-new-privileges", e.image, "sh", "-c",
		"grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status; unshare -U -r true && echo unconfined")
	assert.Equal(t, "NoNewPrivs:\t1\nSeccomp:\t0\nunconfined\n", res.Stdout, res.Stderr)

	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	require.NoError(t, os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`), 0o600))
	res = gocell(t, "run", "--rm", "--network", "none", "--security-opt", "seccomp="+profile,
		e.image, "sh", "-c", "mkdir /x || echo refused")
	assert.Equal(t, "refused\n", res.Stdout)
	assert.Contains(t, res.Stderr, "Permission denied")

	for _, bad := range []struct{ opt, want string }{
		{"seccomp=/nonexistent.json", "no such file"},
		{"seccomp=" + profile + "x", "no such file"},
		{"apparmor=unconfined", "gocell does not support apparmor"},
		{"no-new-privileges=maybe", "write true or false"},
		{"nonsense", "unknown option"},
	} {
		res := gocell(t, "run", "--rm", "--security-opt", bad.opt, e.image, "true")
		assert.Equal(t, 2, res.Code, bad.opt)
		assert.Contains(t, res.Stderr, bad.want, bad.opt)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_NOTIFY"}`), 0o600))
	res = gocell(t, "run", "--rm", "--security-opt", "seccomp="+bad, e.image, "true")
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.Stderr, "SCMP_ACT_NOTIFY")
}

// TestBinaries: no gocell runs in the container; its pid 1 is the image's
// own program. The monitor, on the host, runs a copy of gocell on a
// read-only mount, not the host's file, so that nothing that reaches its
// /proc/PID/exe can write it (CVE-2019-5736). (Until its execve(2), the
// container's process runs a sealed memfd copy of gocell: see the
// runtime's TestLifecycle.)
func TestBinaries(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "b", "--network", "none", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pidOf(t, "b")))
	require.NoError(t, err)
	assert.Equal(t, "/bin/busybox", exe, "pid 1 of the container is the image's program")
	res = gocell(t, "exec", "b", "ps", "-o", "comm")
	assert.Equal(t, []string{"COMMAND", "sleep", "ps"}, strings.Fields(res.Stdout), res.Stderr)

	// Once the container runs, its monitor is the shim (package shim):
	// a copy of gocell-shim, on a read-only mount too.
	monitor := int(state(t, "b")["monitor"].(float64))
	exe = monitorExe(t, monitor, "gocell-shim")
	var host, copied unix.Stat_t
	require.NoError(t, unix.Stat(testShim(t), &host))
	require.NoError(t, unix.Stat(fmt.Sprintf("/proc/%d/exe", monitor), &copied))
	assert.False(t, host.Dev == copied.Dev && host.Ino == copied.Ino, "the shim is the host's binary: %s", exe)
	var fs unix.Statfs_t
	require.NoError(t, unix.Statfs(fmt.Sprintf("/proc/%d/exe", monitor), &fs))
	assert.NotZero(t, fs.Flags&unix.ST_RDONLY, "the shim's binary is on a read-only mount")
	_, err = os.OpenFile(fmt.Sprintf("/proc/%d/exe", monitor), os.O_WRONLY, 0)
	assert.Error(t, err)

	// The monitor itself, before it hands over: gocell, read-only, not
	// the host's file. A foreground run's monitor stays gocell.
	self, err := os.Executable()
	require.NoError(t, err)
	require.NoError(t, unix.Stat(self, &host))
	cli := exec.Command(os.Args[0], "run", "--name", "fg", "--network", "none", e.image, "sleep", "1000")
	cli.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1")
	require.NoError(t, cli.Start())
	t.Cleanup(func() {
		gocell(t, "rm", "-f", "fg")
		cli.Process.Kill()
		cli.Wait()
	})
	require.Eventually(t, func() bool {
		return strings.Contains(gocell(t, "ps").Stdout, "fg")
	}, 10*time.Second, 20*time.Millisecond)
	monitor = int(state(t, "fg")["monitor"].(float64))
	monitorExe(t, monitor, "gocell")
	require.NoError(t, unix.Stat(fmt.Sprintf("/proc/%d/exe", monitor), &copied))
	assert.False(t, host.Dev == copied.Dev && host.Ino == copied.Ino, "the monitor runs the host's binary")
	require.NoError(t, unix.Statfs(fmt.Sprintf("/proc/%d/exe", monitor), &fs))
	assert.NotZero(t, fs.Flags&unix.ST_RDONLY, "the monitor's binary is on a read-only mount")
	_, err = os.OpenFile(fmt.Sprintf("/proc/%d/exe", monitor), os.O_WRONLY, 0)
	assert.Error(t, err)
}

// monitorExe waits for the monitor's binary to be named name (it becomes
// the shim a moment after the CLI returns) and returns its path.
func monitorExe(t *testing.T, monitor int, name string) string {
	t.Helper()
	var exe string
	require.Eventually(t, func() bool {
		exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", monitor))
		return filepath.Base(exe) == name
	}, 5*time.Second, 10*time.Millisecond, "the monitor %d runs %q, not %s", monitor, exe, name)
	return exe
}

// TestHostUsers: a set-user-ID root file made in a container, or shipped
// in a layer, is out of every host user's reach, so none can run it as
// root (CVE-2021-41091). The check runs as uid 65534 through the file
// system user id of a locked thread (setfsuid(2)), which drops the file
// capabilities of root as the kernel does for any other user.
func TestHostUsers(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "hu", "--network", "none", e.image, "sh", "-c",
		"cp /bin/busybox /tmp/su && chmod 4755 /tmp/su && echo ready && exec sleep 1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	id := state(t, "hu")["id"].(string)
	require.Eventually(t, func() bool { return gocell(t, "logs", "hu").Stdout == "ready\n" },
		10*time.Second, 20*time.Millisecond)
	suid := filepath.Join(e.root, "containers", id, "upper", "tmp", "su")
	fi, err := os.Stat(suid)
	require.NoError(t, err, "the file is there, for root")
	require.NotZero(t, fi.Mode()&os.ModeSetuid)
	layers, err := filepath.Glob(filepath.Join(e.root, "layers", "*", "diff", "bin", "busybox"))
	require.NoError(t, err)
	require.NotEmpty(t, layers)
	for _, p := range append([]string{suid}, layers...) {
		err := asUser(t, 65534, func() error { return unix.Faccessat2(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS) })
		assert.ErrorIs(t, err, unix.EACCES, "a host user reaches %s", p)
	}
	for _, dir := range []string{e.root, filepath.Join(e.root, "containers"), filepath.Join(e.root, "layers")} {
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), dir)
	}
}

// asUser runs fn on a thread whose file system ids are uid's.
func asUser(t *testing.T, uid int, fn func() error) error {
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes
		unix.Setfsgid(uid)
		unix.Setfsuid(uid)
		done <- fn()
	}()
	return <-done
}

// TestNoHostTerminal: the caller's terminal never reaches the container.
// A process that holds it could read what the admin types after gocell
// exits, or push input into it (TIOCSTI). With -i, stdin is a pipe;
// so are an exec's stdin, stdout and stderr.
func TestNoHostTerminal(t *testing.T) {
	e := setup(t)
	master, slave, err := pty.Open()
	require.NoError(t, err)
	defer master.Close()
	defer slave.Close()
	self, err := os.Executable()
	require.NoError(t, err)
	run := func(args ...string) string {
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1", "NO_COLOR=1")
		var stderr strings.Builder
		cmd.Stdin, cmd.Stderr = slave, &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "%v: %s", args, stderr.String())
		return string(out)
	}
	out := run("run", "--rm", "-i", "--network", "none", e.image, "sh", "-c",
		"readlink /proc/self/fd/0; readlink /proc/self/fd/2")
	assert.Regexp(t, `^pipe:\[\d+\]\npipe:\[\d+\]\n$`, out, "run -i: stdin and stderr are pipes")
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "x", "--network", "none", e.image, "sleep", "1000").Code)
	out = run("exec", "-i", "x", "sh", "-c", "for fd in 0 1 2; do readlink /proc/self/fd/$fd; done")
	assert.Regexp(t, `^pipe:\[\d+\]\npipe:\[\d+\]\npipe:\[\d+\]\n$`, out, "exec -i: all three are pipes")
	// The pipes still carry the data, both ways.
	cmd := exec.Command(self, "exec", "-i", "x", "sh", "-c", "read l; echo got $l; echo err >&2")
	cmd.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1")
	cmd.Stdin = strings.NewReader("hello\n")
	both, err := cmd.CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(both), "got hello\n")
	assert.Contains(t, string(both), "err\n")
}

// TestVolumeInUse: a named volume that a running container has mounted is
// not seeded by a second container: the first may be writing to it. The
// first mounts it where its image has nothing, so it stays empty; the
// second, at /etc, would otherwise copy the image's /etc into it.
func TestVolumeInUse(t *testing.T) {
	e := setup(t)
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "first", "--network", "none", "-v", "shared:/empty",
		e.image, "sleep", "1000").Code)
	res := gocell(t, "run", "--rm", "--network", "none", "-v", "shared:/usr/bin", e.image, "ls", "/usr/bin")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Empty(t, res.Stdout, "seeded while another container had it mounted")
	require.Equal(t, 0, gocell(t, "rm", "-f", "first").Code)
	res = gocell(t, "run", "--rm", "--network", "none", "-v", "shared:/usr/bin", e.image, "ls", "/usr/bin")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "wget", "seeded once nobody else had it")
}

// TestCommitSwap: while it is committed, a container swaps a directory of
// its writable layer for a symlink to a host directory, again and again
// (/etc, in a real attack; here a directory of the test's, holding a
// "shadow" of its own). A commit that followed the symlink would put the
// host's file in the image. Frozen or not, no file of the committed
// layer holds it.
func TestCommitSwap(t *testing.T) {
	e := setup(t)
	hostDir := t.TempDir()
	shadow := []byte("root:host-secret-" + strconv.Itoa(os.Getpid()) + ":1::::::\n")
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "shadow"), shadow, 0o600))
	res := gocell(t, "run", "-d", "--name", "swap", "--network", "none", e.image, "sh", "-c",
		"mkdir /x && echo decoy > /x/shadow && while :; do mv /x /y; ln -s "+hostDir+" /x; rm /x; mv /y /x; done")
	require.Equal(t, 0, res.Code, res.Stderr)
	time.Sleep(200 * time.Millisecond)
	for i, pause := range []string{"--pause=true", "--pause=true", "--pause=false", "--pause=false", "--pause=false"} {
		res := gocell(t, "commit", pause, "swap", fmt.Sprintf("swapped:%d", i))
		if res.Code != 0 {
			// Unfrozen, the walk may meet a swap and stop: fine.
			assert.Equal(t, "--pause=false", pause, res.Stderr)
			assert.Contains(t, res.Stderr, "write layer tar")
			continue
		}
		// The committed layer is the image's last, stored by DiffID.
		id := strings.TrimPrefix(strings.TrimSpace(res.Stdout), "sha256:")
		data, err := os.ReadFile(filepath.Join(e.root, "images", id, "config.json"))
		require.NoError(t, err)
		var cf v1.ConfigFile
		require.NoError(t, json.Unmarshal(data, &cf))
		top := cf.RootFS.DiffIDs[len(cf.RootFS.DiffIDs)-1].Hex
		dir := filepath.Join(e.root, "layers", top, "diff")
		require.DirExists(t, dir)
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				data, _ := os.ReadFile(p)
				assert.NotEqual(t, string(shadow), string(data), "%s holds the host's /etc/shadow", p)
			}
			return nil
		})
	}
	// Frozen commits thawed it again: it still runs, and an exec runs.
	assert.Equal(t, "running", state(t, "swap")["status"])
	assert.Equal(t, 0, gocell(t, "exec", "swap", "true").Code)
}

// TestLongLine: a line of 32 MB without a newline is logged in entries of
// at most 16 KiB, as Docker's json-file does, and the monitor's memory
// stays small: before, it kept the whole line.
func TestLongLine(t *testing.T) {
	e := setup(t)
	const size = 32 << 20
	res := gocell(t, "run", "-d", "--name", "long", "--network", "none", e.image, "sh", "-c",
		fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo; echo done; exec sleep 1000", size))
	require.Equal(t, 0, res.Code, res.Stderr)
	id := state(t, "long")["id"].(string)
	monitor := int(state(t, "long")["monitor"].(float64))
	require.Eventually(t, func() bool {
		return strings.HasSuffix(gocell(t, "logs", "long").Stdout, "done\n")
	}, 60*time.Second, 100*time.Millisecond)
	hwm := statusLine(t, monitor, "VmHWM:")
	kb, err := strconv.Atoi(hwm[0])
	require.NoError(t, err)
	assert.Less(t, kb, 24<<10, "the monitor's peak memory, in kB")
	f, err := os.Open(filepath.Join(e.root, "containers", id, "container.log"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	total := 0
	for sc.Scan() {
		var entry struct{ Log string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &entry))
		assert.LessOrEqual(t, len(entry.Log), 16<<10)
		total += len(entry.Log)
	}
	assert.Equal(t, size+len("\ndone\n"), total)
}

// TestIPv6Off: the rules are IPv4 only, so a container on a bridge has no
// IPv6 on its interfaces but lo: no address from a router advertisement
// to reach past them. Seen from outside, in its /proc/PID/net/if_inet6.
func TestIPv6Off(t *testing.T) {
	e := setup(t)
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "v6", e.image, "sleep", "1000").Code)
	cmd := pidOf(t, "v6")
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/if_inet6", cmd))
	if os.IsNotExist(err) {
		return // no IPv6 in this kernel at all
	}
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(line); len(f) == 6 {
			assert.Equal(t, "lo", f[5], "an IPv6 address on %s", f[5])
		}
	}
	res := gocell(t, "exec", "v6", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6")
	assert.Equal(t, "1\n", res.Stdout, res.Stderr)
}
