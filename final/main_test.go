package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/internal/celltest"
	"github.com/gocell/gocell/internal/testimage"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The test binary is gocell itself when GOCELL_TEST_RUN_MAIN=1; the
// monitor and the init it re-executes are too.
func TestMain(m *testing.M) {
	// The test binary is gocell too, and starts itself as the
	// container's process (__init) with an empty environment.
	internalProcess()
	celltest.Main(m, main, func() {
		if shimDir != "" {
			os.RemoveAll(shimDir)
		}
	})
}

// The gocell-shim the tests hand detached containers over to: the one
// GOCELL_TEST_SHIM names (in the test VM, which has no go command,
// scripts/vmtest/run.sh builds it), or else one built here, once.
var (
	shimOnce sync.Once
	shimPath string
	shimDir  string
	shimErr  error
)

func testShim(t *testing.T) string {
	t.Helper()
	shimOnce.Do(func() {
		if shimPath = os.Getenv("GOCELL_TEST_SHIM"); shimPath != "" {
			return
		}
		if shimDir, shimErr = os.MkdirTemp("", "gocell-shim-test-"); shimErr != nil {
			return
		}
		shimPath = filepath.Join(shimDir, "gocell-shim")
		build := exec.Command("go", "build", "-o", shimPath, "github.com/gocell/gocell/final/cmd/gocell-shim")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			shimErr = fmt.Errorf("go build ./final/cmd/gocell-shim: %v\n%s", err, out)
		}
	})
	if shimErr != nil {
		t.Fatalf("no gocell-shim for the tests (set GOCELL_TEST_SHIM, or have go on PATH): %v", shimErr)
	}
	return shimPath
}

// env is a gocell root of the test's own, with a busybox image pulled
// through the registry protocol from a registry on 127.0.0.1.
type env struct {
	root  string
	image string
	// forward is net.ipv4.ip_forward before the test.
	forward string
	// cgroups are the containers' cgroups on the machine before the
	// test: any other one after it is the test's, left behind.
	cgroups map[string]bool
}

// containerCgroups lists the directories under gocell's parent cgroup
// (cgroups.DefaultParent), in every tree: one per container.
func containerCgroups(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range celltest.Mounts(t, "self") {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		dirs, _ := filepath.Glob(filepath.Join(m.MountPoint, "gocell", "*"))
		for _, d := range dirs {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				out[d] = true
			}
		}
	}
	return out
}

func setup(t *testing.T) *env {
	t.Helper()
	celltest.RequirePriv(t)
	root := t.TempDir()
	t.Setenv("GOCELL_ROOT", root)
	t.Setenv("GOCELL_CONFIG", filepath.Join(root, "no-config.json"))
	t.Setenv(container.ShimEnv, testShim(t))
	host := testimage.Registry(t)
	ref := testimage.Push(t, host, "test/busybox:1", testimage.BusyboxImage(t))
	res := gocell(t, "pull", ref)
	require.Equal(t, 0, res.Code, res.Stderr)
	forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	e := &env{root: root, image: ref, forward: string(forward), cgroups: containerCgroups(t)}
	t.Cleanup(func() { e.cleanup(t) })
	return e
}

// cleanup removes every container, and checks that nothing of theirs is
// left: no mount under the root, no cgroup, no process. Then system reset
// removes what gocell keeps between containers (the nftables table, and
// the record of IPv4 forwarding, which it switched on if it was off), and
// forwarding must be as the test found it.
func (e *env) cleanup(t *testing.T) {
	var ids []string
	for _, short := range strings.Fields(gocell(t, "ps", "-a", "-q").Stdout) {
		ids = append(ids, state(t, short)["id"].(string))
		gocell(t, "rm", "-f", short)
	}
	for _, m := range celltest.Mounts(t, "self") {
		assert.False(t, strings.HasPrefix(m.MountPoint, e.root), "mount left: %s", m.MountPoint)
	}
	assertNoCgroups(t, ids)
	// Nor of those the test removed itself: no cgroup it made is left
	// (monitors still finishing get a moment).
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = nil
		for d := range containerCgroups(t) {
			if !e.cgroups[d] {
				left = append(left, d)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, d := range left {
		t.Errorf("cgroup left behind: %s", d)
	}
	res := gocell(t, "system", "reset", "--force")
	assert.Equal(t, 0, res.Code, res.Stderr)
	// What gocell keeps between containers goes with system reset.
	assert.False(t, celltest.HostLink("gocell0"), "the bridge is left after system reset")
	out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
	assert.NotContains(t, string(out)+"\n", "table ip gocell\n", "the nftables table is left after system reset")
	forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	assert.NoError(t, err)
	assert.Equal(t, e.forward, string(forward), "net.ipv4.ip_forward is as it was")
}

// assertNoCgroups checks that no cgroup of these containers is left on
// any tree. (Other gocell roots on the machine may have theirs.)
func assertNoCgroups(t *testing.T, ids []string) {
	t.Helper()
	for _, m := range celltest.Mounts(t, "self") {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		filepath.Walk(m.MountPoint, func(path string, info os.FileInfo, err error) error {
			if err != nil || !info.IsDir() {
				return nil
			}
			for _, id := range ids {
				if filepath.Base(path) == id {
					t.Errorf("cgroup left behind: %s", path)
				}
			}
			return nil
		})
	}
}

// gocell runs the CLI (this test binary) with args.
func gocell(t *testing.T, args ...string) celltest.Result {
	t.Helper()
	return celltest.Run(t, args...)
}

// state reads a container's state as `gocell inspect` shows it.
func state(t *testing.T, ref string) map[string]any {
	t.Helper()
	res := gocell(t, "inspect", ref)
	require.Equal(t, 0, res.Code, res.Stderr)
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &out))
	require.Len(t, out, 1)
	return out[0]
}

func pidOf(t *testing.T, ref string) int {
	t.Helper()
	pid, ok := state(t, ref)["pid"].(float64)
	require.True(t, ok, "no pid: is %s running?", ref)
	return int(pid)
}

// TestRunForeground runs commands in the foreground: output, exit codes,
// --rm, environment, working directory and user.
func TestRunForeground(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "--rm", e.image, "echo", "hello")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "hello\n", res.Stdout)
	assert.Empty(t, strings.TrimSpace(gocell(t, "ps", "-a", "-q").Stdout), "--rm removed it")
	// Nothing but the store's lock: no container's directory, nor a
	// .rm-* one that a removal could not finish.
	left, err := filepath.Glob(filepath.Join(e.root, "containers", "*"))
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(e.root, "containers", ".lock")}, left, "--rm left files")

	res = gocell(t, "run", "--rm", e.image, "sh", "-c", "echo out; echo err >&2; exit 3")
	assert.Equal(t, 3, res.Code)
	assert.Equal(t, "out\n", res.Stdout)
	assert.Contains(t, res.Stderr, "err\n")

	res = gocell(t, "run", "--rm", "-e", "GREETING=hi there", "-w", "/tmp", "-u", "65534", "--hostname", "box",
		e.image, "sh", "-c", `echo "$GREETING" $(pwd) $(id -u) $(hostname) $PATH`)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "hi there /tmp 65534 box /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", res.Stdout)

	// The image's Cmd (sh) with stdin: -i passes it through.
	res = celltest.Run(t, "run", "--rm", e.image, "true")
	assert.Equal(t, 0, res.Code)

	// No file of the CLI, the monitor or the init leaks into the
	// container: the command has stdin, stdout, stderr, and ls its own
	// directory (3).
	res = gocell(t, "run", "--rm", e.image, "ls", "/proc/self/fd")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, []string{"0", "1", "2", "3"}, strings.Fields(res.Stdout))

	// A relative --root works as well: the monitor and the init get it
	// made absolute.
	t.Chdir(filepath.Dir(e.root))
	res = gocell(t, "--root", filepath.Base(e.root), "run", "--rm", e.image, "cat", "/etc/hostname")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Len(t, strings.TrimSpace(res.Stdout), 12, "the hostname, from the id")
}

