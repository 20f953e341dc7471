package cgroups

import (
	"fmt"
	"github.com/gocell/gocell/internal/celltest"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// limited is the Resources most tests create with.
var limited = Resources{MemoryBytes: 64 << 20, PidsMax: 20, CPUs: 0.5}

// createdV2 is a Manager for "c1" on a fake v2 tree, created with res.
func createdV2(t *testing.T, res Resources) (*fakeTree, Manager) {
	t.Helper()
	ft := fakeV2(t, "")
	m := ft.newManager("c1")
	require.NoError(t, m.Create(res))
	return ft, m
}

// setTimeout sets *p to d until the test ends.
func setTimeout(t *testing.T, p *time.Duration, d time.Duration) {
	old := *p
	*p = d
	t.Cleanup(func() { *p = old })
}

// requireFrozen checks that m reports itself frozen, or not.
func requireFrozen(t *testing.T, m Manager, want bool, msgAndArgs ...any) {
	t.Helper()
	frozen, err := m.Frozen()
	require.NoError(t, err)
	require.Equal(t, want, frozen, msgAndArgs...)
}

// file reads a file of a cgroup directory, for assertions.
func file(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return string(data)
}

func TestV2CreateWritesLimits(t *testing.T) {
	ft := fakeV2(t, "")
	m := ft.newManager("c1")
	require.Equal(t, 2, m.Version())
	require.NoError(t, m.Create(limited))

	root := ft.point("unified")
	dir := filepath.Join(root, "gocell", "c1")
	assert.Equal(t, map[string]string{"": dir}, m.Paths())
	// The controllers are switched on at each level above the cgroup.
	assert.Equal(t, "+memory +pids +cpu", file(t, root, "cgroup.subtree_control"))
	assert.Equal(t, "+memory +pids +cpu",
		file(t, filepath.Join(root, "gocell"), "cgroup.subtree_control"))
	assert.Equal(t, "67108864", file(t, dir, "memory.max"))
	assert.Equal(t, "0", file(t, dir, "memory.swap.max"))
	assert.Equal(t, "20", file(t, dir, "pids.max"))
	assert.Equal(t, "50000 100000", file(t, dir, "cpu.max"))
	assert.Equal(t, "100", file(t, dir, "cpu.weight"), "the default")
	// Nothing moved in yet.
	assert.Empty(t, file(t, dir, "cgroup.procs"))
}

func TestV2CreateKeepsEnabledControllers(t *testing.T) {
	// As on a systemd host: the root already passes them all down.
	ft := fakeV2(t, "cpuset cpu io memory pids")
	m := ft.newManager("c1")
	require.NoError(t, m.Create(Resources{}))
	root := ft.point("unified")
	assert.Equal(t, "cpuset cpu io memory pids",
		file(t, root, "cgroup.subtree_control"), "rewritten needlessly")
	dir := filepath.Join(root, "gocell", "c1")
	assert.Equal(t, "max", file(t, dir, "memory.max"))
	assert.Equal(t, "max", file(t, dir, "pids.max"))
	assert.Equal(t, "max 100000", file(t, dir, "cpu.max"))

	// A second container shares the parent, whose controllers are on.
	ft.writeFile(filepath.Join(root, "gocell", "cgroup.subtree_control"),
		"memory pids cpu")
	require.NoError(t, ft.newManager("c2").Create(Resources{}))
	assert.Equal(t, "memory pids cpu",
		file(t, filepath.Join(root, "gocell"), "cgroup.subtree_control"))
}

func TestV2CreateWithoutSwapAccounting(t *testing.T) {
	ft := fakeV2(t, "")
	ft.omit["memory.swap.max"] = true
	m := ft.newManager("c1")
	require.NoError(t, m.Create(limited))
	assert.Equal(t, "67108864", file(t, m.Paths()[""], "memory.max"))
}

func TestCreateFailureRemovesWhatItMade(t *testing.T) {
	for _, layout := range []string{"v1", "v2"} {
		t.Run(layout, func(t *testing.T) {
			var ft *fakeTree
			if layout == "v1" {
				ft = fakeV1(t, false)
				ft.omit["cpu.cfs_quota_us"] = true
			} else {
				ft = fakeV2(t, "")
				ft.omit["cpu.max"] = true
			}
			m := ft.newManager("c1")
			err := m.Create(limited)
			require.ErrorIs(t, err, fs.ErrNotExist)
			assert.Contains(t, err.Error(), "/gocell/c1/cpu.")
			for _, dir := range m.Paths() {
				assertGone(t, dir, filepath.Dir(dir))
			}
		})
	}
}

func TestCreateRefusesAnExistingCgroup(t *testing.T) {
	ft := fakeV2(t, "")
	require.NoError(t, ft.newManager("c1").Create(Resources{}))
	err := ft.newManager("c1").Create(Resources{})
	require.ErrorIs(t, err, fs.ErrExist)
	// The first container's cgroup is untouched.
	assert.DirExists(t, filepath.Join(ft.point("unified"), "gocell", "c1"))
}

func TestCreateRejectsBadResources(t *testing.T) {
	ft := fakeV2(t, "")
	m := ft.newManager("c1")
	for _, res := range []Resources{
		{MemoryBytes: -1}, {PidsMax: -5}, {CPUs: -1}, {CPUs: 0.001},
		{CPUs: math.Inf(1)}, {CPUs: math.NaN()}, {CPUs: 1e300},
	} {
		assert.Error(t, m.Create(res), "%+v", res)
	}
	assertGone(t, filepath.Join(ft.point("unified"), "gocell"))
}

func TestNewRejectsBadNames(t *testing.T) {
	ft := fakeV2(t, "")
	for _, name := range []string{"", ".", "..", "a/b", "../x"} {
		_, err := New(name, ft.opts)
		assert.Error(t, err, "name %q", name)
		opts := ft.opts
		opts.Parent = name
		if name != "" { // "" is the default parent
			_, err = New("c1", opts)
			assert.Error(t, err, "parent %q", name)
		}
	}
}

func TestV2Set(t *testing.T) {
	_, m := createdV2(t, limited)
	dir := m.Paths()[""]

	require.NoError(t, m.Set(Resources{MemoryBytes: 1 << 30, PidsMax: 100,
		CPUs: 1.5}))
	assert.Equal(t, "1073741824", file(t, dir, "memory.max"))
	assert.Equal(t, "0", file(t, dir, "memory.swap.max"))
	assert.Equal(t, "100", file(t, dir, "pids.max"))
	assert.Equal(t, "150000 100000", file(t, dir, "cpu.max"))

	// Zero lifts each limit again.
	require.NoError(t, m.Set(Resources{}))
	assert.Equal(t, "max", file(t, dir, "memory.max"))
	assert.Equal(t, "max", file(t, dir, "memory.swap.max"))
	assert.Equal(t, "max", file(t, dir, "pids.max"))
	assert.Equal(t, "max 100000", file(t, dir, "cpu.max"))
}

func TestV2Apply(t *testing.T) {
	_, m := createdV2(t, Resources{})
	require.NoError(t, m.Apply(4242))
	assert.Equal(t, "4242", file(t, m.Paths()[""], "cgroup.procs"))
}

func TestV2FreezeAndThaw(t *testing.T) {
	ft, m := createdV2(t, Resources{})
	dir := m.Paths()[""]

	// The kernel's answer that Freeze waits for.
	ft.writeFile(filepath.Join(dir, "cgroup.events"), "populated 1\nfrozen 1\n")
	require.NoError(t, m.Freeze())
	assert.Equal(t, "1", file(t, dir, "cgroup.freeze"))
	requireFrozen(t, m, true)

	ft.writeFile(filepath.Join(dir, "cgroup.events"), "populated 1\nfrozen 0\n")
	require.NoError(t, m.Thaw())
	assert.Equal(t, "0", file(t, dir, "cgroup.freeze"))
	requireFrozen(t, m, false)
}

func TestV2FreezeTimesOutAndThaws(t *testing.T) {
	setTimeout(t, &freezeTimeout, 50*time.Millisecond)
	_, m := createdV2(t, Resources{})
	// cgroup.events keeps saying "frozen 0": a process that never stops.
	err := m.Freeze()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timed out")
	assert.Equal(t, "0", file(t, m.Paths()[""], "cgroup.freeze"),
		"a failed freeze must not leave the cgroup freezing")
}

func TestV2Stats(t *testing.T) {
	ft, m := createdV2(t, limited)
	dir := m.Paths()[""]
	ft.writeFile(filepath.Join(dir, "memory.current"), "1048576\n")
	ft.writeFile(filepath.Join(dir, "memory.events"),
		"low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n")
	ft.writeFile(filepath.Join(dir, "pids.current"), "7\n")
	ft.writeFile(filepath.Join(dir, "cpu.stat"), "usage_usec 123456\n"+
		"user_usec 100000\nsystem_usec 23456\nnr_periods 40\n"+
		"nr_throttled 9\nthrottled_usec 5000\n")
	s, err := m.Stats()
	require.NoError(t, err)
	assert.Equal(t, Stats{MemoryCurrent: 1 << 20, MemoryMax: 64 << 20,
		OOMKills: 2, PidsCurrent: 7, PidsMax: 20, CPUUsageUsec: 123456,
		Throttled: 9}, s)

	// No limits read as 0.
	require.NoError(t, m.Set(Resources{}))
	s, err = m.Stats()
	require.NoError(t, err)
	assert.Zero(t, s.MemoryMax)
	assert.Zero(t, s.PidsMax)

	// A file that makes no sense is an error naming it.
	ft.writeFile(filepath.Join(dir, "pids.current"), "lots\n")
	_, err = m.Stats()
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "pids.current"))
}

