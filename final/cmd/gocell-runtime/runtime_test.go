package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/final/internal/oci"
	"github.com/gocell/gocell/final/internal/seccomp"
	"github.com/gocell/gocell/internal/celltest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The tests drive gocell-runtime as its clients do, through its command
// line, on bundles they make, and look at the containers from outside:
// /proc/PID (namespaces, ids, capabilities, limits, mounts), cgroupfs,
// the files hooks write. The runtime is this test binary itself, which
// runs main() when GOCELL_RUNTIME_MAIN=1 (and always for __init and
// __exec, which it runs again as). It must be statically linked
// (CGO_ENABLED=0, as scripts/test.sh builds it): exec runs a copy of it
// inside the container, where there is no dynamic loader.

const envMain = "GOCELL_RUNTIME_MAIN"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "__init" || os.Args[1] == "__exec") || os.Getenv(envMain) == "1" {
		os.Args[0] = "gocell-runtime"
		main()
	}
	os.Exit(m.Run())
}

// rt is one test's runtime: its own --root.
type rt struct {
	t    *testing.T
	root string
}

func newRT(t *testing.T) *rt {
	t.Helper()
	celltest.RequirePriv(t)
	self, err := os.Executable()
	require.NoError(t, err)
	f, err := elf.Open(self)
	require.NoError(t, err)
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("this test binary is dynamically linked: build it with CGO_ENABLED=0 (scripts/test.sh does)")
		}
	}
	f.Close()
	r := &rt{t: t, root: filepath.Join(t.TempDir(), "state")}
	t.Cleanup(func() {
		// Whatever a failed test left: every container goes.
		entries, _ := os.ReadDir(r.root)
		for _, e := range entries {
			r.run("delete", "--force", e.Name())
		}
	})
	return r
}

// result is how one command ended.
type result struct {
	code           int
	stdout, stderr string
}

// run runs gocell-runtime with args, and waits.
func (r *rt) run(args ...string) result {
	return r.runIn("", nil, args...)
}

func (r *rt) runIn(stdin string, env []string, args ...string) result {
	r.t.Helper()
	return r.runWith(stdin, env, nil, args...)
}

// runWith is runIn with extra descriptors left open (fd 3 on) for the
// runtime, as a careless caller may.
func (r *rt) runWith(stdin string, env []string, extra []*os.File, args ...string) result {
	r.t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self, append([]string{"--root", r.root}, args...)...)
	cmd.ExtraFiles = extra
	cmd.Env = append([]string{envMain + "=1", "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	// Files, not pipes: a container started by create or run --detach
	// keeps its stdout and stderr open, and a pipe would never end.
	dir := r.t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	require.NoError(r.t, err)
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(r.t, err)
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	read := func(f *os.File) string {
		data, _ := os.ReadFile(f.Name())
		return string(data)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		r.t.Fatalf("gocell-runtime %v timed out; stderr: %s", args, read(errf))
	}
	return result{cmd.ProcessState.ExitCode(), read(out), read(errf)}
}

// must runs a command that must succeed.
func (r *rt) must(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	require.Equal(r.t, 0, res.code, "gocell-runtime %v: %s", args, res.stderr)
	return res
}

func (r *rt) state(id string) specs.State {
	r.t.Helper()
	var st specs.State
	res := r.must("state", id)
	require.NoError(r.t, json.Unmarshal([]byte(res.stdout), &st), res.stdout)
	return st
}

// bundle makes a bundle: a copy of the busybox root file system, and a
// config like runc spec's, changed by edit.
func bundle(t *testing.T, edit func(*specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("cp", "-a", celltest.Rootfs(t), filepath.Join(dir, "rootfs")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := baseSpec()
	if edit != nil {
		edit(s)
	}
	data, err := json.MarshalIndent(s, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644))
	return dir
}

// baseSpec is the config gocell-runtime spec writes, running sleep on a
// writable root, without no_new_privs, at the ociVersion podman writes.
func baseSpec() *specs.Spec {
	s := oci.DefaultSpec()
	s.Version = "1.0.2-dev"
	s.Root.Readonly = false
	s.Process.Args = []string{"sleep", "1000"}
	s.Process.Env = s.Process.Env[:1]
	s.Process.NoNewPrivileges = false
	s.Hostname = "box"
	return s
}

// status reads a field of /proc/PID/status.
func status(t *testing.T, pid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

func gone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if unix.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("process %d is still there", pid)
}

// TestLifecycle: create leaves the process waiting, as "__init", in its
// new namespaces; start makes it the command; kill stops it; delete
// removes its state and cgroup, and nothing of it is left.
func TestLifecycle(t *testing.T) {
	r := newRT(t)
	b := bundle(t, nil)
	before := celltest.Snapshot(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("create", "--bundle", b, "--pid-file", pidFile, "c1")
	st := r.state("c1")
	assert.Equal(t, specs.StateCreated, st.Status)
	assert.Equal(t, b, st.Bundle)
	data, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(st.Pid), string(data), "--pid-file")
	pid := st.Pid
	assert.Contains(t, cmdline(pid), "__init", "before start, the process is not the command yet")
	// It runs a sealed copy of gocell-runtime, not the host's file,
	// which a process of the container could otherwise reach through
	// /proc/PID/exe and write (CVE-2019-5736).
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(exe, "/memfd:gocell-runtime"), "the process runs %s", exe)
	_, err = os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_WRONLY, 0)
	assert.Error(t, err, "the copy can be written")
	for _, ns := range []string{"pid", "net", "ipc", "uts", "mnt"} {
		assert.NotEqual(t, celltest.NamespaceOf(t, os.Getpid(), ns), celltest.NamespaceOf(t, pid, ns), ns)
	}
	for _, ns := range []string{"user", "cgroup"} {
		assert.Equal(t, celltest.NamespaceOf(t, os.Getpid(), ns), celltest.NamespaceOf(t, pid, ns), ns)
	}
	dirs := celltest.ProcCgroupDirs(t, pid)
	require.NotEmpty(t, dirs)

	r.must("start", "c1")
	assert.Equal(t, specs.StateRunning, r.state("c1").Status)
	assert.Equal(t, "sleep 1000", cmdline(pid), "start made it the command, with the same pid")
	assert.Equal(t, "box", celltest.HostnameOf(t, pid))
	res := r.run("start", "c1")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "only a created container can be started")
	res = r.run("delete", "c1")
	assert.NotEqual(t, 0, res.code, "a running container is not deleted without --force")
	assert.Contains(t, res.stderr, "is running")

	r.must("kill", "c1", "KILL")
	gone(t, pid)
	assert.Equal(t, specs.StateStopped, r.state("c1").Status)
	r.must("delete", "c1")
	assert.NoDirExists(t, filepath.Join(r.root, "c1"))
	for c, d := range dirs {
		if strings.Contains(d, "gocell-runtime") {
			assert.NoDirExists(t, d, "cgroup %s", c)
		}
	}
	res = r.run("state", "c1")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "container does not exist")
	celltest.AssertNoLeaks(t, before, nil)
}

