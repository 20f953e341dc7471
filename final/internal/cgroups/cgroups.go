// Package cgroups owns a container's control groups: it makes them, writes
// the resource limits (memory, processes, CPU time) into them, moves
// processes in, freezes and thaws them, reads the kernel's counters, kills
// everything inside and removes them again.
//
// One Manager handles one container. It works on both kinds of cgroup
// file system, behind the same interface:
//
//   - cgroup v2 ("unified"): one tree, usually at /sys/fs/cgroup. The
//     container gets <unified>/<parent>/<name>, and the controllers are
//     switched on for it through cgroup.subtree_control at every level. A
//     child process can be born inside it (CLONE_INTO_CGROUP, see CgroupFD).
//   - cgroup v1 ("legacy"): one tree per controller, such as
//     /sys/fs/cgroup/memory. The container gets a directory in each, nested
//     under the cgroup the caller itself runs in, so the limits of whoever
//     started us (a login session, a CI job) still apply to it.
//   - hybrid: the controllers on v1 trees plus an empty cgroup2 tree (which
//     systemd uses only to track services). The controllers are what count,
//     so this is handled as v1.
//
// Where the trees are is read from mountinfo and the caller's own cgroup
// from /proc/self/cgroup; both paths are Options, so the unit tests run
// without root on a fake tree in a temporary directory.
//
// The kernel's documentation: cgroups(7), admin-guide/cgroup-v2.rst, and for
// v1 admin-guide/cgroup-v1/{cgroups,memory,pids,freezer-subsystem}.rst and
// scheduler/sched-bwc.rst (the CPU quota).
package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoController means a cgroup controller this package needs (memory,
// pids, cpu, or on v1 freezer) is neither mounted as a v1 tree nor offered
// by the cgroup2 tree. The error wrapping it names the controller.
var ErrNoController = errors.New("cgroup controller not available")

// DefaultParent is the cgroup, directly below the tree's root (v2) or the
// caller's own cgroup (v1), that holds the containers' cgroups.
const DefaultParent = "gocell"

// cpuPeriod is the scheduling period, in microseconds, over which the CPU
// quota applies: 0.5 CPUs is 50000 microseconds of CPU time in every
// 100000. It is the kernel's default period. See scheduler/sched-bwc.rst.
const cpuPeriod = 100000

// minCPUQuota is the smallest quota the kernel accepts: 1 ms per period,
// so 0.01 CPUs with our period. See scheduler/sched-bwc.rst.
const minCPUQuota = 1000

// Resources are the limits of a container. Zero means no limit.
type Resources struct {
	// MemoryBytes is the most memory its processes may use, page cache
	// included; beyond it the kernel reclaims, then OOM-kills. Swap is
	// not allowed on top of it, unless MemorySwapBytes says so.
	MemoryBytes int64
	// MemorySwapBytes is memory plus swap, as Docker's --memory-swap
	// and runtime-spec's memory.swap: 0 the same as MemoryBytes (no
	// swap), -1 unlimited swap, else at least MemoryBytes. Only with a
	// memory limit, and enforced only where the kernel accounts swap.
	MemorySwapBytes int64
	// MemoryReservationBytes is a soft limit, Docker's
	// --memory-reservation: under pressure on the whole machine the
	// kernel reclaims from the cgroups above theirs first, and below it
	// protects the cgroup's memory (v2 memory.low; v1
	// memory.soft_limit_in_bytes, the nearest v1 has). Never more than
	// MemoryBytes.
	MemoryReservationBytes int64
	// PidsMax is the most processes and threads it may have at once;
	// fork(2) and clone(2) fail with EAGAIN beyond it.
	PidsMax int64
	// CPUs is how much CPU time it may use, in CPUs: 0.5 is half of one
	// CPU, 2 is two whole CPUs, enforced per 100 ms period.
	CPUs float64
	// CPUSetCPUs and CPUSetMems are the CPUs and memory nodes its
	// processes may run on, in the kernel's list format ("0-1,3"); ""
	// is its parent's. Only with Options.CPUSet.
	CPUSetCPUs, CPUSetMems string
	// CPUShares is its weight against other cgroups when the CPUs are
	// busy, 2 to 262144 (0: the default, 1024). A weight, not a limit:
	// an idle machine gives any cgroup all it asks.
	CPUShares uint64
}

// Stats are the kernel's counters for a container's cgroup. A limit of 0
// means there is none.
type Stats struct {
	// MemoryCurrent is the memory in use now, in bytes.
	MemoryCurrent int64
	// MemoryMax is the memory limit, in bytes.
	MemoryMax int64
	// OOMKills counts the processes the OOM killer killed for the limit.
	OOMKills int64
	// PidsCurrent is how many processes and threads there are now.
	PidsCurrent int64
	// PidsMax is the limit on them.
	PidsMax int64
	// CPUUsageUsec is the CPU time used so far, in microseconds.
	CPUUsageUsec int64
	// Throttled counts the periods in which the CPU quota ran out and
	// the processes had to wait for the next period.
	Throttled int64
}

// Options say where to make the cgroup and where to learn the layout.
type Options struct {
	// Parent is the cgroup that holds the containers' cgroups, one path
	// element (default "gocell"). On v2 the container's cgroup is
	// <unified>/<Parent>/<name>; on v1, in each controller's tree,
	// <mount point><caller's own cgroup>/<Parent>/<name>.
	Parent string
	// Path, if set, places the cgroup at this path from the root of the
	// hierarchy instead of <Parent>/<name>: OCI's linux.cgroupsPath,
	// such as "/libpod_parent/libpod-ID" (a relative path is taken from
	// the root too). The directories above its parent are made if
	// missing, and given the controllers on v2; Destroy leaves them.
	Path string
	// CPUSet puts the cgroup in the cpuset controller too, so that
	// Resources.CPUSetCPUs and CPUSetMems can pin it to CPUs and memory
	// nodes. Off by default: on v1 a cpuset cgroup must be given CPUs
	// and memory nodes before a process may join it.
	CPUSet bool
	// MountInfo is the mountinfo file to read the cgroup mounts from
	// (default /proc/self/mountinfo). See proc(5).
	MountInfo string
	// ProcCgroup is the file that says which cgroup the caller is in
	// (default /proc/self/cgroup). See cgroups(7).
	ProcCgroup string

	// dirs makes and removes cgroup directories; nil means the real
	// system calls. Only the unit tests set it (see dirOps).
	dirs *dirOps
}

// Manager is one container's cgroup: a directory in the v2 tree, or one
// per controller tree on v1.
type Manager interface {
	// Version is 2 for cgroup v2, 1 for v1 and for the hybrid layout.
	Version() int
	// Create makes the cgroup, switches the controllers on and writes
	// the limits. If anything fails, it removes what it made.
	Create(res Resources) error
	// CgroupFD returns a file descriptor of the v2 cgroup's directory,
	// for SysProcAttr.UseCgroupFD and CgroupFD: clone3(2) with
	// CLONE_INTO_CGROUP then starts the child inside the cgroup, limited
	// from its first instruction. ok is false on v1, which has no such
	// thing, or if the directory cannot be opened: use Apply then. The
	// Manager owns the descriptor; Close or Destroy closes it.
	CgroupFD() (fd int, ok bool)
	// Apply moves a process (all its threads) into the cgroup, by
	// writing its pid into cgroup.procs of every directory. On v2 after
	// CLONE_INTO_CGROUP it changes nothing.
	Apply(pid int) error
	// Set changes the limits of a live cgroup. Zero removes a limit.
	Set(res Resources) error
	// Freeze stops every process in the cgroup, and returns once the
	// kernel reports them all frozen.
	Freeze() error
	// Thaw lets frozen processes run again, and returns once the kernel
	// reports the cgroup thawed.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Stats reads the kernel's counters.
	Stats() (Stats, error)
	// Pids lists the processes in the cgroup, in increasing order.
	Pids() ([]int, error)
	// Kill sends SIGKILL to every process in the cgroup, including any
	// a process forks meanwhile. It returns once the signals are sent;
	// the processes finish exiting shortly after (Destroy waits for it).
	Kill() error
	// Destroy removes the cgroup, waiting briefly for processes still
	// exiting, and the parent cgroup if no other container uses it. A
	// cgroup that is already gone counts as removed.
	Destroy() error
	// Close releases the descriptor CgroupFD opened, if any, and keeps
	// the cgroup.
	Close() error
	// SetDevices limits which device nodes the processes may create
	// and open, with rules in order, the last that matches deciding; no
	// rule matching denies. v1: devices.allow and devices.deny; v2: an
	// eBPF program attached to the cgroup. See devices.go.
	SetDevices(rules []DeviceRule) error
	// Paths maps each controller to the cgroup's directory for it (on
	// v2 the one directory, under ""), to record in the container's
	// state: Load turns it back into a Manager.
	Paths() map[string]string
}

// New returns the Manager of the container name's cgroup. It finds the
// cgroup layout and checks that the controllers are there, but makes
// nothing until Create.
func New(name string, opts Options) (Manager, error) {
	if err := checkName("container name", name); err != nil {
		return nil, err
	}
	if opts.Parent == "" {
		opts.Parent = DefaultParent
	}
	if err := checkName("parent cgroup", opts.Parent); err != nil {
		return nil, err
	}
	if opts.MountInfo == "" {
		opts.MountInfo = "/proc/self/mountinfo"
	}
	if opts.ProcCgroup == "" {
		opts.ProcCgroup = "/proc/self/cgroup"
	}
	dirs := opts.dirs
	if dirs == nil {
		dirs = &realDirs
	}
	l, err := detect(opts.MountInfo)
	if err != nil {
		return nil, err
	}
	if opts.CPUSet && !l.hasCPUSet() {
		return nil, fmt.Errorf("%w: cpuset (to pin CPUs or memory nodes)", ErrNoController)
	}
	if opts.Path != "" {
		return newAtPath(l, opts.Path, dirs, opts.CPUSet)
	}
	if l.version == 2 {
		v := newV2(filepath.Join(l.unified, opts.Parent, name), dirs)
		v.cpuset = opts.CPUSet
		return v, nil
	}
	paths, err := l.v1Paths(opts.ProcCgroup, opts.Parent, name, opts.CPUSet)
	if err != nil {
		return nil, err
	}
	return newV1(paths, dirs), nil
}

// newAtPath returns the Manager of the cgroup at path (Options.Path).
func newAtPath(l layout, path string, dirs *dirOps, cpuset bool) (Manager, error) {
	clean := filepath.Clean("/" + path)
	if clean == "/" || strings.Contains(path, "..") {
		return nil, fmt.Errorf("cgroups: invalid cgroup path %q", path)
	}
	// What lies above the parent: made before the parent is.
	var above []string
	for d := filepath.Dir(filepath.Dir(clean)); d != "/"; d = filepath.Dir(d) {
		above = append([]string{d}, above...)
	}
	if l.version == 2 {
		m := newV2(filepath.Join(l.unified, clean), dirs)
		m.cpuset = cpuset
		for _, a := range above {
			m.ancestors = append(m.ancestors, filepath.Join(l.unified, a))
		}
		return m, nil
	}
	paths := map[string]string{}
	var anc []string
	for _, c := range l.v1Wanted(cpuset) {
		m := l.v1[c]
		paths[c] = filepath.Join(m.point, clean)
		for _, a := range above {
			anc = append(anc, filepath.Join(m.point, a))
		}
	}
	v := newV1(paths, dirs)
	v.ancestors = anc
	return v, nil
}

// Load returns a Manager for a cgroup that already exists, from the Paths
// recorded when it was made: after a crash, it still lets us kill what is
// left in it and remove it. It does not check that the cgroup exists.
func Load(paths map[string]string) Manager {
	return load(paths, &realDirs)
}

// load is Load with a choice of dirOps, for the unit tests.
func load(paths map[string]string, dirs *dirOps) Manager {
	if dir, ok := paths[""]; ok {
		v := newV2(dir, dirs)
		// Made with Options.CPUSet if its parent passes cpuset down:
		// then cgroup.controllers lists it.
		on, _ := readString(dir, "cgroup.controllers")
		v.cpuset = slices.Contains(strings.Fields(on), "cpuset")
		return v
	}
	return newV1(paths, dirs)
}

// checkName accepts a single, ordinary path element: a name must not lead
// the cgroup out of its parent.
func checkName(what, name string) error {
	if name == "" || name == "." || name == ".." ||
		strings.ContainsAny(name, "/\x00\n") {
		return fmt.Errorf("cgroups: invalid %s %q", what, name)
	}
	return nil
}

// limits are Resources checked and turned into numbers the kernel takes.
// A value of 0 means no limit.
type limits struct {
	memory   int64
	pids     int64
	cpuQuota int64
	shares   uint64 // v1's cpu.shares, default 1024
	// memsw is memory plus swap: -1 unlimited; equal to memory (no
	// swap) when not asked for.
	memsw int64
	// reservation is the soft limit, 0 for none.
	reservation int64
	// cpus and mems: cpuset lists, "" to keep the parent's.
	cpus, mems string
}

// cpuList matches the kernel's list format: numbers and ranges, comma
// separated. cpuset(7) "FORMATS"
var cpuList = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

// Check refuses limits that cannot go together or that the kernel would
// refuse, with a clearer message than its EINVAL: what Create and Set
// check first, for a caller with no cgroup yet.
func Check(res Resources) error {
	_, err := checkResources(res)
	return err
}

// checkResources rejects what the kernel would, with a clearer message.
func checkResources(res Resources) (limits, error) {
	switch {
	case res.MemoryBytes < 0:
		return limits{}, fmt.Errorf("cgroups: negative memory limit %d",
			res.MemoryBytes)
	case res.PidsMax < 0:
		return limits{}, fmt.Errorf("cgroups: negative pids limit %d",
			res.PidsMax)
	// The upper bound only keeps the quota's arithmetic in range; no
	// machine has a million CPUs.
	case res.CPUs < 0 || res.CPUs > 1e6 || math.IsNaN(res.CPUs):
		return limits{}, fmt.Errorf("cgroups: invalid CPU limit %v",
			res.CPUs)
	case res.MemorySwapBytes != 0 && res.MemoryBytes == 0:
		return limits{}, fmt.Errorf("cgroups: a memory+swap limit (%d) needs a memory limit",
			res.MemorySwapBytes)
	case res.MemorySwapBytes < -1 || res.MemorySwapBytes > 0 && res.MemorySwapBytes < res.MemoryBytes:
		return limits{}, fmt.Errorf("cgroups: memory+swap limit %d is below the memory limit %d",
			res.MemorySwapBytes, res.MemoryBytes)
	case res.MemoryReservationBytes < 0:
		return limits{}, fmt.Errorf("cgroups: negative memory reservation %d",
			res.MemoryReservationBytes)
	case res.MemoryBytes > 0 && res.MemoryReservationBytes > res.MemoryBytes:
		return limits{}, fmt.Errorf("cgroups: memory reservation %d is above the memory limit %d",
			res.MemoryReservationBytes, res.MemoryBytes)
	case res.CPUSetCPUs != "" && !cpuList.MatchString(res.CPUSetCPUs):
		return limits{}, fmt.Errorf("cgroups: CPU list %q is not like 0-3 or 0,2", res.CPUSetCPUs)
	case res.CPUSetMems != "" && !cpuList.MatchString(res.CPUSetMems):
		return limits{}, fmt.Errorf("cgroups: memory node list %q is not like 0 or 0-1", res.CPUSetMems)
	case res.CPUShares != 0 && (res.CPUShares < 2 || res.CPUShares > 262144):
		return limits{}, fmt.Errorf("cgroups: CPU shares %d are not within 2 to 262144",
			res.CPUShares)
	}
	l := limits{memory: res.MemoryBytes, pids: res.PidsMax, shares: res.CPUShares,
		cpus: res.CPUSetCPUs, mems: res.CPUSetMems, reservation: res.MemoryReservationBytes}
	if l.shares == 0 {
		l.shares = 1024
	}
	l.memsw = res.MemorySwapBytes
	if l.memsw == 0 {
		l.memsw = l.memory
	}
	if res.CPUs > 0 {
		l.cpuQuota = int64(math.Round(res.CPUs * cpuPeriod))
		if l.cpuQuota < minCPUQuota {
			return limits{}, fmt.Errorf("cgroups: CPU limit %v is below "+
				"the kernel's smallest quota, 0.01 CPUs", res.CPUs)
		}
	}
	return l, nil
}

// weight is v2's cpu.weight (1 to 10000, default 100) for v1's
// cpu.shares (2 to 262144, default 1024), by runc's linear map, which
// takes the ends to the ends; the defaults land near each other (1024
// gives 39, not 100: the two scales do not agree in the middle).
func (l limits) weight() uint64 {
	return 1 + ((l.shares-2)*9999)/262142
}

// writeCPUSet writes the CPUs and memory nodes asked for, in dir, a
// cgroup of the cpuset controller if enabled. The kernel takes only CPUs
// and nodes its parent has; it answers EINVAL otherwise, which says too
// little: the message names what the machine offers.
//
//	cpuset.cpus, cpuset.mems   lists such as 0-1,3 (v1 and v2)
func writeCPUSet(dir string, l limits, enabled bool) error {
	if l.cpus == "" && l.mems == "" {
		return nil
	}
	if !enabled {
		return fmt.Errorf("cgroups: CPUs or memory nodes (%q, %q) for a cgroup made without the cpuset controller",
			l.cpus, l.mems)
	}
	for _, w := range []struct{ file, value, what string }{
		{"cpuset.cpus", l.cpus, "CPUs"}, {"cpuset.mems", l.mems, "memory nodes"}} {
		if w.value == "" {
			continue
		}
		if err := writeFile(dir, w.file, w.value); err != nil {
			offered, _ := readString(filepath.Dir(dir), w.file+".effective")
			if offered == "" {
				offered, _ = readString(filepath.Dir(dir), w.file)
			}
			return fmt.Errorf("cgroups: %s %s: not among those offered (%s): %w", w.what, w.value, offered, err)
		}
	}
	return nil
}

// dirOps makes and removes cgroup directories. On a cgroup file system
// mkdir(2) makes a cgroup, and the kernel fills the directory with its
// interface files; rmdir(2) removes a cgroup, files and all, as long as it
// has no processes and no child cgroups. The unit tests' fake tree, on an
// ordinary file system, swaps in functions that imitate that.
type dirOps struct {
	mkdir func(path string) error
	rmdir func(path string) error
}

// realDirs are the real system calls.
var realDirs = dirOps{
	mkdir: func(path string) error { return unix.Mkdir(path, 0o755) },
	rmdir: unix.Rmdir,
}

// base is what both versions share: the cgroup's directories (one on v2,
// one per controller tree on v1) and how they are made and removed.
type base struct {
	// dirs lists each directory once, in a fixed order.
	dirs []string
	ops  *dirOps
	// ancestors are the directories above the parents, top first, that
	// Create makes if missing (Options.Path).
	ancestors []string
}

// makeAncestors makes the ancestors that are missing, calling setup on
// each level's parent first (v2 switches the controllers on there).
func (b *base) makeAncestors(setup func(dir string) error) error {
	for _, a := range b.ancestors {
		if setup != nil {
			if err := setup(filepath.Dir(a)); err != nil {
				return err
			}
		}
		if err := b.ops.mkdir(a); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroups: mkdir %s: %w", a, err)
		}
	}
	return nil
}

