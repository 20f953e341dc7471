package container

// How a --userns container's processes get their user namespace.
//
// They must all be in one user namespace with the id map 0 100000 65536,
// and they must all have the seccomp filter, which forbids making a user
// namespace (clone(2) with CLONE_NEWUSER). A filter is inherited at
// clone(2), so whoever forks them must already have it, and so must
// already be in that namespace: a thread of the init, outside it, cannot
// clone into it under the filter, and cannot join it either (setns(2)
// into a user namespace is refused to a multithreaded process, which
// every Go program is).
//
// So the monitor starts one more process for such a container, the
// spawner (`gocell __spawner`), already inside: it joins the init's
// PID, mount, network, UTS and IPC namespaces on one locked thread
// (setns(2), after unshare(CLONE_FS) for the mount namespace), and
// clones the spawner from there with CLONE_NEWUSER and the id map. It
// happens before the init builds the root file system, while the mount
// namespace still shows the host's files, so gocell's binary and its
// libraries are found; the init's pivot_root(2) later moves the
// spawner's root too, as it moves that of every process of the mount
// namespace whose root was the old one.
//
// The spawner then:
//
//  1. sends the init its user namespace (an open /proc/self/ns/user,
//     over SCM_RIGHTS), through which the init mounts the image's layers
//     idmapped: files of host uid 0 are root's inside;
//  2. receives from the init, once the root is built, the spawn.Config
//     of the container, and prepares its spawner thread with it;
//  3. starts the processes the init asks for (the command, and each
//     `gocell exec`), reaps them, and reports each pid and exit status.
//
// So a --userns container has two gocell processes inside: the init, as
// root of the host's user namespace, and the spawner, as root of the
// container's. The messages go over a SOCK_SEQPACKET socket pair, which
// keeps each message whole, with its file descriptors.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"github.com/gocell/gocell/final/internal/spawn"
	"golang.org/x/sys/unix"
)

// fdSpawner is the spawner's end of the socket pair, in the spawner.
const fdSpawner = 3

// userIDMap is the id map of a --userns container, for uid_map and
// gid_map alike.
var userIDMap = []syscall.SysProcIDMap{{ContainerID: 0, HostID: UserNSHostID, Size: UserNSSize}}