// TestRun: run waits and returns the command's status; its output comes
// through; the container is deleted after.
func TestRun(t *testing.T) {
	r := newRT(t)
	b := bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "echo out; echo err >&2; hostname; exit 3"}
	})
	res := r.run("run", "--bundle", b, "r1")
	assert.Equal(t, 3, res.code, res.stderr)
	assert.Equal(t, "out\nbox\n", res.stdout)
	assert.Equal(t, "err\n", res.stderr)
	assert.NoDirExists(t, filepath.Join(r.root, "r1"))
}

// TestProcess: every field of process, seen from the host in
// /proc/PID: ids and groups, the five capability sets, no_new_privs,
// the seccomp filter, rlimits, oom_score_adj, the environment, cwd and
// umask; and the hostname and domain name.
func TestProcess(t *testing.T) {
	r := newRT(t)
	profile, err := seccomp.Default(nil)
	require.NoError(t, err)
	umask := uint32(0o27)
	adj := 500
	b := bundle(t, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 2001}, Umask: &umask}
		s.Process.Args = []string{"sh", "-c", "umask > /tmp/umask; exec sleep 1000"}
		s.Process.Env = append(s.Process.Env, "GREETING=hello")
		s.Process.Cwd = "/tmp"
		s.Process.NoNewPrivileges = true
		s.Process.OOMScoreAdj = &adj
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
			Permitted:   []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Effective:   []string{"CAP_KILL"},
			Inheritable: []string{"CAP_NET_BIND_SERVICE"},
			Ambient:     []string{"CAP_NET_BIND_SERVICE"},
		}
		s.Domainname = "example.test"
		s.Linux.Seccomp = profile
	})
	r.must("run", "--detach", "--bundle", b, "p1")
	pid := r.state("p1").Pid
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, "1000\t1000\t1000\t1000", status(t, pid, "Uid"))
	assert.Equal(t, "1001\t1001\t1001\t1001", status(t, pid, "Gid"))
	assert.Equal(t, "2000 2001", status(t, pid, "Groups"))
	// CAP_CHOWN 0, CAP_KILL 5, CAP_NET_BIND_SERVICE 10. A user other
	// than root keeps, across execve(2), only its ambient capabilities
	// (capabilities(7), "Transformation of capabilities during execve"):
	// permitted and effective are the ambient set.
	assert.Equal(t, "0000000000000421", status(t, pid, "CapBnd"))
	assert.Equal(t, "0000000000000400", status(t, pid, "CapPrm"))
	assert.Equal(t, "0000000000000400", status(t, pid, "CapEff"))
	assert.Equal(t, "0000000000000400", status(t, pid, "CapInh"))
	assert.Equal(t, "0000000000000400", status(t, pid, "CapAmb"))
	assert.Equal(t, "1", status(t, pid, "NoNewPrivs"))
	assert.Equal(t, "2", status(t, pid, "Seccomp"), "filter mode")
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	require.NoError(t, err)
	assert.Regexp(t, `Max open files\s+100\s+200\s+files`, string(limits))
	adjData, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	assert.Equal(t, "500", strings.TrimSpace(string(adjData)))
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	assert.Contains(t, strings.Split(string(env), "\x00"), "GREETING=hello")
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	assert.Equal(t, "/tmp", cwd, "seen from its own root")
	um, _ := os.ReadFile(filepath.Join(b, "rootfs", "tmp", "umask"))
	assert.Equal(t, "0027", strings.TrimSpace(string(um)))
	assert.Equal(t, "box", celltest.HostnameOf(t, pid))
	var domain []byte
	require.NoError(t, celltest.InNamespace(pid, "uts", func() error {
		domain, err = os.ReadFile("/proc/sys/kernel/domainname")
		return err
	}))
	assert.Equal(t, "example.test", strings.TrimSpace(string(domain)))
	r.must("delete", "--force", "p1")
	gone(t, pid)
}

