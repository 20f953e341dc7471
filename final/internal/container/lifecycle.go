package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/oci"
	"golang.org/x/sys/unix"
)

// Attach is the CLI's stdio, for a container run in the foreground.
type Attach struct {
	Stdin, Stdout, Stderr *os.File
	// Rows and Cols, with -t, are the size of the user's terminal: the
	// container's starts with it.
	Rows, Cols uint16
}

// StartError is a container that could not start, with the exit code the
// CLI should use: 125 when gocell failed, 126 or 127 for the command.
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

func (e *StartError) Unwrap() error {
	if e.Code == ExitNotFound {
		return ErrCommandNotFound
	}
	return ErrCannotStart
}

// Started is a started container, for the CLI to wait on when attached.
type Started struct {
	State      *State
	monitor    *exec.Cmd
	report     *bufio.Reader
	reportFile *os.File
}

// Start starts a created or stopped container: it spawns its monitor and
// returns once the command runs (or could not start). With attach, the
// container's stdio is the CLI's and the caller must call Wait.
func (s *Store) Start(ref string, attach *Attach) (*Started, error) {
	return s.start(ref, attach, false)
}

// start is Start; byPolicy is a restart of the restart policy, which
// keeps the count of restarts and a stop the user asked for.
func (s *Store) start(ref string, attach *Attach, byPolicy bool) (*Started, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	if st.Status == Running || st.Status == Paused || st.Monitor != 0 {
		return nil, fmt.Errorf("%w: %s", ErrRunning, st.Name)
	}
	if byPolicy && st.StopRequested {
		return nil, fmt.Errorf("%s was stopped: its restart policy does not undo that", st.Name)
	}
	if !byPolicy && (st.StopRequested || st.RestartCount != 0) {
		if _, err := s.Update(st.ID, func(st *State) error {
			st.StopRequested, st.RestartCount = false, 0
			return nil
		}); err != nil {
			return nil, err
		}
	}
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// Closed here, unless an attached caller reads the exit code in Wait.
	keepReport := false
	defer func() {
		if !keepReport {
			reportR.Close()
		}
	}()
	args := []string{"--root", s.Root, "__monitor"}
	if byPolicy {
		args = append(args, "--restarted")
	}
	if attach != nil {
		args = append(args, "--attached")
		if attach.Rows > 0 && attach.Cols > 0 {
			args = append(args, "--console-size", fmt.Sprintf("%dx%d", attach.Rows, attach.Cols))
		}
	}
	exe, err := s.exeCopy()
	var shimExe string
	if err == nil && attach == nil {
		// Only a detached monitor hands over to the shim: attached, it
		// relays the CLI's files until the end.
		shimExe, err = s.shimCopy()
	}
	if err != nil {
		reportW.Close()
		if st.Spec.AutoRemove {
			// --rm: no monitor ran, so none removes it.
			s.removeIfIdle(st.ID)
		}
		return nil, err
	}
	exes := []string{exe}
	if shimExe != "" {
		args = append(args, "--shim", shimExe)
		exes = append(exes, shimExe)
	}
	cmd := exec.Command(exe, append(args, st.ID)...)
	// What ps shows: "gocell --root … __monitor ID" rather than /proc/self/exe.
	cmd.Args[0] = "gocell"
	cmd.ExtraFiles = []*os.File{reportW}
	if attach != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, attach.Stdin, attach.Stdout, attach.Stderr)
	}
	// Its own session: the monitor stays when the CLI's terminal goes, and
	// Ctrl-C on it does not reach the monitor. setsid(2)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf, err := os.OpenFile(filepath.Join(s.Dir(st.ID), "monitor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		reportW.Close()
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startReadOnly(cmd, exes...); err != nil {
		reportW.Close()
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	reportW.Close()
	report := bufio.NewReader(reportR)
	line, _ := report.ReadString('\n')
	first := parseReport(line)
	started := &Started{monitor: cmd, report: report, reportFile: reportR}
	if first.kind != kindStarted {
		if attach == nil {
			go cmd.Wait()
		} else {
			cmd.Wait()
		}
		if first.msg == "" {
			first.msg = "the monitor died before the container started"
		}
		return nil, &StartError{Code: first.code, Msg: first.msg}
	}
	if attach == nil {
		// Detached: the monitor goes on alone; reap it if we live long.
		go cmd.Wait()
	} else {
		keepReport = true
	}
	started.State, err = s.Get(st.ID)
	if err != nil {
		// Already finished and removed (--rm).
		started.State = st
	}
	return started, nil
}

