package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// This file builds fake cgroup trees in a temporary directory: ordinary
// directories and files laid out as the kernel lays out cgroupfs, and a
// mountinfo and /proc/self/cgroup that point at them. The fake kernel's
// mkdir fills a new cgroup with the interface files, as the real one
// does; its rmdir refuses a cgroup with processes or children (EBUSY).

// unlimited is what v1's memory.limit_in_bytes reads when there is no
// limit: the largest int64, rounded down to a 4 KiB page.
const unlimited = "9223372036854771712"

// v1Files are the interface files of a new v1 cgroup, per controller.
var v1Files = map[string]map[string]string{
	"memory": {
		"memory.limit_in_bytes":       unlimited,
		"memory.memsw.limit_in_bytes": unlimited,
		"memory.soft_limit_in_bytes":  unlimited,
		"memory.usage_in_bytes":       "0",
		"memory.oom_control":          "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
	},
	"pids": {"pids.max": "max", "pids.current": "0"},
	"cpu": {
		"cpu.cfs_period_us": "100000",
		"cpu.cfs_quota_us":  "-1",
		"cpu.shares":        "1024",
		"cpu.stat":          "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
	},
	"cpuacct": {"cpuacct.usage": "0"},
	"cpuset":  {"cpuset.cpus": "", "cpuset.mems": ""},
	"freezer": {"freezer.state": "THAWED"},
}

// v2Files are the interface files of a new v2 cgroup with the memory,
// pids and cpu controllers on (cgroup.controllers is added by mkdir).
var v2Files = map[string]string{
	"cgroup.procs":           "",
	"cgroup.subtree_control": "",
	"cgroup.events":          "populated 0\nfrozen 0\n",
	"cgroup.freeze":          "0",
	"cgroup.kill":            "",
	"memory.max":             "max",
	"memory.swap.max":        "max",
	"memory.low":             "0",
	"memory.current":         "0",
	"memory.events":          "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
	"pids.max":               "max",
	"pids.current":           "0",
	"cpu.max":                "max 100000",
	"cpu.weight":             "100",
	"cpuset.cpus":            "",
	"cpuset.mems":            "",
	"cpu.stat":               "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
}

// fakeTree is a fake cgroup layout: the Options that point at it, and
// what its fake kernel makes in each tree.
type fakeTree struct {
	t    *testing.T
	root string
	opts Options
	// files maps a tree's mount point to the files of a new cgroup in it.
	files map[string]map[string]string
	// v2 marks the cgroup2 mount points, whose new cgroups also get
	// cgroup.controllers from their parent's cgroup.subtree_control.
	v2 map[string]bool
	// mountinfo collects the lines of the fake mountinfo.
	mountinfo []string
	// omit lists files the fake kernel does not make (an old kernel, no
	// swap accounting).
	omit map[string]bool
}

// newFakeTree starts an empty fake layout; the caller adds mounts.
func newFakeTree(t *testing.T) *fakeTree {
	t.Helper()
	ft := &fakeTree{t: t, root: t.TempDir(),
		files: map[string]map[string]string{}, v2: map[string]bool{},
		omit: map[string]bool{}}
	ft.mountinfo = []string{
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
		"23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
		"24 22 0:5 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw",
	}
	ft.opts = Options{
		MountInfo:  filepath.Join(ft.root, "mountinfo"),
		ProcCgroup: filepath.Join(ft.root, "cgroup"),
		dirs:       &dirOps{mkdir: ft.mkdir, rmdir: ft.rmdir},
	}
	ft.writeProc("0::/\n")
	return ft
}

// fakeV2 is a pure cgroup v2 layout, as on a current systemd host: the
// root offers every controller and enables those in subtreeControl.
func fakeV2(t *testing.T, subtreeControl string) *fakeTree {
	ft := newFakeTree(t)
	ft.addV2("unified", "cpuset cpu io memory hugetlb pids rdma misc",
		subtreeControl)
	ft.writeProc("0::/user.slice/user-1000.slice/session-2.scope\n")
	return ft
}

// fakeV1 is a cgroup v1 layout, the caller in /user.slice of each tree,
// with cpu and cpuacct in one tree or in two.
func fakeV1(t *testing.T, coMounted bool) *fakeTree {
	ft := newFakeTree(t)
	trees := []string{"memory", "pids", "freezer", "cpu", "cpuacct"}
	if coMounted {
		trees = []string{"memory", "pids", "freezer", "cpu,cpuacct"}
	}
	var proc []string
	for i, tree := range trees {
		ft.addV1(tree)
		proc = append(proc, strings.Join([]string{
			string(rune('1' + i)), tree, "/user.slice"}, ":"))
		ft.mkdirAll(filepath.Join(ft.point(tree), "user.slice"))
	}
	proc = append(proc, "0::/user.slice")
	ft.writeProc(strings.Join(proc, "\n") + "\n")
	return ft
}

// fakeHybrid is the hybrid layout of systemd hosts booted with
// systemd.unified_cgroup_hierarchy=0: v1 trees with the controllers, a
// named v1 tree for systemd, and an empty cgroup2 at unified/.
func fakeHybrid(t *testing.T) *fakeTree {
	ft := fakeV1(t, true)
	ft.addV2("unified", "", "")
	ft.mountinfo = append(ft.mountinfo, "40 30 0:37 / "+ft.point("systemd")+
		" rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup "+
		"rw,xattr,name=systemd")
	ft.write()
	return ft
}