// TestMounts: the config's mounts, in the process's mountinfo, with
// their options; the masked and read-only paths; a read-only root.
func TestMounts(t *testing.T) {
	r := newRT(t)
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "f"), []byte("from the host\n"), 0o644))
	b := bundle(t, func(s *specs.Spec) {
		s.Root.Readonly = true
		// Written before /proc/sys is made read-only (podman sets it).
		s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 4242"}
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=700", "noexec"}},
			specs.Mount{Destination: "/host", Type: "bind", Source: host, Options: []string{"rbind", "ro", "nosuid"}})
		s.Process.Args = []string{"sh", "-c", "cat /host/f; touch /host/x || echo host-ro; touch /x || echo root-ro; " +
			"touch /data/x && echo data-rw; cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/ns_last_pid || echo sys-ro; exec sleep 1000"}
	})
	cgroup2Options := func() []string {
		var opts []string
		for _, m := range celltest.Mounts(t, "self") {
			if m.FSType == "cgroup2" {
				opts = append(opts, m.MountPoint+" "+m.Super)
			}
		}
		return opts
	}
	before := cgroup2Options()
	r.must("run", "--detach", "--bundle", b, "m1")
	pid := r.state("m1").Pid
	time.Sleep(200 * time.Millisecond)
	// A cgroup2 mount made from the host's cgroup namespace would have
	// turned the host's nsdelegate off.
	assert.Equal(t, before, cgroup2Options(), "the host's cgroup2 options")
	byPoint := map[string]celltest.Mount{}
	for _, m := range celltest.Mounts(t, strconv.Itoa(pid)) {
		byPoint[m.MountPoint] = m
	}
	assert.Contains(t, byPoint["/"].Options, "ro", "root.readonly")
	out, err := exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net",
		"cat", "/proc/sys/net/ipv4/ping_group_range").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, []string{"0", "4242"}, strings.Fields(string(out)), "linux.sysctl, in its network namespace")
	assert.Equal(t, "tmpfs", byPoint["/data"].FSType)
	assert.Contains(t, byPoint["/data"].Options, "noexec")
	assert.Contains(t, byPoint["/data"].Super, "size=1024k")
	assert.Contains(t, byPoint["/data"].Super, "mode=700")
	assert.Contains(t, strings.Split(byPoint["/host"].Options, ","), "ro")
	assert.Contains(t, strings.Split(byPoint["/host"].Options, ","), "nosuid")
	assert.Equal(t, "proc", byPoint["/proc"].FSType)
	assert.Equal(t, "devpts", byPoint["/dev/pts"].FSType)
	assert.Contains(t, strings.Split(byPoint["/proc/sys"].Options, ","), "ro", "readonlyPaths")
	assert.Equal(t, "/null", byPoint["/proc/keys"].Root, "maskedPaths: /dev/null on a file")
	assert.Contains(t, byPoint, "/sys/fs/cgroup")
	if dirs := celltest.ProcCgroupDirs(t, pid); len(dirs) == 1 && dirs[""] != "" {
		dir := dirs[""]
		// No cgroup namespace: its own cgroup, bound.
		assert.Equal(t, "cgroup2", byPoint["/sys/fs/cgroup"].FSType)
		assert.True(t, strings.HasSuffix(dir, byPoint["/sys/fs/cgroup"].Root), "%s shows %s", dir, byPoint["/sys/fs/cgroup"].Root)
		assert.NotEqual(t, "/", byPoint["/sys/fs/cgroup"].Root)
	}
	for _, p := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"} {
		var st unix.Stat_t
		require.NoError(t, unix.Stat(fmt.Sprintf("/proc/%d/root%s", pid, p), &st), p)
		assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, p)
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/root/dev/ptmx", pid))
	require.NoError(t, err)
	assert.Equal(t, "pts/ptmx", link)
	r.must("delete", "--force", "m1")
	// Nothing the container mounted is left on the host.
	for _, m := range celltest.Mounts(t, "self") {
		assert.NotContains(t, m.MountPoint, b)
	}
}

