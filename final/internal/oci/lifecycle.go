package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/persist"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CreateOptions are create's flags.
type CreateOptions struct {
	// PidFile, if set, receives the container process's pid.
	PidFile string
	// ConsoleSocket is the unix socket that receives the terminal's
	// master, for a process with a terminal.
	ConsoleSocket string
	// Console, instead of ConsoleSocket, is a connected unix socket
	// (one end of a socketpair(2)) for the same: how gocell's engine,
	// which calls Create itself, gets the terminal (RecvConsole).
	Console *os.File
	// DieWithParent kills the container's process when the thread
	// that created it ends (PR_SET_PDEATHSIG): gocell's monitor is
	// such a parent, and a container must not outlive it unwatched.
	DieWithParent bool
	// NoNewKeyring keeps the caller's session keyring.
	NoNewKeyring bool
	// Stdin, Stdout and Stderr are the process's, without a terminal
	// (default: create's own).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// cloneFlags are the clone(2) flags of new namespaces.
var cloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace: unix.CLONE_NEWNS, specs.IPCNamespace: unix.CLONE_NEWIPC,
	specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// resources turns linux.resources into the cgroup's limits. What the
// cgroups package cannot set, Check has refused already.
func resources(s *specs.Spec) (cgroups.Resources, error) {
	var res cgroups.Resources
	r := s.Linux.Resources
	if r == nil {
		return res, nil
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil && *m.Limit > 0 {
			res.MemoryBytes = *m.Limit
		}
		// memory plus swap, as on v1 (podman writes twice the memory,
		// as Docker's default --memory-swap); the cgroups package
		// checks it against the memory limit.
		if m.Swap != nil {
			res.MemorySwapBytes = *m.Swap
		}
		if m.Reservation != nil && *m.Reservation > 0 {
			res.MemoryReservationBytes = *m.Reservation
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			res.CPUShares = *c.Shares
		}
		res.CPUSetCPUs, res.CPUSetMems = c.Cpus, c.Mems
		if c.Quota != nil && *c.Quota > 0 {
			period := uint64(100000)
			if c.Period != nil && *c.Period > 0 {
				period = *c.Period
			}
			// The cgroups package works in CPUs, with a period of 100 ms.
			res.CPUs = float64(*c.Quota) / float64(period)
		}
	}
	if p := r.Pids; p != nil && p.Limit > 0 {
		res.PidsMax = p.Limit
	}
	if err := cgroups.Check(res); err != nil {
		return res, err
	}
	return res, checkDevices(r.Devices)
}

// CheckResources checks linux.resources as Create and Update will, for a
// caller that keeps them until a start: gocell's engine.
func CheckResources(r *specs.LinuxResources) error {
	_, err := resources(&specs.Spec{Linux: &specs.Linux{Resources: r}})
	return err
}

// Create makes the container: its namespaces, cgroup and root file
// system, and its process waiting to be started. It returns the process,
// a child of the caller, for run to wait on; create's caller just exits
// and leaves it to its new parent (a subreaper, such as conmon or
// containerd's shim).
func (r *Runtime) Create(id, bundle string, o CreateOptions) (*exec.Cmd, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	s, err := Load(bundle)
	if err != nil {
		return nil, err
	}
	if ok, _ := hasNamespace(s, specs.MountNamespace); !ok {
		return nil, errors.New("linux.namespaces: a mount namespace is needed, for the container's root")
	}
	if s.Process.Terminal && o.ConsoleSocket == "" && o.Console == nil {
		return nil, errors.New("process.terminal is set: give --console-socket, where the terminal goes")
	}
	res, err := resources(s)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, err
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s: %w", id, ErrExist)
	} else if err != nil {
		return nil, err
	}
	c := &creation{r: r, id: id, dir: dir, spec: s, bundle: bundle, o: o}
	cmd, err := c.run(res)
	if err != nil {
		c.undo()
		return nil, err
	}
	return cmd, nil
}

// creation is one Create, and what it made, to undo on failure.
type creation struct {
	r      *Runtime
	id     string
	dir    string
	spec   *specs.Spec
	bundle string
	o      CreateOptions
	cg     cgroups.Manager
	cmd    *exec.Cmd
}

