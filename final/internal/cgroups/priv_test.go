package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The privileged tests use the machine's real cgroups, whatever their
// layout, under a parent of their own, and remove all they make.

// testParent holds the tests' cgroups, apart from real containers'.
const testParent = "gocell-test"

// newReal is a Manager on the real cgroup tree, destroyed when the test
// ends, whatever happened; the test fails if anything is left.
func newReal(t *testing.T, name string) Manager {
	t.Helper()
	celltest.RequirePriv(t)
	name = fmt.Sprintf("%s-%d", name, os.Getpid())
	m, err := New(name, Options{Parent: testParent})
	require.NoError(t, err)
	t.Logf("cgroup v%d: %v", m.Version(), m.Paths())
	t.Cleanup(func() {
		m.Kill()
		assert.NoError(t, m.Destroy())
		for _, dir := range m.Paths() {
			assertGone(t, dir)
		}
	})
	return m
}

// startIn starts a helper inside m's cgroup: born there on v2
// (CLONE_INTO_CGROUP), moved there on v1 before it starts its work.
func startIn(t *testing.T, m Manager, mode string) *exec.Cmd {
	t.Helper()
	cmd := helperCommand(t, mode)
	cmd.Env = append(cmd.Env, "GOCELL_CGROUPS_WAIT=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	fd, born := m.CgroupFD()
	if born {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true,
			CgroupFD: fd}
	}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if !born {
		require.NoError(t, m.Apply(cmd.Process.Pid))
	}
	_, err = stdin.Write([]byte{1})
	require.NoError(t, err)
	return cmd
}

// timed runs f and logs how long it took.
func timed(t *testing.T, what string, f func() error) {
	t.Helper()
	start := time.Now()
	err := f()
	t.Logf("%s took %v", what, time.Since(start).Round(10*time.Microsecond))
	require.NoError(t, err, what)
}

// requireInCgroup checks in /proc/PID/cgroup, the kernel's view, that
// pid is in m's cgroup in every tree.
func requireInCgroup(t *testing.T, m Manager, pid int) {
	t.Helper()
	l, err := detect("/proc/self/mountinfo")
	require.NoError(t, err)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	text := string(data)
	for c, dir := range m.Paths() {
		if c == "" {
			want := "0::" + strings.TrimPrefix(dir, l.unified)
			require.Contains(t, strings.Split(text, "\n"), want,
				"/proc/%d/cgroup", pid)
			continue
		}
		// The path below the mount point, seen from the tree's root.
		mnt := l.v1[c]
		rel := filepath.Join(mnt.root, strings.TrimPrefix(dir, mnt.point))
		require.Equal(t, rel, ownCgroup(text, c),
			"%s in /proc/%d/cgroup:\n%s", c, pid, text)
	}
}

// limitFiles are the files and values a version writes for limited.
func limitFiles(m Manager) map[[2]string]string {
	p := m.Paths()
	if m.Version() == 2 {
		return map[[2]string]string{
			{p[""], "memory.max"}: "67108864",
			{p[""], "pids.max"}:   "20",
			{p[""], "cpu.max"}:    "50000 100000",
		}
	}
	return map[[2]string]string{
		{p["memory"], "memory.limit_in_bytes"}: "67108864",
		{p["pids"], "pids.max"}:                "20",
		{p["cpu"], "cpu.cfs_period_us"}:        "100000",
		{p["cpu"], "cpu.cfs_quota_us"}:         "50000",
	}
}

// assertLimits checks that m's files hold the limits of limited.
func assertLimits(t *testing.T, m Manager) {
	t.Helper()
	for f, want := range limitFiles(m) {
		assert.Equal(t, want, celltest.ReadCgroupValue(t, f[0], f[1], ""), f[1])
	}
}

