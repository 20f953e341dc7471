// Package ociclients runs gocell-runtime under the engines that call OCI
// runtimes for a living: podman 4 (through conmon) and containerd 1.6
// (through its runc shim), as Debian packages them. What they send is
// theirs, not a bundle these tests made: their config.json, their
// cgroupsPath, their console and exec conventions. The tests check the
// results from outside (/proc, cgroupfs, mountinfo), and that the engines
// and the runtime leave nothing behind.
//
// The tests need the engines installed (scripts/provision.sh installs
// them; .ci/run provisions first), and run on the host only: the test VM
// has no podman.
package ociclients

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/gocell/gocell/internal/testimage"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// built is gocell-runtime, built once for all tests, statically: exec
// runs a copy of it inside containers, which have no dynamic loader.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func runtimeBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "gocell-runtime-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "gocell-runtime")
		cmd := exec.Command("go", "build", "-o", built.path, "github.com/gocell/gocell/final/cmd/gocell-runtime")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build gocell-runtime: %v: %s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.path
}

// need fails the test if a program is missing: CI installs them all.
func need(t *testing.T, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed (sudo scripts/provision.sh installs it)", p)
		}
	}
}

// removeIfNew removes, when the test ends, those of paths that do not
// exist now: state the engines keep outside the directories a test can
// give them. Cgroup directories go deepest first, with rmdir(2).
func removeIfNew(t *testing.T, paths ...string) {
	t.Helper()
	var fresh []string
	for _, p := range paths {
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			fresh = append(fresh, p)
		}
	}
	t.Cleanup(func() {
		for _, p := range fresh {
			if strings.HasPrefix(p, "/sys/fs/cgroup/") {
				var dirs []string
				filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						dirs = append(dirs, path)
					}
					return nil
				})
				sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
				for _, d := range dirs {
					if err := unix.Rmdir(d); err != nil {
						t.Errorf("rmdir %s: %v", d, err)
					}
				}
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				t.Errorf("remove %s: %v", p, err)
			}
		}
	})
}

// cgroupRoots are the directories cgroups hang from: each v1 hierarchy
// and the v2 one.
func cgroupRoots(t *testing.T) []string {
	var roots []string
	for _, m := range celltest.Mounts(t, "self") {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			roots = append(roots, m.MountPoint)
		}
	}
	return roots
}

// underEachRoot is name in every cgroup hierarchy.
func underEachRoot(t *testing.T, name string) []string {
	var paths []string
	for _, r := range cgroupRoots(t) {
		paths = append(paths, filepath.Join(r, name))
	}
	return paths
}