func (c *creation) undo() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
	if c.cg != nil {
		c.cg.Kill()
		c.cg.Destroy()
	}
	os.RemoveAll(c.dir)
}

func (c *creation) run(res cgroups.Resources) (*exec.Cmd, error) {
	s := c.spec
	path := s.Linux.CgroupsPath
	if path == "" {
		path = "/gocell-runtime/" + c.id
	}
	// The cpuset controller only when the config pins CPUs or memory
	// nodes: on v1 it costs a cgroup per tree, filled from its parent.
	cpuset := res.CPUSetCPUs != "" || res.CPUSetMems != ""
	cg, err := cgroups.New(c.id, cgroups.Options{Path: path, CPUSet: cpuset})
	if err != nil {
		return nil, err
	}
	if err := cg.Create(res); err != nil {
		return nil, err
	}
	c.cg = cg
	if err := applyDevices(cg, s.Linux.Resources); err != nil {
		return nil, err
	}
	fifo, err := c.makeFifo()
	if err != nil {
		return nil, err
	}
	defer fifo.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	sync := os.NewFile(uintptr(pair[0]), "sync")
	child := os.NewFile(uintptr(pair[1]), "sync-child")
	defer sync.Close()
	defer child.Close()
	// The process runs a sealed copy of gocell-runtime (see exec.go):
	// one that any user may execute, whatever the directories above
	// our file allow the container's root, who may not be ours.
	self, err := selfCopy()
	if err != nil {
		return nil, err
	}
	defer self.Close()
	files := []*os.File{child, fifo}
	if s.Process.Terminal {
		f, err := consoleFile(c.o.Console, c.o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		files = append(files, f)
	}
	files = append(files, self)
	exe := fmt.Sprintf("/proc/self/fd/%d", 2+len(files))
	sources, err := bindSources(s, c.bundle)
	if err != nil {
		return nil, err
	}
	mountFds := map[int]int{}
	for i, f := range sources {
		if f != nil {
			defer f.Close()
			mountFds[i] = 3 + len(files)
			files = append(files, f)
		}
	}
	cmd := exec.Command(exe, initArg)
	// The process starts in the bundle, and finds a relative root.path
	// from there. It inherits our working directory rather than
	// changing to it after clone(2): in a user namespace it is no
	// longer the host's root, and could not pass through the host's
	// directories above the bundle (such as gocell's 0700 store).
	if err := unix.Chdir(c.bundle); err != nil {
		return nil, err
	}
	setStdio(cmd, c.o.Stdin, c.o.Stdout, c.o.Stderr)
	cmd.ExtraFiles = files
	cmd.Env = []string{}
	attr, err := c.procAttr()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the container's process: %w", err)
	}
	c.cmd = cmd
	child.Close()
	pid := cmd.Process.Pid
	if err := cg.Apply(pid); err != nil {
		return nil, err
	}
	cg.Close()
	cfg := &initConfig{ID: c.id, Spec: s, Cgroup: cg.Paths(), Console: s.Process.Terminal,
		Keyring: !c.o.NoNewKeyring, DieWithParent: c.o.DieWithParent, MountFds: mountFds,
		CgroupNS: cloneCgroupNS(s) && !attr.UseCgroupFD}
	if err := send(sync, message{Type: "config", Config: cfg}); err != nil {
		return nil, err
	}
	if err := expect(sync, "ns"); err != nil {
		return nil, err
	}
	state := &specs.State{Version: specs.Version, ID: c.id, Status: specs.StateCreating,
		Pid: pid, Bundle: c.bundle, Annotations: s.Annotations}
	if h := s.Hooks; h != nil {
		if err := runHooks("prestart", h.Prestart, state); err != nil { //nolint:staticcheck // still in the spec
			return nil, err
		}
		if err := runHooks("createRuntime", h.CreateRuntime, state); err != nil {
			return nil, err
		}
	}
	if err := send(sync, message{Type: "go", State: state}); err != nil {
		return nil, err
	}
	if err := expect(sync, "created"); err != nil {
		return nil, err
	}
	start, err := persist.StartTime(pid)
	if err != nil {
		return nil, err
	}
	rec := &record{ID: c.id, Bundle: c.bundle, Pid: pid, Start: start,
		Created: time.Now().UTC(), Annotations: s.Annotations, Cgroup: cg.Paths(), Spec: s}
	if err := c.r.save(rec); err != nil {
		return nil, err
	}
	if c.o.PidFile != "" {
		if err := persist.WriteFile(c.o.PidFile, []byte(strconv.Itoa(pid)), 0o644, true); err != nil {
			return nil, fmt.Errorf("--pid-file: %w", err)
		}
	}
	return cmd, nil
}

