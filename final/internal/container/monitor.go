package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/network"
	"github.com/gocell/gocell/final/internal/oci"
	"github.com/gocell/gocell/final/internal/persist"
	"github.com/gocell/gocell/final/internal/rootfs"
	"github.com/gocell/gocell/final/internal/shim"
	"github.com/gocell/gocell/final/internal/spawn"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// fdReport is the pipe on which the monitor reports to the CLI that
// started it (report.go: "ok PID", "error CODE MESSAGE", "exit CODE");
// the attached CLI's files follow it (stdio.go).
const fdReport = 3

// runtime is the runtime (package oci) that makes and runs the
// containers, with its state under <root>/runtime, by their ids.
func (s *Store) runtime() *oci.Runtime {
	return &oci.Runtime{Root: filepath.Join(s.Root, "runtime")}
}

// RunMonitor looks after one run of a container, from the host, as
// podman's conmon does for crun: it mounts the root file system, writes
// the bundle, has the runtime create the container, puts it on its
// network, starts it, logs its output, waits for it, records its exit
// status and removes what the run made. It is started by Start as
// `gocell __monitor ID` in a session of its own, so it outlives the CLI.
func RunMonitor(s *Store, id string, o MonitorOptions) {
	// The mount namespace, the working directory and the parent-death
	// signal below all belong to this thread: it creates the container.
	// It is the process's main thread (gocell's main locks it in an init
	// function), from which handOver can execute the shim.
	runtime.LockOSThread()
	closeOnExec()
	report := os.NewFile(fdReport, "report")
	m := &monitor{store: s, id: id, report: report, rt: s.runtime()}
	// The binaries the shim and __finish will be executed from, opened
	// now: a start with another gocell removes the older copies in
	// <root>/bin (binCopy), and the container may run for months.
	// Through a descriptor, execve(2) runs the file even once unlinked.
	if self, err := os.Executable(); err == nil {
		m.self, _ = os.Open(self)
	}
	if o.Shim != "" {
		m.shim, _ = os.Open(o.Shim)
	}
	code := m.run(o)
	exitedReport(code).send(report)
	report.Close()
	s.RestartIfWanted(id)
	os.Exit(0)
}

// MonitorOptions are the monitor's flags.
type MonitorOptions struct {
	// Attached: the CLI waits, and gave its files (stdio.go).
	Attached bool
	// Rows and Cols are the size of the CLI's terminal, with -t.
	Rows, Cols uint16
	// Shim is the gocell-shim binary a detached run is handed over to
	// once the container runs; "" for gocell's own (ShimArg).
	Shim string
	// Restarted: a start of the restart policy, which a stop asked
	// meanwhile cancels (register).
	Restarted bool
}

// errStopAsked ends a restart of the policy that a stop overtook.
var errStopAsked = errors.New("a stop was asked: the restart policy does not start it again")

type monitor struct {
	store  *Store
	id     string
	report *os.File
	rt     *oci.Runtime
	cg     cgroups.Manager
	// netns, with --network container:NAME, is NAME's network namespace.
	netns *os.File
	// self and shim are gocell's binary and gocell-shim's, opened at the
	// start (RunMonitor); shim is nil without gocell-shim.
	self, shim *os.File
}