// TestResources: linux.resources in the cgroup's files, and the device
// rules in force: with every device denied but the defaults, a block
// device cannot be opened, even by a process that may make its node.
func TestResources(t *testing.T) {
	r := newRT(t)
	limit, quota, period, shares := int64(64<<20), int64(50000), uint64(100000), uint64(512)
	b := bundle(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares, Cpus: "0"}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: 50}
		s.Linux.CgroupsPath = "/gocell-runtime-test/res1"
		caps := append(s.Process.Capabilities.Bounding, "CAP_MKNOD")
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		s.Process.Args = []string{"sh", "-c", "mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda; echo x > /dev/null && echo null-ok; " +
			"grep Cpus_allowed_list /proc/self/status"}
	})
	res := r.run("run", "--keep", "--bundle", b, "res1")
	assert.Contains(t, res.stderr, "Operation not permitted", "the block device is denied")
	assert.Contains(t, res.stdout, "null-ok\n", "the default devices are allowed")
	assert.Regexp(t, `Cpus_allowed_list:\s+0\n`, res.stdout, "linux.resources.cpu.cpus")
	// The cgroup, kept with the container: its files.
	var rec struct{ Cgroup map[string]string }
	data, err := os.ReadFile(filepath.Join(r.root, "res1", "state.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rec))
	read := func(dir, file string) string {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	if dir, v2 := rec.Cgroup[""]; v2 {
		assert.True(t, strings.HasSuffix(dir, "/gocell-runtime-test/res1"), dir)
		assert.Equal(t, "67108864", read(dir, "memory.max"))
		assert.Equal(t, "50", read(dir, "pids.max"))
		assert.Equal(t, "50000 100000", read(dir, "cpu.max"))
		assert.Equal(t, "20", read(dir, "cpu.weight"), "512 shares")
	} else {
		assert.True(t, strings.HasSuffix(rec.Cgroup["memory"], "/gocell-runtime-test/res1"), rec.Cgroup["memory"])
		assert.Equal(t, "67108864", read(rec.Cgroup["memory"], "memory.limit_in_bytes"))
		assert.Equal(t, "50", read(rec.Cgroup["pids"], "pids.max"))
		assert.Equal(t, "50000", read(rec.Cgroup["cpu"], "cpu.cfs_quota_us"))
		assert.Equal(t, "512", read(rec.Cgroup["cpu"], "cpu.shares"))
		list := read(rec.Cgroup["devices"], "devices.list")
		assert.Contains(t, list, "c 1:3 rwm")
		assert.NotContains(t, list, "a *:* rwm")
	}
	r.must("delete", "res1")
	for _, d := range rec.Cgroup {
		assert.NoDirExists(t, d)
	}
}

// TestHooks: each kind of hook runs once, in the spec's order, with the
// state on its stdin: pid, status, bundle.
func TestHooks(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	log := filepath.Join(logDir, "hooks")
	hook := func(name, sh string) specs.Hook {
		return specs.Hook{Path: sh, Args: []string{"sh", "-c",
			fmt.Sprintf(`read s; echo "%s $s" >> %s`, name, "/hooklog/hooks")}}
	}
	hostHook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
			fmt.Sprintf(`read s; echo "%s $s" >> %s`, name, log)}}
	}
	b := bundle(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: logDir, Options: []string{"bind"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hostHook("prestart")}, //nolint:staticcheck
			CreateRuntime:   []specs.Hook{hostHook("createRuntime")},
			CreateContainer: []specs.Hook{hostHook("createContainer")},
			StartContainer:  []specs.Hook{hook("startContainer", "/bin/sh")},
			Poststart:       []specs.Hook{hostHook("poststart")},
			Poststop:        []specs.Hook{hostHook("poststop")},
		}
		s.Process.Args = []string{"true"}
	})
	r.must("create", "--bundle", b, "h1")
	pid := r.state("h1").Pid
	r.must("start", "h1")
	gone(t, pid)
	r.must("delete", "h1")
	data, err := os.ReadFile(log)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var names []string
	for _, l := range lines {
		name, js, _ := strings.Cut(l, " ")
		names = append(names, name)
		var st specs.State
		require.NoError(t, json.Unmarshal([]byte(js), &st), l)
		assert.Equal(t, "h1", st.ID, name)
		assert.Equal(t, b, st.Bundle, name)
		if name != "poststop" {
			assert.Equal(t, pid, st.Pid, name)
		}
	}
	assert.Equal(t, []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}, names)
}

// TestConsole: a process with a terminal gets one of the container's own
// devpts: its master comes over the console socket, and tty(1) inside
// names /dev/pts/0, with the configured size.
func TestConsole(t *testing.T) {
	r := newRT(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	defer l.Close()
	b := bundle(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
		s.Process.Args = []string{"sh", "-c", "tty; stty size"}
	})
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 256), make([]byte, 256)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) == 1 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
				got <- os.NewFile(uintptr(fds[0]), "master")
			}
		}
	}()
	r.must("create", "--bundle", b, "--console-socket", sock, "t1")
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no terminal came over the console socket")
	}
	defer master.Close()
	// /dev/console is the terminal too: the pty's slave, 136:0.
	var st unix.Stat_t
	require.NoError(t, unix.Stat(fmt.Sprintf("/proc/%d/root/dev/console", r.state("t1").Pid), &st))
	assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, "/dev/console")
	assert.Equal(t, []uint32{136, 0}, []uint32{unix.Major(st.Rdev), unix.Minor(st.Rdev)}, "/dev/console")
	r.must("start", "t1")
	out := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 1024)
		for {
			n, err := master.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil || bytes.Contains(all, []byte("100")) {
				out <- string(all)
				return
			}
		}
	}()
	select {
	case s := <-out:
		assert.Contains(t, s, "/dev/pts/0")
		assert.Contains(t, s, "30 100")
	case <-time.After(10 * time.Second):
		t.Fatal("nothing from the terminal")
	}
	r.must("delete", "--force", "t1")
}