func TestPrivLifecycle(t *testing.T) {
	m := newReal(t, "lifecycle")
	timed(t, "Create", func() error { return m.Create(limited) })
	assertLimits(t, m)

	cmd := startIn(t, m, "spin")
	pid := cmd.Process.Pid
	requireInCgroup(t, m, pid)
	pids, err := m.Pids()
	require.NoError(t, err)
	assert.Contains(t, pids, pid)

	// Spin for a while: with half a CPU, the quota runs out in every
	// 100 ms period, and the kernel counts those periods.
	time.Sleep(600 * time.Millisecond)
	s, err := m.Stats()
	require.NoError(t, err)
	t.Logf("stats: %+v", s)
	assert.Equal(t, int64(64<<20), s.MemoryMax)
	assert.Equal(t, int64(20), s.PidsMax)
	assert.Positive(t, s.MemoryCurrent)
	assert.Positive(t, s.PidsCurrent)
	assert.Positive(t, s.CPUUsageUsec)
	assert.Positive(t, s.Throttled)

	// Raise, then lower, the limits of the live cgroup (on v1 with swap
	// accounting, memsw must move first in one case and last in the
	// other).
	require.NoError(t, m.Set(Resources{MemoryBytes: 128 << 20, PidsMax: 30,
		CPUs: 1}))
	s, err = m.Stats()
	require.NoError(t, err)
	assert.Equal(t, int64(128<<20), s.MemoryMax)
	assert.Equal(t, int64(30), s.PidsMax)
	require.NoError(t, m.Set(limited))
	assertLimits(t, m)

	// Frozen: the kernel reports it, and the spinner gets no CPU time.
	timed(t, "Freeze", m.Freeze)
	requireFrozen(t, m, true)
	if m.Version() == 2 {
		assert.Contains(t, file(t, m.Paths()[""], "cgroup.events"),
			"frozen 1")
	} else {
		assert.Equal(t, "FROZEN",
			celltest.ReadCgroupValue(t, m.Paths()["freezer"], "freezer.state", ""))
	}
	before := celltest.CPUTime(t, pid)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, before, celltest.CPUTime(t, pid), "ran while frozen")

	timed(t, "Thaw", m.Thaw)
	requireFrozen(t, m, false)
	require.Eventually(t, func() bool { return celltest.CPUTime(t, pid) > before },
		5*time.Second, 20*time.Millisecond, "did not run after thaw")

	timed(t, "Kill", m.Kill)
	requireKilled(t, cmd)
	require.Eventually(t, func() bool {
		pids, err := m.Pids()
		return err == nil && len(pids) == 0
	}, 5*time.Second, 10*time.Millisecond)

	timed(t, "Destroy", m.Destroy)
	for _, dir := range m.Paths() {
		assertGone(t, dir)
	}
}

func TestPrivOOMKill(t *testing.T) {
	m := newReal(t, "oom")
	require.NoError(t, m.Create(Resources{MemoryBytes: 32 << 20}))
	cmd := startIn(t, m, "alloc")
	requireKilled(t, cmd)
	s, err := m.Stats()
	require.NoError(t, err)
	t.Logf("stats: %+v", s)
	assert.GreaterOrEqual(t, s.OOMKills, int64(1))
	assert.Equal(t, int64(32<<20), s.MemoryMax)
}

func TestPrivKillByFreezingAfterLoad(t *testing.T) {
	// What `rm -f` does after a crash: a Manager from the recorded paths,
	// and the kill that works on every kernel (freeze, SIGKILL, thaw).
	m := newReal(t, "load")
	require.NoError(t, m.Create(limited))
	a := startIn(t, m, "sleep")
	b := startIn(t, m, "sleep")
	loaded := Load(m.Paths())
	require.Equal(t, m.Version(), loaded.Version())
	pids, err := loaded.Pids()
	require.NoError(t, err)
	assert.True(t, slices.Contains(pids, a.Process.Pid) &&
		slices.Contains(pids, b.Process.Pid), "pids %v", pids)

	timed(t, "freeze, SIGKILL, thaw", func() error { return killAll(loaded) })
	requireKilled(t, a)
	requireKilled(t, b)
	requireFrozen(t, loaded, false, "left frozen")
	timed(t, "Destroy (loaded)", loaded.Destroy)
	for _, dir := range m.Paths() {
		assertGone(t, dir, filepath.Dir(dir))
	}
}