func TestV2KillWritesCgroupKill(t *testing.T) {
	_, m := createdV2(t, Resources{})
	require.NoError(t, m.Kill())
	assert.Equal(t, "1", file(t, m.Paths()[""], "cgroup.kill"))
}

// startSleeper starts a real process for the Kill tests to kill: this
// test binary, sleeping (see TestMain).
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := helperCommand(t, "sleep")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// requireKilled checks that cmd died of SIGKILL.
func requireKilled(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("process %d still alive 5s after Kill", cmd.Process.Pid)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled(), "status %v", cmd.ProcessState)
	require.Equal(t, syscall.SIGKILL, ws.Signal())
}

func TestV2KillWithoutCgroupKill(t *testing.T) {
	// A kernel before 5.14: freeze, SIGKILL each process, thaw.
	ft := fakeV2(t, "")
	ft.omit["cgroup.kill"] = true
	m := ft.newManager("c1")
	require.NoError(t, m.Create(Resources{}))
	dir := m.Paths()[""]
	ft.runFreezer(dir)
	cmd := startSleeper(t)
	ft.writeFile(filepath.Join(dir, "cgroup.procs"),
		strconv.Itoa(cmd.Process.Pid)+"\n")

	require.NoError(t, m.Kill())
	requireKilled(t, cmd)
	assert.Equal(t, "0", file(t, dir, "cgroup.freeze"), "left frozen")
}