// cgroupsOf are the directories of a process's cgroups whose path has
// own in it: the container's, not those of the hierarchies it was not
// put in, where it stays in its parent's.
func cgroupsOf(t *testing.T, pid int, own string) []string {
	t.Helper()
	var dirs []string
	for _, d := range celltest.ProcCgroupDirs(t, pid) {
		if strings.Contains(d, own) {
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	return dirs
}

// parentComm is the command name of a process's parent.
func parentComm(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	comm, err := os.ReadFile("/proc/" + f[1] + "/comm")
	require.NoError(t, err)
	return strings.TrimSpace(string(comm))
}

func gone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if unix.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("process %d is still there", pid)
}

// assertClean checks that nothing under dir is mounted, that no process
// mentions dir on its command line, and that the container's cgroups and
// other paths are gone. The engines finish some of it in the background
// (conmon runs "podman container cleanup" when the container exits):
// they get five seconds.
func assertClean(t *testing.T, dir string, gonePaths []string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = nil
		for _, m := range celltest.Mounts(t, "self") {
			if strings.HasPrefix(m.MountPoint, dir) {
				left = append(left, "mounted: "+m.MountPoint)
			}
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			data, _ := os.ReadFile(p)
			if bytes.Contains(data, []byte(dir)) {
				left = append(left, fmt.Sprintf("running: %s %s", p, bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
			}
		}
		for _, p := range gonePaths {
			if _, err := os.Stat(p); err == nil {
				left = append(left, "still there: "+p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, l := range left {
		t.Error(l)
	}
}

// unmountUnder unmounts, deepest first, whatever an engine left mounted
// under dir, so that a failed test does not leave it on the machine.
func unmountUnder(t *testing.T, dir string) {
	var points []string
	for _, m := range celltest.Mounts(t, "self") {
		if strings.HasPrefix(m.MountPoint, dir) {
			points = append(points, m.MountPoint)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		unix.Unmount(p, unix.MNT_DETACH)
	}
}

// run runs a command and returns its stdout, stderr and exit status.
func run(t *testing.T, stdin string, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), errb.String(), code
}

// TestPodman: podman runs, detaches, execs into, stops and removes a
// container with gocell-runtime as its OCI runtime, from an image
// imported offline, and reports the exit statuses.
func TestPodman(t *testing.T) {
	celltest.RequirePriv(t)
	need(t, "podman", "conmon", "go")
	rt := runtimeBinary(t)
	dir := t.TempDir()
	// What podman keeps outside --root, --runroot and --tmpdir, the
	// parent cgroup it makes with cgroupfs, and the runtime's state.
	// That stays in gocell-runtime's default --root: podman 4.3 passes
	// --runtime-flag to the runtime, but not to the "podman container
	// cleanup" that conmon runs when the container exits, whose delete
	// would look in the default root and find nothing to remove.
	state := "/run/gocell-runtime"
	removeIfNew(t, append([]string{"/run/libpod", "/run/containers", "/var/lib/containers", state},
		underEachRoot(t, "libpod_parent")...)...)
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--volumepath", filepath.Join(dir, "volumes"),
		"--runtime", rt, "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--storage-driver", "overlay"}
	podman := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, "", "podman", append(append([]string{}, base...), args...)...)
	}
	t.Cleanup(func() {
		podman("rm", "--all", "--force", "--time", "0")
		podman("system", "reset", "--force")
		unmountUnder(t, dir)
	})
	// This machine's root lacks CAP_SYS_RESOURCE, so podman's default
	// rlimits (files and processes: 1048576) cannot be set; any runtime
	// fails the same way. Ask for what the machine allows.
	ulimits := []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	rootfs, err := testimage.BusyboxLayer(t).Uncompressed()
	require.NoError(t, err)
	tarPath := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(tarPath)
	require.NoError(t, err)
	_, err = f.ReadFrom(rootfs)
	require.NoError(t, err)
	f.Close()
	_, stderr, code := podman("import", "--change", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", tarPath, "localhost/gocell-test:busybox")
	require.Equal(t, 0, code, stderr)
	image := "localhost/gocell-test:busybox"

	// run --rm: the output, and the exit status, through conmon.
	out, stderr, code := podman(append(append([]string{"run", "--rm", "--network", "none"}, ulimits...),
		image, "sh", "-c", "echo hello from podman; cat /proc/self/status | grep CapEff; exit 3")...)
	assert.Equal(t, 3, code, stderr)
	assert.Contains(t, out, "hello from podman")
	assert.Contains(t, out, "CapEff:\t00000000800405fb", "podman's default capabilities")

	// run -d: a process of the container, seen from outside.
	out, stderr, code = podman(append(append([]string{"run", "-d", "--name", "web", "--network", "none",
		"--memory", "64m", "--pids-limit", "30"}, ulimits...), image, "sleep", "1000")...)
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(out)
	out, _, _ = podman("inspect", "--format", "{{.State.Pid}} {{.State.Status}}", "web")
	f2 := strings.Fields(out)
	require.Len(t, f2, 2, out)
	pid, _ := strconv.Atoi(f2[0])
	assert.Equal(t, "running", f2[1])
	assert.Equal(t, "conmon", parentComm(t, pid), "conmon is its parent (the subreaper)")
	assert.FileExists(t, filepath.Join(state, id, "state.json"), "gocell-runtime's state")
	assert.NotEqual(t, celltest.NamespaceOf(t, os.Getpid(), "pid"), celltest.NamespaceOf(t, pid, "pid"))
	assert.NotEqual(t, celltest.NamespaceOf(t, os.Getpid(), "mnt"), celltest.NamespaceOf(t, pid, "mnt"))
	cgroups := cgroupsOf(t, pid, "libpod-"+id)
	require.NotEmpty(t, cgroups)
	limits := map[string]string{}
	for _, c := range cgroups {
		for _, file := range []string{"memory.max", "memory.limit_in_bytes", "pids.max"} {
			if data, err := os.ReadFile(filepath.Join(c, file)); err == nil {
				limits[file] = strings.TrimSpace(string(data))
			}
		}
	}
	assert.Equal(t, "30", limits["pids.max"], "--pids-limit in the container's cgroup")
	assert.Contains(t, []string{limits["memory.max"], limits["memory.limit_in_bytes"]}, "67108864", "--memory")

	// exec: output, and exit statuses, fast commands included (conmon
	// must be the one that reaps them).
	out, stderr, code = podman("exec", "web", "sh", "-c", "echo exec-in; ps")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "exec-in")
	assert.Contains(t, out, "sleep 1000")
	for _, want := range []int{0, 7, 42} {
		_, stderr, code = podman("exec", "web", "sh", "-c", fmt.Sprintf("exit %d", want))
		assert.Equal(t, want, code, stderr)
	}
	out, stderr, code = podman("exec", "-t", "web", "tty")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "/dev/pts/0", "a terminal from the container's own devpts")

	// stop: sleep, process 1, ignores SIGTERM; podman kills it.
	_, stderr, code = podman("stop", "--time", "1", "web")
	assert.Equal(t, 0, code, stderr)
	gone(t, pid)
	out, _, _ = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "web")
	assert.Equal(t, "exited 137", strings.TrimSpace(out))
	_, stderr, code = podman("rm", "web")
	assert.Equal(t, 0, code, stderr)
	assertClean(t, dir, append(cgroups, filepath.Join(state, id)))
}

// TestContainerd: containerd, started by the test on its own socket and
// directories, runs containers with gocell-runtime through its runc shim
// (ctr run --runc-binary), from an image imported with ctr image import.
func TestContainerd(t *testing.T) {
	celltest.RequirePriv(t)
	need(t, "containerd", "ctr", "containerd-shim-runc-v2", "go")
	rt := runtimeBinary(t)
	dir := t.TempDir()
	const ns = "gocell-test"
	// The shim's sockets are under /run/containerd/s whatever the
	// configuration; ctr's FIFOs under /run/containerd/fifo. ctr puts
	// a container's cgroup at /NAMESPACE/ID.
	removeIfNew(t, append([]string{"/run/containerd"}, underEachRoot(t, ns)...)...)
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600))
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	require.NoError(t, err)
	defer logf.Close()
	daemon := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	daemon.Stdout, daemon.Stderr = logf, logf
	daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, daemon.Start())
	ctr := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, "", "ctr", append([]string{"--address", sock, "--namespace", ns}, args...)...)
	}
	t.Cleanup(func() {
		// Whatever a failed test left: its tasks, containers, the daemon,
		// and the shims, which outlive it by design.
		out, _, _ := ctr("task", "ls", "--quiet")
		for _, id := range strings.Fields(out) {
			ctr("task", "kill", "--signal", "KILL", id)
			time.Sleep(200 * time.Millisecond)
			ctr("task", "rm", "--force", id)
		}
		out, _, _ = ctr("container", "ls", "--quiet")
		for _, id := range strings.Fields(out) {
			ctr("container", "rm", id)
		}
		ctr("image", "rm", "localhost/gocell-test:busybox")
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(sock)) {
				pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		unmountUnder(t, dir)
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Logf("containerd's log:\n%s", data)
		}
	})
	for i := 0; ; i++ {
		if _, _, code := ctr("version"); code == 0 {
			break
		}
		require.Less(t, i, 100, "containerd did not start")
		time.Sleep(100 * time.Millisecond)
	}

	// A docker-save archive of busybox, made here: nothing downloaded.
	ref, err := name.ParseReference("localhost/gocell-test:busybox")
	require.NoError(t, err)
	archive := filepath.Join(dir, "busybox.tar")
	require.NoError(t, tarball.WriteToFile(archive, ref, testimage.BusyboxImage(t)))
	_, stderr, code := ctr("image", "import", archive)
	require.Equal(t, 0, code, stderr)
	image := "localhost/gocell-test:busybox"
	runc := []string{"--runc-binary", rt, "--runc-root", filepath.Join(dir, "runtime")}

	out, stderr, code := ctr(append(append([]string{"run", "--rm"}, runc...),
		image, "c1", "sh", "-c", "echo hello from containerd; exit 5")...)
	assert.Equal(t, 5, code, stderr)
	assert.Contains(t, out, "hello from containerd")

	_, stderr, code = ctr(append(append([]string{"run", "--detach", "--memory-limit", "67108864"}, runc...),
		image, "c2", "sleep", "1000")...)
	require.Equal(t, 0, code, stderr)
	out, _, _ = ctr("task", "ls")
	var pid int
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "c2" {
			pid, _ = strconv.Atoi(f[1])
			assert.Equal(t, "RUNNING", f[2])
		}
	}
	require.NotZero(t, pid, out)
	assert.Equal(t, "containerd-shim", parentComm(t, pid), "the shim is its parent")
	assert.FileExists(t, filepath.Join(dir, "runtime", ns, "c2", "state.json"), "gocell-runtime's state, in --runc-root")
	cgroups := cgroupsOf(t, pid, "/"+ns+"/c2")
	require.NotEmpty(t, cgroups, "ctr's cgroupsPath, /NAMESPACE/ID")
	for _, c := range cgroups {
		for _, file := range []string{"memory.max", "memory.limit_in_bytes"} {
			if data, err := os.ReadFile(filepath.Join(c, file)); err == nil {
				assert.Equal(t, "67108864", strings.TrimSpace(string(data)), file)
			}
		}
	}
	out, stderr, code = ctr("task", "exec", "--exec-id", "e1", "c2", "sh", "-c", "echo exec-in; exit 4")
	assert.Equal(t, 4, code, stderr)
	assert.Contains(t, out, "exec-in")
	_, stderr, code = ctr("task", "kill", "--signal", "KILL", "c2")
	assert.Equal(t, 0, code, stderr)
	gone(t, pid)
	for i := 0; i < 100; i++ {
		if out, _, _ = ctr("task", "ls"); strings.Contains(out, "STOPPED") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, stderr, code = ctr("task", "rm", "c2")
	assert.Equal(t, 0, code, stderr)
	_, stderr, code = ctr("container", "rm", "c2")
	assert.Equal(t, 0, code, stderr)
	assertClean(t, filepath.Join(dir, "root"), append(cgroups, filepath.Join(dir, "runtime", ns, "c2")))
}