// Wait waits for an attached container to end and returns its exit code.
func (r *Started) Wait() int {
	code := ExitRuntime
	for {
		line, err := r.report.ReadString('\n')
		if rep := parseReport(line); rep.kind == kindExited {
			code = rep.code
			break
		}
		if err != nil {
			break
		}
	}
	r.reportFile.Close()
	r.monitor.Wait()
	return code
}

// Stop asks the container to stop with SIGTERM, and kills it with
// SIGKILL after timeout. The monitor records the exit and cleans up.
func (s *Store) Stop(ref string, timeout time.Duration) (*State, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	// Asked before the signal, and even between two runs of a restart
	// policy: the policy must not undo it.
	if _, err := s.Update(st.ID, func(st *State) error { st.StopRequested = true; return nil }); err != nil {
		return nil, err
	}
	if st.Status != Running && st.Status != Paused && st.Spec.Restart.Name != "" {
		// A restart of its policy that registered its monitor before
		// the flag was set goes on: wait for it to run, then stop it.
		// One that had not registered gives up (register). A monitor
		// that dies meanwhile is seen as gone by Get (reconcile).
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			cur, err := s.Get(st.ID)
			if err != nil || cur.Monitor == 0 || cur.Status == Running || cur.Status == Paused {
				if err == nil {
					st = cur
				}
				break
			}
		}
	}
	if st.Status != Running && st.Status != Paused {
		return s.Get(st.ID)
	}
	if timeout < 0 {
		timeout = 10 * time.Second
		if st.Spec.StopTimeout != nil {
			timeout = time.Duration(*st.Spec.StopTimeout) * time.Second
		}
	}
	sig := unix.SIGTERM
	if st.Spec.StopSignal != "" {
		if sig, err = oci.ParseSignal(st.Spec.StopSignal); err != nil {
			return nil, fmt.Errorf("stop %s: --stop-signal: %w", st.Name, err)
		}
	}
	if st.Status == Paused {
		// A frozen process cannot act on SIGTERM.
		if err := cgroups.Load(st.Cgroup).Thaw(); err != nil {
			return nil, fmt.Errorf("stop %s: %w", st.Name, err)
		}
		s.Update(st.ID, func(st *State) error { st.Status = Running; return nil })
	}
	// SIGTERM (or --stop-signal) to the command, pid 1 of its
	// namespace: the kernel delivers it only if the command handles it
	// (pid_namespaces(7)), as with Docker; a shell that does not trap
	// it waits for SIGKILL.
	signalInit(st, sig)
	if s.waitStopped(st, timeout) {
		return s.Get(st.ID)
	}
	// Killing pid 1 kills everything in its PID namespace.
	signalInit(st, unix.SIGKILL)
	s.waitStopped(st, 10*time.Second)
	return s.Get(st.ID)
}