func TestV1CreateWritesLimits(t *testing.T) {
	ft := fakeV1(t, false)
	m := ft.newManager("c1")
	require.Equal(t, 1, m.Version())
	require.NoError(t, m.Create(limited))
	want := map[string]string{}
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "freezer"} {
		want[c] = filepath.Join(ft.point(c), "user.slice", "gocell", "c1")
		assert.DirExists(t, want[c])
	}
	require.Equal(t, want, m.Paths())
	p := m.Paths()
	assert.Equal(t, "67108864", file(t, p["memory"], "memory.limit_in_bytes"))
	assert.Equal(t, "67108864",
		file(t, p["memory"], "memory.memsw.limit_in_bytes"))
	assert.Equal(t, "20", file(t, p["pids"], "pids.max"))
	assert.Equal(t, "100000", file(t, p["cpu"], "cpu.cfs_period_us"))
	assert.Equal(t, "50000", file(t, p["cpu"], "cpu.cfs_quota_us"))
	assert.Equal(t, "1024", file(t, p["cpu"], "cpu.shares"), "the default")
	assert.Equal(t, "THAWED", file(t, p["freezer"], "freezer.state"))

	require.NoError(t, m.Set(Resources{}))
	assert.Equal(t, "-1", file(t, p["memory"], "memory.limit_in_bytes"))
	assert.Equal(t, "-1", file(t, p["memory"], "memory.memsw.limit_in_bytes"))
	assert.Equal(t, "max", file(t, p["pids"], "pids.max"))
	assert.Equal(t, "-1", file(t, p["cpu"], "cpu.cfs_quota_us"))
}