// TestDetachedLifecycle runs a container in the background and checks
// each verb from outside: namespaces, cgroup limits, the overlay, logs,
// exec, pause, stop, rm.
func TestDetachedLifecycle(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "web", "-m", "64M", "--pids-limit", "50", "--cpus", "0.5",
		e.image, "sh", "-c", "trap 'exit 143' TERM; echo started; while true; do sleep 1; done")
	require.Equal(t, 0, res.Code, res.Stderr)
	id := strings.TrimSpace(res.Stdout)
	require.Len(t, id, 64)

	ps := gocell(t, "ps")
	assert.Contains(t, ps.Stdout, id[:12])
	assert.Contains(t, ps.Stdout, "web")
	assert.Contains(t, ps.Stdout, "Up ")

	// From outside: the command is pid 1 of new namespaces, a cgroup
	// namespace too, rooted at its cgroup.
	pid := pidOf(t, "web")
	celltest.AssertNamespaces(t, pid, "uts", "pid", "mnt", "ipc", "net", "cgroup")
	assert.Equal(t, 1, celltest.NSpid(t, pid)[1], "the command is pid 1 inside")
	assert.Equal(t, id[:12], celltest.HostnameOf(t, pid))

	// The root is an overlay of the image's layer and the container's own.
	var rootMount celltest.Mount
	for _, m := range celltest.Mounts(t, strconv.Itoa(pid)) {
		if m.MountPoint == "/" {
			rootMount = m
		}
		assert.False(t, strings.HasPrefix(m.MountPoint, "/.oldroot"), "old root still mounted")
	}
	assert.Equal(t, "overlay", rootMount.FSType)
	assert.Contains(t, rootMount.Super, "upperdir="+filepath.Join(e.root, "containers", id, "upper"))
	// Masked and read-only paths.
	kcore, err := os.Stat(fmt.Sprintf("/proc/%d/root/proc/kcore", pid))
	if err == nil {
		assert.Equal(t, int64(0), kcore.Size(), "/proc/kcore is masked by /dev/null")
	}

	// The cgroup limits, in cgroupfs.
	dirs, v2 := celltest.CgroupDirs(t, pid)
	if v2["memory"] {
		assert.Equal(t, "67108864", celltest.ReadCgroupValue(t, dirs["memory"], "memory.max", ""))
		assert.Equal(t, "50", celltest.ReadCgroupValue(t, dirs["pids"], "pids.max", ""))
		assert.Equal(t, "50000 100000", celltest.ReadCgroupValue(t, dirs["cpu"], "cpu.max", ""))
	} else {
		assert.Equal(t, "67108864", celltest.ReadCgroupValue(t, dirs["memory"], "memory.limit_in_bytes", ""))
		assert.Equal(t, "50", celltest.ReadCgroupValue(t, dirs["pids"], "pids.max", ""))
		assert.Equal(t, "50000", celltest.ReadCgroupValue(t, dirs["cpu"], "cpu.cfs_quota_us", ""))
	}

	// The command keeps only Docker's default capabilities, less MKNOD:
	// CapBnd and CapEff of its /proc/PID/status, from the host.
	for _, line := range []string{"CapBnd:", "CapEff:"} {
		assert.Equal(t, []string{"00000000a00425fb"}, statusLine(t, pid, line), line)
	}
	// Inside, every hierarchy shows its cgroup as "/".
	res = gocell(t, "exec", "web", "cat", "/proc/self/cgroup")
	require.Equal(t, 0, res.Code, res.Stderr)
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		assert.True(t, strings.HasSuffix(line, ":/"), "inside, %q is not the root", line)
	}
	res = gocell(t, "exec", "web", "sh", "-c", "mknod /tmp/disk b 8 0 || echo no-mknod; mount -t tmpfs t /mnt || echo no-mount")
	assert.Contains(t, res.Stdout, "no-mknod")
	assert.Contains(t, res.Stdout, "no-mount")

	// logs
	require.Eventually(t, func() bool { return gocell(t, "logs", "web").Stdout == "started\n" }, 5*time.Second, 50*time.Millisecond)

	// exec: in every namespace of the container, with its exit status.
	res = gocell(t, "exec", "web", "hostname")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, id[:12]+"\n", res.Stdout)
	res = gocell(t, "exec", "web", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 5")
	assert.Equal(t, 5, res.Code)
	assert.Contains(t, res.Stdout, "echo started", "pid 1 is the command")
	res = gocell(t, "exec", "-e", "X=1", "-w", "/etc", "web", "sh", "-c", "echo $X $(pwd)")
	assert.Equal(t, "1 /etc\n", res.Stdout)
	// exec takes the container's directory and user, as docker exec.
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "wd", "--network", "none", "-w", "/tmp", "-u", "65534",
		e.image, "sleep", "1000").Code)
	res = gocell(t, "exec", "wd", "sh", "-c", "pwd; id -u")
	assert.Equal(t, "/tmp\n65534\n", res.Stdout, res.Stderr)
	require.Equal(t, 0, gocell(t, "rm", "-f", "wd").Code)
	res = gocell(t, "exec", "web", "no-such-command")
	assert.Equal(t, 127, res.Code)
	assert.Contains(t, res.Stderr, "command not found")

	// pause: every process frozen, as the cgroup says.
	require.Equal(t, 0, gocell(t, "pause", "web").Code)
	assert.Equal(t, "paused", state(t, "web")["status"])
	assert.Contains(t, gocell(t, "ps").Stdout, "(Paused)")
	if v2["memory"] {
		assert.Equal(t, "1", celltest.ReadCgroupValue(t, dirs["memory"], "cgroup.events", "frozen"))
	} else {
		assert.Equal(t, "FROZEN", celltest.ReadCgroupValue(t, freezerDir(t, pid), "freezer.state", ""))
	}
	assert.Equal(t, 0, gocell(t, "unpause", "web").Code)
	assert.Equal(t, "running", state(t, "web")["status"])

	// rm of a running container is refused without -f.
	res = gocell(t, "rm", "web")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "container is running: web; stop it first, or use rm -f")

	// stop: SIGTERM reaches the shell, pid 1, which traps it. (Without
	// a handler, pid 1 of a namespace never gets it: pid_namespaces(7);
	// see TestStopTimeout.)
	start := time.Now()
	res = gocell(t, "stop", "-t", "5", "web")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Less(t, time.Since(start), 5*time.Second, "SIGTERM was enough")
	st := state(t, "web")
	assert.Equal(t, "exited", st["status"])
	assert.Equal(t, float64(128+15), st["exitCode"])
	assert.Contains(t, gocell(t, "ps", "-a").Stdout, "Exited (143)")
	assert.NoDirExists(t, dirs["memory"], "the cgroup is gone")
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	assert.True(t, os.IsNotExist(err), "the command is gone")

	// exec into a stopped container is refused; start brings it back.
	res = gocell(t, "exec", "web", "true")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "container is not running")
	require.Equal(t, 0, gocell(t, "start", "web").Code)
	assert.Equal(t, "running", state(t, "web")["status"])
	res = gocell(t, "kill", "-s", "TERM", "web")
	assert.Equal(t, 0, res.Code, res.Stderr)
	require.Eventually(t, func() bool { return state(t, "web")["status"] == "exited" }, 5*time.Second, 50*time.Millisecond)
	res = gocell(t, "rm", "web")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.NoDirExists(t, filepath.Join(e.root, "containers", id))
}