// signalInit sends sig to the container's process, pid 1 inside, if the
// process the state names is still it: a pid can be reused, a pid and
// its start time cannot.
func signalInit(st *State, sig unix.Signal) error {
	if st.Pid <= 0 {
		return unix.ESRCH
	}
	// A pidfd names one process for good: opened first, then checked,
	// the signal cannot reach another process that got the pid since.
	// pidfd_open(2), pidfd_send_signal(2)
	fd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if !alive(st.Pid, st.PidStart) {
		return unix.ESRCH
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// waitGroupGone waits until no process is left in process group pgid:
// kill(2) with signal 0 and -pgid fails with ESRCH then.
func waitGroupGone(pgid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && unix.Kill(-pgid, 0) != unix.ESRCH {
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStopped waits until the container's monitor has finished, and says
// whether it did within d.
func (s *Store) waitStopped(st *State, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(st.Monitor, st.MonitorStart) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !alive(st.Monitor, st.MonitorStart)
}

// Kill sends a signal to the container's command, pid 1 inside; with
// SIGKILL, everything in its PID namespace goes with it.
func (s *Store) Kill(ref string, sig unix.Signal) (*State, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	if st.Status != Running && st.Status != Paused {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotRunning, st.Name, st.Status)
	}
	if sig == unix.SIGKILL || sig == unix.SIGTERM || sig == unix.SIGINT {
		// A kill the user asked for is not undone by the restart policy.
		if _, err := s.Update(st.ID, func(st *State) error { st.StopRequested = true; return nil }); err != nil {
			return nil, err
		}
	}
	if err := signalInit(st, sig); err != nil {
		return nil, fmt.Errorf("kill %s: %w", st.Name, err)
	}
	if sig == unix.SIGKILL {
		if st.Status == Paused {
			cgroups.Load(st.Cgroup).Thaw()
		}
		s.waitStopped(st, 10*time.Second)
	}
	return s.Get(st.ID)
}

// Pause freezes every process of the container: the freezer cgroup on
// v1, cgroup.freeze on v2.
func (s *Store) Pause(ref string) (*State, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	if st.Status != Running {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotRunning, st.Name, st.Status)
	}
	if err := cgroups.Load(st.Cgroup).Freeze(); err != nil {
		return nil, fmt.Errorf("pause %s: %w", st.Name, err)
	}
	return s.Update(st.ID, func(st *State) error { st.Status = Paused; return nil })
}

// UpdateResources changes a container's limits: change gets the current
// ones and sets the new. A running or paused container's cgroup takes
// them at once, through the runtime's update; any container keeps them
// for its next start. If the new limits are refused, nothing changes.
func (s *Store) UpdateResources(ref string, change func(*Resources) error) (*State, error) {
	got, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	return s.Update(got.ID, func(st *State) error {
		res := st.Spec.Resources
		if err := change(&res); err != nil {
			return err
		}
		if err := CheckResources(res); err != nil {
			return fmt.Errorf("update %s: %w", st.Name, err)
		}
		live := st.Status == Running || st.Status == Paused
		old := st.Spec.Resources
		pinned := old.CPUSetCPUs != "" || old.CPUSetMems != ""
		if live && !pinned && (res.CPUSetCPUs != "" || res.CPUSetMems != "") {
			// Its cgroup was made without the cpuset controller, which
			// a process cannot be moved into while it runs, on v1.
			return fmt.Errorf("update %s: it was started without --cpuset-cpus or --cpuset-mems, "+
				"so its cgroup has no cpuset: stop it, update it, and start it again", st.Name)
		}
		if live {
			if err := s.runtime().Update(st.ID, resources(res, true)); err != nil {
				return fmt.Errorf("update %s: %w", st.Name, err)
			}
		}
		st.Spec.Resources = res
		return nil
	})
}

// Frozen runs fn with the container's writable layer standing still: a
// running container is frozen (cgroup freezer) for as long as fn runs,
// as docker commit pauses it, and thawed after. A paused or stopped one
// is left as it is. fn gets the container's state and its upper
// directory.
func (s *Store) Frozen(ref string, fn func(st *State, upper string) error) error {
	st, err := s.Get(ref)
	if err != nil {
		return err
	}
	if st.Status == Running {
		cg := cgroups.Load(st.Cgroup)
		if err := cg.Freeze(); err != nil {
			return fmt.Errorf("freeze %s: %w", st.Name, err)
		}
		defer cg.Thaw()
	}
	return fn(st, filepath.Join(s.Dir(st.ID), "upper"))
}

// Unpause thaws a paused container.
func (s *Store) Unpause(ref string) (*State, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	if st.Status != Paused {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotPaused, st.Name, st.Status)
	}
	if err := cgroups.Load(st.Cgroup).Thaw(); err != nil {
		return nil, fmt.Errorf("unpause %s: %w", st.Name, err)
	}
	return s.Update(st.ID, func(st *State) error { st.Status = Running; return nil })
}

// Remove deletes a container and its writable layer. A running one is
// refused unless force, which kills it first.
func (s *Store) Remove(ref string, force bool) (*State, error) {
	got, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	// From here on, the state as read under the lock: a start may have
	// recorded its monitor since Get.
	st, removed, err := s.removeIfIdle(got.ID)
	if removed || err != nil {
		return got, err
	}
	if !force {
		return nil, fmt.Errorf("%w: %s; stop it first, or use rm -f", ErrRunning, st.Name)
	}
	// Before the kill: its restart policy must not start it again while
	// we remove it (a monitor started then would make a cgroup that
	// nobody removes).
	if _, err := s.Update(st.ID, func(st *State) error { st.StopRequested = true; return nil }); err != nil {
		return nil, err
	}
	if st.Status == Paused {
		cgroups.Load(st.Cgroup).Thaw()
	}
	switch {
	case signalInit(st, unix.SIGKILL) == nil:
		// Killing pid 1 ends the run; its monitor cleans up.
	case alive(st.Monitor, st.MonitorStart):
		// A monitor still setting up, with no process recorded yet
		// (say its CLI was killed right after starting it): stop it, or
		// it would go on and start the container after we removed it.
		// It leads a process group of its own (setsid), which the
		// container's process, if it has one by now, belongs to: kill
		// them all at once, and wait until the group is gone, so that
		// no process still setting up writes into the directory we
		// remove. reconcile, below, removes what they made. kill(2)
		// with -PGID
		unix.Kill(-st.Monitor, unix.SIGKILL)
		waitGroupGone(st.Monitor, 10*time.Second)
	}
	if !s.waitStopped(st, 10*time.Second) {
		return nil, fmt.Errorf("rm -f %s: its monitor (pid %d) did not end within 10 s; "+
			"nothing was removed", st.Name, st.Monitor)
	}
	if st, err = s.Get(st.ID); err != nil {
		return nil, err
	}
	return st, s.removeFiles(st.ID)
}

// removeIfIdle removes a container that no monitor looks after, and says
// whether it did; it returns the state it read. It decides and removes
// under the container's lock: a monitor that starts meanwhile records
// itself under the same lock, so either we see it, or it finds the state
// gone and gives up.
func (s *Store) removeIfIdle(id string) (*State, bool, error) {
	unlock, err := lockFile(filepath.Join(s.Dir(id), "lock"))
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	st, err := s.read(id)
	if err != nil {
		return nil, false, err
	}
	if st.Status == Running || st.Status == Paused || st.Monitor != 0 {
		return st, false, nil
	}
	return st, true, s.removeFiles(id)
}

// removeFiles deletes the container's directory. It renames it out of
// the way first, which is atomic (rename(2)): from then on no gocell
// process finds the container, nor makes a new lock file in it while we
// empty it (as a monitor giving up could, in the old place). A .rm-*
// left by a killed rm goes with the next Create or system prune.
func (s *Store) removeFiles(id string) error {
	gone := filepath.Join(s.Root, "containers", ".rm-"+id)
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove container %s: %w", id[:12], err)
	}
	if err := os.Rename(s.Dir(id), gone); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove container %s: %w", id[:12], err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove container %s: %w", id[:12], err)
	}
	return nil
}