// How long to wait: freezing takes a moment, as every process must stop
// at a safe point; and a cgroup cannot be removed while the processes
// killed in it are still exiting. Variables, so tests can shorten them.
var (
	freezeTimeout  = 5 * time.Second
	destroyTimeout = 5 * time.Second
)

// makeDirs makes every directory, and the parent cgroup above it, and
// writes what they need: setupParent runs on each parent before the
// directory is made in it, setup once all are made. If anything fails,
// it removes what it made. Equivalent to: mkdir -p DIR
//
// Another container's Destroy may remove the shared parent, once empty,
// between our mkdir of it and of the directory below; that fails with
// ENOENT, and we start again.
func (b *base) makeDirs(setupParent func(string) error,
	setup func() error) error {
	var err error
	for try := 0; try < 3; try++ {
		var again bool
		if again, err = b.tryMakeDirs(setupParent, setup); !again {
			break
		}
	}
	return err
}

// tryMakeDirs is one attempt of makeDirs; again says the parent vanished
// under it, and it is worth another try.
func (b *base) tryMakeDirs(setupParent func(string) error,
	setup func() error) (again bool, err error) {
	var made []string
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				b.ops.rmdir(made[i])
			}
		}
	}()
	for _, dir := range b.dirs {
		parent := filepath.Dir(dir)
		switch e := b.ops.mkdir(parent); {
		case e == nil:
			made = append(made, parent)
		case !errors.Is(e, fs.ErrExist):
			return false, fmt.Errorf("cgroups: mkdir %s: %w", parent, e)
		}
		if setupParent != nil {
			if e := setupParent(parent); e != nil {
				return errors.Is(e, fs.ErrNotExist), e
			}
		}
		// The container's own directory must be new: one that exists
		// belongs to another container of the same name, or was left
		// behind by a crash (Load and Destroy remove it).
		if e := b.ops.mkdir(dir); e != nil {
			return errors.Is(e, fs.ErrNotExist),
				fmt.Errorf("cgroups: mkdir %s: %w", dir, e)
		}
		made = append(made, dir)
	}
	return false, setup()
}