// TestExec: a process exec'd into a running container is in all its
// namespaces and its cgroup, with the user and capabilities of
// process.json; its status comes back; --detach leaves it running with
// its pid in --pid-file.
func TestExec(t *testing.T) {
	r := newRT(t)
	b := bundle(t, nil)
	r.must("run", "--detach", "--bundle", b, "e1")
	init := r.state("e1").Pid
	p := specs.Process{Args: []string{"sh", "-c", "id -u; hostname; exit 4"}, Cwd: "/tmp",
		User: specs.User{UID: 1000, GID: 1000}, Env: []string{"PATH=/bin:/usr/bin"}}
	data, _ := json.Marshal(p)
	pj := filepath.Join(t.TempDir(), "process.json")
	require.NoError(t, os.WriteFile(pj, data, 0o644))
	res := r.run("exec", "--process", pj, "e1")
	assert.Equal(t, 4, res.code, res.stderr)
	assert.Equal(t, "1000\nbox\n", res.stdout)

	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("exec", "--detach", "--pid-file", pidFile, "e1", "sleep", "1001")
	data, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, _ := strconv.Atoi(string(data))
	assert.Equal(t, "sleep 1001", cmdline(pid))
	for _, ns := range []string{"pid", "net", "ipc", "uts", "mnt"} {
		assert.Equal(t, celltest.NamespaceOf(t, init, ns), celltest.NamespaceOf(t, pid, ns), ns)
	}
	assert.Equal(t, celltest.ProcCgroupDirs(t, init), celltest.ProcCgroupDirs(t, pid), "the container's cgroup")
	ps := r.must("ps", "--format", "json", "e1")
	assert.Contains(t, ps.stdout, strconv.Itoa(pid))
	assert.Equal(t, status(t, init, "CapBnd"), status(t, pid, "CapBnd"), "the container's capabilities")
	r.must("kill", "--all", "e1", "KILL")
	gone(t, pid)
	gone(t, init)
	r.must("delete", "e1")
}

// TestUserNamespace: root in the container is uid 100000 on the host,
// with every capability in its own user namespace and none in the
// host's; exec joins that user namespace too (nsenter(1)), as root of
// the container, and the process is 100000 on the host as well.
func TestUserNamespace(t *testing.T) {
	r := newRT(t)
	const host = 100000
	b := bundle(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: host, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: host, Size: 65536}}
		s.Process.Args = []string{"sh", "-c", "touch /ok && exec sleep 1000"}
	})
	// t.TempDir's directories are root's, 0700: the container's root
	// could not pass through them, and need not. Its process starts in
	// the bundle (create's working directory), finds root.path from
	// there, and create opens the bind mounts' sources.
	// The root file system belongs to the container's root.
	out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", host, host), filepath.Join(b, "rootfs")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	r.must("run", "--detach", "--bundle", b, "u1")
	pid := r.state("u1").Pid
	assert.NotEqual(t, celltest.NamespaceOf(t, os.Getpid(), "user"), celltest.NamespaceOf(t, pid, "user"))
	uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "100000", "65536"}, strings.Fields(string(uidMap)))
	assert.Equal(t, "100000\t100000\t100000\t100000", status(t, pid, "Uid"))
	assert.Equal(t, "100000\t100000\t100000\t100000", status(t, pid, "Gid"))
	assert.Equal(t, "0000000000000000", status(t, pid, "CapInh"))
	assert.Equal(t, "0000000020000420", status(t, pid, "CapEff"), "the spec's capabilities: KILL, NET_BIND_SERVICE, AUDIT_WRITE")
	var st unix.Stat_t
	for i := 0; i < 100 && unix.Stat(filepath.Join(b, "rootfs", "ok"), &st) != nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, uint32(host), st.Uid, "a file the container's root made is 100000's on the host")

	res := r.must("exec", "u1", "sh", "-c", "id -u; cat /proc/self/uid_map")
	assert.Equal(t, []string{"0", "0", "100000", "65536"}, strings.Fields(res.stdout))
	r.must("exec", "--detach", "--pid-file", filepath.Join(b, "exec.pid"), "u1", "sleep", "1001")
	data, err := os.ReadFile(filepath.Join(b, "exec.pid"))
	require.NoError(t, err)
	epid, _ := strconv.Atoi(string(data))
	for _, ns := range []string{"user", "pid", "net", "mnt"} {
		assert.Equal(t, celltest.NamespaceOf(t, pid, ns), celltest.NamespaceOf(t, epid, ns), ns)
	}
	assert.Equal(t, "100000\t100000\t100000\t100000", status(t, epid, "Uid"))
	assert.Equal(t, status(t, pid, "CapEff"), status(t, epid, "CapEff"))
	r.must("delete", "--force", "u1")
	gone(t, pid)
	gone(t, epid)
}