// reconcile brings a state up to date with the processes. A container
// whose monitor died (killed with SIGKILL, say) died with it, since the
// kernel kills the container's process when the monitor that made it
// goes (PR_SET_PDEATHSIG, which the runtime sets); it is stopped, and
// what its run made is removed here.
func (s *Store) reconcile(st *State) (*State, error) {
	if st.Monitor == 0 || alive(st.Monitor, st.MonitorStart) {
		return st, nil
	}
	return s.Update(st.ID, func(st *State) error {
		if st.Monitor == 0 || alive(st.Monitor, st.MonitorStart) {
			return nil // someone else did it meanwhile
		}
		signalInit(st, unix.SIGKILL)
		// The runtime's record and cgroup; then ours, in case the
		// monitor died before the runtime had one.
		s.runtime().Delete(st.ID, true)
		if st.Cgroup != nil {
			cg := cgroups.Load(st.Cgroup)
			cg.Kill()
			if err := cg.Destroy(); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("clean up %s: %w", st.Name, err)
			}
		}
		if nm, err := s.Networks(); err == nil {
			if st.Endpoint != nil {
				nm.Disconnect(st.Endpoint)
			}
			// Killed between its lease and its record of the endpoint,
			// the monitor left only the lease to know it by.
			nm.DisconnectContainer(st.ID)
		}
		st.Endpoint = nil
		if st.Status == Running || st.Status == Paused {
			st.Status, st.ExitCode = Stopped, 137
			st.FinishedAt = time.Now().UTC()
		}
		st.Error = "the monitor died; the container was killed with it"
		st.Monitor, st.MonitorStart, st.Pid, st.PidStart, st.Cgroup = 0, 0, 0, 0, nil
		return nil
	})
}