// apply writes pid into cgroup.procs in every directory, which moves the
// process with all its threads. Equivalent to: echo PID > DIR/cgroup.procs
func (b *base) apply(pid int) error {
	for _, dir := range b.dirs {
		if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// pids reads cgroup.procs in every directory: on v1 a process could have
// been moved out of one tree but not the others, and it is still ours.
func (b *base) pids() ([]int, error) {
	seen := map[int]bool{}
	for _, dir := range b.dirs {
		path := filepath.Join(dir, "cgroup.procs")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("cgroups: %s: bad pid %q", path, f)
			}
			seen[pid] = true
		}
	}
	list := make([]int, 0, len(seen))
	for pid := range seen {
		list = append(list, pid)
	}
	sort.Ints(list)
	return list, nil
}

// killAll kills every process by hand, for when the kernel cannot do it
// for us (cgroup.kill is v2 only, since Linux 5.14): freeze the cgroup so
// that nothing can fork while we go through the list, send SIGKILL to
// each process, and thaw, which is when the signals take effect.
func killAll(m Manager) error {
	// An empty cgroup stays empty, since only its own processes could
	// fork into it: nothing to freeze. That is the usual case when a
	// container ends, as its init took the whole PID namespace with it,
	// and a freeze and thaw would cost milliseconds on every run.
	if list, err := m.Pids(); err == nil && len(list) == 0 {
		return nil
	}
	if err := m.Freeze(); err != nil {
		return err
	}
	list, err := m.Pids()
	if err == nil {
		for _, pid := range list {
			// ESRCH: it exited meanwhile, which is what we want.
			e := unix.Kill(pid, unix.SIGKILL)
			if e != nil && !errors.Is(e, unix.ESRCH) && err == nil {
				err = fmt.Errorf("cgroups: kill %d: %w", pid, e)
			}
		}
	}
	if e := m.Thaw(); e != nil && err == nil {
		err = e
	}
	return err
}