// TestWritableLayer checks that writes land in the container's upper
// directory, not in the image's layer, and die with the container.
func TestWritableLayer(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "--name", "w", e.image, "sh", "-c", "echo new > /new; rm /etc/group")
	require.Equal(t, 0, res.Code, res.Stderr)
	id := state(t, "w")["id"].(string)
	upper := filepath.Join(e.root, "containers", id, "upper")
	data, err := os.ReadFile(filepath.Join(upper, "new"))
	require.NoError(t, err)
	assert.Equal(t, "new\n", string(data))
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(filepath.Join(upper, "etc/group"), &st))
	assert.Equal(t, uint32(syscall.S_IFCHR), st.Mode&syscall.S_IFMT, "a whiteout")
	// A new container of the same image sees neither change.
	res = gocell(t, "run", "--rm", e.image, "sh", "-c", "cat /new 2>&1; cat /etc/group")
	assert.Contains(t, res.Stdout, "No such file")
	assert.Contains(t, res.Stdout, "root:x:0:")
	require.Equal(t, 0, gocell(t, "rm", "w").Code)
	assert.NoDirExists(t, upper)
}

// TestMonitorKilled kills a detached container's monitor with SIGKILL:
// the container dies with it, ps shows it stopped, and rm cleans up.
func TestMonitorKilled(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "m", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	st := state(t, "m")
	pid, monitor := int(st["pid"].(float64)), int(st["monitor"].(float64))
	dirs, _ := celltest.CgroupDirs(t, pid)
	require.NoError(t, syscall.Kill(monitor, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	}, 5*time.Second, 20*time.Millisecond, "the init dies with its monitor")
	assert.Contains(t, gocell(t, "ps", "-a").Stdout, "Exited (137)")
	assert.Equal(t, "exited", state(t, "m")["status"])
	for _, c := range []string{"memory", "pids", "cpu"} {
		assert.NoDirExists(t, dirs[c], "ps cleaned the dead run's cgroup")
	}
	assert.Equal(t, 0, gocell(t, "rm", "m").Code)
}

// TestCLIKilled kills the CLI of a foreground run: the container goes on
// under its monitor, and rm -f removes it.
func TestCLIKilled(t *testing.T) {
	e := setup(t)
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	require.NoError(t, err)
	defer f.Close()
	cli := exec.Command(os.Args[0], "run", "--name", "fg", e.image, "sh", "-c", "echo ready; sleep 1000")
	cli.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1")
	cli.Stdout, cli.Stderr = f, f
	require.NoError(t, cli.Start())
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile(out)
		return strings.Contains(string(data), "ready")
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, cli.Process.Kill())
	cli.Wait()
	assert.Equal(t, "running", state(t, "fg")["status"], "the container outlives its CLI")
	res := gocell(t, "rm", "-f", "fg")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Empty(t, strings.TrimSpace(gocell(t, "ps", "-a", "-q").Stdout))
}

// TestMonitorKilledAnywhere kills the monitor with SIGKILL at many points
// of a detached run with a published port: from its first instruction to
// after the container runs. Whatever it had made by then (state, cgroup,
// address lease, veth, port rules, the init), ps and rm -f must find and
// remove it.
func TestMonitorKilledAnywhere(t *testing.T) {
	e := setup(t)
	var ids []string
	for i, delay := range []time.Duration{0, 1, 2, 4, 6, 8, 10, 13, 16, 20, 25, 30, 40, 60, 100} {
		name := fmt.Sprintf("crash%d", i)
		delay *= time.Millisecond
		cli := exec.Command(os.Args[0], "run", "-d", "--name", name, "-p", fmt.Sprintf("%d:80", 18100+i),
			e.image, "sleep", "1000")
		cli.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1")
		require.NoError(t, cli.Start())
		// The monitor is the process whose command line names this
		// root and __monitor; kill it delay after it appears.
		var monitor int
		require.Eventually(t, func() bool {
			monitor = findProcess(e.root, "__monitor")
			return monitor != 0
		}, 10*time.Second, 100*time.Microsecond, "%s: no monitor", name)
		time.Sleep(delay)
		syscall.Kill(monitor, syscall.SIGKILL)
		cli.Wait()
		res := gocell(t, "ps", "-a")
		require.Equal(t, 0, res.Code, res.Stderr)
		id := state(t, name)["id"].(string)
		ids = append(ids, id)
		assert.NotEqual(t, "running", state(t, name)["status"], "%s (killed after %v)", name, delay)
		res = gocell(t, "rm", "-f", name)
		require.Equal(t, 0, res.Code, "%s (killed after %v): %s", name, delay, res.Stderr)
		assert.Zero(t, findProcess(e.root, ""), "%s (killed after %v): a process is left", name, delay)
		assert.False(t, celltest.HostLink("veth"+id[:11]), "%s (killed after %v): veth left", name, delay)
	}
	assertNoCgroups(t, ids)
	leases, _ := os.ReadDir(filepath.Join(e.root, "network", "leases", "bridge"))
	assert.Empty(t, leases, "address leases left")
	out, _ := exec.Command("nft", "list", "table", "ip", "gocell").CombinedOutput()
	for _, id := range ids {
		assert.NotContains(t, string(out), id, "port rules left")
	}
}

// TestCLIKilledAnywhere kills the CLI of gocell run -d at many points,
// from its start to after the monitor runs: whatever it got to (nothing,
// a created container, a running one), ps shows it, rm -f removes it, and
// nothing is left: no half-made container directory, no process.
func TestCLIKilledAnywhere(t *testing.T) {
	e := setup(t)
	for i, delay := range []time.Duration{0, 5, 10, 14, 17, 19, 21, 23, 25, 28, 32, 40, 60, 100} {
		name := fmt.Sprintf("cli%d", i)
		delay *= time.Millisecond
		cli := exec.Command(os.Args[0], "run", "-d", "--name", name, e.image, "sleep", "1000")
		cli.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1")
		require.NoError(t, cli.Start())
		time.Sleep(delay)
		cli.Process.Kill()
		cli.Wait()
		res := gocell(t, "ps", "-a")
		require.Equal(t, 0, res.Code, res.Stderr)
		if strings.Contains(res.Stdout, name) {
			res = gocell(t, "rm", "-f", name)
			require.Equal(t, 0, res.Code, "%s (killed after %v): %s", name, delay, res.Stderr)
		}
		// A Create or rm killed half-way leaves a .new-* or .rm-*
		// directory, which no command takes for a container; system
		// prune removes it.
		require.Equal(t, 0, gocell(t, "system", "prune").Code)
		entries, err := os.ReadDir(filepath.Join(e.root, "containers"))
		require.NoError(t, err)
		for _, entry := range entries {
			assert.Equal(t, ".lock", entry.Name(), "%s (killed after %v): left in containers/", name, delay)
		}
		// An init whose monitor rm -f had to kill dies of that
		// (PR_SET_PDEATHSIG), a moment after its monitor.
		assert.Eventually(t, func() bool { return findProcess(e.root, "") == 0 }, time.Second,
			10*time.Millisecond, "%s (killed after %v): a process is left", name, delay)
	}
}

