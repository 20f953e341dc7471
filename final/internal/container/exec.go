package container

// How `gocell exec` gets a process into a running container: through the
// runtime's exec (package oci, the code of `gocell-runtime exec`), which
// has nsenter(1) join the container's namespaces and a sealed copy of
// gocell set the process up inside; see lessons/10-oci.md for why a Go
// program without cgo needs that. The process starts from the
// container's own (its capabilities, no_new_privs, seccomp filter), with
// the command, environment, directory and user of the request.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/gocell/gocell/final/internal/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions is a process for `gocell exec`.
type ExecOptions struct {
	Args []string
	Env  []string
	Dir  string
	User string
	Tty  bool
	// Stdio are the process's stdin, stdout and stderr, without Tty.
	Stdio [3]*os.File
	// Console, with Tty, is the console socket that receives the
	// terminal (see final/terminal.go); Rows and Cols its first size.
	Console    *os.File
	Rows, Cols uint16
}

// Exec runs a process in the running container and returns its exit
// status.
func (s *Store) Exec(ref string, o ExecOptions) (int, error) {
	st, err := s.Get(ref)
	if err != nil {
		return 0, err
	}
	if st.Status != Running {
		return 0, fmt.Errorf("%w: %s is %s", ErrNotRunning, st.Name, st.Status)
	}
	rt := s.runtime()
	p, err := rt.SpecProcess(st.ID)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", st.Name, err)
	}
	p.Args, p.Env, p.Terminal, p.ConsoleSize = o.Args, mergeEnv(p.Env, o.Env), o.Tty, nil
	if o.Tty && o.Rows > 0 && o.Cols > 0 {
		p.ConsoleSize = &specs.Box{Height: uint(o.Rows), Width: uint(o.Cols)}
	}
	// As with docker exec: the container's directory and user unless
	// the request names others.
	if o.Dir != "" {
		p.Cwd = o.Dir
	}
	if o.User != "" {
		// Names are looked up in the container's /etc/passwd, through
		// its root as its process sees it.
		uid, gid, err := lookupUser(fmt.Sprintf("/proc/%d/root", st.Pid), o.User)
		if err != nil {
			return ExitCannotRun, &StartError{Code: ExitCannotRun, Msg: err.Error()}
		}
		p.User.UID, p.User.GID, p.User.AdditionalGids = uid, gid, nil
		if uid != 0 {
			p.Capabilities.Effective, p.Capabilities.Permitted = nil, nil
		}
	}
	opts := oci.ExecOptions{Process: p, Console: o.Console}
	wait := func() {}
	if !o.Tty {
		// Pipes, not the caller's own files: see proxyStdio.
		ends, copied, err := proxyStdio(o.Stdio)
		if err != nil {
			return 0, fmt.Errorf("exec in %s: %w", st.Name, err)
		}
		defer func() {
			for _, f := range ends {
				f.Close()
			}
		}()
		opts.Stdin, opts.Stdout, opts.Stderr = ends[0], ends[1], ends[2]
		wait = func() {
			// The process has its own copies now; ours would keep the
			// output pipes open after it ends.
			for _, f := range ends {
				f.Close()
			}
			copied()
		}
	}
	code, err := rt.Exec(st.ID, opts)
	wait()
	switch {
	case errors.Is(err, oci.ErrExecutableNotFound):
		return ExitNotFound, &StartError{Code: ExitNotFound,
			Msg: fmt.Sprintf("%v: %v", ErrCommandNotFound, err)}
	case err != nil:
		return ExitCannotRun, &StartError{Code: ExitCannotRun, Msg: err.Error()}
	}
	return code, nil
}

// proxyStdio makes three pipes in place of files, copies between them
// (the files' input into the first, the other two's output to the
// files), and returns the ends that go into the container, and a
// function that waits, a little, for the output to be copied.
//
// Why not hand over the files themselves: they are often the user's
// terminal. A process given a terminal's file descriptor keeps it after
// gocell exits, and can read what the user types next at the host's
// shell, or push input into it (TIOCSTI): a door out of the container
// (the class of CVE-2016-9962 and CVE-2017-5226). Through a pipe, the
// container only ever holds the pipe.
func proxyStdio(files [3]*os.File) ([3]*os.File, func(), error) {
	var ends [3]*os.File
	var done sync.WaitGroup
	for i, f := range files {
		r, w, err := os.Pipe()
		if err != nil {
			for _, e := range ends[:i] {
				e.Close()
			}
			return ends, nil, err
		}
		if i == 0 {
			ends[0] = r
			go func() {
				io.Copy(w, f) // ends with f, or when the process is gone
				w.Close()
			}()
			continue
		}
		ends[i] = w
		done.Add(1)
		go func() {
			defer done.Done()
			io.Copy(f, r) // ends when no process holds w any more
			r.Close()
		}()
	}
	wait := func() {
		// A background process of the command's may hold the pipe
		// for long: do not wait for it forever.
		finished := make(chan struct{})
		go func() { done.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(2 * time.Second):
		}
	}
	return ends, wait, nil
}