// fds lists a process's open descriptors, from /proc/PID/fd.
func fds(t *testing.T, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestBindPropagation: a bind mount's source may be a shared mount on the
// host (systemd makes "/" shared, and so is the test VM's): the
// container's copy of it must not send mounts back. Here the config binds
// a shared host directory at /dev, and the runtime mounts the container's
// /dev/pts and /dev/mqueue below it: none of them may appear in the host's
// mount table. (Made from a plain bind copy, they did, in the VM.)
func TestBindPropagation(t *testing.T) {
	r := newRT(t)
	dev := t.TempDir()
	require.NoError(t, unix.Mount(dev, dev, "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount(dev, unix.MNT_DETACH) })
	require.NoError(t, unix.Mount("", dev, "", unix.MS_SHARED, ""))
	b := bundle(t, func(s *specs.Spec) {
		for i, m := range s.Mounts {
			if m.Destination == "/dev" {
				s.Mounts[i] = specs.Mount{Destination: "/dev", Type: "bind", Source: dev, Options: []string{"rbind"}}
			}
		}
	})
	r.must("run", "--detach", "--bundle", b, "prop")
	defer r.must("delete", "--force", "prop")
	inside := 0
	for _, m := range celltest.Mounts(t, strconv.Itoa(r.state("prop").Pid)) {
		if strings.HasPrefix(m.MountPoint, "/dev/") {
			inside++
		}
	}
	assert.NotZero(t, inside, "the container has mounts below its /dev")
	for _, m := range celltest.Mounts(t, "self") {
		assert.False(t, strings.HasPrefix(m.MountPoint, dev+"/"), "%s reached the host", m.MountPoint)
	}
}

// TestHostileImage: an image's symlinks may not move a mount into the
// runtime's /proc, /sys or /dev, nor make them symlinks; what is in /dev
// must be the very device. Each attack, without its defence, wrote to a
// host file or a kernel setting through the container (a review's
// findings). Nothing is left after a refusal.
func TestHostileImage(t *testing.T) {
	r := newRT(t)
	canaryDir := t.TempDir()
	canary := filepath.Join(canaryDir, "canary")
	require.NoError(t, os.WriteFile(canary, []byte("untouched\n"), 0o644))
	volume := t.TempDir()
	hosts := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644))
	for _, c := range []struct {
		name  string
		image func(rootfs string) error
		edit  func(*specs.Spec)
		want  string
	}{
		{"a volume moved onto /dev", func(rootfs string) error {
			return os.Symlink("/dev", filepath.Join(rootfs, "data"))
		}, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: volume, Options: []string{"rbind", "rw"}})
		}, "leads, through a symlink of the image, to /dev"},
		{"a file bound onto /proc", func(rootfs string) error {
			os.Remove(filepath.Join(rootfs, "etc", "hosts"))
			return os.Symlink("/proc/self/oom_score_adj", filepath.Join(rootfs, "etc", "hosts"))
		}, func(s *specs.Spec) {
			adj := 500
			s.Process.OOMScoreAdj = &adj
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: []string{"bind"}})
		}, "leads, through a symlink of the image, to /proc"},
		{"/proc a symlink", func(rootfs string) error {
			os.Remove(filepath.Join(rootfs, "proc"))
			return os.Symlink("/", filepath.Join(rootfs, "proc"))
		}, nil, "mount proc on /proc"},
		{"/dev/null a symlink", func(rootfs string) error { return nil }, func(s *specs.Spec) {
			// A /dev the config binds (a host directory, here one a
			// container could have written) holding null -> a file.
			dev := t.TempDir()
			if err := os.Symlink(canary, filepath.Join(dev, "null")); err != nil {
				t.Fatal(err)
			}
			for i, m := range s.Mounts {
				if m.Destination == "/dev" {
					s.Mounts[i] = specs.Mount{Destination: "/dev", Type: "bind", Source: dev, Options: []string{"rbind"}}
				}
			}
		}, "/dev/null is already there, and is not the device 1:3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bundle(t, c.edit)
			require.NoError(t, c.image(filepath.Join(b, "rootfs")))
			id := strings.ReplaceAll(c.name, " ", "-")
			id = strings.ReplaceAll(id, "/", "")
			res := r.run("run", "--detach", "--bundle", b, id)
			assert.NotEqual(t, 0, res.code, "the attack was let through")
			assert.Contains(t, res.stderr, c.want)
			assert.NoDirExists(t, filepath.Join(r.root, id))
			for _, m := range celltest.Mounts(t, "self") {
				assert.NotContains(t, m.MountPoint, b)
			}
		})
	}
	data, _ := os.ReadFile(canary)
	assert.Equal(t, "untouched\n", string(data))
	data, _ = os.ReadFile(hosts)
	assert.Equal(t, "127.0.0.1 localhost\n", string(data))
	entries, _ := os.ReadDir(volume)
	assert.Empty(t, entries, "no device node was made in the volume")
}