func TestV1CreateWithoutSwapAccounting(t *testing.T) {
	ft := fakeV1(t, false)
	ft.omit["memory.memsw.limit_in_bytes"] = true
	m := ft.newManager("c1")
	require.NoError(t, m.Create(limited))
	assert.Equal(t, "67108864",
		file(t, m.Paths()["memory"], "memory.limit_in_bytes"))
}

func TestV1CoMountedCPU(t *testing.T) {
	ft := fakeV1(t, true)
	m := ft.newManager("c1")
	require.NoError(t, m.Create(limited))
	p := m.Paths()
	dir := filepath.Join(ft.point("cpu,cpuacct"), "user.slice", "gocell", "c1")
	assert.Equal(t, dir, p["cpu"])
	assert.Equal(t, dir, p["cpuacct"])
	assert.Equal(t, "50000", file(t, dir, "cpu.cfs_quota_us"))
	require.NoError(t, m.Destroy())
	assertGone(t, dir)
}

func TestHybridUsesV1(t *testing.T) {
	ft := fakeHybrid(t)
	m := ft.newManager("c1")
	require.Equal(t, 1, m.Version())
	require.NoError(t, m.Create(limited))
	_, ok := m.CgroupFD()
	assert.False(t, ok)
	assert.NotContains(t, m.Paths(), "")
	entries, err := os.ReadDir(ft.point("unified"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, e.IsDir(), "made %s in the empty cgroup2", e.Name())
	}
	assert.Equal(t, "67108864",
		file(t, m.Paths()["memory"], "memory.limit_in_bytes"))
}

func TestV1ApplyWritesEveryTree(t *testing.T) {
	ft := fakeV1(t, false)
	m := ft.newManager("c1")
	require.NoError(t, m.Create(Resources{}))
	require.NoError(t, m.Apply(4242))
	for c, dir := range m.Paths() {
		assert.Equal(t, "4242", file(t, dir, "cgroup.procs"), c)
	}
	pids, err := m.Pids()
	require.NoError(t, err)
	assert.Equal(t, []int{4242}, pids)
}

func TestV1FreezeAndThaw(t *testing.T) {
	ft := fakeV1(t, false)
	m := ft.newManager("c1")
	require.NoError(t, m.Create(Resources{}))
	state := m.Paths()["freezer"]
	// On the fake tree freezer.state reads what was written: FROZEN is
	// the answer Freeze waits for.
	require.NoError(t, m.Freeze())
	assert.Equal(t, "FROZEN", file(t, state, "freezer.state"))
	requireFrozen(t, m, true)
	require.NoError(t, m.Thaw())
	assert.Equal(t, "THAWED", file(t, state, "freezer.state"))
	requireFrozen(t, m, false)
}