// switchFreezer asks the kernel, with set, to freeze (want true) or thaw
// the cgroup, and waits until frozen reports that it has: freezing is
// not instant, every task must first stop at a safe point. A freeze that
// does not complete in time is undone, so no process is left stopped.
func switchFreezer(want bool, set func(bool) error,
	frozen func() (bool, error)) error {
	if err := set(want); err != nil {
		return err
	}
	err := retry(freezeTimeout, func() (bool, error) {
		is, err := frozen()
		return err != nil || is == want, err
	})
	if err != nil && want {
		set(false)
	}
	if err != nil {
		return fmt.Errorf("cgroups: wait until frozen is %v: %w", want, err)
	}
	return nil
}

// destroy removes every directory and then their parents, if no other
// container's cgroup is left in them. A cgroup with processes cannot be
// removed (EBUSY); those of a killed container may still be exiting, so
// we try again for a while. Equivalent to: rmdir DIR
func (b *base) destroy() error {
	var errs []error
	for _, dir := range b.dirs {
		err := retry(destroyTimeout, func() (bool, error) {
			err := b.ops.rmdir(dir)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				return true, nil
			}
			return !errors.Is(err, unix.EBUSY), err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroups: rmdir %s: %w", dir, err))
			continue
		}
		// The parent holds other containers' cgroups, or it is empty
		// and goes too. rmdir decides atomically: EBUSY (or ENOTEMPTY
		// on the fake tree) when it has children, which is fine.
		parent := filepath.Dir(dir)
		err = b.ops.rmdir(parent)
		if err != nil && !errors.Is(err, unix.EBUSY) &&
			!errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cgroups: rmdir %s: %w",
				parent, err))
		}
	}
	return errors.Join(errs...)
}

