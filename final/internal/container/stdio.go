package container

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/gocell/gocell/final/internal/oci"
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
type stdio struct {
	stdin, stdout, stderr *os.File
	console               *os.File
	// child are our copies of what the container's process got: closed
	// once it has its own, or the copies never see end-of-file.
	child   []*os.File
	outputs sync.WaitGroup
	closers []func() error
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
	var logw *logWriter
	if !attached || !spec.Tty {
		if logw, err = openLog(m.store.Dir(m.id)); err != nil {
			out.close()
			return nil, err
		}
		out.closers = append(out.closers, logw.Close)
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
		out.outputs.Add(1)
		go func() {
			defer out.outputs.Done()
			defer ours.Close()
			// The master comes once the container is created; reading
			// it ends (EIO) when no process holds the terminal any more.
			// Without a container, the socket just closes.
			master, err := oci.RecvConsole(ours)
			if err != nil {
				return
			}
			logw.copy(master, "stdout", nil)
			master.Close()
		}()
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
			out.outputs.Add(1)
			go func(r *os.File, stream string, copyTo *os.File) {
				defer out.outputs.Done()
				logw.copy(r, stream, copyTo)
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

// wait waits for the output to be copied. The pipes close once every
// process of the container is gone; they all went with its process 1,
// but be sure not to hang on a straggler.
func (o *stdio) wait() {
	o.created()
	done := make(chan struct{})
	go func() { o.outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func (o *stdio) close() {
	o.created()
	for _, c := range o.closers {
		c()
	}
}
