package main

import (
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/creack/pty"
	"github.com/gocell/gocell/final/internal/container"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// terminal is a pseudo-terminal for -t: the container gets its slave
// end, and the CLI relays between the user's terminal and the master end,
// passing window-size changes on. pty(7)
type terminal struct {
	master, slave *os.File
	saved         *term.State
	signals       chan os.Signal
	copied        chan struct{}
}

// openTerminal makes the pseudo-terminal and puts the user's terminal in
// raw mode, so that every key reaches the container as typed.
func openTerminal() (*terminal, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, err
	}
	t := &terminal{master: master, slave: slave, signals: make(chan os.Signal, 1), copied: make(chan struct{})}
	pty.InheritSize(os.Stdin, master)
	if t.saved, err = term.MakeRaw(int(os.Stdin.Fd())); err != nil {
		master.Close()
		slave.Close()
		return nil, err
	}
	// SIGWINCH: the user's window changed size; so does the container's.
	signal.Notify(t.signals, unix.SIGWINCH)
	go func() {
		for range t.signals {
			pty.InheritSize(os.Stdin, master)
		}
	}()
	return t, nil
}

// attach is the container's side: the slave end as stdin, stdout, stderr.
func (t *terminal) attach() *container.Attach {
	return &container.Attach{Stdin: t.slave, Stdout: t.slave, Stderr: t.slave}
}

// relay copies between the user's terminal and the master end. Our own
// copy of the slave end is closed first: the master reports the end of
// output only when no process holds the slave any more.
func (t *terminal) relay() {
	t.slave.Close()
	go io.Copy(t.master, os.Stdin)
	go func() {
		io.Copy(os.Stdout, t.master)
		close(t.copied)
	}()
}

// Close waits briefly for the last output, then restores the terminal.
func (t *terminal) Close() {
	select {
	case <-t.copied:
	case <-time.After(time.Second):
	}
	signal.Stop(t.signals)
	close(t.signals)
	term.Restore(int(os.Stdin.Fd()), t.saved)
	t.master.Close()
}