// TestNothingLeaks: descriptors the caller left open (without
// close-on-exec) do not reach the container's command or an exec'd
// process, nor does exec's sync socket; exec'd processes keep the spec's
// limits and no_new_privs; a config without device rules still gets
// every device denied but the defaults.
func TestNothingLeaks(t *testing.T) {
	r := newRT(t)
	hostDir, err := os.Open(t.TempDir())
	require.NoError(t, err)
	defer hostDir.Close()
	b := bundle(t, func(s *specs.Spec) {
		s.Process.NoNewPrivileges = true
		s.Linux.Resources = nil
		caps := append(s.Process.Capabilities.Bounding, "CAP_MKNOD")
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	})
	res := r.runWith("", nil, []*os.File{hostDir}, "run", "--detach", "--bundle", b, "l1")
	require.Equal(t, 0, res.code, res.stderr)
	pid := r.state("l1").Pid
	assert.Equal(t, []string{"0", "1", "2"}, fds(t, pid), "the container's command")
	res = r.runWith("", nil, []*os.File{hostDir}, "exec", "--detach", "--pid-file", filepath.Join(b, "e.pid"), "l1", "sleep", "1001")
	require.Equal(t, 0, res.code, res.stderr)
	data, err := os.ReadFile(filepath.Join(b, "e.pid"))
	require.NoError(t, err)
	epid, _ := strconv.Atoi(string(data))
	assert.Equal(t, []string{"0", "1", "2"}, fds(t, epid), "an exec'd process")
	assert.Equal(t, "1", status(t, epid, "NoNewPrivs"), "the spec's no_new_privs, for exec too")
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", epid))
	require.NoError(t, err)
	assert.Regexp(t, `Max open files\s+1024\s+1024`, string(limits), "the spec's rlimits, for exec too")
	res = r.run("exec", "l1", "sh", "-c", "mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stdout+res.stderr, "Operation not permitted", "no device rules in the config: still denied")
	r.must("delete", "--force", "l1")
}

// TestExecThroughHostProc: a container with CAP_SYS_ADMIN mounts its own
// /proc, with a script at self/fd/3, where nsenter would have looked
// for the copy of gocell-runtime to run (with every capability) had it
// joined the mount namespace. exec must run the command, not the
// script; and nsenter runs from a sealed copy, not the host's binary.
func TestExecThroughHostProc(t *testing.T) {
	r := newRT(t)
	b := bundle(t, func(s *specs.Spec) {
		caps := append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		s.Process.Args = []string{"sh", "-c", "mkdir -p /tmp/fake/self/fd && " +
			"printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > /tmp/fake/self/fd/3 && chmod 755 /tmp/fake/self/fd/3 && " +
			"mount --bind /tmp/fake /proc && touch /tmp/ready && exec sleep 1000"}
	})
	r.must("run", "--detach", "--bundle", b, "x1")
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(b, "rootfs", "tmp", "ready")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.FileExists(t, filepath.Join(b, "rootfs", "tmp", "ready"))
	cmd := exec.Command(os.Args[0], "--root", r.root, "exec", "x1", "sleep", "3")
	cmd.Env = []string{envMain + "=1", "PATH=" + os.Getenv("PATH")}
	require.NoError(t, cmd.Start())
	// nsenter waits for the command: its executable is the memfd.
	var nsenterExe string
	for i := 0; i < 200 && nsenterExe == ""; i++ {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			data, _ := os.ReadFile(p)
			if strings.HasPrefix(string(data), "nsenter\x00--target") {
				nsenterExe, _ = os.Readlink(filepath.Join(filepath.Dir(p), "exe"))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.True(t, strings.HasPrefix(nsenterExe, "/memfd:nsenter"), "nsenter runs from %q", nsenterExe)
	require.NoError(t, cmd.Wait())
	assert.NoFileExists(t, filepath.Join(b, "rootfs", "tmp", "pwned"), "the container's script ran as exec's copy")
	r.must("delete", "--force", "x1")
}

// TestJoinNamespace: a namespace given by path is joined: the second
// container is in the first one's network namespace.
func TestJoinNamespace(t *testing.T) {
	r := newRT(t)
	r.must("run", "--detach", "--bundle", bundle(t, nil), "n1")
	first := r.state("n1").Pid
	b := bundle(t, func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == "network" {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", first)
			}
		}
	})
	r.must("run", "--detach", "--bundle", b, "n2")
	second := r.state("n2").Pid
	assert.Equal(t, celltest.NamespaceOf(t, first, "net"), celltest.NamespaceOf(t, second, "net"))
	assert.NotEqual(t, celltest.NamespaceOf(t, first, "uts"), celltest.NamespaceOf(t, second, "uts"))
	r.must("delete", "--force", "n2")
	r.must("delete", "--force", "n1")
}

// TestBadConfigs: what gocell-runtime cannot do, it refuses, by name,
// with nothing left behind: no state, no cgroup, no process.
func TestBadConfigs(t *testing.T) {
	r := newRT(t)
	for _, c := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"ociVersion", func(s *specs.Spec) { s.Version = "2.0.0" }, `ociVersion "2.0.0"`},
		{"intelRdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} }, "linux.intelRdt"},
		{"a CPU the machine has not", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "999"}
		}, "CPUs 999: not among those offered"},
		{"no process", func(s *specs.Spec) { s.Process.Args = nil }, "process.args is missing"},
		{"no mount namespace", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:4] }, "a mount namespace is needed"},
		{"join pid", func(s *specs.Spec) {
			s.Linux.Namespaces[0].Path = "/proc/1/ns/pid"
		}, "joining the pid namespace by path"},
		{"user namespace without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
		}, "a user namespace needs linux.uidMappings and linux.gidMappings"},
		{"maps without a user namespace", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1}}
		}, "linux.uidMappings without a new user namespace"},
		{"join user", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user", Path: "/proc/1/ns/user"})
		}, "joining the user namespace by path"},
		{"mount option", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}})
		}, `mount option "tmpcopyup"`},
		{"terminal without socket", func(s *specs.Spec) { s.Process.Terminal = true }, "--console-socket"},
		{"bad rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}
		}, "RLIMIT_BOGUS"},
		{"missing command", func(s *specs.Spec) { s.Process.Args = []string{"/nosuch"} }, "exec /nosuch: executable file not found"},
		{"missing command in PATH", func(s *specs.Spec) { s.Process.Args = []string{"nosuch"} }, "executable file not found in PATH"},
		{"not executable", func(s *specs.Spec) { s.Process.Args = []string{"/etc/passwd"} }, "exec /etc/passwd: not an executable file"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, `process.cwd "tmp": the spec wants an absolute path`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bundle(t, c.edit)
			id := strings.ReplaceAll(c.name, " ", "-")
			res := r.run("create", "--bundle", b, id)
			assert.NotEqual(t, 0, res.code)
			assert.Contains(t, res.stderr, c.want)
			assert.NoDirExists(t, filepath.Join(r.root, id))
			assert.NoDirExists(t, "/sys/fs/cgroup/gocell-runtime/"+id)
			assert.NoDirExists(t, "/sys/fs/cgroup/pids/gocell-runtime/"+id)
		})
	}
}

