// Package spawn starts the processes of a container, its command and
// every `gocell exec` alike, so that each has only what it may have: the
// container's capabilities and nothing inheritable, its own session
// keyring, no_new_privs if asked, and the seccomp filter.
//
// In C this would be code between fork(2) and execve(2). Go cannot run
// code of ours there: os.StartProcess forks and execs in one go, and
// offers only what SysProcAttr lists (ids, namespaces, a terminal), not a
// seccomp filter or the capability sets. But a child gets much of its
// state from the one thread that forked it, not from its process:
// capabilities, the bounding set, no_new_privs, the session keyring, the
// cgroup namespace and the seccomp filter all belong to a thread
// (capabilities(7), seccomp(2), keyrings(7)). So a Spawner is one OS
// thread, locked and never given back, that first takes on what every
// container process must have, and then only forks:
//
//  1. a cgroup namespace, rooted at the container's cgroup
//     (unshare(2) CLONE_NEWCGROUP): inside, /proc/self/cgroup shows "/";
//  2. the container's session keyring, joined by name: the kernel's
//     keyrings are not namespaced, and a process would otherwise share
//     the session keyring of whoever started gocell;
//  3. the bounding set cut to the container's capabilities
//     (PR_CAPBSET_DROP), the inheritable set emptied (capset(2)) and the
//     ambient set cleared (PR_CAP_AMBIENT_CLEAR_ALL);
//  4. no_new_privs, if asked (PR_SET_NO_NEW_PRIVS);
//  5. the seccomp filter, last: from here on, the thread itself lives
//     under it, and so does every child it forks, before and after its
//     execve(2).
//
// Why the inheritable set matters: when root execs a program, the
// kernel gives it P' = (P(inh) & F(inh)) | (F(perm) & bounding), and for
// root every file bit counts as set. So a capability left inheritable by
// whoever ran gocell would reach the container past its bounding set
// (CVE-2022-24769). Emptied, the command gets exactly the bounding set
// as its permitted and effective sets, and nothing inheritable or
// ambient; a command run as another user gets no capabilities at all.
//
// What Go's child does between fork and exec (setsid, the terminal,
// setgroups, setgid, setuid, dup3, execve) it does under the filter, and
// Docker's profile allows all of it. The clone itself is made by this
// thread: the profile allows clone(2) without namespace flags, so a
// child cannot be given a new namespace here (see the container
// package's --userns for how it gets one).
package spawn

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/gocell/gocell/final/internal/seccomp"
	"golang.org/x/sys/unix"
)

// Config is what every process of a container starts with.
type Config struct {
	// Bounding is the bounding set, a capability mask (see Mask).
	Bounding uint64
	// NoNewPrivs sets no_new_privs: set-user-ID programs and file
	// capabilities then give nothing. prctl(2) PR_SET_NO_NEW_PRIVS
	NoNewPrivs bool
	// Seccomp is the compiled filter; nil for none (unconfined).
	Seccomp *seccomp.Program
	// Keyring names the session keyring to join, made if missing.
	Keyring string
	// CgroupNS gives the processes a cgroup namespace of their own,
	// rooted at the cgroup the caller is in.
	CgroupNS bool
}

// Spawner starts processes from its prepared thread.
type Spawner struct {
	requests chan request
}

type request struct {
	path  string
	args  []string
	attr  *os.ProcAttr
	reply chan reply
}

type reply struct {
	p   *os.Process
	err error
}

// New starts a Spawner's thread and prepares it as c says. The caller
// must be root of its user namespace with every capability, as a
// container's init is.
func New(c Config) (*Spawner, error) {
	sp := &Spawner{requests: make(chan request)}
	ready := make(chan error)
	go sp.run(c, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return sp, nil
}

// run prepares the thread it runs on, reports on ready, then starts
// processes.
func (sp *Spawner) run(c Config, ready chan error) {
	err := OnThread(func() error {
		if err := prepare(c); err != nil {
			return err
		}
		close(ready)
		sp.serve()
		return nil
	})
	if err != nil {
		ready <- err
	}
}

// OnThread runs fn on an OS thread of its own, locked to it, and returns
// fn's error. The thread is never the process's main thread, whose state
// /proc/PID/ns and /proc/PID/status show as the whole process's and
// which Go never ends; and it ends with fn: fn may change the thread
// (its namespaces, credentials, capabilities, filter) for good.
func OnThread(fn func() error) error {
	done := make(chan error)
	go func() {
		// Never unlocked: when this goroutine ends, Go ends its thread.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: hold it while another goroutine takes
			// another thread, then give it back unchanged.
			other := make(chan error)
			go func() {
				runtime.LockOSThread()
				other <- fn()
			}()
			err := <-other
			runtime.UnlockOSThread()
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// serve starts what is asked for, on the prepared thread.
func (sp *Spawner) serve() {
	for req := range sp.requests {
		p, err := os.StartProcess(req.path, req.args, req.attr)
		req.reply <- reply{p, err}
	}
}

// Start starts a process from the spawner's thread: os.StartProcess, with
// the thread's state passed on.
func (sp *Spawner) Start(path string, args []string, attr *os.ProcAttr) (*os.Process, error) {
	r := make(chan reply)
	sp.requests <- request{path, args, attr, r}
	rep := <-r
	return rep.p, rep.err
}

// prepare is steps 1 to 5 of the package comment, on the calling thread.
// Every call here acts on this thread only.
func prepare(c Config) error {
	if c.CgroupNS {
		// Equivalent to: unshare --cgroup
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("cgroup namespace: %w", err)
		}
	}
	if c.Keyring != "" {
		// Equivalent to: keyctl session NAME
		_, err := unix.KeyctlJoinSessionKeyring(c.Keyring)
		if err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("session keyring: %w", err)
		}
	}
	if err := DropBounding(c.Bounding); err != nil {
		return err
	}
	if err := clearInheritable(); err != nil {
		return err
	}
	// EINVAL: a kernel without ambient capabilities (before 4.3).
	err := prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL)
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	if c.NoNewPrivs {
		if err := prctl(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if c.Seccomp != nil {
		if err := seccomp.Install(c.Seccomp); err != nil {
			return err
		}
	}
	return nil
}

// clearInheritable empties this thread's inheritable set and keeps its
// permitted and effective ones: the children need CAP_SETUID and the
// like until their execve(2), which recomputes them. capset(2), version
// 3: two 32-bit words per set.
func clearInheritable() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// prctl is prctl(2) on this thread.
func prctl(option int, arg uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PRCTL, uintptr(option), arg, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
