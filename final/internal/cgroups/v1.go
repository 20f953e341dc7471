package cgroups

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// v1 is a container's cgroup on cgroup v1: a directory in each
// controller's tree (two controllers may share one). See cgroups(7) and
// admin-guide/cgroup-v1/.
type v1 struct {
	base
	// paths maps each controller to the directory in its tree.
	paths map[string]string
}

// v1Unlimited is what the v1 files that take a number of bytes or
// microseconds take for "no limit".
const v1Unlimited = "-1"

// newV1 returns the Manager of the v1 cgroup with these directories.
func newV1(paths map[string]string, ops *dirOps) *v1 {
	return &v1{base: base{dirs: dedupe(paths), ops: ops},
		paths: maps.Clone(paths)}
}

// Version is 1.
func (v *v1) Version() int { return 1 }

// dir returns the directory in controller c's tree.
func (v *v1) dir(c string) (string, error) {
	d, ok := v.paths[c]
	if !ok {
		return "", fmt.Errorf("%w: %s (not among the cgroup's paths)",
			ErrNoController, c)
	}
	return d, nil
}

// Create makes a directory in every tree and writes the limits. On v1
// each tree stands alone: there is nothing to switch on.
func (v *v1) Create(res Resources) error {
	l, err := checkResources(res)
	if err != nil {
		return err
	}
	if err := v.makeAncestors(nil); err != nil {
		return err
	}
	return v.makeDirs(nil, func() error {
		if err := v.fillCPUSet(); err != nil {
			return err
		}
		return v.writeLimits(l)
	})
}