// kernelBefore says whether the running kernel is older than major.minor.
func kernelBefore(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	var ma, mi int
	_, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	require.NoError(t, err)
	return ma < major || ma == major && mi < minor
}

// findProcess returns a process whose command line contains root and
// word, or 0.
func findProcess(root, word string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if slices.Contains(args, root) && (word == "" || slices.Contains(args, word)) &&
			!slices.Contains(args, "run") {
			return pid
		}
	}
	return 0
}

// TestBadInput checks each kind of bad input: one clear message, a
// non-zero exit, and nothing left behind.
func TestBadInput(t *testing.T) {
	e := setup(t)
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "runner", "--network", "none", e.image, "sleep", "1000").Code)
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{125, "no such container: nope", []string{"stop", "nope"}},
		{125, "no such container: nope", []string{"rm", "nope"}},
		{125, "no such container: nope", []string{"exec", "nope", "true"}},
		{125, "no such container: nope", []string{"logs", "nope"}},
		{2, "--memory \"12XB\"", []string{"run", "-m", "12XB", e.image, "true"}},
		{2, "--cpus \"0\"", []string{"run", "--cpus", "0", e.image, "true"}},
		{2, "--cpus \"-1\"", []string{"run", "--cpus", "-1", e.image, "true"}},
		{2, "invalid container name", []string{"run", "--name", "bad/name", e.image, "true"}},
		{2, "-e \"NOEQUALS\"", []string{"run", "-e", "NOEQUALS", e.image, "true"}},
		{127, "command not found", []string{"run", "--rm", e.image, "no-such-command"}},
		{127, "command not found", []string{"run", "--rm", e.image, "/no/such/file"}},
		{126, "/etc/passwd: not an executable file", []string{"run", "--rm", e.image, "/etc/passwd"}},
		{126, "/etc: not an executable file", []string{"run", "--rm", e.image, "/etc"}},
		{126, "/etc/passwd: not an executable file", []string{"exec", "runner", "/etc/passwd"}},
		{127, "command not found", []string{"exec", "runner", "no-such-command"}},
		{2, "-w \"tmp\": the working directory must be an absolute path", []string{"run", "--rm", "-w", "tmp", e.image, "true"}},
		{2, "-w \"tmp\": the working directory must be an absolute path", []string{"exec", "-w", "tmp", "runner", "true"}},
		{2, "which image?", []string{"run"}},
		{2, "-t: stdin is not a terminal", []string{"run", "-t", e.image, "true"}},
		{2, "not a signal", []string{"kill", "-s", "NOPE", "x"}},
	} {
		before := celltest.Snapshot(t)
		res := gocell(t, tc.args...)
		assert.Equal(t, tc.code, res.Code, "%v: %s", tc.args, res.Stderr)
		assert.Contains(t, res.Stderr, tc.want, "%v", tc.args)
		assert.Equal(t, 1, strings.Count(res.Stderr, "error:"), "%v: one error line: %s", tc.args, res.Stderr)
		celltest.AssertMountsUnchanged(t, before)
	}
	// A duplicate name.
	require.Equal(t, 0, gocell(t, "create", "--name", "dup", e.image, "true").Code)
	res := gocell(t, "create", "--name", "dup", e.image, "true")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, `name already in use: "dup"`)
	// An unknown image: pulled from a registry that is not there, quickly.
	start := time.Now()
	res = gocell(t, "run", "127.0.0.1:1/nothing/here:1", "true")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "127.0.0.1:1")
	assert.Less(t, time.Since(start), 30*time.Second)
	res = gocell(t, "run", "Not A Reference", "true")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "Not A Reference")
	// Only the created container "dup" exists, and the running
	// "runner": none of the failed runs left one.
	assert.Equal(t, 0, gocell(t, "rm", "-f", "runner").Code)
	assert.Equal(t, 1, len(strings.Fields(gocell(t, "ps", "-a", "-q").Stdout)))
}

// TestUsage needs no root: help for every command.
func TestUsage(t *testing.T) {
	res := gocell(t, "--help")
	assert.Equal(t, 0, res.Code)
	for _, verb := range []string{"run", "create", "start", "ps", "logs", "exec", "stop", "kill", "rm", "pause", "unpause", "update", "inspect", "pull", "push", "login", "logout", "import", "images", "rmi", "tag", "commit", "registry", "save", "load", "wait", "restart", "rename", "diff", "top", "history", "cp", "completion", "stats"} {
		assert.Contains(t, res.Stdout, "   "+verb, "gocell --help lists %s", verb)
		sub := gocell(t, verb, "--help")
		assert.Equal(t, 0, sub.Code, verb)
		assert.Contains(t, sub.Stdout, "gocell "+verb, verb)
	}
	assert.NotContains(t, res.Stdout, "__monitor")

	// An unknown flag points at the help of the command it was given to,
	// and that help exists.
	for _, args := range [][]string{{}, {"run"}, {"network", "create"}, {"volume", "ls"}} {
		res := gocell(t, append(args, "--bogus")...)
		assert.Equal(t, 2, res.Code, args)
		want := strings.Join(append([]string{"gocell"}, args...), " ")
		assert.Contains(t, res.Stderr, "(see "+want+" --help)", args)
		assert.Equal(t, 0, gocell(t, append(args, "--help")...).Code, args)
	}
}

// freezerDir is pid's cgroup on the v1 freezer tree.
func freezerDir(t *testing.T, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == "freezer" {
			for _, m := range celltest.Mounts(t, "self") {
				if m.FSType == "cgroup" && strings.Contains(m.Super, "freezer") {
					return filepath.Join(m.MountPoint, parts[2])
				}
			}
		}
	}
	t.Fatalf("pid %d has no freezer cgroup", pid)
	return ""
}

