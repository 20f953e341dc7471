// Package celltest holds the helpers that the numbered steps' tests share:
// running a step as a separate process, finding its container process, and
// checking from outside — through /proc, mountinfo and setns(2) — that each
// isolation primitive is in effect and that nothing was left behind.
//
// A step's tests never trust what the step prints about itself. They look
// at the kernel's view: /proc/PID/ns/*, /proc/PID/status, /proc/PID/root,
// /proc/PID/mountinfo, and namespaces entered with setns(2).
//
// The step under test is the test binary itself: TestMain calls Main, which
// runs the step's main() when GOCELL_TEST_RUN_MAIN=1 is set. So the tests
// need no `go build` and run the same in a VM that has no Go toolchain.
//
// Steps never import this package; only their tests do.
package celltest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// EnvPriv turns the privileged tests on. When it is set, not being root is
// a failure, not a skip, so a CI run cannot pass by skipping everything.
const EnvPriv = "GOCELL_PRIV_TESTS"

// EnvRootfs names the busybox root file system built by
// scripts/mkrootfs.sh.
const EnvRootfs = "GOCELL_ROOTFS"

// DefaultRootfs is where scripts/mkrootfs.sh builds it by default.
const DefaultRootfs = "/var/lib/gocell-lessons/rootfs"

// envRunMain makes the test binary behave as the step's own program.
const envRunMain = "GOCELL_TEST_RUN_MAIN"

// Namespaces are all the kinds of namespace in /proc/PID/ns, in the order
// the steps add them, followed by those no step adds.
var Namespaces = []string{"uts", "pid", "mnt", "ipc", "net", "user", "cgroup", "time"}

// Main is a step's TestMain: it runs the step's main() instead of the tests
// when the test binary was started as the step program.
func Main(m *testing.M, stepMain func(), cleanups ...func()) {
	if os.Getenv(envRunMain) == "1" {
		stepMain()
		os.Exit(0)
	}
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

// RequirePriv skips a privileged test unless GOCELL_PRIV_TESTS=1, and
// fails it when that is set but we are not root.
func RequirePriv(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvPriv) != "1" {
		t.Skipf("privileged test: run as root with %s=1 (see README)", EnvPriv)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 but not running as root (euid %d): run the tests with sudo", EnvPriv, os.Geteuid())
	}
}

// Rootfs returns the busybox root file system the tests run in, and fails
// the test with the command that builds it when it is missing.
func Rootfs(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvRootfs)
	if dir == "" {
		dir = DefaultRootfs
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/gocell-rootfs")); err != nil {
		t.Fatalf("no gocell root file system at %s (%v): build it with `sudo scripts/mkrootfs.sh %s` or `make rootfs`", dir, err, dir)
	}
	return dir
}

// Result is how a run of the step ended.
type Result struct {
	Code   int
	Stdout string
	Stderr string
}

// LastLine is the last line of stderr: the step's one-line error.
func (r Result) LastLine() string {
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	return lines[len(lines)-1]
}

// command prepares the test binary as the step program.
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1", "NO_COLOR=1")
	// A process group of its own, so a timeout kills everything it made.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return cmd
}

// Run runs the step with args (e.g. "run", "hostname") to completion, with
// a time limit, and returns its exit code and output.
func Run(t testing.TB, args ...string) Result {
	t.Helper()
	return RunBinary(t, self(), nil, args...)
}

// RunBinary is Run with another binary and, optionally, credentials.
func RunBinary(t testing.TB, bin string, cred *syscall.Credential, args ...string) Result {
	t.Helper()
	return runBinary(t, 60*time.Second, true, bin, cred, args...)
}

// RunSlow is Run with a time limit of d instead of a minute, for a step
// started among many at once on a slow machine (the test VM emulates
// its CPUs): the limit only catches a hang, it does not time anything.
// It may be called from a goroutine of the test's: a time-out or a
// failure to start is reported with t.Errorf and exit code -1, where Run
// would stop the test with t.Fatalf, which only the test's own goroutine
// may call.
func RunSlow(t testing.TB, d time.Duration, args ...string) Result {
	t.Helper()
	return runBinary(t, d, false, self(), nil, args...)
}