// run returns the container's exit status, after cleaning up.
func (m *monitor) run(o MonitorOptions) int {
	st, err := m.register(o.Restarted)
	if errors.Is(err, errStopAsked) {
		return 0 // nothing was made; the state is as the stop left it
	}
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	spec := st.Spec
	root, unlockSeeds, err := m.mountRoot(st)
	defer unlockSeeds()
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	netns, shared, err := m.sharedNetwork(spec.Network)
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	// The files the network gives, bind-mounted by the runtime: made
	// now, filled in once the network is there (connect).
	if err := m.writeEtc(st, nil, nil, false); err != nil {
		return m.failed(ExitRuntime, err)
	}
	bundle, err := m.store.bundleSpec(st, root, netns)
	if err == nil && o.Rows > 0 && o.Cols > 0 && spec.Tty {
		bundle.Process.ConsoleSize = &specs.Box{Height: uint(o.Rows), Width: uint(o.Cols)}
	}
	if err == nil {
		err = m.store.writeSpec(m.id, bundle)
	}
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	out, err := m.openStdio(spec, o.Attached)
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	defer out.close()
	cmd, err := m.rt.Create(m.id, m.store.Dir(m.id), oci.CreateOptions{
		Stdin: out.stdin, Stdout: out.stdout, Stderr: out.stderr, Console: out.console,
		DieWithParent: true})
	if err != nil {
		code := ExitRuntime
		switch {
		case errors.Is(err, oci.ErrExecutableNotFound):
			code, err = ExitNotFound, fmt.Errorf("%w: %w", ErrCommandNotFound, err)
		case errors.Is(err, oci.ErrNotExecutable):
			code = ExitCannotRun
		}
		return m.failed(code, err)
	}
	out.created()
	unlockSeeds()
	pid := cmd.Process.Pid
	if err := out.receiveConsole(); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return m.failed(ExitRuntime, err)
	}
	start, _ := persist.StartTime(pid)
	err = m.connect(st, pid, shared)
	if err == nil {
		_, err = m.store.Update(m.id, func(st *State) error {
			st.Status, st.Pid, st.PidStart = Running, pid, start
			st.StartedAt, st.FinishedAt, st.ExitCode, st.OOMKilled = time.Now().UTC(), time.Time{}, 0, false
			return nil
		})
	}
	if err == nil {
		err = m.rt.Start(m.id)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return m.failed(ExitRuntime, err)
	}
	startedReport(pid).send(m.report)
	if !o.Attached {
		return m.finish(m.handOver(out.handover(pid)), nil)
	}
	waitErr := cmd.Wait()
	code := exitCodeOf(cmd.ProcessState, waitErr)
	out.wait()
	return m.finish(code, nil)
}

// register records the monitor in the container's state, and the
// cgroup's paths before the cgroup itself: if we are killed at any
// point after this, ps and rm find and remove whatever of it exists
// (see reconcile).
//
// A restart of the policy gives up here, under the state's lock, if a
// stop was asked since its check: the stop, which sets the flag under
// the same lock, then either finds this monitor registered and stops
// the container, or is seen here.
func (m *monitor) register(restarted bool) (*State, error) {
	self, _ := persist.StartTime(os.Getpid())
	cg, err := cgroups.New(m.id, cgroups.Options{Path: cgroupPath(m.id)})
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	m.cg = cg
	return m.store.Update(m.id, func(st *State) error {
		if restarted && st.StopRequested {
			return errStopAsked
		}
		st.Monitor, st.MonitorStart = os.Getpid(), self
		st.Cgroup = cg.Paths()
		st.Error = ""
		return nil
	})
}

// cgroupPath is the container's cgroup, below gocell's
// (cgroups.DefaultParent): the bundle's linux.cgroupsPath.
func cgroupPath(id string) string { return "/" + cgroups.DefaultParent + "/" + id }

// mountRoot mounts the container's root file system at merged, in a
// mount namespace of this thread's own, which the container's is made
// a copy of: the host never sees the overlay. Named volumes are seeded
// from the image first (seedVolumes). unshare(2) CLONE_NEWNS
// The named volumes stay locked until the caller calls the function
// returned (see seedVolumes).
func (m *monitor) mountRoot(st *State) (string, func(), error) {
	dir := m.store.Dir(m.id)
	unlockSeeds := func() {}
	unlock := func() { unlockSeeds(); unlockSeeds = func() {} }
	// Equivalent to: unshare --mount --propagation private
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return "", unlock, fmt.Errorf("mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "", unlock, fmt.Errorf("mount namespace: %w", err)
	}
	opts := rootfs.Options{
		Layers: st.Spec.Layers,
		Upper:  filepath.Join(dir, "upper"),
		Work:   filepath.Join(dir, "work"),
		Merged: filepath.Join(dir, "merged"),
		Seed: func(merged string) (err error) {
			unlockSeeds, err = m.store.seedVolumes(st, merged)
			return err
		},
	}
	if st.Spec.UserNS {
		// The layers are seen through the id map of the container's
		// user namespace, which does not exist yet: one with the same
		// map serves.
		userns, err := idmapNamespace()
		if err != nil {
			return "", unlock, err
		}
		defer unix.Close(userns)
		opts.UsernsFD, opts.IDMapped = userns, filepath.Join(dir, "idmapped")
	}
	return opts.Merged, unlock, rootfs.Mount(opts)
}

// unmountRoot unmounts, in our mount namespace, what mountRoot mounted:
// a removal of the container's directory (--rm) would otherwise go into
// the overlay, and stop at its busy mount point. umount2(2) MNT_DETACH
func (m *monitor) unmountRoot() {
	dir := m.store.Dir(m.id)
	unix.Unmount(filepath.Join(dir, "merged"), unix.MNT_DETACH)
	idmapped, _ := filepath.Glob(filepath.Join(dir, "idmapped", "*"))
	for _, layer := range idmapped {
		unix.Unmount(layer, unix.MNT_DETACH)
	}
}