// procState is the state letter of /proc/PID/stat: R, S, D, T, Z…
func procState(t *testing.T, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// fetch is a container command that fetches http://HOST:8080/ with
// busybox nc (busybox-static's wget crashes on Debian 12).
func fetch(host string) []string {
	return []string{"sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 " + host + " 8080 | tail -n 1"}
}

// httpdScript serves one page with busybox httpd on port 8080.
func httpdScript(page string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo " + page + " > /www/index.html && exec httpd -f -p 8080 -h /www"}
}

// TestNetworking checks the default network, names in /etc/hosts, a
// second network isolated from the first, and a published port reached
// from the host at 127.0.0.1; afterwards no link and no rule is left.
func TestNetworking(t *testing.T) {
	e := setup(t)
	args := append([]string{"run", "-d", "--name", "a", "-p", "127.0.0.1:18080:8080", e.image}, httpdScript("hello-from-a")...)
	res := gocell(t, args...)
	require.Equal(t, 0, res.Code, res.Stderr)
	ip := state(t, "a")["endpoint"].(map[string]any)["ip"].(string)
	assert.True(t, strings.HasPrefix(ip, "10.77.0."), ip)
	addrs := celltest.Addrs(t, pidOf(t, "a"))
	assert.Equal(t, []string{ip + "/24"}, addrs["eth0"], "eth0 inside, read through netlink")

	require.Eventually(t, func() bool {
		res = gocell(t, append([]string{"run", "--rm", e.image}, fetch("a")...)...)
		return res.Stdout == "hello-from-a\n"
	}, 10*time.Second, 200*time.Millisecond, "b reaches a by name: %s", res.Stderr)
	assert.Equal(t, "hello-from-a\n", res.Stdout)
	res = gocell(t, append([]string{"run", "--rm", e.image}, fetch(ip)...)...)
	assert.Equal(t, "hello-from-a\n", res.Stdout, "and by address")

	// A published port, from the host itself.
	res = gocell(t, "port", "a")
	assert.Equal(t, "8080/tcp -> 127.0.0.1:18080\n", res.Stdout)
	body, err := httpGet("http://127.0.0.1:18080/")
	require.NoError(t, err)
	assert.Equal(t, "hello-from-a\n", body)

	// Another network cannot reach the first.
	require.Equal(t, 0, gocell(t, "network", "create", "--subnet", "10.77.9.0/24", "other").Code)
	res = gocell(t, append([]string{"run", "--rm", "--network", "other", e.image}, fetch(ip)...)...)
	assert.Empty(t, res.Stdout, "networks are isolated")
	res = gocell(t, "network", "rm", "bridge")
	assert.NotEqual(t, 0, res.Code, "the default network stays")
	// container:NAME shares a's network namespace.
	res = gocell(t, append([]string{"run", "--rm", "--network", "container:a", e.image}, fetch("127.0.0.1")...)...)
	assert.Equal(t, "hello-from-a\n", res.Stdout, "a's own loopback")

	veth := state(t, "a")["endpoint"].(map[string]any)["hostVeth"].(string)
	require.Equal(t, 0, gocell(t, "rm", "-f", "a").Code)
	assert.False(t, celltest.HostLink(veth), "the veth pair goes with the container")
	_, err = httpGet("http://127.0.0.1:18080/")
	assert.Error(t, err, "the port is closed")
	require.Equal(t, 0, gocell(t, "network", "rm", "other").Code)
	// The default network's bridge stays for the next container, as
	// docker0 does (system reset removes it: see env.cleanup); the
	// container's rules went with it.
	assert.True(t, celltest.HostLink("gocell0"), "the bridge is kept")
	out, _ := exec.Command("nft", "list", "table", "ip", "gocell").CombinedOutput()
	assert.NotContains(t, string(out), "dnat to", "no port rule left")
	assert.NotContains(t, string(out), "ctr:", "no container's rule left")
	assert.NotContains(t, string(out), "gc-", "network rm removed its bridge's rules")
}

// httpGet fetches a page with a short timeout.
func httpGet(url string) (string, error) {
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestVolumes checks that a named volume outlives its container, is
// seeded from the image, that :ro is enforced by the kernel, bind
// mounts, and that a volume in use cannot be removed.
func TestVolumes(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "--name", "writer", "-v", "data:/data", e.image, "sh", "-c", "echo persisted > /data/f")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "run", "--rm", "-v", "data:/data", e.image, "cat", "/data/f")
	assert.Equal(t, "persisted\n", res.Stdout)
	res = gocell(t, "run", "--rm", "-v", "data:/data:ro", e.image, "sh", "-c", "echo x > /data/g")
	assert.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "Read-only file system", "EROFS from the kernel")

	res = gocell(t, "volume", "rm", "data")
	assert.Equal(t, 125, res.Code, "writer still uses it")
	assert.Contains(t, res.Stderr, "in use")
	require.Equal(t, 0, gocell(t, "rm", "-v", "writer").Code)
	assert.NotContains(t, gocell(t, "volume", "ls").Stdout, "data", "rm -v removed the unused volume")

	// Seeded from the image's content at the destination.
	res = gocell(t, "run", "--rm", "-v", "etc:/etc", e.image, "cat", "/etc/group")
	assert.Contains(t, res.Stdout, "root:x:0:")
	// A bind mount of a host directory.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "host-file"), []byte("from the host\n"), 0o644))
	res = gocell(t, "run", "--rm", "-v", dir+":/mnt/host:ro", e.image, "cat", "/mnt/host/host-file")
	assert.Equal(t, "from the host\n", res.Stdout)
	// Nested mounts, given child first: the parent is mounted first, or
	// it would cover the child.
	inner := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(inner, "inner-file"), []byte("inner\n"), 0o644))
	res = gocell(t, "run", "--rm", "-v", inner+":/mnt/host/inner", "-v", dir+":/mnt/host", e.image,
		"cat", "/mnt/host/inner/inner-file", "/mnt/host/host-file")
	assert.Equal(t, "inner\nfrom the host\n", res.Stdout, res.Stderr)

	// Bad volume specs.
	res = gocell(t, "run", "--rm", "-v", "na/me:/x", e.image, "true")
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.Stderr, "relative path")
	res = gocell(t, "volume", "create", "bad/name")
	assert.NotEqual(t, 0, res.Code)
}

// TestImageWorkdir: an image's WorkingDir is read as Docker reads it, a
// relative one from "/" (the runtime wants an absolute process.cwd).
func TestImageWorkdir(t *testing.T) {
	e := setup(t)
	host := testimage.Registry(t)
	img := testimage.Image(t, v1.Config{WorkingDir: "tmp", Cmd: []string{"pwd"},
		Env: []string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}}, testimage.BusyboxLayer(t))
	ref := testimage.Push(t, host, "test/workdir:1", img)
	res := gocell(t, "run", "--rm", "--network", "none", ref)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "/tmp\n", res.Stdout)
	_ = e
}

// TestSymlinkVolumeAttack runs an image whose /evil is a symlink to /etc
// with a volume at /evil: the mount must land on the container's /etc,
// never on the host's (the class of runc CVE-2021-30465).
func TestSymlinkVolumeAttack(t *testing.T) {
	e := setup(t)
	host := testimage.Registry(t)
	// Links to a host directory, and to a host path that does not exist.
	hostDir := t.TempDir()
	escape := filepath.Join(t.TempDir(), "escape")
	evil := testimage.Image(t, v1.Config{Env: []string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}},
		testimage.BusyboxLayer(t), testimage.Layer(t, []testimage.File{{Name: "evil", Link: "/etc"},
			{Name: "evil2", Link: "../../../../../../etc"}, {Name: "evil3", Link: hostDir}, {Name: "evil4", Link: escape}}))
	ref := testimage.Push(t, host, "test/evil:1", evil)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "marker"), []byte("volume\n"), 0o644))
	hostBefore := celltest.Snapshot(t)
	passwd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	for _, dest := range []string{"/evil", "/evil2"} {
		res := gocell(t, "run", "--rm", "-v", dir+":"+dest, ref, "ls", "/etc")
		assert.Equal(t, 0, res.Code, res.Stderr)
		assert.Contains(t, res.Stdout, "marker", "the mount landed on the container's /etc")
	}
	// Inside the root, those links lead nowhere: refused as dangling,
	// never followed to the host's directory, or to make the path.
	for _, dest := range []string{"/evil3", "/evil4"} {
		res := gocell(t, "run", "--rm", "-v", dir+":"+dest, ref, "true")
		assert.Equal(t, 125, res.Code, res.Stderr)
		assert.Contains(t, res.Stderr, dest+" is a dangling symlink", dest)
	}
	entries, err := os.ReadDir(hostDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the host's directory got files")
	assert.NoDirExists(t, escape)
	celltest.AssertMountsUnchanged(t, hostBefore)
	after, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	assert.Equal(t, passwd, after, "the host's /etc is untouched")
	_, err = os.Stat("/etc/marker")
	assert.True(t, os.IsNotExist(err))
	_ = e
}

