package cleanup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var steps = []string{"05-net", "06-user", "07-cgroups", "08-overlay"}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

// bridge makes a bridge named name, removed when the test ends.
func bridge(t *testing.T, name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		t.Fatalf("%s exists already (%s): a step's run is in progress?", name, l.Type())
	}
	require.NoError(t, netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}))
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			netlink.LinkDel(l)
		}
	})
}

// TestSweep leaves on the machine what runs of the steps leave when they
// are killed, for one dead run and one live one, and checks from the
// file system, cgroupfs and netlink that Sweep removes exactly the dead
// run's: its cgroups in every hierarchy, its run directory, its lease,
// and the bridge no lease holds.
func TestSweep(t *testing.T) {
	celltest.RequirePriv(t)
	dead, live := deadPid(t), os.Getpid()

	parents := hierarchies(t)
	require.NotEmpty(t, parents, "no cgroup hierarchy is mounted")
	var deadCg, liveCg, otherCg []string
	for _, mnt := range parents {
		p := filepath.Join(mnt, "gocell-lessons")
		d := filepath.Join(p, "07-cgroups-"+strconv.Itoa(dead))
		l := filepath.Join(p, "07-cgroups-"+strconv.Itoa(live))
		o := filepath.Join(p, "not-a-step-"+strconv.Itoa(dead))
		for _, dir := range []string{d, l, o} {
			require.NoError(t, os.MkdirAll(dir, 0o755))
		}
		deadCg, liveCg, otherCg = append(deadCg, d), append(liveCg, l), append(otherCg, o)
		t.Cleanup(func() {
			for _, dir := range []string{d, l, o, p} {
				unix.Rmdir(dir)
			}
		})
	}

	deadRun := filepath.Join(runsDir, "08-overlay-"+strconv.Itoa(dead))
	liveRun := filepath.Join(runsDir, "08-overlay-"+strconv.Itoa(live))
	for _, dir := range []string{deadRun, liveRun} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "upper", "etc"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "upper", "etc", "x"), nil, 0o644))
	}
	t.Cleanup(func() {
		os.RemoveAll(deadRun)
		os.RemoveAll(liveRun)
		unix.Rmdir(runsDir)
	})

	// 05's run died and left its lease, unlocked, and its bridge; 06's
	// run lives: it holds its lease's lock.
	staleLease := filepath.Join(leasesDir, "05-net", "10.77.5.9")
	heldLease := filepath.Join(leasesDir, "06-user", "10.77.6.9")
	for _, f := range []string{staleLease, heldLease} {
		require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		t.Cleanup(func() { os.Remove(f); unix.Rmdir(filepath.Dir(f)) })
	}
	held, err := os.Open(heldLease)
	require.NoError(t, err)
	defer held.Close()
	require.NoError(t, unix.Flock(int(held.Fd()), unix.LOCK_EX))
	bridge(t, "gocell05")
	bridge(t, "gocell06")

	// A put_old directory a killed run left in the root file system, and
	// one a run is using right now (new), and a file of that name.
	rootfs := t.TempDir()
	t.Setenv("GOCELL_ROOTFS", rootfs)
	staleOld, newOld := filepath.Join(rootfs, ".oldroot-1"), filepath.Join(rootfs, ".oldroot-2")
	notDir := filepath.Join(rootfs, ".oldroot-3")
	require.NoError(t, os.Mkdir(staleOld, 0o755))
	require.NoError(t, os.Mkdir(newOld, 0o755))
	require.NoError(t, os.WriteFile(notDir, nil, 0o644))
	old := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(staleOld, old, old))
	require.NoError(t, os.Chtimes(notDir, old, old))

	Sweep(steps)

	assert.NoDirExists(t, staleOld, "an old put_old directory")
	assert.DirExists(t, newOld, "a put_old directory a run may be using")
	assert.FileExists(t, notDir)

	for _, d := range deadCg {
		assert.NoDirExists(t, d, "a dead run's cgroup")
	}
	for _, d := range append(liveCg, otherCg...) {
		assert.DirExists(t, d, "a live run's cgroup, or another program's")
	}
	assert.NoDirExists(t, deadRun, "a dead run's directory")
	assert.DirExists(t, filepath.Join(liveRun, "upper", "etc"), "a live run's directory")
	assert.NoFileExists(t, staleLease, "a lease nobody holds")
	assert.FileExists(t, heldLease, "a lease a run holds")
	_, err = netlink.LinkByName("gocell05")
	assert.Error(t, err, "gocell05, the bridge of a step no run uses, is still there")
	_, err = netlink.LinkByName("gocell06")
	assert.NoError(t, err, "gocell06, the bridge of a live run, was removed")
}

// hierarchies returns the mount points of the cgroup hierarchies (v1
// trees and v2).
func hierarchies(t *testing.T) []string {
	var out []string
	for _, m := range celltest.Mounts(t, "self") {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			out = append(out, m.MountPoint)
		}
	}
	return out
}