// TestCommandLine: unknown commands and flags get one line and a
// non-zero status; features and --version answer.
func TestCommandLine(t *testing.T) {
	r := newRT(t)
	res := r.run("frobnicate")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, `unknown command "frobnicate"`)
	res = r.run("create")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "the container id is missing")
	res = r.run("--systemd-cgroup", "state", "x")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "cgroupfs")
	res = r.run("kill", "x", "SIGBOGUS")
	assert.NotEqual(t, 0, res.code)
	res = r.must("features")
	var f map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &f))
	assert.Equal(t, "1.0.0", f["ociVersionMin"])
	// spec writes a config that runs: sh in rootfs/, read-only.
	b := bundle(t, nil)
	require.NoError(t, os.Remove(filepath.Join(b, "config.json")))
	r.must("spec", "--bundle", b)
	res = r.run("spec", "--bundle", b)
	assert.Contains(t, res.stderr, "config.json exists")
	res = r.runIn("echo hi > /x || echo read-only; echo $PATH; hostname\n", nil, "run", "--bundle", b, "s1")
	assert.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stdout, "read-only\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\ngocell\n")
	res = r.must("--version")
	assert.Contains(t, res.stdout, "gocell-runtime version")
	logFile := filepath.Join(t.TempDir(), "log.json")
	res = r.run("--log", logFile, "--log-format", "json", "state", "nosuch")
	assert.NotEqual(t, 0, res.code)
	data, err := os.ReadFile(logFile)
	require.NoError(t, err)
	var line map[string]string
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(data), &line))
	assert.Equal(t, "error", line["level"])
	assert.Contains(t, line["msg"], "container does not exist")
}

// TestUpdate: update changes the limits of a running container in its
// cgroup's files, from the flags and from --resources on stdin, as
// containerd and podman call it; the rest of the limits stay. What it
// cannot do, it refuses, and the cgroup is left as it was.
func TestUpdate(t *testing.T) {
	r := newRT(t)
	limit := int64(64 << 20)
	b := bundle(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "0"}
		s.Linux.CgroupsPath = "/gocell-runtime-test/upd1"
	})
	r.must("run", "--detach", "--bundle", b, "upd1")
	pid := r.state("upd1").Pid
	var rec struct{ Cgroup map[string]string }
	data, err := os.ReadFile(filepath.Join(r.root, "upd1", "state.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rec))
	read := func(controller, v1File, v2File string) string {
		dir, file := rec.Cgroup[""], v2File
		if dir == "" {
			dir, file = rec.Cgroup[controller], v1File
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	memory := func() string { return read("memory", "memory.limit_in_bytes", "memory.max") }
	require.Equal(t, "67108864", memory())

	r.must("update", "--memory", "32M", "--memory-reservation", "16M", "--pids-limit", "30",
		"--cpu-quota", "20000", "--cpu-period", "100000", "upd1")
	assert.Equal(t, "33554432", memory())
	assert.Equal(t, "16777216", read("memory", "memory.soft_limit_in_bytes", "memory.low"))
	assert.Equal(t, "30", read("pids", "pids.max", "pids.max"))
	if rec.Cgroup[""] != "" {
		assert.Equal(t, "20000 100000", read("", "", "cpu.max"))
	} else {
		assert.Equal(t, "20000", read("cpu", "cpu.cfs_quota_us", ""))
	}
	assert.Equal(t, "0", status(t, pid, "Cpus_allowed_list"))

	// --resources on stdin, as containerd passes it: only the pids.
	res := r.runIn(`{"pids": {"limit": 40}}`, nil, "update", "--resources", "-", "upd1")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "40", read("pids", "pids.max", "pids.max"))
	assert.Equal(t, "33554432", memory(), "what the update leaves out stays")
	if runtime.NumCPU() > 1 {
		r.must("update", "--cpuset-cpus", "1", "upd1")
		assert.Equal(t, "1", status(t, pid, "Cpus_allowed_list"), "the process moved to CPU 1")
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpuset-cpus", "999"}, "not among those offered"},
		{[]string{"--memory-reservation", "1G"}, "above the memory limit"},
		{[]string{"--memory", "lots"}, "--memory: invalid size"},
	} {
		res := r.run(append(append([]string{"update"}, bad.args...), "upd1")...)
		assert.NotEqual(t, 0, res.code, bad.args)
		assert.Contains(t, res.stderr, bad.want, bad.args)
	}
	res = r.runIn(`{"devices": [{"allow": true, "access": "rwm"}]}`, nil, "update", "-r", "-", "upd1")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "linux.resources.devices")
	assert.Equal(t, "33554432", memory(), "a refused update changes nothing")
	res = r.run("update", "--memory", "32M", "nosuch")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "container does not exist")

	r.must("kill", "upd1", "KILL")
	gone(t, pid)
	res = r.run("update", "--memory", "32M", "upd1")
	assert.NotEqual(t, 0, res.code)
	assert.Contains(t, res.stderr, "is stopped")
	r.must("delete", "upd1")
}