// TestSystemReset removes everything gocell made; afterwards rm -rf of
// the root succeeds and no link, rule, cgroup or mount is left.
func TestSystemReset(t *testing.T) {
	e := setup(t)
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "r1", "-p", "18081:8080", "-v", "keep:/data", e.image, "sleep", "1000").Code)
	require.Equal(t, 0, gocell(t, "network", "create", "--subnet", "10.77.8.0/24", "n2").Code)
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "r2", "--network", "n2", e.image, "sleep", "1000").Code)
	pid := pidOf(t, "r1")
	id := state(t, "r1")["id"].(string)
	res := gocell(t, "system", "reset")
	assert.Equal(t, 2, res.Code, "not without --force")
	res = gocell(t, "system", "reset", "--force")
	require.Equal(t, 0, res.Code, res.Stderr)
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	assert.True(t, os.IsNotExist(err), "the containers are gone")
	assert.False(t, celltest.HostLink("gocell0"))
	out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
	assert.NotContains(t, string(out)+"\n", "table ip gocell\n", "gocell's nftables table is gone")
	assertNoCgroups(t, []string{id})
	for _, m := range celltest.Mounts(t, "self") {
		assert.False(t, strings.HasPrefix(m.MountPoint, e.root), "mount left: %s", m.MountPoint)
	}
	require.NoError(t, os.RemoveAll(e.root), "rm -rf of the root succeeds")
	require.NoError(t, os.MkdirAll(e.root, 0o755))
}

// statusLine returns the fields of a line of /proc/PID/status.
func statusLine(t *testing.T, pid int, name string) []string {
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

// TestCommitAndPrune turns a container's changes into an image, runs it,
// and prunes: stopped containers and dangling images go, tagged stay.
func TestCommitAndPrune(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "--name", "c1", e.image, "sh", "-c", "echo committed > /new-file; rm /etc/group")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "commit", "c1", "mine:v1")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, gocell(t, "images").Stdout, "mine")
	res = gocell(t, "run", "--rm", "mine:v1", "sh", "-c", "cat /new-file; ls /etc/group 2>&1")
	assert.Equal(t, "committed\nls: /etc/group: No such file or directory\n", res.Stdout, "the change and the deletion are in the new image")

	// rmi refuses an image a container uses.
	res = gocell(t, "rmi", e.image)
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "is used by container c1")

	res = gocell(t, "system", "prune")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "deleted container c1")
	assert.Empty(t, strings.TrimSpace(gocell(t, "ps", "-a", "-q").Stdout))
	assert.Contains(t, gocell(t, "images").Stdout, "mine", "tagged images stay")
	require.Equal(t, 0, gocell(t, "rmi", "mine:v1").Code)
}

// TestLogsFollow follows a container's output until it stops.
func TestLogsFollow(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "talker", e.image, "sh", "-c", "for i in 1 2 3; do echo line $i; echo err $i >&2; sleep 0.3; done")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "logs", "-f", "talker")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "line 1\nline 2\nline 3\n", res.Stdout, "-f returns when the container stops, with every line")
	assert.Equal(t, "err 1\nerr 2\nerr 3\n", res.Stderr, "stderr lines go to stderr")
}

// TestTerminal runs run -it and exec -it on a pseudo-terminal of the
// test's: the command sees a terminal of the container's own, with the
// window size the outer terminal has.
func TestTerminal(t *testing.T) {
	e := setup(t)
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "up", "--network", "none", e.image, "sleep", "1000").Code)
	script := "stty size; [ -t 0 ] && [ -t 1 ] && echo on-a-terminal; tty; exit 4"
	for _, args := range [][]string{
		{"run", "--rm", "-it", e.image, "sh", "-c", script},
		{"exec", "-it", "up", "sh", "-c", script},
	} {
		ptmx, tty, err := pty.Open()
		require.NoError(t, err)
		defer ptmx.Close()
		require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 33, Cols: 77}))
		cli := exec.Command(os.Args[0], args...)
		cli.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1")
		cli.Stdin, cli.Stdout, cli.Stderr = tty, tty, tty
		cli.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		require.NoError(t, cli.Start())
		tty.Close()
		out := make(chan string)
		go func() {
			b, _ := io.ReadAll(ptmx)
			out <- string(b)
		}()
		err = cli.Wait()
		var exitErr *exec.ExitError
		require.ErrorAs(t, err, &exitErr, args[0])
		assert.Equal(t, 4, exitErr.ExitCode(), args[0])
		select {
		case s := <-out:
			assert.Contains(t, s, "33 77", "%s: the window size passed through", args[0])
			assert.Contains(t, s, "on-a-terminal", "%s: the command's stdin and stdout are a terminal", args[0])
			// The terminal is one of the container's own devpts, which
			// its /dev/pts holds: tty(1) finds it there.
			assert.Regexp(t, `/dev/pts/\d+`, s, "%s: tty(1)", args[0])
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no output from the terminal", args[0])
		}
	}
	require.Equal(t, 0, gocell(t, "rm", "-f", "up").Code)
}

// TestUserNamespace runs a --userns container and checks from outside:
// the command's uid_map and Uid line, its user namespace, who owns on
// disk the files its root made, and that root inside is still refused
// what only the host's root may do. The image's files, owned by the
// host's root, are root's inside through idmapped layers.
func TestUserNamespace(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--userns", "--name", "u", e.image, "sh", "-c",
		"touch /etc/made-inside && echo x >> /etc/passwd && echo ready; exec sleep 1000")
	var fs unix.Statfs_t
	require.NoError(t, unix.Statfs(e.root, &fs))
	if fs.Type == unix.TMPFS_MAGIC && kernelBefore(t, 6, 3) {
		// tmpfs has idmapped mounts since Linux 6.3 only: with the root
		// there (as in the VM tests, on 6.1), gocell must say why it
		// cannot, and leave nothing running.
		assert.Equal(t, 125, res.Code)
		assert.Contains(t, res.Stderr, "cannot be idmapped")
		// The monitor reports the failure first, then cleans up.
		assert.Eventually(t, func() bool { return findProcess(e.root, "") == 0 },
			5*time.Second, 10*time.Millisecond, "a process is left")
		return
	}
	require.Equal(t, 0, res.Code, res.Stderr)
	id := strings.TrimSpace(res.Stdout)
	require.Eventually(t, func() bool { return gocell(t, "logs", "u").Stdout == "ready\n" },
		10*time.Second, 50*time.Millisecond, "the command could write to its root")
	cmd := pidOf(t, "u")
	celltest.AssertNamespaces(t, cmd, "uts", "pid", "mnt", "ipc", "net", "cgroup", "user")
	uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", cmd))
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "100000", "65536"}, strings.Fields(string(uidMap)))
	assert.Equal(t, []string{"100000", "100000", "100000", "100000"}, statusLine(t, cmd, "Uid:"))

	// On disk, in the writable layer, what root made belongs to 100000,
	// a copied-up file included.
	for _, f := range []string{"etc/made-inside", "etc/passwd"} {
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(filepath.Join(e.root, "containers", id, "upper", f), &st), f)
		assert.Equal(t, uint32(100000), st.Uid, f)
		assert.Equal(t, uint32(100000), st.Gid, f)
	}
	// Inside, the image's files are root's, and exec runs as root there.
	res = gocell(t, "exec", "u", "sh", "-c", "stat -c '%u %g' /bin/busybox; id -u; hostname x || echo no-sethostname; "+
		"readlink /proc/self/ns/user")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "0 0\n0\nno-sethostname\n"+celltest.NamespaceOf(t, cmd, "user")+"\n", res.Stdout,
		"an exec'd process shares the command's user namespace")
	// Its root may still listen on port 80 of its own network namespace:
	// a listening socket (state 0A) on port 0x50 in the namespace's
	// /proc/net/tcp6 (busybox httpd listens on ::, for IPv4 too).
	res = gocell(t, "exec", "u", "httpd", "-p", "80", "-h", "/")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Eventually(t, func() bool {
		tcp, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp6", cmd))
		return regexp.MustCompile(`:0050 0+:0000 0A`).Match(tcp)
	}, 5*time.Second, 20*time.Millisecond, "nothing listens on port 80")

	// Not yet together with volumes, nor for commit.
	res = gocell(t, "run", "--rm", "--userns", "-v", "data:/d", e.image, "true")
	assert.Equal(t, 2, res.Code)
	assert.Contains(t, res.Stderr, "--userns with -v is not supported yet")
	res = gocell(t, "commit", "u", "u:1")
	assert.Equal(t, 2, res.Code)
	require.Equal(t, 0, gocell(t, "rm", "-f", "u").Code)
}

