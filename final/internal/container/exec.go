package container

// How `gocell exec` gets a process into a running container.
//
// The usual answer is setns(2): open /proc/PID/ns/* of the container's
// process and join each namespace, then exec the command. A Go program
// cannot do that for every namespace. The Go runtime starts several
// threads before main runs, and the kernel refuses to move a
// multithreaded process into another user namespace (EINVAL), or one
// whose threads share their file system information, as Go's do, into
// another mount namespace (EINVAL). runc gets around it with C code that
// runs before the Go runtime starts, while the process still has a single
// thread (its "nsexec"); that needs cgo.
//
// gocell needs neither. The container's process 1 is gocell's own small
// init (init.go), and it is already in every namespace and in the cgroup
// of the container. So `gocell exec` asks it, over a Unix socket, to start
// the process; a child inherits all of its parent's namespaces and its
// cgroup. The CLI sends its own stdin, stdout and stderr along with the
// request (SCM_RIGHTS, see unix(7)), so the process reads and writes the
// user's terminal or pipes directly, and the init answers with the exit
// status when the process ends.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// execReply is what the init answers: first the pid, then the status.
type execReply struct {
	Pid   int    `json:"pid,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
	// NotFound tells the CLI to exit 127 rather than 126.
	NotFound bool `json:"notFound,omitempty"`
}

// ExecOptions is a process for `gocell exec`.
type ExecOptions struct {
	Args []string
	Env  []string
	Dir  string
	User string
	Tty  bool
	// Stdio are the process's stdin, stdout and stderr.
	Stdio [3]*os.File
	// Started, if set, is called with the process's pid inside.
	Started func(pid int)
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
	conn, err := dialUnix(s.Dir(st.ID), "init.sock")
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", st.Name, err)
	}
	defer conn.Close()
	stdio := o.Stdio
	var copied func()
	if !o.Tty {
		// Pipes, not the caller's own files: see proxyStdio.
		if stdio, copied, err = proxyStdio(o.Stdio); err != nil {
			return 0, fmt.Errorf("exec in %s: %w", st.Name, err)
		}
		defer copied()
	}
	req, _ := json.Marshal(processRequest{Args: o.Args, Env: o.Env, Dir: o.Dir, User: o.User, Tty: o.Tty})
	fds := unix.UnixRights(int(stdio[0].Fd()), int(stdio[1].Fd()), int(stdio[2].Fd()))
	_, _, err = conn.WriteMsgUnix(append(req, '\n'), fds, nil)
	if !o.Tty {
		// The init has its own copies now; ours would keep the
		// output pipes open after the process ends.
		for _, f := range stdio {
			f.Close()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", st.Name, err)
	}
	dec := json.NewDecoder(conn)
	for {
		var reply execReply
		if err := dec.Decode(&reply); err != nil {
			return 0, fmt.Errorf("exec in %s: the container ended: %w", st.Name, err)
		}
		switch {
		case reply.Error != "" && reply.NotFound:
			// The message already says "command not found".
			return ExitNotFound, &StartError{Code: ExitNotFound, Msg: reply.Error}
		case reply.Error != "":
			return ExitCannotRun, &StartError{Code: ExitCannotRun, Msg: reply.Error}
		case reply.Exit != nil:
			return *reply.Exit, nil
		case o.Started != nil:
			o.Started(reply.Pid)
		}
	}
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

// serveExec is the init's side: for each connection, read a request with
// three file descriptors, start the process, report its pid and status.
func serveExec(l *net.UnixListener, spec Spec, r *reaper) {
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		go handleExec(conn, spec, r)
	}
}

func handleExec(conn *net.UnixConn, spec Spec, r *reaper) {
	defer conn.Close()
	enc := json.NewEncoder(conn)
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	stdio, err := receiveFiles(oob[:oobn])
	if err != nil {
		enc.Encode(execReply{Error: err.Error()})
		return
	}
	defer func() {
		for _, f := range stdio {
			f.Close()
		}
	}()
	var req processRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil || len(req.Args) == 0 {
		enc.Encode(execReply{Error: "bad exec request"})
		return
	}
	p, err := startProcess(spec, req, stdio, r)
	if err != nil {
		enc.Encode(execReply{Error: err.Error(), NotFound: errors.Is(err, ErrCommandNotFound)})
		return
	}
	enc.Encode(execReply{Pid: p.pid})
	code := <-p.done
	enc.Encode(execReply{Exit: &code})
}

// receiveFiles turns the SCM_RIGHTS message into three files.
func receiveFiles(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("exec request without stdin, stdout and stderr")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 3 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("exec request without stdin, stdout and stderr")
	}
	names := []string{"stdin", "stdout", "stderr"}
	files := make([]*os.File, 3)
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), names[i])
	}
	return files, nil
}

// A Unix socket's path may be at most 107 bytes long (sun_path in
// unix(7)), and a container's directory can be longer than that. So the
// path goes through a file descriptor of the directory instead:
// /proc/self/fd/N/init.sock is short, whatever the directory's name.

// listenUnix listens on the socket file name in dir.
func listenUnix(dir, name string) (*net.UnixListener, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	path := fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), name)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// Whoever can connect can run a command as root in the container:
	// root only, whatever the umask made it. (The directory is root's
	// alone too.) unix(7) "Pathname socket ownership and permissions"
	if err := unix.Fchmodat(int(d.Fd()), name, 0o600, 0); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", name, err)
	}
	// The path above means nothing once d is closed; leave removing the
	// socket file to the monitor.
	l.SetUnlinkOnClose(false)
	return l, nil
}

// dialUnix connects to the socket file name in dir.
func dialUnix(dir, name string) (*net.UnixConn, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	path := fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), name)
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
}
