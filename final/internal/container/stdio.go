package container

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/gocell/gocell/final/internal/logfile"
	"github.com/gocell/gocell/final/internal/oci"
	"github.com/gocell/gocell/final/internal/shim"
	"golang.org/x/sys/unix"
)

// stdio is what a run of a container reads and writes: the files its
// process gets from the runtime, and the copies that log its output.
//
//   - Attached with -t: the CLI's console socket (see final/terminal.go).
//     The container's terminal, from its own devpts, goes straight to the
//     CLI, which relays it to the user's; it is not logged.
//   - -t in the background (run -dit, or start without -a): a console
//     socket of our own. The container's shell waits on its terminal for
//     input that never comes, instead of ending, as with Docker; what it
//     writes to the terminal is logged.
//   - Otherwise: pipes. Their output is logged, and, attached, copied to
//     the CLI's stdout and stderr; with -i the CLI's stdin goes in
//     through a pipe too: a process in the container must never hold the
//     host's terminal (see proxyStdio in exec.go).
//
// Attached, the monitor copies the output itself. In the background, it
// copies nothing: the read ends wait in watch until the shim takes them
// (handOver, package shim); until then the output waits in the pipes.
type stdio struct {
	stdin, stdout, stderr *os.File
	console               *os.File
	// child are our copies of what the container's process got: closed
	// once it has its own, or the copies never see end-of-file.
	child   []*os.File
	outputs sync.WaitGroup
	closers []func() error
	// log is the container's log; watch, in the background, what the
	// shim will read, and consoleSocket where the terminal's master
	// comes (receiveConsole).
	log           *logfile.Writer
	watch         shim.Handover
	consoleSocket *os.File
}

// The file descriptors the CLI gives the monitor, when it stays
// attached: its stdin, stdout and stderr, or with -t its console socket
// at fdStdin.
const (
	fdStdin  = 4
	fdStdout = 5
	fdStderr = 6
)

func (m *monitor) openStdio(spec Spec, attached bool) (*stdio, error) {
	out := &stdio{}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	out.closers = append(out.closers, devnull.Close)
	out.stdin, out.stdout, out.stderr = devnull, devnull, devnull
	var tee [3]*os.File
	if attached {
		for i, fd := range []int{fdStdin, fdStdout, fdStderr} {
			tee[i] = os.NewFile(uintptr(fd), "attached")
		}
	}
	var logw *logfile.Writer
	if !attached || !spec.Tty {
		if logw, err = logfile.Open(m.store.Dir(m.id)); err != nil {
			out.close()
			return nil, err
		}
		out.closers = append(out.closers, logw.Close)
		out.log = logw
	}
	switch {
	case attached && spec.Tty:
		out.console = tee[0]
	case spec.Tty:
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			out.close()
			return nil, err
		}
		ours, theirs := os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console")
		out.console = theirs
		out.child = append(out.child, theirs)
		out.consoleSocket = ours
		out.closers = append(out.closers, ours.Close)
	default:
		if attached && spec.Interactive {
			r, w, err := os.Pipe()
			if err != nil {
				out.close()
				return nil, err
			}
			out.stdin = r
			out.child = append(out.child, r)
			go func() {
				io.Copy(w, tee[0])
				w.Close()
			}()
		}
		for i, stream := range []string{"stdout", "stderr"} {
			r, w, err := os.Pipe()
			if err != nil {
				out.close()
				return nil, err
			}
			if i == 0 {
				out.stdout = w
			} else {
				out.stderr = w
			}
			out.child = append(out.child, w)
			if !attached {
				if i == 0 {
					out.watch.Stdout = r
				} else {
					out.watch.Stderr = r
				}
				out.closers = append(out.closers, r.Close)
				continue
			}
			out.outputs.Add(1)
			go func(r *os.File, stream string, copyTo *os.File) {
				defer out.outputs.Done()
				logw.Copy(r, stream, copyTo)
				r.Close()
			}(r, stream, tee[i+1])
		}
	}
	return out, nil
}

// created closes our copies of the files the container's process has.
func (o *stdio) created() {
	for _, f := range o.child {
		f.Close()
	}
	o.child = nil
}

// receiveConsole takes the master of the container's terminal, in the
// background with -t: the runtime sent it on our console socket as it
// created the container.
func (o *stdio) receiveConsole() error {
	if o.consoleSocket == nil {
		return nil
	}
	master, err := oci.RecvConsole(o.consoleSocket)
	if err != nil {
		return fmt.Errorf("the container's terminal: %w", err)
	}
	o.watch.Console = master
	o.closers = append(o.closers, master.Close)
	return nil
}

// handover is what the shim takes over: the container's process pid,
// its log and its output.
func (o *stdio) handover(pid int) shim.Handover {
	h := o.watch
	h.Pid, h.Log = pid, o.log.File()
	return h
}

// wait waits for the output to be copied (shim.Drain).
func (o *stdio) wait() {
	o.created()
	shim.Drain(&o.outputs)
}

func (o *stdio) close() {
	o.created()
	for _, c := range o.closers {
		c()
	}
}
