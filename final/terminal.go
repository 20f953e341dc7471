package main

import (
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/creack/pty"
	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/oci"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// terminal is -t: the container's process gets a pseudo-terminal of its
// own devpts, made inside by the runtime, which sends the master end back
// over a console socket, as runc sends it to conmon. The CLI relays
// between the user's terminal and that master, passing window-size
// changes on. pty(7), unix(7)
type terminal struct {
	// sock is our end of the console socket; peer is the end the
	// runtime gets.
	sock, peer *os.File
	// rows and cols are the user's terminal's size when it opened.
	rows, cols uint16
	saved      *term.State
	signals    chan os.Signal
	copied     chan struct{}
}

// openTerminal makes the console socket and puts the user's terminal in
// raw mode, so that every key reaches the container as typed.
func openTerminal() (*terminal, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	t := &terminal{sock: os.NewFile(uintptr(fds[0]), "console"), peer: os.NewFile(uintptr(fds[1]), "console"),
		signals: make(chan os.Signal, 1), copied: make(chan struct{})}
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		t.rows, t.cols = ws.Row, ws.Col
	}
	if t.saved, err = term.MakeRaw(int(os.Stdin.Fd())); err != nil {
		t.sock.Close()
		t.peer.Close()
		return nil, err
	}
	return t, nil
}

// attach is the container's side, for the monitor: the console socket.
func (t *terminal) attach() *container.Attach {
	return &container.Attach{Stdin: t.peer, Stdout: t.peer, Stderr: t.peer, Rows: t.rows, Cols: t.cols}
}

// relay waits for the terminal's master, in the background, and copies
// between it and the user's terminal.
func (t *terminal) relay() {
	go func() {
		defer close(t.copied)
		master, err := oci.RecvConsole(t.sock)
		if err != nil {
			return
		}
		defer master.Close()
		pty.InheritSize(os.Stdin, master)
		// SIGWINCH: the user's window changed size; so does the
		// container's.
		signal.Notify(t.signals, unix.SIGWINCH)
		go func() {
			for range t.signals {
				pty.InheritSize(os.Stdin, master)
			}
		}()
		go io.Copy(master, os.Stdin)
		io.Copy(os.Stdout, master)
	}()
}

// Close waits briefly for the last output, then restores the terminal.
func (t *terminal) Close() {
	// Wakes a relay still waiting for a terminal that will not come.
	unix.Shutdown(int(t.sock.Fd()), unix.SHUT_RDWR)
	t.peer.Close()
	select {
	case <-t.copied:
	case <-time.After(time.Second):
	}
	signal.Stop(t.signals)
	term.Restore(int(os.Stdin.Fd()), t.saved)
	t.sock.Close()
}