// expect reads the next message from the container's process: want, or
// the error it reports (or its death).
func expect(sync *os.File, want string) error {
	m, err := recv(sync)
	switch {
	case err != nil:
		return fmt.Errorf("the container's process ended while it was being set up: %w", err)
	case m.Type == "error":
		return &remoteError{msg: m.Error, notFound: m.NotFound, notExecutable: m.NotExecutable}
	case m.Type != want:
		return fmt.Errorf("sync: expected %q, got %q", want, m.Type)
	}
	return nil
}

// makeFifo makes the start FIFO and returns an O_PATH descriptor of it
// for the container's process, which opens it for writing through
// /proc/self/fd. Its owner is the container's root, who must be allowed
// to open it. mkfifo(3)
func (c *creation) makeFifo() (*os.File, error) {
	path := filepath.Join(c.dir, fifoName)
	if err := unix.Mkfifo(path, 0o622); err != nil {
		return nil, fmt.Errorf("mkfifo: %w", err)
	}
	uid, gid := rootIDs(c.spec)
	if err := os.Chown(path, uid, gid); err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), fifoName), nil
}

// rootIDs are the host's uid and gid of the container's root: itself,
// unless a user namespace maps it elsewhere.
func rootIDs(s *specs.Spec) (int, int) {
	uid, gid := 0, 0
	for _, m := range s.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range s.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid
}

