package container

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/network"
	"github.com/gocell/gocell/final/internal/persist"
	"github.com/gocell/gocell/final/internal/spawn"
	"golang.org/x/sys/unix"
)

// The file descriptors the CLI gives the monitor: the pipe on which the
// monitor reports (report.go: "ok PID", "error CODE MESSAGE", "exit CODE"), then,
// when the CLI stays attached, its stdin, stdout and stderr.
const (
	fdReport = 3
	fdStdin  = 4
	fdStdout = 5
	fdStderr = 6
)

// cloneFlags are the namespaces of a container's init: those of steps 01
// to 05. (The init stays in the host's user namespace; with --userns, the
// processes it starts get one, see startProcess.) With --network host or
// container:NAME, the init keeps the network namespace of the thread that
// clones it.
func cloneFlags(net string) uintptr {
	flags := uintptr(unix.CLONE_NEWUTS | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC)
	if net != "host" && !strings.HasPrefix(net, "container:") {
		flags |= unix.CLONE_NEWNET
	}
	return flags
}

// joinNetworkOf moves the calling thread, which is locked and will clone
// the init, into the network namespace of another running container, for
// --network container:NAME. The init inherits it. setns(2) of a network
// namespace is allowed for one thread of a multithreaded process.
func (m *monitor) joinNetworkOf(ref string) (*State, error) {
	other, err := m.store.Get(ref)
	if err != nil {
		return nil, err
	}
	if other.Status != Running {
		return nil, fmt.Errorf("network container:%s: %w", ref, ErrNotRunning)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", other.Pid))
	if err != nil {
		return nil, fmt.Errorf("network container:%s: %w", ref, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("network container:%s: setns: %w", ref, err)
	}
	return other, nil
}

// connect puts the container on its network and writes the files the
// init mounts at /etc/hosts, /etc/hostname and /etc/resolv.conf.
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
	dir := filepath.Join(m.store.Dir(m.id), "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return network.WriteEtcFiles(dir, ep, spec.Hostname, hosts, "")
}

// RunMonitor looks after one run of a container, from the host: cgroup,
// init, output, exit status, clean-up. It is started by Start as
// `gocell __monitor ID` in a session of its own, so it outlives the CLI.
func RunMonitor(s *Store, id string, attached bool) {
	// Pdeathsig below is tied to the thread that starts the init.
	runtime.LockOSThread()
	closeOnExec()
	report := os.NewFile(fdReport, "report")
	m := &monitor{store: s, id: id, report: report}
	code := m.run(attached)
	exitedReport(code).send(report)
	report.Close()
	os.Exit(0)
}

type monitor struct {
	store  *Store
	id     string
	report *os.File
	cg     cgroups.Manager
}

// run returns the container's exit status, after cleaning up.
func (m *monitor) run(attached bool) int {
	self, _ := persist.StartTime(os.Getpid())
	cg, err := cgroups.New(m.id, cgroups.Options{Parent: "gocell"})
	if err != nil {
		return m.failed(ExitRuntime, fmt.Errorf("cgroup: %w", err))
	}
	// Who we are, and the cgroup's paths before the cgroup itself: if we
	// are killed at any point after this, ps and rm find and remove
	// whatever of it exists (see reconcile).
	st, err := m.store.Update(m.id, func(st *State) error {
		st.Monitor, st.MonitorStart = os.Getpid(), self
		st.Cgroup = cg.Paths()
		st.Error = ""
		return nil
	})
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	spec := st.Spec
	m.cg = cg
	if err := m.cg.Create(cgroups.Resources{MemoryBytes: spec.Resources.MemoryBytes,
		PidsMax: spec.Resources.PidsMax, CPUs: spec.Resources.CPUs}); err != nil {
		return m.failed(ExitRuntime, fmt.Errorf("cgroup: %w", err))
	}

	// The init's stdin, stdout and stderr.
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	stdio := []*os.File{devnull, nil, nil}
	var tee [3]*os.File
	if attached {
		for i, fd := range []int{fdStdin, fdStdout, fdStderr} {
			tee[i] = os.NewFile(uintptr(fd), "attached")
		}
		switch {
		case spec.Tty:
			// The CLI's pseudo-terminal, which it made for the
			// container (see final/terminal.go).
			stdio[0] = tee[0]
		case spec.Interactive:
			// The CLI's own stdin, often the user's terminal, goes
			// through a pipe: a process in the container must never
			// hold the host's terminal (see proxyStdio in exec.go).
			r, w, err := os.Pipe()
			if err != nil {
				return m.failed(ExitRuntime, err)
			}
			defer r.Close()
			stdio[0] = r
			go func() {
				io.Copy(w, tee[0])
				w.Close()
			}()
		}
	}
	var outputs sync.WaitGroup
	var logw *logWriter
	if !attached || !spec.Tty {
		if logw, err = openLog(m.store.Dir(m.id)); err != nil {
			return m.failed(ExitRuntime, err)
		}
		defer logw.Close()
	}
	switch {
	case attached && spec.Tty:
		// The CLI's terminal (a pseudo-terminal it made) goes straight
		// to the container: its output is not logged.
		stdio[1], stdio[2] = tee[1], tee[2]
	case spec.Tty:
		// -t in the background (run -dit, or start without -a): a
		// pseudo-terminal of our own. The container gets the slave end
		// as its stdin, stdout and stderr, so a shell in it waits for
		// input that never comes instead of ending, as with Docker;
		// what it writes to the master end is logged. pty(7)
		master, slave, err := pty.Open()
		if err != nil {
			return m.failed(ExitRuntime, fmt.Errorf("pseudo-terminal: %w", err))
		}
		pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 80})
		stdio[0], stdio[1], stdio[2] = slave, slave, slave
		// Our copy goes once the init has its own (below, with the
		// output pipes), or here if it never starts: reading the master
		// ends (EIO) when no process holds the slave any more.
		defer slave.Close()
		outputs.Add(1)
		go func() {
			defer outputs.Done()
			logw.copy(master, "stdout", nil)
			master.Close()
		}()
	default:
		for i, stream := range []string{"stdout", "stderr"} {
			r, w, err := os.Pipe()
			if err != nil {
				return m.failed(ExitRuntime, err)
			}
			stdio[i+1] = w
			defer w.Close()
			outputs.Add(1)
			go func(r *os.File, stream string, copyTo *os.File) {
				defer outputs.Done()
				logw.copy(r, stream, copyTo)
				r.Close()
			}(r, stream, tee[i+1])
		}
	}

	hostR, hostW, err := os.Pipe()
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	initR, initW, err := os.Pipe()
	if err != nil {
		return m.failed(ExitRuntime, err)
	}
	cmd := exec.Command("/proc/self/exe", "--root", m.store.Root, "__init", m.id)
	cmd.Args[0] = "gocell"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	cmd.ExtraFiles = []*os.File{hostR, initW}
	var spawnerEnd *os.File
	if spec.UserNS {
		// The socket pair between the init and the spawner (userns.go).
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return m.failed(ExitRuntime, fmt.Errorf("--userns: socketpair: %w", err))
		}
		initEnd := os.NewFile(uintptr(fds[0]), "init-spawner")
		spawnerEnd = os.NewFile(uintptr(fds[1]), "spawner-init")
		defer initEnd.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, initEnd) // fdUserns
	}
	attr := &syscall.SysProcAttr{Cloneflags: cloneFlags(spec.Network), Pdeathsig: syscall.SIGKILL}
	if fd, ok := m.cg.CgroupFD(); ok {
		// cgroup v2: born in its cgroup (clone3 with CLONE_INTO_CGROUP).
		attr.UseCgroupFD, attr.CgroupFD = true, fd
	}
	cmd.SysProcAttr = attr
	var shared *State
	if other, ok := strings.CutPrefix(spec.Network, "container:"); ok {
		if shared, err = m.joinNetworkOf(other); err != nil {
			return m.failed(ExitRuntime, err)
		}
	}
	if err := cmd.Start(); err != nil {
		return m.failed(ExitRuntime, fmt.Errorf("start init: %w", err))
	}
	hostR.Close()
	initW.Close()
	// Our copies of the output pipes' write ends must go, or the copies
	// never see end-of-file.
	for _, f := range stdio[1:] {
		if f != tee[1] && f != tee[2] {
			f.Close()
		}
	}
	pid := cmd.Process.Pid
	start, _ := persist.StartTime(pid)
	err = m.cg.Apply(pid)
	if err == nil && spec.UserNS {
		var sp *exec.Cmd
		if sp, err = m.startSpawner(pid, spawnerEnd); err == nil {
			go sp.Wait()
		}
		// Only the spawner holds its end now: when it dies, the init
		// reads end of file (see spawnerClient.read).
		spawnerEnd.Close()
	}
	if err == nil {
		err = m.connect(st, pid, shared)
	}
	if err == nil {
		_, err = m.store.Update(m.id, func(st *State) error {
			st.Status, st.Pid, st.PidStart = Running, pid, start
			st.StartedAt, st.FinishedAt, st.ExitCode, st.OOMKilled = time.Now().UTC(), time.Time{}, 0, false
			return nil
		})
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return m.failed(ExitRuntime, err)
	}
	hostW.Write([]byte("ok"))
	hostW.Close()

	// The init reports whether the command started.
	line, _ := bufio.NewReader(initR).ReadString('\n')
	initR.Close()
	var failed *report
	if first := parseReport(line); first.kind == kindStarted {
		startedReport(pid).send(m.report)
	} else {
		if first.msg == "" {
			first.msg = "the container's init died while setting up"
		}
		first.send(m.report)
		failed = &first
	}

	waitErr := cmd.Wait()
	code := exitCodeOf(cmd.ProcessState, waitErr)
	// The output pipes close once every process of the container is gone;
	// they all went with its init, but be sure not to hang on a straggler.
	done := make(chan struct{})
	go func() { outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return m.finish(code, failed)
}

// exitCodeOf is the init's exit code, or 128+N when signal N killed it.
func exitCodeOf(state *os.ProcessState, err error) int {
	if state == nil {
		return 125
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
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
		m.cg.Kill()
		m.cg.Destroy()
	}
	dir := m.store.Dir(m.id)
	os.Remove(filepath.Join(dir, "init.sock"))
	cur, err := m.store.read(m.id)
	if err == nil && cur.Endpoint != nil {
		if nm, err := m.store.Networks(); err == nil {
			nm.Disconnect(cur.Endpoint)
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
