// Package shim is what stays on the host while a detached container runs:
// the small process that logs the container's output, waits for its
// process 1, and then has gocell record how it ended. podman's conmon and
// containerd's shims play the same part.
//
// Why a second program. gocell's monitor (container.RunMonitor) does the
// heavy part of a start: the overlay, the network, the bundle, the
// runtime. For that it is all of gocell, a 17 MB Go program; kept for a
// container's whole life it costs about 3 MiB of memory of its own per
// container (make bench-scale). Once the container runs, what is left to
// do is small, so the monitor replaces itself with this: execve(2) keeps
// the process, its pid, its children (the container's process stays our
// child, so wait4(2) still works and PR_SET_PDEATHSIG still points at us),
// its mount namespace and the descriptors it hands over; it drops
// everything else. When the container ends, the shim executes gocell once
// more ("__finish") for the clean-up, which needs all of gocell again.
//
// The shim is built as its own binary, gocell-shim (final/cmd/gocell-shim),
// which imports only this package and logfile: a Go program that small
// keeps well under 1 MiB of its own. Without it, gocell runs the same code
// as `gocell __shim`, which saves less (see Find in package container).
package shim

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gocell/gocell/final/internal/logfile"
	"golang.org/x/sys/unix"
)

// Handover is what the monitor hands the shim: the container's process,
// which must be a child of this process, the open log, and the read ends
// of the container's output: its stdout and stderr pipes, or, with a
// terminal, the terminal's master.
type Handover struct {
	Pid            int
	Log            *os.File
	Stdout, Stderr *os.File
	Console        *os.File
}

// exitRuntime is the exit code when the container's end cannot be known
// (container.ExitRuntime, as docker's 125).
const exitRuntime = 125

// drainTimeout bounds the wait for the output once process 1 has gone.
// The pipes close when every process of the container is gone; they all
// went with process 1 (the kernel kills a pid namespace with its init),
// but a straggler holding them must not hang the clean-up.
const drainTimeout = 5 * time.Second

// Drain waits for copies of output (outputs) to end, at most drainTimeout.
func Drain(outputs *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
	}
}

// ExitCode is a container's exit code from its process's wait status: the
// process's own, or 128+N when signal N killed it, as a shell reports it.
func ExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Watch logs the container's output until it ends, waits for its process
// and returns its exit code. It closes the files of h.
func Watch(h Handover) int {
	log := logfile.NewWriter(h.Log)
	defer log.Close()
	var outputs sync.WaitGroup
	for _, o := range []struct {
		f      *os.File
		stream string
	}{{h.Console, "stdout"}, {h.Stdout, "stdout"}, {h.Stderr, "stderr"}} {
		if o.f == nil {
			continue
		}
		outputs.Add(1)
		go func(f *os.File, stream string) {
			defer outputs.Done()
			defer f.Close()
			// A pipe ends at EOF; a terminal's master with EIO once no
			// process holds the terminal.
			log.Copy(f, stream, nil)
		}(o.f, o.stream)
	}
	code := exitRuntime
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(h.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			code = ExitCode(syscall.WaitStatus(ws))
		} else {
			fmt.Fprintf(os.Stderr, "gocell-shim: wait for %d: %v\n", h.Pid, err)
		}
		break
	}
	Drain(&outputs)
	return code
}

// Protocol is what `gocell-shim --protocol` prints: the command line and
// descriptors it expects, which gocell checks before it uses a shim.
const Protocol = "gocell-shim 1"

// Args are the command-line arguments that hand h over to the shim, and
// then have it execute finish: the path of a program, then its whole
// argv, to which the shim appends the exit code. The caller must keep
// h's files open across execve(2) (KeepOpen).
func Args(h Handover, finish []string) []string {
	args := []string{"--pid", strconv.Itoa(h.Pid), "--log", fd(h.Log)}
	for _, o := range []struct {
		flag string
		f    *os.File
	}{{"--stdout", h.Stdout}, {"--stderr", h.Stderr}, {"--console", h.Console}} {
		if o.f != nil {
			args = append(args, o.flag, fd(o.f))
		}
	}
	return append(append(args, "--"), finish...)
}