// spawnerMsg is every message between the init and the spawner.
type spawnerMsg struct {
	// From the init: the container's spawn configuration, once; then
	// requests, each with an ID and three file descriptors.
	Config *spawn.Config `json:"config,omitempty"`
	ID     int           `json:"id,omitempty"`
	Path   string        `json:"path,omitempty"`
	Args   []string      `json:"args,omitempty"`
	Env    []string      `json:"env,omitempty"`
	Dir    string        `json:"dir,omitempty"`
	UID    uint32        `json:"uid,omitempty"`
	GID    uint32        `json:"gid,omitempty"`
	Tty    bool          `json:"tty,omitempty"`
	// From the spawner: a request's pid or error, and later the pid's
	// exit status.
	Pid   int    `json:"pid,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

// startSpawner starts the spawner of a --userns container in the
// namespaces of its init, initPid, with sock as its end of the socket
// pair. See the top of this file.
func (m *monitor) startSpawner(initPid int, sock *os.File) (*exec.Cmd, error) {
	// A thread that joins the container's namespaces, and then ends.
	var cmd *exec.Cmd
	err := spawn.OnThread(func() (err error) {
		cmd, err = m.spawnerFrom(initPid, sock)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("--userns: %w", err)
	}
	if err := m.cg.Apply(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return cmd, nil
}

// spawnerFrom is startSpawner's work, on its locked thread.
func (m *monitor) spawnerFrom(initPid int, sock *os.File) (*exec.Cmd, error) {
	// A thread that shares its file system information (root, working
	// directory) with the others may not change mount namespace.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	// Equivalent to: nsenter --target PID --ipc --uts --net --pid --mount
	for _, ns := range []struct {
		name string
		flag int
	}{{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET},
		{"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS}} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", initPid, ns.name))
		if err != nil {
			return nil, err
		}
		err = unix.Setns(int(f.Fd()), ns.flag)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("setns(2) %s: %w", ns.name, err)
		}
	}
	cmd := exec.Command("/proc/self/exe", "--root", m.store.Root, "__spawner")
	cmd.Args[0] = "gocell"
	cmd.ExtraFiles = []*os.File{sock}
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: userIDMap, GidMappings: userIDMap, GidMappingsEnableSetgroups: true,
		Credential: &syscall.Credential{Uid: 0, Gid: 0}}
	if fd, ok := m.cg.CgroupFD(); ok {
		attr.UseCgroupFD, attr.CgroupFD = true, fd
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the spawner: %w", err)
	}
	return cmd, nil
}

// RunSpawner is `gocell __spawner`. It returns when the init is gone.
func RunSpawner() {
	// Nothing of the container may look into it (see RunInit).
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	closeOnExec()
	die := func(err error) {
		fmt.Fprintf(os.Stderr, "gocell spawner: %v\n", err)
		os.Exit(1)
	}
	// 1. Our user namespace, for the init's idmapped layers.
	userns, err := os.Open("/proc/self/ns/user")
	if err != nil {
		die(err)
	}
	if err := sendMsg(fdSpawner, spawnerMsg{}, int(userns.Fd())); err != nil {
		die(err)
	}
	userns.Close()
	// 2. The configuration, once the root is built.
	msg, _, err := recvMsg(fdSpawner, 0)
	if err != nil || msg.Config == nil {
		die(fmt.Errorf("no configuration from the init: %v", err))
	}
	sp, err := spawn.New(*msg.Config)
	if err != nil {
		die(err)
	}
	// 3. Start, reap and report.
	var mu sync.Mutex // held while starting, so a pid goes out before its exit
	children := map[int]bool{}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		for range sigs {
			mu.Lock()
			for {
				var ws unix.WaitStatus
				pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if err != nil || pid <= 0 {
					break
				}
				if children[pid] {
					delete(children, pid)
					code := exitCode(ws)
					sendMsg(fdSpawner, spawnerMsg{Pid: pid, Exit: &code})
				}
			}
			mu.Unlock()
		}
	}()
	for {
		req, fds, err := recvMsg(fdSpawner, 3)
		if err != nil {
			os.Exit(0) // the init is gone, and the container with it
		}
		files := make([]*os.File, len(fds))
		for i, fd := range fds {
			files[i] = os.NewFile(uintptr(fd), "stdio")
		}
		attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: req.UID, Gid: req.GID}}
		if req.Tty {
			attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
		}
		mu.Lock()
		p, err := sp.Start(req.Path, req.Args, &os.ProcAttr{Dir: req.Dir, Env: req.Env, Files: files, Sys: attr})
		reply := spawnerMsg{ID: req.ID}
		if err != nil {
			reply.Error = err.Error()
		} else {
			reply.Pid = p.Pid
			children[p.Pid] = true
		}
		sendMsg(fdSpawner, reply)
		mu.Unlock()
		for _, f := range files {
			f.Close()
		}
	}
}

// spawnerClient is the init's side of the socket pair.
type spawnerClient struct {
	fd      int
	mu      sync.Mutex
	nextID  int
	replies map[int]chan started
	procs   map[int]*process
	// gone is set once the spawner has ended.
	gone bool
}

// started is the spawner's answer to one request.
type started struct {
	p   *process
	err error
}

// newSpawnerClient reads the spawner's first message, its user
// namespace, and returns it as a file descriptor.
func newSpawnerClient(fd int) (*spawnerClient, int, error) {
	_, fds, err := recvMsg(fd, 1)
	if err != nil || len(fds) != 1 {
		return nil, -1, fmt.Errorf("--userns: the spawner did not start: %v", err)
	}
	return &spawnerClient{fd: fd, replies: map[int]chan started{},
		procs: map[int]*process{}}, fds[0], nil
}

// configure sends the spawner its configuration, then reads its replies
// from then on.
func (c *spawnerClient) configure(cfg spawn.Config) error {
	if err := sendMsg(c.fd, spawnerMsg{Config: &cfg}); err != nil {
		return fmt.Errorf("--userns: configure the spawner: %w", err)
	}
	go c.read()
	return nil
}

// read dispatches the spawner's replies: a request's pid or error to its
// waiting start, an exit status to its process.
func (c *spawnerClient) read() {
	for {
		msg, _, err := recvMsg(c.fd, 0)
		c.mu.Lock()
		if err != nil {
			// The spawner is gone (a process of the container may kill
			// it: it is the container's root too). Nothing it started
			// can be waited for any more, so the container ends: its
			// processes are reported killed, the command among them,
			// and the init exits with it.
			c.gone = true
			for id, ch := range c.replies {
				ch <- started{err: errors.New("--userns: the spawner ended")}
				delete(c.replies, id)
			}
			for pid, p := range c.procs {
				p.done <- 128 + int(unix.SIGKILL)
				delete(c.procs, pid)
			}
			c.mu.Unlock()
			return
		}
		if msg.Exit != nil {
			if p, ok := c.procs[msg.Pid]; ok {
				delete(c.procs, msg.Pid)
				p.done <- *msg.Exit
			}
		} else if ch, ok := c.replies[msg.ID]; ok {
			delete(c.replies, msg.ID)
			if msg.Error != "" {
				ch <- started{err: errors.New(msg.Error)}
			} else {
				// Known before its exit status can arrive: the
				// spawner sends the pid first.
				p := &process{pid: msg.Pid, done: make(chan int, 1)}
				c.procs[msg.Pid] = p
				ch <- started{p: p}
			}
		}
		c.mu.Unlock()
	}
}

// start asks the spawner to start a process and returns it.
func (c *spawnerClient) start(req spawnerMsg, stdio []*os.File) (*process, error) {
	ch := make(chan started, 1)
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return nil, errors.New("--userns: the spawner ended")
	}
	c.nextID++
	req.ID = c.nextID
	c.replies[req.ID] = ch
	c.mu.Unlock()
	fds := make([]int, len(stdio))
	for i, f := range stdio {
		fds[i] = int(f.Fd())
	}
	if err := sendMsg(c.fd, req, fds...); err != nil {
		c.mu.Lock()
		delete(c.replies, req.ID)
		c.mu.Unlock()
		return nil, fmt.Errorf("--userns: %w", err)
	}
	r := <-ch
	return r.p, r.err
}

// sendMsg sends msg, with file descriptors, as one packet.
func sendMsg(fd int, msg spawnerMsg, fds ...int) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	return unix.Sendmsg(fd, data, oob, nil, 0)
}

// recvMsg receives one packet and the file descriptors that came with it,
// at most nfds of them.
func recvMsg(fd, nfds int) (spawnerMsg, []int, error) {
	var msg spawnerMsg
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*max(nfds, 1)))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return msg, nil, err
	}
	if n == 0 {
		return msg, nil, errors.New("end of file")
	}
	var fds []int
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for i := range cmsgs {
				got, err := unix.ParseUnixRights(&cmsgs[i])
				if err == nil {
					fds = append(fds, got...)
				}
			}
		}
	}
	if len(fds) > nfds {
		for _, f := range fds {
			unix.Close(f)
		}
		return msg, nil, errors.New("too many file descriptors")
	}
	return msg, fds, json.Unmarshal(buf[:n], &msg)
}