// retry calls try until it reports done, or until timeout has passed,
// sleeping a little longer each time; it returns try's last error, or a
// timeout error if that was nil.
func retry(timeout time.Duration, try func() (done bool, err error)) error {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		done, err := try()
		if done {
			return err
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("timed out after %v", timeout)
			}
			return err
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// dedupe returns the distinct values of paths, in the order of keys.
func dedupe(paths map[string]string) []string {
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var dirs []string
	seen := map[string]bool{}
	for _, k := range keys {
		if d := paths[k]; !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// writeFile writes one value into a cgroup interface file. The file must
// exist: the kernel makes them, and a missing one means the controller
// (or the kernel feature) is not there. Each write is one write(2), as
// the kernel expects. Equivalent to: echo VALUE > DIR/FILE
func writeFile(dir, file, value string) error {
	path := filepath.Join(dir, file)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroups: write %q to %s: %w", value, path, err)
	}
	return nil
}

// exists reports whether dir has the file. Some exist only with a kernel
// option: memory.swap.max and memory.memsw.* with swap accounting,
// cgroup.kill since Linux 5.14.
func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// readString reads a one-line file, without the newline.
func readString(dir, file string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// readInt reads a file holding one number, or "max" (v2's no limit),
// which reads as 0.
func readInt(dir, file string) (int64, error) {
	s, err := readString(dir, file)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroups: %s: not a number: %q",
			filepath.Join(dir, file), s)
	}
	return n, nil
}

// readKeyed reads one value from a file of "KEY VALUE" lines, such as
// memory.events or cpu.stat. A key the file lacks (older kernels have
// fewer) reads as 0.
func readKeyed(dir, file, key string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, fmt.Errorf("cgroups: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != key {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cgroups: %s: %s: not a number: %q",
				filepath.Join(dir, file), key, f[1])
		}
		return n, nil
	}
	return 0, nil
}

// reader collects the first error of a series of reads, so that Stats can
// read a dozen counters and check once.
type reader struct{ err error }

// number is readInt, skipped after an error.
func (r *reader) number(dir, file string) int64 {
	if r.err != nil {
		return 0
	}
	n, err := readInt(dir, file)
	r.err = err
	return n
}

// keyed is readKeyed, skipped after an error.
func (r *reader) keyed(dir, file, key string) int64 {
	if r.err != nil {
		return 0
	}
	n, err := readKeyed(dir, file, key)
	r.err = err
	return n
}