func fd(f *os.File) string { return strconv.Itoa(int(f.Fd())) }

// KeepOpen clears the close-on-exec flag of fds, so that the program an
// execve(2) starts has them. fcntl(2) F_SETFD
func KeepOpen(fds ...int) error {
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("keep descriptor %d open: %w", fd, err)
		}
	}
	return nil
}

// Exec executes the open file f, with argv and the environment: by its
// name, or, if the name leads nowhere any more (a start with a rebuilt
// gocell removes the older copies in <root>/bin), through its
// descriptor, /proc/self/fd/N, which execve(2) follows to the file even
// once it is unlinked. Only returns if it failed.
func Exec(f *os.File, argv []string) error {
	if f == nil {
		return errors.New("no program to execute")
	}
	err := syscall.Exec(f.Name(), argv, os.Environ())
	if errors.Is(err, syscall.ENOENT) {
		err = syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), argv, os.Environ())
	}
	return err
}

// Main is the shim's program: `gocell-shim --pid PID --log FD [--stdout FD]
// [--stderr FD] [--console FD] [--exe FD] -- PATH ARGV...`. It watches the container
// (Watch), then executes PATH with ARGV and the exit code. It does not
// return. It must run on the main thread (see the check below).
func Main(args []string) {
	fs := flag.NewFlagSet("gocell-shim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: gocell-shim --pid PID --log FD [--stdout FD] [--stderr FD] [--console FD] [--exe FD] -- PATH ARGV...\n"+
			"gocell's monitor starts it in its own place once a detached container runs (see final/internal/shim); it is not for people.")
		fs.PrintDefaults()
	}
	pid := fs.Int("pid", 0, "the container's process, a child of this one")
	exe := fs.Int("exe", -1, "a descriptor of PATH, executed if PATH is gone")
	protocol := fs.Bool("protocol", false, "print the protocol this shim speaks, and exit")
	var files [4]int
	fs.IntVar(&files[0], "log", -1, "the container's log, open for appending")
	fs.IntVar(&files[1], "stdout", -1, "the read end of the container's stdout")
	fs.IntVar(&files[2], "stderr", -1, "the read end of the container's stderr")
	fs.IntVar(&files[3], "console", -1, "the master of the container's terminal")
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0) // Parse printed the usage
	case err != nil:
		os.Exit(2) // and the error
	case *protocol:
		fmt.Println(Protocol)
		os.Exit(0)
	case *pid <= 0 || files[0] < 0 || fs.NArg() < 2:
		fs.Usage()
		os.Exit(2)
	}
	open := func(fd int, name string) *os.File {
		if fd < 0 {
			return nil
		}
		// Non-blocking, so that the runtime's poller reads it rather
		// than a thread blocked in read(2) for each.
		unix.SetNonblock(fd, true)
		unix.CloseOnExec(fd)
		return os.NewFile(uintptr(fd), name)
	}
	h := Handover{Pid: *pid, Log: open(files[0], "log"), Stdout: open(files[1], "stdout"),
		Stderr: open(files[2], "stderr"), Console: open(files[3], "console")}
	code := Watch(h)
	finish := append(fs.Args(), strconv.Itoa(code))
	path, argv := finish[0], finish[1:]
	var err error
	if unix.Gettid() != os.Getpid() {
		// An execve(2) from another thread makes the main thread, whose
		// pid gocell watches, a zombie for a moment: gocell would take
		// the container's monitor for dead and clean up under our feet.
		// The caller must lock main to the main thread in an init
		// function (runtime.LockOSThread).
		err = fmt.Errorf("not on the main thread: will not execute %s", path)
	} else {
		var f *os.File
		if *exe >= 0 {
			f = os.NewFile(uintptr(*exe), path)
		}
		err = Exec(f, argv)
		if f == nil {
			err = syscall.Exec(path, argv, os.Environ())
		}
	}
	// The container is gone and not recorded: gocell ps finds its monitor
	// dead and cleans up (container.reconcile).
	fmt.Fprintf(os.Stderr, "gocell-shim: %s: %v\n", path, err)
	os.Exit(exitRuntime)
}