// TestDetachedTerminal: with -dit the monitor gives the command a
// pseudo-terminal of its own, so a shell stays up in the background, and
// logs its output; a container created with -t starts the same way.
func TestDetachedTerminal(t *testing.T) {
	e := setup(t)
	script := "[ -t 0 ] && [ -t 1 ] && echo on-a-terminal; stty size; exec sleep 1000"
	res := gocell(t, "run", "-dit", "--name", "bg", e.image, "sh", "-c", script)
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Equal(t, 0, gocell(t, "create", "-t", "--name", "later", e.image, "sh", "-c", script).Code)
	res = gocell(t, "start", "-a", "later")
	assert.Equal(t, 2, res.Code, "start -a needs a terminal for a -t container")
	assert.Contains(t, res.Stderr, "later has a terminal (-t)")
	res = gocell(t, "start", "later")
	require.Equal(t, 0, res.Code, res.Stderr)

	for _, name := range []string{"bg", "later"} {
		cmd := pidOf(t, name)
		require.Eventually(t, func() bool {
			return strings.Contains(gocell(t, "logs", name).Stdout, "24 80")
		}, 10*time.Second, 50*time.Millisecond, "%s: no output logged", name)
		// From outside: its stdin is a pseudo-terminal's slave end, a
		// character device with a major number of 136 to 143. devices.txt
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(fmt.Sprintf("/proc/%d/fd/0", cmd), &st))
		assert.Equal(t, uint32(syscall.S_IFCHR), st.Mode&syscall.S_IFMT, name)
		assert.True(t, unix.Major(st.Rdev) >= 136 && unix.Major(st.Rdev) <= 143,
			"%s: stdin is device %d:%d", name, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		assert.Contains(t, gocell(t, "logs", name).Stdout, "on-a-terminal", name)
		assert.Equal(t, "running", state(t, name)["status"], name)
		require.Equal(t, 0, gocell(t, "rm", "-f", name).Code)
	}
}

// TestShim: once a detached container runs, its monitor becomes the shim
// (package shim): gocell-shim, or, with GOCELL_SHIM=none, gocell itself as
// `gocell __shim`. Either way, from outside: the container's process is
// still the monitor's child; what it writes after the handover is logged,
// on the stream it came from, through pipes and through a terminal; its
// exit code is recorded; --rm removes it; and its cgroup goes.
func TestShim(t *testing.T) {
	e := setup(t)
	// Each container waits for /tmp/go, which the test makes once the
	// monitor has handed over: the output comes after that.
	wait := "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
	for _, c := range []struct{ shim, exe string }{{testShim(t), "gocell-shim"}, {"none", "gocell"}} {
		t.Run(c.exe, func(t *testing.T) {
			t.Setenv(container.ShimEnv, c.shim)
			release := func(name string) (pid, monitor int, dirs map[string]string) {
				st := state(t, name)
				require.Equal(t, "running", st["status"], "%s: %v", name, st)
				pid, monitor = int(st["pid"].(float64)), int(st["monitor"].(float64))
				monitorExe(t, monitor, c.exe)
				if c.shim == "none" {
					cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", monitor))
					assert.Contains(t, strings.Split(string(cmdline), "\x00"), container.ShimArg)
				}
				assert.Equal(t, []string{strconv.Itoa(monitor)}, statusLine(t, pid, "PPid:"),
					"the container's process is the shim's child")
				dirs, _ = celltest.CgroupDirs(t, pid)
				require.NoError(t, os.WriteFile(fmt.Sprintf("/proc/%d/root/tmp/go", pid), nil, 0o644))
				return pid, monitor, dirs
			}
			stopped := func(name string) {
				require.Eventually(t, func() bool { return state(t, name)["status"] == "exited" },
					10*time.Second, 20*time.Millisecond, "%s does not stop", name)
			}

			res := gocell(t, "run", "-d", "--name", "pipes", "--network", "none", e.image, "sh", "-c",
				"echo before; "+wait+"echo after-out; echo after-err >&2; exit 7")
			require.Equal(t, 0, res.Code, res.Stderr)
			_, monitor, dirs := release("pipes")
			stopped("pipes")
			assert.Equal(t, float64(7), state(t, "pipes")["exitCode"])
			logs := gocell(t, "logs", "pipes")
			assert.Equal(t, "before\nafter-out\n", logs.Stdout)
			assert.Equal(t, "after-err\n", logs.Stderr)
			require.Eventually(t, func() bool { return procGone(monitor) }, 5*time.Second, 10*time.Millisecond)
			for c, dir := range dirs {
				assert.NoDirExists(t, dir, "the %s cgroup is left", c)
			}

			// What a start with another gocell does (binCopy), and an
			// edit of the configuration file: neither may take the
			// clean-up from a container that runs, which executes
			// gocell __finish, re-reading the configuration, at its end.
			config := filepath.Join(t.TempDir(), "config.json")
			require.NoError(t, os.WriteFile(config, []byte("{}"), 0o644))
			t.Setenv("GOCELL_CONFIG", config)
			res = gocell(t, "run", "-d", "--name", "kept", "--network", "none", e.image, "sh", "-c", wait+"exit 9")
			require.Equal(t, 0, res.Code, res.Stderr)
			monitorExe(t, int(state(t, "kept")["monitor"].(float64)), c.exe)
			for _, name := range []string{"gocell", "gocell-shim"} {
				require.NoError(t, os.RemoveAll(filepath.Join(e.root, "bin", name)))
			}
			kept, keptID := pidOf(t, "kept"), state(t, "kept")["id"].(string)
			require.NoError(t, os.WriteFile(config, []byte("{ broken"), 0o644))
			require.NoError(t, os.WriteFile(fmt.Sprintf("/proc/%d/root/tmp/go", kept), nil, 0o644))
			// The CLI cannot read the broken file either: the state
			// itself says when the end is recorded.
			require.Eventually(t, func() bool {
				data, _ := os.ReadFile(filepath.Join(e.root, "containers", keptID, "state.json"))
				return strings.Contains(string(data), `"status": "exited"`)
			}, 10*time.Second, 10*time.Millisecond, "kept does not stop")
			require.NoError(t, os.WriteFile(config, []byte("{}"), 0o644))
			st := state(t, "kept")
			assert.Equal(t, float64(9), st["exitCode"], "the end is recorded: %v", st)
			assert.Empty(t, st["error"])
			require.Equal(t, 0, gocell(t, "rm", "kept").Code)

			res = gocell(t, "run", "-dt", "--name", "tty", "--network", "none", e.image, "sh", "-c",
				wait+"echo on-the-terminal")
			require.Equal(t, 0, res.Code, res.Stderr)
			release("tty")
			stopped("tty")
			assert.Contains(t, gocell(t, "logs", "tty").Stdout, "on-the-terminal")

			res = gocell(t, "run", "-d", "--rm", "--name", "gone", "--network", "none", e.image, "sh", "-c", wait)
			require.Equal(t, 0, res.Code, res.Stderr)
			id := state(t, "gone")["id"].(string)
			_, monitor, _ = release("gone")
			require.Eventually(t, func() bool { return procGone(monitor) }, 10*time.Second, 10*time.Millisecond)
			assert.NoDirExists(t, filepath.Join(e.root, "containers", id), "--rm left the container")
			for _, name := range []string{"pipes", "tty"} {
				require.Equal(t, 0, gocell(t, "rm", name).Code)
			}
		})
	}

	// A shim that is not there, or not a gocell-shim: one clear error,
	// before anything runs, and nothing left of a --rm container.
	for _, bad := range []struct{ shim, want string }{
		{"/nonexistent/gocell-shim", "GOCELL_SHIM=/nonexistent/gocell-shim"},
		{"/bin/true", "is not a gocell-shim of this gocell"},
	} {
		t.Setenv(container.ShimEnv, bad.shim)
		res := gocell(t, "run", "-d", "--rm", "--name", "noshim", "--network", "none", e.image, "true")
		assert.Equal(t, 125, res.Code, bad.shim)
		assert.Contains(t, res.Stderr, bad.want)
		assert.NotContains(t, gocell(t, "ps", "-a").Stdout, "noshim", "%s: the --rm container is left", bad.shim)
		assert.Zero(t, findProcess(e.root, ""), "%s: a process is left", bad.shim)
	}
}

