// Package cleanup removes what dead runs of the steps left behind.
package cleanup

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A learner's code is unfinished by definition, and a check that fails
// may kill it half-way (the tests stop a container that never said
// "ready" with SIGKILL): then nothing of the step's own clean-up runs.
// So after every check the kit removes what runs of the steps left on
// the machine, and only what belongs to runs that are gone: a step's
// cgroups (NN-name-PID), its run directories (/var/lib/gocell-lessons/
// runs/NN-name-PID), pivot_root's put_old directories in the root file
// system (.oldroot-NNN, empty), its address leases (/run/gocell-lessons/NN-name/IP,
// held with flock(2) while a run lives), and its bridge (gocellNN) once
// no lease is left. The steps' own tests check, after a check too, that
// none of these is left.

// The directories where the steps keep their state.
const (
	runsDir   = "/var/lib/gocell-lessons/runs"
	leasesDir = "/run/gocell-lessons"
)

// Sweep removes what dead runs of the steps left; steps are the steps'
// directory names ("03-mount"). Errors are ignored: whatever it cannot
// remove, the steps' own next run or a reboot will.
func Sweep(steps []string) {
	isStep := func(name string) bool {
		for _, s := range steps {
			if s == name {
				return true
			}
		}
		return false
	}
	for _, dir := range cgroupParents() {
		removeDead(dir, isStep, func(path string) error { return unix.Rmdir(path) })
		unix.Rmdir(dir) // the steps' parent, if empty
	}
	removeDead(runsDir, isStep, os.RemoveAll)
	unix.Rmdir(runsDir)
	removeOldRoots(rootfs())
	for _, step := range steps {
		dir := filepath.Join(leasesDir, step)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		held := 0
		for _, e := range entries {
			if stale(filepath.Join(dir, e.Name())) {
				os.Remove(filepath.Join(dir, e.Name()))
			} else {
				held++
			}
		}
		if held == 0 {
			// A step's bridge is gocellNN (gocell05 for 05-net).
			if link, err := netlink.LinkByName("gocell" + step[:2]); err == nil {
				netlink.LinkDel(link)
			}
		}
	}
}

// removeDead removes, with remove, the entries of dir named NN-name-PID
// whose process is gone.
func removeDead(dir string, isStep func(string) bool, remove func(string) error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		i := strings.LastIndexByte(e.Name(), '-')
		pid, err := strconv.Atoi(e.Name()[i+1:])
		if i < 0 || err != nil || !isStep(e.Name()[:i]) {
			continue
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			remove(filepath.Join(dir, e.Name()))
		}
	}
}

// rootfs is the steps' root file system, as they find it.
func rootfs() string {
	if dir := os.Getenv("GOCELL_ROOTFS"); dir != "" {
		return dir
	}
	return "/var/lib/gocell-lessons/rootfs"
}

// removeOldRoots removes the put_old directories (.oldroot-NNN) that runs
// stopped between pivot_root and their clean-up left in the root file
// system: empty ones only (rmdir), and only those older than a few
// seconds, which no run that is still starting needs.
func removeOldRoots(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, ".oldroot-*"))
	for _, n := range names {
		var st unix.Stat_t
		if unix.Lstat(n, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if time.Since(time.Unix(st.Mtim.Unix())) > oldRootAge {
			unix.Rmdir(n)
		}
	}
}

// oldRootAge is how old a put_old directory must be to be swept.
var oldRootAge = 5 * time.Second

// stale tells whether a lease file is no run's: nobody holds its lock.
func stale(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// cgroupParents finds the steps' parent cgroups, "gocell-lessons", in
// every cgroup hierarchy mounted (v1 trees and v2), at most a few levels
// down: where the steps make theirs, below the cgroup they run in.
func cgroupParents() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		sep := 0
		for i, f := range fields {
			if f == "-" {
				sep = i
			}
		}
		if sep == 0 || (fields[sep+1] != "cgroup" && fields[sep+1] != "cgroup2") {
			continue
		}
		filepath.WalkDir(fields[4], func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Count(strings.TrimPrefix(path, fields[4]), "/") > 4 {
				return filepath.SkipDir
			}
			if d.Name() == "gocell-lessons" {
				out = append(out, path)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}