func TestV1Stats(t *testing.T) {
	ft := fakeV1(t, false)
	m := ft.newManager("c1")
	require.NoError(t, m.Create(limited))
	p := m.Paths()
	ft.writeFile(filepath.Join(p["memory"], "memory.usage_in_bytes"), "2097152\n")
	ft.writeFile(filepath.Join(p["memory"], "memory.oom_control"),
		"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
	ft.writeFile(filepath.Join(p["pids"], "pids.current"), "4\n")
	ft.writeFile(filepath.Join(p["cpuacct"], "cpuacct.usage"), "987654321\n")
	ft.writeFile(filepath.Join(p["cpu"], "cpu.stat"),
		"nr_periods 10\nnr_throttled 6\nthrottled_time 123\n")
	s, err := m.Stats()
	require.NoError(t, err)
	assert.Equal(t, Stats{MemoryCurrent: 2 << 20, MemoryMax: 64 << 20,
		OOMKills: 3, PidsCurrent: 4, PidsMax: 20, CPUUsageUsec: 987654,
		Throttled: 6}, s)

	// No limit: the kernel's huge number and "max" both read as 0.
	ft.writeFile(filepath.Join(p["memory"], "memory.limit_in_bytes"), unlimited)
	ft.writeFile(filepath.Join(p["pids"], "pids.max"), "max")
	s, err = m.Stats()
	require.NoError(t, err)
	assert.Zero(t, s.MemoryMax)
	assert.Zero(t, s.PidsMax)
}

func TestV1Kill(t *testing.T) {
	ft := fakeV1(t, false)
	m := ft.newManager("c1")
	require.NoError(t, m.Create(Resources{}))
	cmd := startSleeper(t)
	require.NoError(t, m.Apply(cmd.Process.Pid))
	require.NoError(t, m.Kill())
	requireKilled(t, cmd)
	assert.Equal(t, "THAWED", file(t, m.Paths()["freezer"], "freezer.state"))
}

func TestV1KillOfAnEmptyCgroupLeavesTheFreezerAlone(t *testing.T) {
	ft := fakeV1(t, false)
	m := ft.newManager("c1")
	require.NoError(t, m.Create(Resources{}))
	// The fake freezer.state reads what was last written: a freeze and
	// thaw would leave THAWED here.
	state := m.Paths()["freezer"]
	ft.writeFile(filepath.Join(state, "freezer.state"), "untouched")
	require.NoError(t, m.Kill())
	assert.Equal(t, "untouched", file(t, state, "freezer.state"))
}

func TestDestroy(t *testing.T) {
	for _, layout := range []string{"v1", "v2"} {
		t.Run(layout, func(t *testing.T) {
			ft := fakeV2(t, "")
			if layout == "v1" {
				ft = fakeV1(t, false)
			}
			m1, m2 := ft.newManager("c1"), ft.newManager("c2")
			require.NoError(t, m1.Create(limited))
			require.NoError(t, m2.Create(limited))

			// The parent stays while another container uses it.
			require.NoError(t, m1.Destroy())
			for _, dir := range m1.Paths() {
				assertGone(t, dir)
				assert.DirExists(t, filepath.Dir(dir))
			}
			// Gone already is fine.
			require.NoError(t, m1.Destroy())

			require.NoError(t, m2.Destroy())
			for _, dir := range m2.Paths() {
				assertGone(t, dir, filepath.Dir(dir))
				// Our caller's own cgroup (v1) or the root (v2) stays.
				assert.DirExists(t, filepath.Dir(filepath.Dir(dir)))
			}
		})
	}
}

func TestDestroyWaitsForProcessesToExit(t *testing.T) {
	setTimeout(t, &destroyTimeout, 2*time.Second)
	ft, m := createdV2(t, Resources{})
	dir := m.Paths()[""]
	procs := filepath.Join(dir, "cgroup.procs")
	ft.writeFile(procs, "4242\n")
	// The process "exits" a moment later.
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.WriteFile(procs, nil, 0o644)
	}()
	require.NoError(t, m.Destroy())
	assertGone(t, dir)
}

func TestDestroyGivesUp(t *testing.T) {
	setTimeout(t, &destroyTimeout, 50*time.Millisecond)
	ft, m := createdV2(t, Resources{})
	dir := m.Paths()[""]
	ft.writeFile(filepath.Join(dir, "cgroup.procs"), "4242\n")
	err := m.Destroy()
	require.ErrorIs(t, err, unix.EBUSY)
	assert.Contains(t, err.Error(), dir)
}

func TestLoadRoundTrip(t *testing.T) {
	for _, layout := range []string{"v1", "v2", "hybrid"} {
		t.Run(layout, func(t *testing.T) {
			var ft *fakeTree
			switch layout {
			case "v1":
				ft = fakeV1(t, false)
			case "v2":
				ft = fakeV2(t, "")
			default:
				ft = fakeHybrid(t)
			}
			m := ft.newManager("c1")
			require.NoError(t, m.Create(limited))
			require.NoError(t, m.Apply(4242))

			// What a container's state.json would keep, after a crash.
			loaded := load(m.Paths(), ft.opts.dirs)
			assert.Equal(t, m.Version(), loaded.Version())
			assert.Equal(t, m.Paths(), loaded.Paths())
			pids, err := loaded.Pids()
			require.NoError(t, err)
			assert.Equal(t, []int{4242}, pids)
			s, err := loaded.Stats()
			require.NoError(t, err)
			assert.Equal(t, int64(20), s.PidsMax)

			for _, dir := range m.Paths() {
				ft.writeFile(filepath.Join(dir, "cgroup.procs"), "")
			}
			require.NoError(t, loaded.Destroy())
			for _, dir := range m.Paths() {
				assertGone(t, dir, filepath.Dir(dir))
			}
		})
	}
	// The real Load picks the version from the keys alone.
	assert.Equal(t, 2, Load(map[string]string{"": "/x"}).Version())
	assert.Equal(t, 1, Load(map[string]string{"memory": "/x"}).Version())
}