// sharedNetwork is, for --network container:NAME, the network namespace
// of NAME's process, as a path for the bundle, and NAME's state. The
// namespace is opened here, and NAME's process checked after: its pid
// could be another process's by the time the runtime opened it, but the
// descriptor we keep names the namespace for good. The path the runtime
// gets is that descriptor's, in our /proc.
func (m *monitor) sharedNetwork(network string) (string, *State, error) {
	ref, ok := strings.CutPrefix(network, "container:")
	if !ok {
		return "", nil, nil
	}
	other, err := m.store.Get(ref)
	if err != nil {
		return "", nil, err
	}
	if other.Status != Running {
		return "", nil, fmt.Errorf("network container:%s: %w", ref, ErrNotRunning)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", other.Pid))
	if err == nil && !alive(other.Pid, other.PidStart) {
		f.Close()
		err = ErrNotRunning
	}
	if err != nil {
		return "", nil, fmt.Errorf("network container:%s: %w", ref, err)
	}
	m.netns = f // closed when the monitor exits
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), other, nil
}

// connect puts the created container on its network, and fills in the
// /etc/hosts, /etc/hostname and /etc/resolv.conf it has.
func (m *monitor) connect(st *State, pid int, shared *State) error {
	spec := st.Spec
	var ep *network.Endpoint
	hosts := map[string]string{}
	switch {
	case shared != nil:
		ep = shared.Endpoint
	case !IsSpecialNetwork(spec.Network):
		nm, err := m.store.Networks()
		if err != nil {
			return err
		}
		if ep, err = nm.Connect(spec.Network, st.ID, st.Name, pid, spec.Ports); err != nil {
			return err
		}
		if _, err := m.store.Update(m.id, func(st *State) error { st.Endpoint = ep; return nil }); err != nil {
			return err
		}
		if hosts, err = nm.Hosts(ep.Network); err != nil {
			return err
		}
	}
	if ep == nil {
		return nil
	}
	return m.writeEtc(st, ep, hosts, true)
}

