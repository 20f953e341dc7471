package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// v1Controllers are the controllers a container's cgroup needs on v1:
// the three limits, and freezer for Freeze and Kill. cpuacct, which
// counts the CPU time, is used as well when the kernel has it: it often
// shares a tree with cpu ("cpu,cpuacct"), but not always.
var v1Controllers = []string{"memory", "pids", "cpu", "freezer"}

// v2Controllers are those a container's cgroup needs on v2. Freezing and
// killing are built into the v2 core (cgroup.freeze, cgroup.kill), and
// cpu.stat's usage_usec is always there.
var v2Controllers = []string{"memory", "pids", "cpu"}

// mount is one cgroup file system in mountinfo.
type mount struct {
	// point is where it is mounted, such as /sys/fs/cgroup/memory.
	point string
	// root is the cgroup shown there, "/" unless a cgroup namespace or
	// a bind mount shows only part of the tree.
	root string
}

// layout is how the cgroup trees are mounted on this machine.
type layout struct {
	// version is 2 (unified) or 1 (legacy, or hybrid).
	version int
	// unified is the cgroup2 mount point, "" if there is none.
	unified string
	// v1 maps each controller to the v1 tree that has it.
	v1 map[string]mount
}

// detect reads the mountinfo file and works out the layout:
//
//	v2:     cgroup2 at /sys/fs/cgroup, offering the controllers
//	v1:     a cgroup mount per tree: /sys/fs/cgroup/memory "rw,memory"
//	hybrid: v1 trees with the controllers, and an empty cgroup2 at
//	        /sys/fs/cgroup/unified that systemd uses to track services
//
// A controller can be on one tree only, v1 or v2. Once any of ours is on
// v1, they all must be, and we use v1.
func detect(mountinfo string) (layout, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return layout{}, fmt.Errorf("cgroups: %w", err)
	}
	l := parseMountInfo(string(data))
	var onV1, missing []string
	for _, c := range v1Controllers {
		if _, ok := l.v1[c]; ok {
			onV1 = append(onV1, c)
		} else {
			missing = append(missing, c)
		}
	}
	switch {
	case len(onV1) > 0 && len(missing) > 0:
		return layout{}, fmt.Errorf("%w: %s (cgroup v1 trees are mounted "+
			"for %s, but none for %s; see %s)", ErrNoController,
			strings.Join(missing, ", "), strings.Join(onV1, ", "),
			strings.Join(missing, ", "), mountinfo)
	case len(onV1) > 0:
		l.version = 1
		return l, nil
	case l.unified == "":
		return layout{}, fmt.Errorf("%w: no cgroup file system is mounted "+
			"(see %s; on most systems cgroup2 is at /sys/fs/cgroup)",
			ErrNoController, mountinfo)
	}
	// cgroup.controllers in the root lists what the kernel offers.
	// See "Enabling and Disabling" in admin-guide/cgroup-v2.rst.
	offered, err := readString(l.unified, "cgroup.controllers")
	if err != nil {
		return layout{}, err
	}
	have := strings.Fields(offered)
	missing = nil
	for _, c := range v2Controllers {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return layout{}, fmt.Errorf("%w: %s (the cgroup2 tree at %s offers "+
			"only %q)", ErrNoController, strings.Join(missing, ", "),
			l.unified, offered)
	}
	l.version = 2
	return l, nil
}

// parseMountInfo finds the cgroup mounts in a mountinfo text. Its lines
// look like this (see proc(5)):
//
//	34 30 0:31 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory
//	1  2  3    4 5                     6  7        - 8      9      10
//
// Field 4 is the root of the mount within its file system, (5) the mount
// point, 8 the file system type: cgroup2 for v2, cgroup for a v1 tree,
// whose options (10) name its controllers. The optional fields (7) vary
// in number, so the separator " - " is what we look for.
func parseMountInfo(text string) layout {
	l := layout{v1: map[string]mount{}}
	for _, line := range strings.Split(text, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		m := mount{point: unescape(f[4]), root: unescape(f[3])}
		switch g[0] {
		case "cgroup2":
			if l.unified == "" {
				l.unified = m.point
			}
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				if _, seen := l.v1[opt]; !seen {
					l.v1[opt] = m
				}
			}
		}
	}
	return l
}

// unescape undoes mountinfo's octal escapes: a space in a path is \040.
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

// v1Paths works out the container's directory in each controller's v1
// tree: <mount point><our own cgroup>/<parent>/<name>. Nesting under our
// own cgroup keeps whatever limits our caller is under.
func (l layout) v1Paths(procCgroup, parent, name string, cpuset bool) (
	map[string]string, error) {
	data, err := os.ReadFile(procCgroup)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	controllers := l.v1Wanted(cpuset)
	paths := map[string]string{}
	for _, c := range controllers {
		m := l.v1[c]
		own := ownCgroup(string(data), c)
		// mountinfo and /proc/self/cgroup show paths from the same
		// place (the root of our cgroup namespace), so what lies below
		// the mount's root is what we add to its mount point.
		rel, ok := own, true
		if m.root != "/" {
			rel, ok = strings.CutPrefix(own, m.root)
		}
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
			return nil, fmt.Errorf("cgroups: our %s cgroup %s is outside "+
				"the part of the tree mounted at %s (%s)", c, own, m.point,
				m.root)
		}
		paths[c] = filepath.Join(m.point, rel, parent, name)
	}
	return paths, nil
}

// v1Wanted are the v1 controllers a container's cgroup is made in: ours,
// and cpuacct and devices when the machine has them (cpuacct counts CPU
// time, often in cpu's tree; devices holds SetDevices' rules), and
// cpuset when asked for.
func (l layout) v1Wanted(cpuset bool) []string {
	controllers := slices.Clone(v1Controllers)
	for _, c := range []string{"cpuacct", "devices"} {
		if _, ok := l.v1[c]; ok {
			controllers = append(controllers, c)
		}
	}
	if cpuset {
		controllers = append(controllers, "cpuset")
	}
	return controllers
}

// hasCPUSet tells whether the machine has the cpuset controller where
// our cgroups are: a v1 tree, or offered by the cgroup2 root.
func (l layout) hasCPUSet() bool {
	if l.version == 1 {
		_, ok := l.v1["cpuset"]
		return ok
	}
	offered, err := readString(l.unified, "cgroup.controllers")
	return err == nil && slices.Contains(strings.Fields(offered), "cpuset")
}

// ownCgroup finds the caller's cgroup in the v1 tree of a controller, in
// the text of /proc/self/cgroup: lines "ID:CONTROLLERS:PATH", such as
// "4:memory:/user.slice" or "3:cpu,cpuacct:/". See cgroups(7). A tree
// missing from the list is taken as the root.
func ownCgroup(procCgroup, controller string) string {
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), controller) {
			return parts[2]
		}
	}
	return "/"
}