func TestLoadedV1WithoutAController(t *testing.T) {
	m := Load(map[string]string{"memory": t.TempDir()})
	_, err := m.Frozen()
	require.ErrorIs(t, err, ErrNoController)
	assert.Contains(t, err.Error(), "freezer")
}

func TestCgroupFD(t *testing.T) {
	_, m := createdV2(t, Resources{})
	fd, ok := m.CgroupFD()
	require.True(t, ok)
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(fd, &st))
	assert.Equal(t, uint32(unix.S_IFDIR), st.Mode&unix.S_IFMT)
	again, _ := m.CgroupFD()
	assert.Equal(t, fd, again, "opened twice")
	require.NoError(t, m.Destroy())
	assert.ErrorIs(t, unix.Fstat(fd, &st), unix.EBADF, "fd left open")

	// No directory, no descriptor: the caller falls back to Apply.
	_, ok = m.CgroupFD()
	assert.False(t, ok)

	v1m := fakeV1(t, false).newManager("c1")
	_, ok = v1m.CgroupFD()
	assert.False(t, ok)
	assert.NoError(t, v1m.Close())
}

func TestV1NestsUnderTheMountsRoot(t *testing.T) {
	// In a container without a cgroup namespace, a tree is mounted from
	// the container's own cgroup: mountinfo's root is /docker/abc, and
	// so is our cgroup. The cgroup goes straight below the mount point.
	ft := newFakeTree(t)
	var lines []string
	for _, c := range []string{"memory", "pids", "cpu", "freezer"} {
		point := ft.point(c)
		require.NoError(t, os.MkdirAll(point, 0o755))
		lines = append(lines, "31 30 0:28 /docker/abc "+point+
			" rw,nosuid - cgroup cgroup rw,"+c)
	}
	ft.mountinfo = append(ft.mountinfo, lines...)
	ft.write()
	ft.writeProc("1:memory:/docker/abc\n2:pids:/docker/abc\n" +
		"3:cpu:/docker/abc\n4:freezer:/docker/abc\n")
	m := ft.newManager("c1")
	assert.Equal(t, filepath.Join(ft.point("memory"), "gocell", "c1"),
		m.Paths()["memory"])

	// A cgroup outside the mounted part cannot be reached.
	ft.writeProc("1:memory:/other\n2:pids:/docker/abc\n" +
		"3:cpu:/docker/abc\n4:freezer:/docker/abc\n")
	_, err := New("c1", ft.opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside")
}

// TestCPUShares: v1 takes the shares as they are; v2 a weight, by runc's
// map, which keeps the ends of the range.
func TestCPUShares(t *testing.T) {
	for shares, weight := range map[uint64]string{2: "1", 512: "20", 262144: "10000"} {
		_, m := createdV2(t, Resources{CPUShares: shares})
		assert.Equal(t, weight, file(t, m.Paths()[""], "cpu.weight"), "shares %d", shares)
	}
	ft := fakeV1(t, false)
	m := ft.newManager("c1")
	require.NoError(t, m.Create(Resources{CPUShares: 512}))
	assert.Equal(t, "512", file(t, m.Paths()["cpu"], "cpu.shares"))
	for _, bad := range []uint64{1, 262145} {
		_, err := checkResources(Resources{CPUShares: bad})
		assert.ErrorContains(t, err, "not within 2 to 262144")
	}
}

// TestMemorySwap: memory plus swap, as Docker's --memory-swap: v1 writes
// the total, v2 what it leaves over the memory; -1 lifts the swap limit.
func TestMemorySwap(t *testing.T) {
	_, m := createdV2(t, Resources{MemoryBytes: 64 << 20, MemorySwapBytes: 128 << 20})
	assert.Equal(t, "67108864", file(t, m.Paths()[""], "memory.swap.max"))
	require.NoError(t, m.Set(Resources{MemoryBytes: 64 << 20, MemorySwapBytes: -1}))
	assert.Equal(t, "max", file(t, m.Paths()[""], "memory.swap.max"))
	require.NoError(t, m.Set(Resources{MemoryBytes: 64 << 20}))
	assert.Equal(t, "0", file(t, m.Paths()[""], "memory.swap.max"), "no swap unless asked")

	ft := fakeV1(t, false)
	m = ft.newManager("c1")
	require.NoError(t, m.Create(Resources{MemoryBytes: 64 << 20, MemorySwapBytes: 128 << 20}))
	dir := m.Paths()["memory"]
	assert.Equal(t, "134217728", file(t, dir, "memory.memsw.limit_in_bytes"))
	assert.Equal(t, "67108864", file(t, dir, "memory.limit_in_bytes"))
	require.NoError(t, m.Set(Resources{MemoryBytes: 32 << 20}))
	assert.Equal(t, "33554432", file(t, dir, "memory.memsw.limit_in_bytes"))
	require.NoError(t, m.Set(Resources{MemoryBytes: 32 << 20, MemorySwapBytes: -1}))
	assert.Equal(t, "-1", file(t, dir, "memory.memsw.limit_in_bytes"))

	for _, bad := range []Resources{{MemorySwapBytes: 1 << 20}, {MemoryBytes: 2 << 20, MemorySwapBytes: 1 << 20},
		{MemoryBytes: 2 << 20, MemorySwapBytes: -2}} {
		_, err := checkResources(bad)
		assert.Error(t, err, "%+v", bad)
	}
}

// TestMemorySwapOrder: on the machine's own cgroups (v1 refuses a
// memory+swap limit below the memory limit, so the order of the writes
// matters), every change of both goes through, up and down.
func TestMemorySwapOrder(t *testing.T) {
	celltest.RequirePriv(t)
	m, err := New("gocell-swap-test", Options{})
	require.NoError(t, err)
	require.NoError(t, m.Create(Resources{MemoryBytes: 64 << 20, MemorySwapBytes: 128 << 20}))
	t.Cleanup(func() { assert.NoError(t, m.Destroy()) })
	for _, r := range []Resources{{MemoryBytes: 256 << 20, MemorySwapBytes: 512 << 20}, {MemoryBytes: 16 << 20},
		{MemoryBytes: 16 << 20, MemorySwapBytes: -1}, {MemoryBytes: 8 << 20, MemorySwapBytes: 12 << 20}, {}} {
		require.NoError(t, m.Set(r), "%+v", r)
	}
	require.NoError(t, m.Set(Resources{MemoryBytes: 8 << 20, MemorySwapBytes: 12 << 20}))
	p := m.Paths()
	if dir, ok := p["memory"]; ok {
		if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
			assert.Equal(t, "12582912", strings.TrimSpace(file(t, dir, "memory.memsw.limit_in_bytes")))
		}
	} else if _, err := os.Stat(filepath.Join(p[""], "memory.swap.max")); err == nil {
		assert.Equal(t, "4194304", strings.TrimSpace(file(t, p[""], "memory.swap.max")))
	}
}