// point is where the fake tree is mounted.
func (ft *fakeTree) point(tree string) string {
	return filepath.Join(ft.root, "sys/fs/cgroup", tree)
}

// addV1 mounts a fake v1 tree with the controllers in tree ("cpu,cpuacct").
func (ft *fakeTree) addV1(tree string) {
	point := ft.point(tree)
	ft.mkdirAll(point)
	ft.files[point] = map[string]string{"cgroup.procs": "", "tasks": ""}
	for _, c := range strings.Split(tree, ",") {
		for f, v := range v1Files[c] {
			ft.files[point][f] = v
		}
	}
	ft.mountinfo = append(ft.mountinfo, "31 30 0:28 / "+point+
		" rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,"+tree)
	ft.write()
}

// addV2 mounts a fake cgroup2 tree whose root offers the controllers in
// offered and enables those in subtreeControl.
func (ft *fakeTree) addV2(tree, offered, subtreeControl string) {
	point := ft.point(tree)
	ft.mkdirAll(point)
	ft.files[point] = v2Files
	ft.v2[point] = true
	ft.writeFile(filepath.Join(point, "cgroup.controllers"), offered)
	ft.writeFile(filepath.Join(point, "cgroup.subtree_control"), subtreeControl)
	ft.writeFile(filepath.Join(point, "cgroup.procs"), "1\n")
	ft.mountinfo = append(ft.mountinfo, "25 24 0:22 / "+point+
		" rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "+
		"rw,nsdelegate,memory_recursiveprot")
	ft.write()
}

// write writes the fake mountinfo.
func (ft *fakeTree) write() {
	ft.writeFile(ft.opts.MountInfo, strings.Join(ft.mountinfo, "\n")+"\n")
}

// writeProc writes the fake /proc/self/cgroup.
func (ft *fakeTree) writeProc(text string) {
	ft.writeFile(ft.opts.ProcCgroup, text)
}

// mkdir is the fake kernel's mkdir(2) in a cgroup tree: the directory,
// with the interface files of its tree.
func (ft *fakeTree) mkdir(path string) error {
	if err := unix.Mkdir(path, 0o755); err != nil {
		return err
	}
	point := ft.mountOf(path)
	for f, v := range ft.files[point] {
		if !ft.omit[f] {
			ft.writeFile(filepath.Join(path, f), v)
		}
	}
	if ft.v2[point] {
		// A cgroup offers what its parent enabled for its children.
		on, err := os.ReadFile(filepath.Join(filepath.Dir(path),
			"cgroup.subtree_control"))
		if err != nil {
			return err
		}
		offered := strings.ReplaceAll(string(on), "+", "")
		ft.writeFile(filepath.Join(path, "cgroup.controllers"), offered)
	}
	return nil
}

// rmdir is the fake kernel's rmdir(2): EBUSY while the cgroup has child
// cgroups or processes, else it goes with its files.
func (ft *fakeTree) rmdir(path string) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	procs, _ := os.ReadFile(filepath.Join(path, "cgroup.procs"))
	for _, e := range entries {
		if e.IsDir() {
			return unix.EBUSY
		}
	}
	if strings.TrimSpace(string(procs)) != "" {
		return unix.EBUSY
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	return unix.Rmdir(path)
}

// mountOf finds the fake tree that path is in.
func (ft *fakeTree) mountOf(path string) string {
	best := ""
	for point := range ft.files {
		if strings.HasPrefix(path+"/", point+"/") && len(point) > len(best) {
			best = point
		}
	}
	return best
}

// mkdirAll makes a directory that exists before the test: a tree's
// root or the caller's own cgroup, with the tree's files.
func (ft *fakeTree) mkdirAll(path string) {
	ft.t.Helper()
	require.NoError(ft.t, os.MkdirAll(filepath.Dir(path), 0o755))
	if _, err := os.Stat(path); err == nil {
		return
	}
	if point := ft.mountOf(path); point != "" && point != path {
		require.NoError(ft.t, ft.mkdir(path))
		return
	}
	require.NoError(ft.t, os.Mkdir(path, 0o755))
}

// writeFile writes a file of the fake tree.
func (ft *fakeTree) writeFile(path, text string) {
	ft.t.Helper()
	require.NoError(ft.t, os.WriteFile(path, []byte(text), 0o644))
}

// readFile reads a file of the fake tree.
func (ft *fakeTree) readFile(path string) string {
	ft.t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(ft.t, err)
	return string(data)
}

// newManager is New on the fake tree.
func (ft *fakeTree) newManager(name string) Manager {
	ft.t.Helper()
	m, err := New(name, ft.opts)
	require.NoError(ft.t, err)
	return m
}

// runFreezer plays the kernel's part in v2 freezing for dir until the
// test ends: it reports in cgroup.events what cgroup.freeze asks for.
func (ft *fakeTree) runFreezer(dir string) {
	stop := make(chan struct{})
	done := make(chan struct{})
	ft.t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			want, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze"))
			if err != nil {
				continue
			}
			events := "populated 1\nfrozen " + strings.TrimSpace(string(want)) + "\n"
			os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte(events), 0o644)
		}
	}()
}

// assertGone checks that none of dirs exists any more.
func assertGone(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		_, err := os.Stat(d)
		require.Truef(t, errors.Is(err, fs.ErrNotExist), "%s still exists", d)
	}
}