// fillCPUSet gives each new cgroup of the cpuset tree, from the top down,
// its parent's CPUs and memory nodes: on v1 they start empty, and a
// cgroup with none can hold no process, nor give a child any.
// admin-guide/cgroup-v1/cpusets.rst
func (v *v1) fillCPUSet() error {
	leaf, ok := v.paths["cpuset"]
	if !ok {
		return nil
	}
	var chain []string
	for d := leaf; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(d), "cpuset.cpus")); err != nil {
			break // d is the mount point: nothing above
		}
		chain = append([]string{d}, chain...)
	}
	for _, dir := range chain {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := readString(dir, f)
			if err != nil {
				return err
			}
			if cur != "" {
				continue
			}
			up, err := readString(filepath.Dir(dir), f)
			if err != nil {
				return err
			}
			if err := writeFile(dir, f, up); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeLimits writes every limit, -1 or "max" where there is none:
//
//	memory.limit_in_bytes        bytes (admin-guide/cgroup-v1/memory.rst)
//	memory.memsw.limit_in_bytes  memory plus swap, set to the same, so
//	                             swap is no way around the limit, unless
//	                             more is asked for (only with swap
//	                             accounting)
//	memory.soft_limit_in_bytes   the reservation: whom to reclaim from
//	                             first when the machine runs short
//	pids.max                     processes and threads (cgroup-v1/pids.rst)
//	cpu.cfs_period_us, cfs_quota_us  microseconds (scheduler/sched-bwc.rst)
//	cpu.shares                   the share of busy CPUs (scheduler/sched-design-CFS.rst)
func (v *v1) writeLimits(l limits) error {
	if err := v.writeMemory(l); err != nil {
		return err
	}
	pids := "max"
	if l.pids > 0 {
		pids = strconv.FormatInt(l.pids, 10)
	}
	dir, err := v.dir("pids")
	if err != nil {
		return err
	}
	if err := writeFile(dir, "pids.max", pids); err != nil {
		return err
	}
	quota := v1Unlimited
	if l.cpuQuota > 0 {
		quota = strconv.FormatInt(l.cpuQuota, 10)
	}
	if dir, err = v.dir("cpu"); err != nil {
		return err
	}
	period := strconv.Itoa(cpuPeriod)
	if err := writeFile(dir, "cpu.cfs_period_us", period); err != nil {
		return err
	}
	if err := writeFile(dir, "cpu.cfs_quota_us", quota); err != nil {
		return err
	}
	if err := writeFile(dir, "cpu.shares", strconv.FormatUint(l.shares, 10)); err != nil {
		return err
	}
	cpuset, ok := v.paths["cpuset"]
	return writeCPUSet(cpuset, l, ok)
}

// writeMemory writes the memory limit, and memsw (memory plus swap)
// beside it. The kernel keeps memsw at least as high as the limit, and
// refuses a write that would break that (EINVAL): so when memsw goes up
// (or away), it moves first, and when it goes down, last.
func (v *v1) writeMemory(l limits) error {
	dir, err := v.dir("memory")
	if err != nil {
		return err
	}
	bytes := func(n int64) string {
		if n <= 0 || n == math.MaxInt64 {
			return v1Unlimited
		}
		return strconv.FormatInt(n, 10)
	}
	type write struct{ file, value string }
	writes := []write{{"memory.soft_limit_in_bytes", bytes(l.reservation)},
		{"memory.limit_in_bytes", bytes(l.memory)}}
	const memsw = "memory.memsw.limit_in_bytes"
	if exists(dir, memsw) {
		current, err := readInt(dir, memsw)
		if err != nil {
			return err
		}
		if current < 0 {
			current = math.MaxInt64 // the fake tree's -1
		}
		want := l.memsw
		if l.memory == 0 || want < 0 {
			want = math.MaxInt64
		}
		if want >= current {
			writes = append([]write{{memsw, bytes(want)}}, writes...)
		} else {
			writes = append(writes, write{memsw, bytes(want)})
		}
	}
	for _, w := range writes {
		if err := writeFile(dir, w.file, w.value); err != nil {
			return err
		}
	}
	return nil
}

// CgroupFD is not available on v1: CLONE_INTO_CGROUP takes a v2 cgroup.
func (v *v1) CgroupFD() (int, bool) { return -1, false }

// Close has nothing to close on v1.
func (v *v1) Close() error { return nil }

// Apply moves pid into the cgroup of every tree.
func (v *v1) Apply(pid int) error { return v.apply(pid) }

// Set writes new limits.
func (v *v1) Set(res Resources) error {
	l, err := checkResources(res)
	if err != nil {
		return err
	}
	return v.writeLimits(l)
}

// Freeze writes FROZEN to freezer.state and waits until it reads FROZEN
// rather than FREEZING. See admin-guide/cgroup-v1/freezer-subsystem.rst.
func (v *v1) Freeze() error {
	return switchFreezer(true, v.setFreeze, v.Frozen)
}

// Thaw writes THAWED to freezer.state and waits until it reads so.
func (v *v1) Thaw() error {
	return switchFreezer(false, v.setFreeze, v.Frozen)
}

// setFreeze writes freezer.state.
func (v *v1) setFreeze(frozen bool) error {
	dir, err := v.dir("freezer")
	if err != nil {
		return err
	}
	state := "THAWED"
	if frozen {
		state = "FROZEN"
	}
	return writeFile(dir, "freezer.state", state)
}

// Frozen reads freezer.state: FROZEN, or FREEZING while some process has
// yet to stop, or THAWED.
func (v *v1) Frozen() (bool, error) {
	dir, err := v.dir("freezer")
	if err != nil {
		return false, err
	}
	state, err := readString(dir, "freezer.state")
	return state == "FROZEN", err
}

// Stats reads memory.usage_in_bytes, memory.limit_in_bytes,
// memory.oom_control (oom_kill, Linux 4.13), pids.current, pids.max,
// cpuacct.usage (nanoseconds) and cpu.stat (nr_throttled).
func (v *v1) Stats() (Stats, error) {
	var s Stats
	var r reader
	for _, c := range []string{"memory", "pids", "cpu"} {
		if _, err := v.dir(c); err != nil {
			return s, err
		}
	}
	mem, pids, cpu := v.paths["memory"], v.paths["pids"], v.paths["cpu"]
	s.MemoryCurrent = r.number(mem, "memory.usage_in_bytes")
	s.MemoryMax = r.number(mem, "memory.limit_in_bytes")
	s.OOMKills = r.keyed(mem, "memory.oom_control", "oom_kill")
	s.PidsCurrent = r.number(pids, "pids.current")
	s.PidsMax = r.number(pids, "pids.max")
	s.Throttled = r.keyed(cpu, "cpu.stat", "nr_throttled")
	if acct, ok := v.paths["cpuacct"]; ok {
		s.CPUUsageUsec = r.number(acct, "cpuacct.usage") / 1000
	}
	// No limit reads as the largest number of bytes, rounded down to a
	// page: 9223372036854771712 with 4 KiB pages.
	if s.MemoryMax >= 1<<62 {
		s.MemoryMax = 0
	}
	return s, r.err
}

// Pids lists the processes in cgroup.procs of every tree.
func (v *v1) Pids() ([]int, error) { return v.pids() }

// Kill kills every process by hand: v1 has no cgroup.kill.
func (v *v1) Kill() error { return killAll(v) }

// Destroy removes the cgroup from every tree.
func (v *v1) Destroy() error { return v.destroy() }

// Paths is the directory of each controller.
func (v *v1) Paths() map[string]string { return maps.Clone(v.paths) }