// procGone says whether no process has pid (a zombie still counts as
// one: the shim's parent reaps it).
func procGone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return os.IsNotExist(err)
}

// TestNetworkBadInput: malformed -p, a network in use, a bad subnet.
func TestNetworkBadInput(t *testing.T) {
	e := setup(t)
	for _, p := range []string{"80", "x:80", "70000:80", "8080:80/sctp"} {
		res := gocell(t, "run", "--rm", "-p", p, e.image, "true")
		assert.Equal(t, 2, res.Code, p)
		assert.Contains(t, res.Stderr, "-p \""+p+"\"", p)
	}
	res := gocell(t, "network", "create", "--subnet", "10.77.0.0/24", "clash")
	assert.NotEqual(t, 0, res.Code, "overlaps the default network")
	res = gocell(t, "network", "create", "--subnet", "banana", "n")
	assert.NotEqual(t, 0, res.Code)
	require.Equal(t, 0, gocell(t, "network", "create", "--subnet", "10.77.7.0/24", "busy").Code)
	require.Equal(t, 0, gocell(t, "create", "--name", "user", "--network", "busy", e.image, "true").Code)
	res = gocell(t, "network", "rm", "busy")
	assert.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "in use")
	res = gocell(t, "run", "--rm", "--network", "nowhere", e.image, "true")
	assert.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "nowhere")
	require.Equal(t, 0, gocell(t, "rm", "user").Code)
	require.Equal(t, 0, gocell(t, "network", "rm", "busy").Code)
}

// TestPidsLimit: --pids-limit N gives the container's own processes N
// tasks, as Docker's does. The command is pid 1 and no process of
// gocell's is in the container's cgroup, so the command and N-1 more run;
// the next fork is refused.
func TestPidsLimit(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "p", "--network", "none", "--pids-limit", "10", e.image,
		"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9; do sleep 1000 & done; echo ready; wait")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Eventually(t, func() bool { return gocell(t, "logs", "p").Stdout == "ready\n" },
		10*time.Second, 20*time.Millisecond, "the nine started")
	dirs, _ := celltest.CgroupDirs(t, pidOf(t, "p"))
	assert.Equal(t, "10", celltest.ReadCgroupValue(t, dirs["pids"], "pids.max", ""))
	assert.Equal(t, "10", celltest.ReadCgroupValue(t, dirs["pids"], "pids.current", ""))
	procs, err := os.ReadFile(filepath.Join(dirs["pids"], "cgroup.procs"))
	require.NoError(t, err)
	for _, pid := range strings.Fields(string(procs)) {
		exe, err := os.Readlink("/proc/" + pid + "/exe")
		require.NoError(t, err)
		assert.Equal(t, "/bin/busybox", exe, "pid %s of the cgroup is not the image's", pid)
	}
	res = gocell(t, "exec", "p", "sh", "-c", "sleep 1 & wait")
	assert.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "can't fork", "the eleventh task")
	require.Equal(t, 0, gocell(t, "rm", "-f", "p").Code)
}

// TestConcurrentRuns starts 50 containers at once: they get 50 distinct
// addresses, and once they are removed every lease is free again.
func TestConcurrentRuns(t *testing.T) {
	e := setup(t)
	const n = 50
	results := make(chan celltest.Result, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			// 50 at once take 45 s in the test VM, whose CPUs are
			// emulated: a limit that catches a hang, not a timing.
			results <- celltest.RunSlow(t, 5*time.Minute, "run", "-d", "--name", fmt.Sprintf("c%02d", i), e.image, "sleep", "1000")
		}(i)
	}
	for i := 0; i < n; i++ {
		res := <-results
		require.Equal(t, 0, res.Code, res.Stderr)
	}
	seen := map[string]string{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("c%02d", i)
		ep, ok := state(t, name)["endpoint"].(map[string]any)
		require.True(t, ok, "%s has no endpoint", name)
		ip := ep["ip"].(string)
		assert.Empty(t, seen[ip], "%s and %s both got %s", name, seen[ip], ip)
		seen[ip] = name
	}
	assert.Len(t, seen, n)
	ids := strings.Fields(gocell(t, "ps", "-q").Stdout)
	require.Len(t, ids, n)
	res := gocell(t, append([]string{"rm", "-f"}, ids...)...)
	require.Equal(t, 0, res.Code, res.Stderr)
	leases, _ := filepath.Glob(filepath.Join(e.root, "network", "leases", "*", "*"))
	assert.Empty(t, leases, "every address is free again")
	// The pool is whole: the next container gets the first address.
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "next", e.image, "sleep", "1000").Code)
	assert.Equal(t, "10.77.0.2", state(t, "next")["endpoint"].(map[string]any)["ip"])
}

// TestStopTimeout stops a command that ignores SIGTERM: after the
// timeout, SIGKILL, and the status says so.
func TestStopTimeout(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "stubborn", e.image, "sh", "-c", "trap '' TERM; while true; do sleep 1; done")
	require.Equal(t, 0, res.Code, res.Stderr)
	start := time.Now()
	res = gocell(t, "stop", "-t", "1", "stubborn")
	require.Equal(t, 0, res.Code, res.Stderr)
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, time.Second, "it waited for the timeout")
	assert.Less(t, took, 8*time.Second)
	st := state(t, "stubborn")
	assert.Equal(t, "exited", st["status"])
	assert.Equal(t, float64(128+9), st["exitCode"], "killed by SIGKILL")
	// A paused container cannot take exec requests; it says so.
	require.Equal(t, 0, gocell(t, "start", "stubborn").Code)
	require.Equal(t, 0, gocell(t, "pause", "stubborn").Code)
	res = gocell(t, "exec", "stubborn", "true")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "is paused")
	require.Equal(t, 0, gocell(t, "rm", "-f", "stubborn").Code, "rm -f of a paused container")
}