// Wait waits until the container has stopped and its exit is recorded,
// and returns its state; one that does not run returns at once. A
// container removed when it stopped (--rm) takes its exit code with it.
func (s *Store) Wait(ctx context.Context, ref string) (*State, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	for st.Status == Running || st.Status == Paused {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		cur, err := s.Get(st.ID)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%s was removed when it stopped (--rm), and its exit code with it", st.Name)
		}
		if err != nil {
			return nil, err
		}
		st = cur
	}
	return st, nil
}

// Restart stops a running container, as Stop does, and starts it again;
// a stopped one just starts.
func (s *Store) Restart(ref string, timeout time.Duration) (*State, error) {
	got, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	if got.Spec.AutoRemove {
		return nil, fmt.Errorf("%s was made with --rm: stopping removes it, and leaves nothing to start", got.Name)
	}
	st, err := s.Stop(got.ID, timeout)
	if err != nil {
		return nil, err
	}
	started, err := s.Start(st.ID, nil)
	if err != nil {
		return nil, err
	}
	return started.State, nil
}

// RestartIfWanted starts the container again if its restart policy says
// so, after its command ended with code: always and unless-stopped
// every time, on-failure when code is not 0 and the restarts are not
// used up. Never after a stop or kill the user asked for, nor after a
// start that failed. Like Docker, it waits longer each time (100 ms,
// doubling, up to 6.4 s), so that a command that fails at once does not
// spin. The monitor (or the shim's __finish) calls it once it has
// recorded the end.
func (s *Store) RestartIfWanted(id string) {
	st, err := s.read(id)
	if err != nil || st.StopRequested || st.Error != "" || st.Status != Stopped {
		return
	}
	p := st.Spec.Restart
	switch {
	case p.Name == "always" || p.Name == "unless-stopped":
	case p.Name == "on-failure" && st.ExitCode != 0 && (p.MaxRetries == 0 || st.RestartCount < p.MaxRetries):
	default:
		return
	}
	time.Sleep(100 * time.Millisecond << min(st.RestartCount, 6))
	if _, err := s.Update(id, func(st *State) error { st.RestartCount++; return nil }); err != nil {
		return
	}
	s.start(id, nil, true)
}