// TestPodmanPullsFromGocellRegistry: podman pulls, over plain http, an
// image that `gocell registry serve` serves from gocell's store, and gets
// the very image: the same ID, podman's being the config's digest too.
func TestPodmanPullsFromGocellRegistry(t *testing.T) {
	celltest.RequirePriv(t)
	need(t, "podman", "go")
	dir := t.TempDir()
	gocell := filepath.Join(dir, "gocell")
	build := exec.Command("go", "build", "-o", gocell, "github.com/gocell/gocell/final")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	root := filepath.Join(dir, "gocell-root")
	g := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, "", gocell, append([]string{"--root", root, "--config", filepath.Join(dir, "none.json")}, args...)...)
	}
	src := testimage.Push(t, testimage.Registry(t), "test/busybox:1", testimage.BusyboxImage(t))
	id, stderr, code := g("pull", src)
	require.Equal(t, 0, code, stderr)
	id = strings.TrimSpace(id)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	serve := exec.Command(gocell, "--root", root, "registry", "serve", "--addr", addr)
	var log bytes.Buffer
	serve.Stdout, serve.Stderr = &log, &log
	require.NoError(t, serve.Start())
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)

	removeIfNew(t, "/run/libpod", "/run/containers", "/var/lib/containers")
	// podman wants a runroot of at most 50 characters: t.TempDir()'s
	// names the test, and is too long.
	pdir, err := os.MkdirTemp("", "gocell-podman-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(pdir) })
	base := []string{"--root", filepath.Join(pdir, "root"), "--runroot", filepath.Join(pdir, "run"),
		"--tmpdir", filepath.Join(pdir, "tmp"), "--events-backend", "none", "--storage-driver", "overlay"}
	podman := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, "", "podman", append(append([]string{}, base...), args...)...)
	}
	t.Cleanup(func() {
		podman("system", "reset", "--force")
		unmountUnder(t, pdir)
	})
	_, stderr, code = podman("pull", "--tls-verify=false", addr+"/test/busybox:1")
	require.Equal(t, 0, code, "%s\nthe registry said:\n%s", stderr, log.String())
	got, stderr, code := podman("image", "inspect", "--format", "{{.Id}}", addr+"/test/busybox:1")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, strings.TrimPrefix(id, "sha256:"), strings.TrimSpace(got), "podman's image is gocell's, by ID")
}