// TestCPUSet: with Options.CPUSet, on v1 the new cgroups get their
// parent's CPUs and memory nodes, top down (a v1 cpuset cgroup starts
// with none, and can hold no process then), and then what was asked
// for; on v2 the controller is switched on and the lists written.
// Without it, asking is refused and nothing is left.
func TestCPUSet(t *testing.T) {
	ft := fakeV1(t, false)
	ft.addV1("cpuset")
	point := ft.point("cpuset")
	ft.writeFile(filepath.Join(point, "cpuset.cpus"), "0-3")
	ft.writeFile(filepath.Join(point, "cpuset.mems"), "0")
	opts := ft.opts
	opts.CPUSet = true
	m, err := New("c1", opts)
	require.NoError(t, err)
	require.NoError(t, m.Create(Resources{CPUSetCPUs: "1-2"}))
	dir := m.Paths()["cpuset"]
	require.NotEmpty(t, dir)
	assert.Equal(t, "1-2", file(t, dir, "cpuset.cpus"))
	assert.Equal(t, "0", file(t, dir, "cpuset.mems"), "the parent's")
	assert.Equal(t, "0-3", file(t, filepath.Dir(dir), "cpuset.cpus"), "the parent got the root's")

	plain := ft.newManager("c2")
	_, has := plain.Paths()["cpuset"]
	assert.False(t, has, "no cpuset cgroup unless asked for")
	err = plain.Create(Resources{CPUSetCPUs: "1"})
	assert.ErrorContains(t, err, "without the cpuset controller")
	for _, d := range plain.Paths() {
		assert.NoDirExists(t, d)
	}

	ft2 := fakeV2(t, "")
	opts2 := ft2.opts
	opts2.CPUSet = true
	m2, err := New("c1", opts2)
	require.NoError(t, err)
	require.NoError(t, m2.Create(Resources{CPUSetCPUs: "0", CPUSetMems: "0"}))
	assert.Equal(t, "0", file(t, m2.Paths()[""], "cpuset.cpus"))
	assert.Contains(t, file(t, filepath.Dir(m2.Paths()[""]), "cgroup.subtree_control"), "cpuset")

	for _, bad := range []string{"zero", "0-", ",1", "1 2"} {
		_, err := checkResources(Resources{CPUSetCPUs: bad})
		assert.ErrorContains(t, err, "is not like", bad)
	}
}