// procAttr is how the container's process is cloned: its new
// namespaces, the user namespace's id maps (Go writes them between
// clone and exec), and, on cgroup v2, born in its cgroup
// (CLONE_INTO_CGROUP).
func (c *creation) procAttr() (*syscall.SysProcAttr, error) {
	s := c.spec
	attr := &syscall.SysProcAttr{}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" {
			attr.Cloneflags |= cloneFlags[ns.Type]
		}
	}
	if attr.Cloneflags&unix.CLONE_NEWUSER != 0 {
		if len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0 {
			return nil, errors.New("a user namespace needs linux.uidMappings and linux.gidMappings")
		}
		for _, m := range s.Linux.UIDMappings {
			attr.UidMappings = append(attr.UidMappings, syscall.SysProcIDMap{
				ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range s.Linux.GIDMappings {
			attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{
				ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		attr.GidMappingsEnableSetgroups = true
		// Root inside, from the first instruction: the set-up needs
		// it. Go sets the ids between clone(2) and execve(2).
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	} else if len(s.Linux.UIDMappings)+len(s.Linux.GIDMappings) > 0 {
		return nil, errors.New("linux.uidMappings without a new user namespace")
	}
	if fd, ok := c.cg.CgroupFD(); ok {
		attr.UseCgroupFD, attr.CgroupFD = true, fd
	} else {
		// Moved into its cgroup only after clone(2) (cgroup v1): a
		// cgroup namespace made at clone time would be rooted at ours.
		// The process makes it itself once it is in place (init.go).
		attr.Cloneflags &^= unix.CLONE_NEWCGROUP
	}
	if c.o.DieWithParent {
		attr.Pdeathsig = unix.SIGKILL
	}
	return attr, nil
}

// cloneCgroupNS says whether the spec asks for a new cgroup namespace.
func cloneCgroupNS(s *specs.Spec) bool {
	ok, path := hasNamespace(s, specs.CgroupNamespace)
	return ok && path == ""
}

// Start lets a created container's process go on to execve(2) its
// command: opening the FIFO for reading releases its open for writing.
func (r *Runtime) Start(id string) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if st := r.status(rec); st != specs.StateCreated {
		return fmt.Errorf("%s is %s: only a created container can be started", id, st)
	}
	// The process, by a pidfd, before the FIFO: once the FIFO is open,
	// the command may run, end, and be a zombie at once.
	pidfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil || !rec.alive() {
		return fmt.Errorf("%s: its process died before it could start", id)
	}
	defer unix.Close(pidfd)
	path := filepath.Join(r.dir(id), fifoName)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := awaitExec(fd, pidfd, rec); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	os.Remove(path)
	if h := rec.Spec.Hooks; h != nil && len(h.Poststart) > 0 {
		// A failing poststart hook is reported, and changes nothing
		// else. runtime-spec, "Lifecycle" 7.
		if err := runHooks("poststart", h.Poststart, r.specState(rec, specs.StateRunning)); err != nil {
			fmt.Fprintf(os.Stderr, "gocell-runtime: warning: %v\n", err)
		}
	}
	return nil
}

// awaitExec waits, on the start FIFO fifo (opened for reading), until the
// container's process has written its byte and then executed its
// command, or died. The byte comes once its open for writing returns and
// its startContainer hooks have run; its end of the FIFO closes at its
// execve(2) (O_CLOEXEC), or its death, which its pidfd tells too
// (pidfd_open(2)): poll(2) waits for both, with no polling loop. Until
// the byte, hooks may take their time; without them, 10 s is the limit.
// Once it has come, whoever reads the process's /proc next sees the
// command, not gocell-runtime.
func awaitExec(fifo, pidfd int, rec *record) error {
	timeout := 10 * 1000
	if h := rec.Spec.Hooks; h != nil && len(h.StartContainer) > 0 {
		timeout = -1
	}
	fds := []unix.PollFd{{Fd: int32(fifo), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
	buf := make([]byte, 1)
	started := false
	for {
		n, err := unix.Poll(fds, timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for the start FIFO: %w", err)
		}
		if n == 0 {
			if started {
				return nil // set up, but slow to execute: go on
			}
			return errors.New("its process did not answer the start FIFO")
		}
		if fds[0].Revents != 0 {
			n, err := unix.Read(fifo, buf)
			switch {
			case n == 1:
				started = true
				timeout = 5 * 1000
				continue
			case n == 0 && started:
				return nil // closed at execve(2)
			case n == 0:
				return errors.New("its process closed the start FIFO without starting")
			case err != nil && !errors.Is(err, unix.EAGAIN):
				return fmt.Errorf("read the start FIFO: %w", err)
			}
		}
		if fds[1].Revents != 0 {
			if started {
				return nil
			}
			return errors.New("its process died before it could start")
		}
	}
}

// ParseSignal reads a signal as kill(1) takes it: TERM, SIGTERM or 15.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// Kill sends sig to the container's process, or with all to every
// process in its cgroup (for exec'd processes too).
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if !rec.alive() {
		return fmt.Errorf("%s is stopped: nothing to signal", id)
	}
	if !all {
		return unix.Kill(rec.Pid, sig)
	}
	pids, err := cgroups.Load(rec.Cgroup).Pids()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

// Delete removes a stopped (or, with force, any) container: its process
// if it still runs, its cgroup, its state; then the poststop hooks.
func (r *Runtime) Delete(id string, force bool) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := r.load(id)
	if err != nil {
		// A directory without a state: a create that died half-way.
		if errors.Is(err, ErrNotExist) {
			return os.RemoveAll(r.dir(id))
		}
		return err
	}
	st := r.status(rec)
	if st == specs.StateRunning && !force {
		return fmt.Errorf("%s is running: stop it first, or delete --force", id)
	}
	cg := cgroups.Load(rec.Cgroup)
	if st != specs.StateStopped {
		unix.Kill(rec.Pid, unix.SIGKILL)
	}
	// What exec started, or what the process left behind, goes too.
	if err := cg.Kill(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); rec.alive() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cg.Destroy(); err != nil {
		return err
	}
	if err := os.RemoveAll(r.dir(id)); err != nil {
		return err
	}
	if h := rec.Spec.Hooks; h != nil && len(h.Poststop) > 0 {
		if err := runHooks("poststop", h.Poststop, r.specState(rec, specs.StateStopped)); err != nil {
			fmt.Fprintf(os.Stderr, "gocell-runtime: warning: %v\n", err)
		}
	}
	return nil
}

// Pause and Resume freeze and thaw every process of the container.
func (r *Runtime) Pause(id string) error  { return r.freeze(id, true) }
func (r *Runtime) Resume(id string) error { return r.freeze(id, false) }

func (r *Runtime) freeze(id string, on bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if !rec.alive() {
		return fmt.Errorf("%s is stopped", id)
	}
	cg := cgroups.Load(rec.Cgroup)
	if on {
		return cg.Freeze()
	}
	return cg.Thaw()
}

// Update changes the limits of a container that has not stopped: what res
// sets replaces the same in its config, the rest stays, and the cgroup
// gets the result at once. The record keeps it, for the next update. It
// is runc's update, which runtime-spec does not define but containerd,
// podman and so Kubernetes call. Limits only: devices and the rest
// stay as the container was made.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if !rec.alive() {
		return fmt.Errorf("%s is stopped: there is no cgroup to update", id)
	}
	merged, err := mergeResources(rec.Spec.Linux.Resources, res)
	if err != nil {
		return err
	}
	spec := *rec.Spec
	linux := *spec.Linux
	linux.Resources = merged
	spec.Linux = &linux
	limits, err := resources(&spec)
	if err != nil {
		return err
	}
	if err := cgroups.Load(rec.Cgroup).Set(limits); err != nil {
		return err
	}
	rec.Spec = &spec
	return r.save(rec)
}

// mergeResources lays the limits an update sets over the old ones. A
// field it leaves nil (or "" for the cpuset lists) keeps its old value.
func mergeResources(old, upd *specs.LinuxResources) (*specs.LinuxResources, error) {
	if upd == nil {
		upd = &specs.LinuxResources{}
	}
	var bad []string
	add := func(set bool, what string) {
		if set {
			bad = append(bad, "linux.resources."+what)
		}
	}
	add(len(upd.Devices) > 0, "devices")
	add(upd.BlockIO != nil, "blockIO")
	add(len(upd.HugepageLimits) > 0, "hugepageLimits")
	add(upd.Network != nil, "network")
	add(len(upd.Rdma) > 0, "rdma")
	add(len(upd.Unified) > 0, "unified")
	if len(bad) > 0 {
		return nil, fmt.Errorf("update: %w: %s", ErrUnsupported, strings.Join(bad, ", "))
	}
	out := &specs.LinuxResources{}
	if old != nil {
		*out = *old
	}
	over := func(dst **int64, src *int64) {
		if src != nil {
			*dst = src
		}
	}
	overU := func(dst **uint64, src *uint64) {
		if src != nil {
			*dst = src
		}
	}
	if m := upd.Memory; m != nil {
		var mem specs.LinuxMemory
		if out.Memory != nil {
			mem = *out.Memory
		}
		over(&mem.Limit, m.Limit)
		over(&mem.Swap, m.Swap)
		over(&mem.Reservation, m.Reservation)
		out.Memory = &mem
	}
	if c := upd.CPU; c != nil {
		var cpu specs.LinuxCPU
		if out.CPU != nil {
			cpu = *out.CPU
		}
		overU(&cpu.Shares, c.Shares)
		over(&cpu.Quota, c.Quota)
		overU(&cpu.Period, c.Period)
		if c.Cpus != "" {
			cpu.Cpus = c.Cpus
		}
		if c.Mems != "" {
			cpu.Mems = c.Mems
		}
		out.CPU = &cpu
	}
	if upd.Pids != nil {
		out.Pids = &specs.LinuxPids{Limit: upd.Pids.Limit}
	}
	return out, nil
}

// Pids lists the container's processes, from its cgroup.
func (r *Runtime) Pids(id string) ([]int, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return cgroups.Load(rec.Cgroup).Pids()
}

// ExitCode turns a finished process's status into an exit code, 128+N
// after signal N, as a shell does.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err == nil {
			return 0
		}
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}