// writeEtc writes the container's /etc files. Once the container is
// created, they are bind-mounted in it: then they are rewritten in
// place, keeping their inodes, which the mounts hold.
func (m *monitor) writeEtc(st *State, ep *network.Endpoint, hosts map[string]string, inPlace bool) error {
	dir := filepath.Join(m.store.Dir(m.id), "etc")
	if !inPlace {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return network.WriteEtcFiles(dir, ep, st.Spec.Hostname, hosts, st.Spec.ExtraHosts, "")
	}
	fresh := dir + ".new"
	defer os.RemoveAll(fresh)
	if err := os.MkdirAll(fresh, 0o755); err != nil {
		return err
	}
	if err := network.WriteEtcFiles(fresh, ep, st.Spec.Hostname, hosts, st.Spec.ExtraHosts, ""); err != nil {
		return err
	}
	for _, name := range []string{network.HostsFile, network.HostnameFile, network.ResolvConfFile} {
		data, err := os.ReadFile(filepath.Join(fresh, name))
		if err != nil {
			return err
		}
		// Nothing runs in the container yet: no process reads a half
		// written file.
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// exitCodeOf is the container's exit code: its process's, or 128+N when
// signal N killed it (shim.ExitCode).
func exitCodeOf(state *os.ProcessState, err error) int {
	if state == nil {
		return ExitRuntime
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok {
		return shim.ExitCode(ws)
	}
	return state.ExitCode()
}

// ShimArg is the argument that makes gocell run as the shim, when no
// gocell-shim is installed beside it.
const ShimArg = "__shim"

// handOver replaces the monitor of a detached container, which now runs,
// with the shim (package shim): a small program that logs and waits, where
// the monitor is all of gocell. execve(2) keeps what matters: our pid,
// which the state records and the container's process has as its parent,
// the mount namespace of this thread, which holds the root file system,
// and the descriptors cleared below. The shim executes `gocell __finish
// ID CODE` when the container ends (RunFinish).
//
// If the shim cannot be executed, the monitor watches the container
// itself, with the same code, and returns its exit code.
func (m *monitor) handOver(h shim.Handover) int {
	var err error
	switch {
	case m.self == nil:
		err = errors.New("gocell's own binary could not be opened")
	case unix.Gettid() != os.Getpid():
		// execve(2) from another thread would make the main thread a
		// zombie for a moment, and the monitor look dead (alive).
		err = errors.New("the monitor does not run on its main thread")
	}
	if err == nil {
		finish := []string{m.self.Name(), "gocell", "--root", m.store.Root, "__finish", m.id}
		exe, argv := m.self, []string{"gocell", ShimArg}
		if m.shim != nil {
			exe, argv = m.shim, []string{"gocell-shim"}
		}
		argv = append(append(argv, "--exe", strconv.Itoa(int(m.self.Fd()))), shim.Args(h, finish)...)
		fds := []int{fdReport, int(m.self.Fd()), int(h.Log.Fd())}
		for _, f := range []*os.File{h.Stdout, h.Stderr, h.Console} {
			if f != nil {
				fds = append(fds, int(f.Fd()))
			}
		}
		if err = shim.KeepOpen(fds...); err == nil {
			// Only returns if it failed. This is the thread that
			// created the container (runtime.LockOSThread in
			// RunMonitor): its mount namespace is the one to keep, and
			// the container's PR_SET_PDEATHSIG is tied to it.
			err = shim.Exec(exe, argv)
		}
	}
	fmt.Fprintf(os.Stderr, "gocell: monitor: could not hand %s over to the shim (%v); watching it here\n", m.id, err)
	return shim.Watch(h)
}

// RunFinish is `gocell __finish ID CODE`: the end of the monitor, run by
// the shim in the monitor's process once the container has ended, with
// the container's exit code. It cleans up, records the end and reports
// it, as the monitor would have.
func RunFinish(s *Store, id string, code int) {
	closeOnExec()
	report := os.NewFile(fdReport, "report")
	m := &monitor{store: s, id: id, report: report, rt: s.runtime()}
	if st, err := s.read(id); err == nil && st.Cgroup != nil {
		m.cg = cgroups.Load(st.Cgroup)
	}
	code = m.finish(code, nil)
	exitedReport(code).send(report)
	report.Close()
	s.RestartIfWanted(id)
	os.Exit(0)
}

// failed records a run that could not start, cleans up and reports it.
func (m *monitor) failed(code int, err error) int {
	rep := failedReport(code, err)
	rep.send(m.report)
	return m.finish(code, &rep)
}

// finish removes what the run made, records how it ended, and removes the
// container itself if it was started with --rm.
func (m *monitor) finish(code int, failed *report) int {
	oom := false
	if m.cg != nil {
		if stats, err := m.cg.Stats(); err == nil && stats.OOMKills > 0 {
			oom = true
		}
	}
	// The runtime kills what is left, removes the cgroup and its state.
	m.rt.Delete(m.id, true)
	m.unmountRoot()
	if m.cg != nil {
		m.cg.Kill()
		m.cg.Destroy()
	}
	cur, err := m.store.read(m.id)
	if nm, nerr := m.store.Networks(); nerr == nil {
		if err == nil && cur.Endpoint != nil {
			nm.Disconnect(cur.Endpoint)
		} else if err != nil {
			// The state is gone (rm -f took us for dead): the lease,
			// which names the container, is left to find the endpoint.
			nm.DisconnectContainer(m.id)
		}
	}
	if err == nil && cur.Spec.AutoRemove && m.store.removeFiles(m.id) == nil {
		// --rm: the record is gone, so recording the end first would
		// have been a wasted write and fsync. Had we died just before,
		// the container would show as stopped (see reconcile) and rm
		// would remove it. If the removal failed, the end is recorded
		// below as for any container.
		return code
	}
	_, err = m.store.Update(m.id, func(st *State) error {
		st.Endpoint = nil
		st.Status, st.Pid, st.PidStart = Stopped, 0, 0
		st.Monitor, st.MonitorStart = 0, 0
		st.ExitCode, st.OOMKilled = code, oom
		st.FinishedAt = time.Now().UTC()
		st.Cgroup = nil
		if failed != nil {
			st.Error = failed.msg
		}
		return nil
	})
	return code
}

// closeOnExec marks every file descriptor above stderr close-on-exec. Go
// opens its own files so, but not those it inherited: the files the CLI
// passed to the monitor, or whatever the user's shell left open.
func closeOnExec() { spawn.CloseOnExecFrom(3) }

// drain reads whatever is left of r.
func drain(r io.Reader) { io.Copy(io.Discard, r) }