// runBinary runs bin with args within d; fatal says whether a time-out or
// a failure to start stops the test (t.Fatalf) or is only reported.
func runBinary(t testing.TB, d time.Duration, fatal bool, bin string, cred *syscall.Credential, args ...string) Result {
	t.Helper()
	fail := t.Errorf
	if fatal {
		fail = t.Fatalf
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := command(ctx, bin, args...)
	cmd.SysProcAttr.Credential = cred
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		fail("%v timed out; stderr:\n%s", args, stderr.String())
		return Result{Code: -1, Stderr: stderr.String()}
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fail("start %v: %v", args, err)
		return Result{Code: -1}
	}
	res := Result{Code: cmd.ProcessState.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}
	// The step ran in a process group of its own; anything still in it
	// was left behind.
	for _, pid := range allPids() {
		if pgid, err := unix.Getpgid(pid); err == nil && pgid == cmd.Process.Pid {
			t.Errorf("%v left process %d running", args, pid)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	return res
}

// RunAsNobody runs the step as uid and gid 65534, from a copy of the test
// binary that user may execute.
func RunAsNobody(t testing.TB, args ...string) Result {
	t.Helper()
	dir, err := os.MkdirTemp("", "gocell-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "step")
	data, err := os.ReadFile(self())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return RunBinary(t, bin, &syscall.Credential{Uid: 65534, Gid: 65534}, args...)
}

// AssertFails runs the step with args and checks that it exits with code,
// that its last line of stderr is one error line containing each of want,
// and that it left no mount and no process behind.
func AssertFails(t testing.TB, code int, want []string, args ...string) Result {
	t.Helper()
	before := Snapshot(t)
	res := Run(t, args...)
	checkFailure(t, res, code, want)
	AssertNoLeaks(t, before, nil)
	AssertOldRootRemoved(t, res)
	return res
}

func checkFailure(t testing.TB, res Result, code int, want []string) {
	t.Helper()
	if res.Code != code {
		t.Errorf("exit code %d, want %d; stderr:\n%s", res.Code, code, res.Stderr)
	}
	// Narration may surround it, but there is exactly one error line.
	var errLines []string
	for _, line := range strings.Split(res.Stderr, "\n") {
		if strings.Contains(line, "error:") {
			errLines = append(errLines, line)
		}
	}
	if len(errLines) != 1 && code != 2 {
		t.Errorf("want exactly one error line, got %d:\n%s", len(errLines), res.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, res.Stderr)
		}
	}
	if strings.Contains(res.Stderr, "goroutine ") || strings.Contains(res.Stderr, "panic:") {
		t.Errorf("stderr has a panic or stack trace:\n%s", res.Stderr)
	}
}

// Cell is a running step whose command waits on its stdin: the test looks
// at it from outside while it runs, then closes stdin to let it finish.
type Cell struct {
	// Pid is the container's process as the host sees it.
	Pid int
	// NS maps each namespace kind to the container's namespace, recorded
	// at start so the test can look for leftovers after it has gone.
	NS map[string]string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer
	out    *bufio.Reader
	cancel context.CancelFunc
	result *Result
	// nsFiles hold the container's namespaces open, see Start.
	nsFiles []*os.File
}

func (c *Cell) closeNamespaces() {
	for _, f := range c.nsFiles {
		f.Close()
	}
	c.nsFiles = nil
}

// ReadyCommand is a container command that prints "ready" once it runs
// and then waits until its stdin closes. `read` is a shell builtin, so the
// shell is the only process in the container.
var ReadyCommand = []string{"sh", "-c", "echo ready; read line || true"}

// Start runs the step with args, whose command must be ReadyCommand (or
// print "ready" and wait on stdin), and returns once the command runs.
func Start(t testing.TB, args ...string) *Cell {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	cmd := command(ctx, self(), args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	c := &Cell{cmd: cmd, stdin: stdin, stderr: &stderr, out: bufio.NewReader(stdout), cancel: cancel}
	// If the test fails half-way, do not leave the container running.
	t.Cleanup(c.kill)

	line := make(chan string, 1)
	go func() {
		s, _ := c.out.ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "ready" {
			c.kill()
			t.Fatalf("%v: expected \"ready\", got %q; stderr:\n%s", args, s, stderr.String())
		}
	case <-time.After(60 * time.Second):
		c.kill()
		t.Fatalf("%v: no \"ready\" within 60s; stderr:\n%s", args, stderr.String())
	}
	pids := Children(cmd.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("step process %d has %d children %v, want 1 (the container)", cmd.Process.Pid, len(pids), pids)
	}
	c.Pid = pids[0]
	c.NS = map[string]string{}
	for _, ns := range Namespaces {
		c.NS[ns] = NamespaceOf(t, c.Pid, ns)
		// Keep the namespace alive while the test runs: a freed
		// namespace's inode number is soon reused by a new one (another
		// test's container, say), and AssertNoLeaks would then mistake
		// that one's processes for leftovers of this one.
		if f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", c.Pid, ns)); err == nil {
			c.nsFiles = append(c.nsFiles, f)
		}
	}
	t.Cleanup(c.closeNamespaces)
	return c
}

// Stop closes the command's stdin and waits for the step to exit.
func (c *Cell) Stop(t testing.TB) Result {
	t.Helper()
	if c.result != nil {
		return *c.result
	}
	c.stdin.Close()
	err := c.cmd.Wait()
	c.cancel()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("wait: %v", err)
	}
	rest, _ := io.ReadAll(c.out)
	c.result = &Result{Code: c.cmd.ProcessState.ExitCode(), Stdout: string(rest), Stderr: c.stderr.String()}
	AssertOldRootRemoved(t, *c.result)
	return *c.result
}

// Stderr is what the step has narrated so far.
func (c *Cell) Stderr() string { return c.stderr.String() }

// Step is the host pid of the step program itself.
func (c *Cell) Step() int { return c.cmd.Process.Pid }

func (c *Cell) kill() {
	if c.result != nil {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	if c.Pid > 0 {
		_ = syscall.Kill(c.Pid, syscall.SIGKILL)
	}
	_ = c.cmd.Wait()
	c.cancel()
	c.result = &Result{Code: -1}
}

// Children lists the processes whose parent is pid, from /proc/PID/stat.
func Children(pid int) []int {
	var kids []int
	for _, p := range allPids() {
		if ppid(p) == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

func allPids() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ppid reads the fourth field of /proc/PID/stat; the second field, the
// command name in parentheses, may itself contain spaces.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(fields[1])
	return n
}

// NamespaceOf reads /proc/PID/ns/NAME, e.g. "uts:[4026532281]".
func NamespaceOf(t testing.TB, pid int, ns string) string {
	t.Helper()
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	if err != nil {
		t.Fatalf("read namespace %s of pid %d: %v", ns, pid, err)
	}
	return link
}

// AssertNamespaces checks that pid is in a new namespace of each kind in
// added, and still in the host's (the test's own) for every other kind.
func AssertNamespaces(t testing.TB, pid int, added ...string) {
	t.Helper()
	isAdded := map[string]bool{}
	for _, ns := range added {
		isAdded[ns] = true
	}
	for _, ns := range Namespaces {
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			continue // a kernel without this kind of namespace
		}
		host := NamespaceOf(t, os.Getpid(), ns)
		got := NamespaceOf(t, pid, ns)
		if isAdded[ns] && got == host {
			t.Errorf("namespace %s: container shares the host's %s, want a new one", ns, host)
		}
		if !isAdded[ns] && got != host {
			t.Errorf("namespace %s: container has %s, want the host's %s (this step does not add it)", ns, got, host)
		}
	}
}

// InNamespace runs fn on a thread that has joined pid's namespace of kind
// ns with setns(2), and then joins its own namespace again, so the rest
// of the test never runs in the container's namespace (if that fails, the
// thread is thrown away). This works for uts, ipc and net; a
// multithreaded process cannot join a mount or user namespace (see
// setns(2)).
func InNamespace(pid int, ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's own namespace, to go back to afterwards. The
		// goroutine may be running on the process's main thread: Go
		// never throws that one away, and /proc/PID/ns shows its
		// namespaces as the whole test process's, which other checks
		// compare with.
		self, err := os.Open("/proc/thread-self/ns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), 0); err != nil {
			errc <- fmt.Errorf("setns %s of pid %d: %w", ns, pid, err)
			return
		}
		err = fn()
		if back := unix.Setns(int(self.Fd()), 0); back != nil {
			// Still locked: the thread goes with the goroutine.
			errc <- errors.Join(err, fmt.Errorf("setns back to our %s: %w", ns, back))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// HostnameOf reads pid's hostname by joining its UTS namespace.
func HostnameOf(t testing.TB, pid int) string {
	t.Helper()
	var name string
	err := InNamespace(pid, "uts", func() error {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return err
		}
		name = unix.ByteSliceToString(u.Nodename[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// NSpid returns the NSpid line of /proc/PID/status: pid as seen from each
// PID namespace, from the host's down to the process's own.
func NSpid(t testing.TB, pid int) []int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			var pids []int
			for _, f := range strings.Fields(rest) {
				n, _ := strconv.Atoi(f)
				pids = append(pids, n)
			}
			return pids
		}
	}
	t.Fatalf("no NSpid in /proc/%d/status", pid)
	return nil
}

// Mount is one line of mountinfo (see proc(5)).
type Mount struct {
	ID         string
	Root       string
	MountPoint string
	FSType     string
	Source     string
	Options    string
	// Super is the super block's options, the last field.
	Super string
}

// Mounts parses /proc/PID/mountinfo ("self" for the test process).
func Mounts(t testing.TB, pid string) []Mount {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []Mount
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 2 {
			t.Fatalf("bad mountinfo line %q", line)
		}
		m := Mount{ID: f[0], Root: unescape(f[3]), MountPoint: unescape(f[4]), Options: f[5], FSType: g[0], Source: g[1]}
		if len(g) > 2 {
			m.Super = g[2]
		}
		mounts = append(mounts, m)
	}
	return mounts
}

// MountAt returns the mount at point in pid's mount table: the last one
// there, which hides the others. It fails the test if there is none.
func MountAt(t testing.TB, pid int, point string) Mount {
	t.Helper()
	var found *Mount
	for _, m := range Mounts(t, strconv.Itoa(pid)) {
		if m.MountPoint == point {
			found = &m
		}
	}
	if found == nil {
		t.Fatalf("nothing is mounted at %s in %d's mount table", point, pid)
	}
	return *found
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and \.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Host is what the host looked like before a test, to compare after.
type Host struct {
	Hostname string
	Mounts   map[string]Mount
	// OldRoots are the .oldroot-* directories in the root file system.
	OldRoots map[string]bool
}

// Snapshot records the host's hostname and mount table, and the old
// roots' directories in the root file system.
func Snapshot(t testing.TB) Host {
	t.Helper()
	name, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return Host{Hostname: name, Mounts: mountSet(t), OldRoots: oldRoots()}
}

// oldRoots lists the put_old directories (.oldroot-*) in the root file
// system, which a run must remove: seen from the file system, not from
// what the run narrates.
func oldRoots() map[string]bool {
	dir := os.Getenv(EnvRootfs)
	if dir == "" {
		dir = DefaultRootfs
	}
	names, _ := filepath.Glob(filepath.Join(dir, ".oldroot*"))
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	return set
}

// mountSet keys the host's mounts by id and mount point. Mounts under
// /run/netns are left out: tests of other packages, running at the same
// time, make and remove network namespaces there.
func mountSet(t testing.TB) map[string]Mount {
	set := map[string]Mount{}
	for _, m := range Mounts(t, "self") {
		if strings.HasPrefix(m.MountPoint, "/run/netns/") {
			continue
		}
		set[m.ID+" "+m.MountPoint] = m
	}
	return set
}

// AssertMountsUnchanged checks that the host's mount table is what it was.
func AssertMountsUnchanged(t testing.TB, before Host) {
	t.Helper()
	after := mountSet(t)
	for k, m := range after {
		if _, ok := before.Mounts[k]; !ok {
			t.Errorf("host gained a mount: %s on %s (%s, root %s)", m.Source, m.MountPoint, m.FSType, m.Root)
		}
	}
	for k, m := range before.Mounts {
		if _, ok := after[k]; !ok {
			t.Errorf("host lost a mount: %s on %s", m.Source, m.MountPoint)
		}
	}
}

// AssertNoLeaks checks, after a step has exited, that the host's hostname
// and mounts are as before and that no process is left in any of the
// namespaces the container had of its own.
func AssertNoLeaks(t testing.TB, before Host, c *Cell) {
	t.Helper()
	if name, _ := os.Hostname(); name != before.Hostname {
		t.Errorf("host hostname changed from %q to %q", before.Hostname, name)
	}
	AssertMountsUnchanged(t, before)
	for dir := range oldRoots() {
		if !before.OldRoots[dir] {
			t.Errorf("%s was left in the root file system: the run did not remove "+
				"pivot_root's put_old directory (see lessons/03-mount.md, unmountOldRoot)", dir)
		}
	}
	if c == nil {
		return
	}
	if err := unix.Kill(c.Pid, 0); err == nil {
		t.Errorf("container process %d still exists", c.Pid)
	}
	assertNoHostVeth(t, c.Pid)
	own := map[string]bool{}
	for _, ns := range Namespaces {
		if c.NS[ns] != NamespaceOf(t, os.Getpid(), ns) {
			own[c.NS[ns]] = true
		}
	}
	// Processes killed with their namespace's init may take a moment to
	// finish exiting; give them two seconds before calling it a leak.
	var left []string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = nil
		for _, pid := range allPids() {
			for _, ns := range Namespaces {
				link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
				if err == nil && own[link] {
					left = append(left, fmt.Sprintf("process %d is still in the container's %s", pid, link))
				}
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

// AssertRootRequired runs the step as an unprivileged user and checks that
// it refuses with a clear message that suggests sudo.
func AssertRootRequired(t testing.TB, args ...string) {
	t.Helper()
	before := Snapshot(t)
	res := RunAsNobody(t, args...)
	checkFailure(t, res, 125, []string{"must be run as root", "sudo"})
	AssertNoLeaks(t, before, nil)
}

// AssertRoot checks, through the magic link /proc/PID/root, that pid's
// root directory is the root file system (same device and inode) and that
// the old root is gone from it.
func AssertRoot(t testing.TB, pid int, rootfs string) {
	t.Helper()
	var got, want unix.Stat_t
	root := fmt.Sprintf("/proc/%d/root", pid)
	if err := unix.Stat(root, &got); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(rootfs, &want); err != nil {
		t.Fatal(err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		t.Errorf("container root is dev %d ino %d, want %s (dev %d ino %d)", got.Dev, got.Ino, rootfs, want.Dev, want.Ino)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/gocell-rootfs")); err != nil {
		t.Errorf("the rootfs marker is not visible through %s: %v", root, err)
	}
	for _, m := range Mounts(t, strconv.Itoa(pid)) {
		if strings.HasPrefix(m.MountPoint, "/.oldroot") {
			t.Errorf("the old root is still mounted in the container at %s", m.MountPoint)
		}
	}
}

// AssertUnreachable checks that a host path cannot be reached from inside
// the container, by resolving it through /proc/PID/root.
func AssertUnreachable(t testing.TB, pid int, hostPath string) {
	t.Helper()
	if _, err := os.Stat(hostPath); err != nil {
		t.Fatalf("the host path %s must exist for this check: %v", hostPath, err)
	}
	inside := fmt.Sprintf("/proc/%d/root%s", pid, hostPath)
	if _, err := os.Lstat(inside); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host path %s is reachable in the container (err %v)", hostPath, err)
	}
}

// AssertMountPoints checks that pid's mount table (its mountinfo) has
// exactly the mount points in want, each once, and nothing of the host's.
func AssertMountPoints(t testing.TB, pid int, want ...string) []Mount {
	t.Helper()
	mounts := Mounts(t, strconv.Itoa(pid))
	var got []string
	for _, m := range mounts {
		got = append(got, m.MountPoint)
	}
	sortStrings(got)
	sortStrings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("container mount points:\n  got  %v\n  want %v", got, want)
	}
	return mounts
}

func sortStrings(s []string) { sort.Strings(s) }

// ContainerProcs lists the pids in the container's own /proc, read from
// the host through /proc/PID/root/proc.
func ContainerProcs(t testing.TB, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/proc", pid))
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// AssertOldRootRemoved checks that a finished run removed the directory
// it gave pivot_root(2) for the old root. The run names it in its
// narration ("pivot_root NEW PUT_OLD"); the check is on the file system.
func AssertOldRootRemoved(t testing.TB, res Result) {
	t.Helper()
	for _, line := range strings.Split(res.Stderr, "\n") {
		_, rest, ok := strings.Cut(line, "pivot_root ")
		f := strings.Fields(rest)
		if !ok || len(f) < 2 || !strings.Contains(f[1], ".oldroot") {
			continue
		}
		if _, err := os.Lstat(f[1]); err == nil {
			t.Errorf("%s was left behind: the run did not remove pivot_root's put_old directory", f[1])
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v", f[1], err)
		}
	}
}

// NetlinkIn returns a netlink handle opened in pid's network namespace,
// from the host: what it lists is what the container has. It is closed
// when the test ends.
func NetlinkIn(t testing.TB, pid int) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatalf("network namespace of %d: %v", pid, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink in %d: %v", pid, err)
	}
	t.Cleanup(h.Close)
	return h
}

// Addrs lists pid's network interfaces and their IPv4 addresses, read
// from the host through a netlink socket opened in pid's network
// namespace: {"lo": ["127.0.0.1/8"], "eth0": ["10.77.5.2/24"]}.
func Addrs(t testing.TB, pid int) map[string][]string {
	t.Helper()
	h := NetlinkIn(t, pid)
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, l := range links {
		addrs, err := h.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		out[l.Attrs().Name] = []string{}
		for _, a := range addrs {
			out[l.Attrs().Name] = append(out[l.Attrs().Name], a.IPNet.String())
		}
	}
	return out
}

// DefaultGateway returns the gateway of pid's default route.
func DefaultGateway(t testing.TB, pid int) string {
	t.Helper()
	routes, err := NetlinkIn(t, pid).RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			return r.Gw.String()
		}
	}
	return ""
}

// HostLink reports whether the host has a network interface called name.
func HostLink(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// BridgePorts lists the interfaces plugged into the host's bridge name.
func BridgePorts(t testing.TB, name string) []string {
	t.Helper()
	br, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	links, err := hostLinks()
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports
}

// Ping sends one ICMP echo to addr from the host and reports whether a
// reply came back within two seconds. It uses ping(8), or busybox's.
func Ping(t testing.TB, addr string) bool {
	t.Helper()
	args := []string{"ping", "-c", "1", "-W", "2", addr}
	if _, err := exec.LookPath("ping"); err != nil {
		if _, err := exec.LookPath("busybox"); err != nil {
			t.Fatal("neither ping nor busybox is installed: apt-get install iputils-ping")
		}
		args = append([]string{"busybox"}, args...)
	}
	return exec.Command(args[0], args[1:]...).Run() == nil
}

// assertNoHostVeth checks that no host interface is named after the
// container's pid, as the steps name the host's end of a veth pair.
func assertNoHostVeth(t testing.TB, pid int) {
	t.Helper()
	links, err := hostLinks()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasSuffix(l.Attrs().Name, fmt.Sprintf("-%d", pid)) {
			t.Errorf("host interface %s of container %d was left behind", l.Attrs().Name, pid)
		}
	}
}

// Send writes s to the command's stdin.
func (c *Cell) Send(t testing.TB, s string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, s); err != nil {
		t.Fatal(err)
	}
}

// CopyRootfs copies the test root file system into a temporary directory,
// owned by uid:gid, for a user namespace with another map. The copy is
// removed when the test ends.
func CopyRootfs(t testing.TB, uid, gid int) string {
	t.Helper()
	src := Rootfs(t)
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
	err := filepath.Walk(dst, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent directories are private to root (0700); the
	// container's root, uid 200000 say, must be able to reach the copy.
	for dir := filepath.Dir(dst); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// CgroupDirs finds, from the host, the cgroup directories of pid for the
// memory, pids and cpu controllers: /proc/PID/cgroup gives the path in
// each tree, the test's own mountinfo where each tree is mounted. On
// cgroup v2 all three are the same directory. The boolean says whether a
// controller is on v2.
func CgroupDirs(t testing.TB, pid int) (map[string]string, map[string]bool) {
	t.Helper()
	all := ProcCgroupDirs(t, pid)
	dirs := map[string]string{}
	onV2 := map[string]bool{}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if d, ok := all[c]; ok {
			dirs[c] = d
		} else if d, ok := all[""]; ok {
			dirs[c], onV2[c] = d, true
		}
	}
	return dirs, onV2
}

// ReadCgroupValue reads "KEY N" from a cgroup file of such lines, or the
// whole trimmed content when key is "".
func ReadCgroupValue(t testing.TB, dir, file, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if key == "" {
		return strings.TrimSpace(string(data))
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			return f[1]
		}
	}
	t.Fatalf("no %s in %s/%s", key, dir, file)
	return ""
}

// CPUTime is the user plus system time, in clock ticks, that pid has used
// so far: fields 14 and 15 of /proc/PID/stat (see proc(5)).
func CPUTime(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// hostLinks lists the host's links, asking again when the kernel
// interrupted the dump because links changed meanwhile.
func hostLinks() ([]netlink.Link, error) {
	for try := 1; ; try++ {
		links, err := netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 10 {
			return links, err
		}
	}
}

// self is the test binary's own path, absolute, so that a test may
// change directory (t.Chdir) and still run it as the program under test.
func self() string {
	path, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return path
}

// TreeSum fingerprints every entry under dir: its type and mode, and the
// SHA-256 of a file's content or a symlink's target. Two sums are equal
// only if nothing in the tree changed. Entries at the top of dir whose
// names match one of the skip patterns (filepath.Match) are left out,
// and so is everything under them.
func TreeSum(t testing.TB, dir string, skip ...string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, path)
		for _, pattern := range skip {
			if ok, _ := filepath.Match(pattern, rel); ok {
				// Checked before err: a skipped entry may vanish
				// while we walk.
				if info != nil && info.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if err != nil {
			return err
		}
		sum := info.Mode().String()
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			sum += " -> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			sum += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		sums[rel] = sum
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// SharedTempDir makes a temporary directory that every user may enter,
// unlike t.TempDir's, so a container's root (uid 100000 outside) can
// read layers in it. It is removed when the test ends.
func SharedTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gocell-layer-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ProcCgroupDirs are a process's cgroup directories, read from
// /proc/PID/cgroup and the test's own mountinfo: by controller on v1
// (each option of a tree's super block), and under "" on v2.
func ProcCgroupDirs(t testing.TB, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{}
	for _, m := range Mounts(t, "self") {
		switch m.FSType {
		case "cgroup2":
			mounts[""] = m.MountPoint
		case "cgroup":
			for _, o := range strings.Split(m.Super, ",") {
				mounts[o] = m.MountPoint
			}
		}
	}
	dirs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		for _, c := range strings.Split(f[1], ",") {
			if mp, ok := mounts[c]; ok && (c != "" || len(mounts) == 1 || f[1] == "") {
				dirs[c] = filepath.Join(mp, f[2])
			}
		}
	}
	return dirs
}
