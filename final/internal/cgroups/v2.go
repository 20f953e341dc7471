package cgroups

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// v2 is a container's cgroup on cgroup v2: one directory,
// <unified>/<parent>/<name>, in the one tree that has every controller.
// See admin-guide/cgroup-v2.rst.
type v2 struct {
	base
	dir string

	// cpuset: the cpuset controller is switched on for it too
	// (Options.CPUSet).
	cpuset bool

	// mu guards fd, the directory opened for CLONE_INTO_CGROUP, or -1.
	mu sync.Mutex
	fd int
}

// newV2 returns the Manager of the v2 cgroup dir.
func newV2(dir string, ops *dirOps) *v2 {
	return &v2{base: base{dirs: []string{dir}, ops: ops}, dir: dir, fd: -1}
}

// Version is 2.
func (v *v2) Version() int { return 2 }

// Create makes the cgroup and writes the limits. A controller works in a
// cgroup only if its parent lists it in cgroup.subtree_control, so both
// the root and our parent get them. Our parent holds no processes itself:
// v2 allows controllers to be passed down only by a cgroup without
// processes of its own ("no internal processes", except the root). See
// "Top-down Constraint" and "No Internal Process Constraint" in
// admin-guide/cgroup-v2.rst.
func (v *v2) Create(res Resources) error {
	l, err := checkResources(res)
	if err != nil {
		return err
	}
	controllers := v2Controllers
	if v.cpuset {
		controllers = append(slices.Clone(controllers), "cpuset")
	}
	enableOne := func(dir string) error { return enableControllers(dir, controllers) }
	if err := v.makeAncestors(enableOne); err != nil {
		return err
	}
	enable := func(parent string) error {
		if err := enableOne(filepath.Dir(parent)); err != nil {
			return err
		}
		return enableOne(parent)
	}
	return v.makeDirs(enable, func() error { return v.writeLimits(l) })
}