// TestCPUSetPins: on the machine's own cgroups, a process in a cgroup
// given CPU 0 may run on CPU 0 only (Cpus_allowed_list in its status);
// CPUs the machine does not have are refused, naming those it has.
func TestCPUSetPins(t *testing.T) {
	celltest.RequirePriv(t)
	m, err := New("gocell-cpuset-test", Options{CPUSet: true})
	require.NoError(t, err)
	require.NoError(t, m.Create(Resources{CPUSetCPUs: "0"}))
	t.Cleanup(func() { assert.NoError(t, m.Destroy()) })
	cmd := exec.Command("sleep", "10")
	require.NoError(t, cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	require.NoError(t, m.Apply(cmd.Process.Pid))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	require.NoError(t, err)
	assert.Regexp(t, `Cpus_allowed_list:\s+0\n`, string(status))
	cmd.Process.Kill()
	cmd.Wait()

	bad, err := New("gocell-cpuset-bad", Options{CPUSet: true})
	require.NoError(t, err)
	err = bad.Create(Resources{CPUSetCPUs: "999"})
	assert.ErrorContains(t, err, "CPUs 999: not among those offered")
	for _, d := range bad.Paths() {
		assert.NoDirExists(t, d, "nothing left of a refused cgroup")
	}
}

// TestMemoryReservation: the soft limit goes to v2's memory.low and v1's
// memory.soft_limit_in_bytes, and back to none when unset; a reservation
// above the limit is refused.
func TestMemoryReservation(t *testing.T) {
	_, m := createdV2(t, Resources{MemoryBytes: 64 << 20, MemoryReservationBytes: 32 << 20})
	assert.Equal(t, "33554432", file(t, m.Paths()[""], "memory.low"))
	require.NoError(t, m.Set(Resources{MemoryBytes: 64 << 20}))
	assert.Equal(t, "0", file(t, m.Paths()[""], "memory.low"))

	ft := fakeV1(t, false)
	m = ft.newManager("c1")
	require.NoError(t, m.Create(Resources{MemoryReservationBytes: 16 << 20}))
	dir := m.Paths()["memory"]
	assert.Equal(t, "16777216", file(t, dir, "memory.soft_limit_in_bytes"))
	require.NoError(t, m.Set(Resources{}))
	assert.Equal(t, "-1", file(t, dir, "memory.soft_limit_in_bytes"))

	for _, bad := range []Resources{{MemoryReservationBytes: -1},
		{MemoryBytes: 16 << 20, MemoryReservationBytes: 32 << 20}} {
		_, err := checkResources(bad)
		assert.Error(t, err, "%+v", bad)
	}
}

// TestLoadKeepsCPUSet: a v2 cgroup loaded from its path knows whether it
// has the cpuset controller (from cgroup.controllers), so that a later
// Set (gocell update) can change its CPUs, and is refused if it has none.
func TestLoadKeepsCPUSet(t *testing.T) {
	ft := fakeV2(t, "")
	opts := ft.opts
	opts.CPUSet = true
	m, err := New("c1", opts)
	require.NoError(t, err)
	require.NoError(t, m.Create(Resources{CPUSetCPUs: "0"}))
	loaded := load(m.Paths(), ft.opts.dirs)
	require.NoError(t, loaded.Set(Resources{CPUSetCPUs: "1"}))
	assert.Equal(t, "1", file(t, m.Paths()[""], "cpuset.cpus"))

	plain := ft.newManager("c2")
	require.NoError(t, plain.Create(Resources{}))
	err = load(plain.Paths(), ft.opts.dirs).Set(Resources{CPUSetCPUs: "1"})
	assert.ErrorContains(t, err, "without the cpuset controller")
}