// enableControllers switches controllers on in dir's
// cgroup.subtree_control, those not on yet, all in one write (it
// succeeds or fails as a whole).
// Equivalent to: echo "+memory +pids +cpu" > DIR/cgroup.subtree_control
func enableControllers(dir string, controllers []string) error {
	on, err := readString(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	var add []string
	for _, c := range controllers {
		if !strings.Contains(" "+on+" ", " "+c+" ") {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return writeFile(dir, "cgroup.subtree_control", strings.Join(add, " "))
}

// writeLimits writes every limit, "max" where there is none:
//
//	memory.max       bytes; over it the kernel reclaims, then OOM-kills
//	memory.swap.max  0 when memory is limited, so swap is no way around
//	                 it, unless more is asked for (the file exists only
//	                 with swap accounting)
//	memory.low       bytes protected from reclaim: the reservation
//	pids.max         processes and threads
//	cpu.max          "QUOTA PERIOD" in microseconds
//	cpu.weight       1 to 10000, the share of busy CPUs (weight())
func (v *v2) writeLimits(l limits) error {
	memory, swap := "max", "max"
	if l.memory > 0 {
		memory = strconv.FormatInt(l.memory, 10)
		// v2 limits swap alone: what memory+swap leaves over memory.
		if l.memsw >= 0 {
			swap = strconv.FormatInt(l.memsw-l.memory, 10)
		}
	}
	pids := "max"
	if l.pids > 0 {
		pids = strconv.FormatInt(l.pids, 10)
	}
	cpu := fmt.Sprintf("max %d", cpuPeriod)
	if l.cpuQuota > 0 {
		cpu = fmt.Sprintf("%d %d", l.cpuQuota, cpuPeriod)
	}
	if err := writeFile(v.dir, "memory.max", memory); err != nil {
		return err
	}
	if exists(v.dir, "memory.swap.max") {
		if err := writeFile(v.dir, "memory.swap.max", swap); err != nil {
			return err
		}
	}
	low := strconv.FormatInt(l.reservation, 10)
	if err := writeFile(v.dir, "memory.low", low); err != nil {
		return err
	}
	if err := writeFile(v.dir, "pids.max", pids); err != nil {
		return err
	}
	if err := writeFile(v.dir, "cpu.max", cpu); err != nil {
		return err
	}
	weight := "100"
	if l.shares != 1024 {
		weight = strconv.FormatUint(l.weight(), 10)
	}
	if err := writeFile(v.dir, "cpu.weight", weight); err != nil {
		return err
	}
	return writeCPUSet(v.dir, l, v.cpuset)
}

// CgroupFD opens the cgroup's directory, once, for CLONE_INTO_CGROUP
// (clone3(2), Linux 5.7). The descriptor is close-on-exec: the child
// needs it only during clone, not after.
func (v *v2) CgroupFD() (int, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.fd < 0 {
		fd, err := unix.Open(v.dir,
			unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, false
		}
		v.fd = fd
	}
	return v.fd, true
}

// Close closes the descriptor of CgroupFD, if it was opened.
func (v *v2) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.fd < 0 {
		return nil
	}
	err := unix.Close(v.fd)
	v.fd = -1
	if err != nil {
		return fmt.Errorf("cgroups: close %s: %w", v.dir, err)
	}
	return nil
}

// Apply moves pid into the cgroup.
func (v *v2) Apply(pid int) error { return v.apply(pid) }

// Set writes new limits.
func (v *v2) Set(res Resources) error {
	l, err := checkResources(res)
	if err != nil {
		return err
	}
	return v.writeLimits(l)
}

// Freeze writes 1 to cgroup.freeze (Linux 5.2) and waits for "frozen 1"
// in cgroup.events. See "Core Interface Files" in admin-guide/cgroup-v2.rst.
func (v *v2) Freeze() error {
	return switchFreezer(true, v.setFreeze, v.Frozen)
}

// Thaw writes 0 to cgroup.freeze and waits for "frozen 0".
func (v *v2) Thaw() error {
	return switchFreezer(false, v.setFreeze, v.Frozen)
}

// setFreeze writes cgroup.freeze.
func (v *v2) setFreeze(frozen bool) error {
	value := "0"
	if frozen {
		value = "1"
	}
	return writeFile(v.dir, "cgroup.freeze", value)
}

// Frozen reads "frozen" in cgroup.events: 1 once every process is
// frozen, not merely asked to be.
func (v *v2) Frozen() (bool, error) {
	n, err := readKeyed(v.dir, "cgroup.events", "frozen")
	return n == 1, err
}

// Stats reads memory.current, memory.max, memory.events (oom_kill),
// pids.current, pids.max, and cpu.stat (usage_usec, nr_throttled).
func (v *v2) Stats() (Stats, error) {
	var r reader
	d := v.dir
	s := Stats{
		MemoryCurrent: r.number(d, "memory.current"),
		MemoryMax:     r.number(d, "memory.max"),
		OOMKills:      r.keyed(d, "memory.events", "oom_kill"),
		PidsCurrent:   r.number(d, "pids.current"),
		PidsMax:       r.number(d, "pids.max"),
		CPUUsageUsec:  r.keyed(d, "cpu.stat", "usage_usec"),
		Throttled:     r.keyed(d, "cpu.stat", "nr_throttled"),
	}
	return s, r.err
}

// Pids lists the processes in cgroup.procs.
func (v *v2) Pids() ([]int, error) { return v.pids() }

// Kill writes 1 to cgroup.kill (Linux 5.14), which makes the kernel send
// SIGKILL to every process in the cgroup and below, forks racing with it
// included. Older kernels lack the file: then we do it by hand.
func (v *v2) Kill() error {
	if !exists(v.dir, "cgroup.kill") {
		return killAll(v)
	}
	return writeFile(v.dir, "cgroup.kill", "1")
}

// Destroy closes the descriptor and removes the cgroup.
func (v *v2) Destroy() error {
	cerr := v.Close()
	if err := v.destroy(); err != nil {
		return err
	}
	return cerr
}

// Paths is the one directory, under "".
func (v *v2) Paths() map[string]string { return map[string]string{"": v.dir} }
