package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The container's process starts as gocell-runtime itself, re-executed
// by create as "__init" inside the new namespaces, and ends as the
// command: it sets up the container from inside (what only a process in
// its namespaces can do), waits to be started, and calls execve(2), so
// the command keeps its pid, and is the process runtime-spec's state
// names. Its file descriptors, from create:
//
//	3  the sync socket, SOCK_SEQPACKET: JSON messages both ways
//	4  the FIFO, as an O_PATH descriptor: opened for writing, it blocks
//	   until start opens it for reading (runc's exec.fifo)
//	5  the console socket, if the process has a terminal
//	5 or 6: the copy of gocell-runtime it was started from (selfCopy)
//	then: the sources of the bind mounts (initConfig.MountFds)
const (
	initArg = "__init"
	execArg = "__exec"
)

func init() {
	// The set-up ends in execve(2) from the main thread, which must
	// carry the capabilities, no_new_privs, seccomp filter and the
	// namespaces joined with setns(2), all of which belong to a thread:
	// lock the main goroutine to it, from before main. LockOSThread
	// called from an init function does exactly that.
	if len(os.Args) > 1 && (os.Args[1] == initArg || os.Args[1] == execArg) {
		runtime.LockOSThread()
	}
}

// message is one message of the sync socket.
type message struct {
	// Type is, from create: "config" (with Config), "go" (with State);
	// from the container: "ns" (its namespaces are ready), "created",
	// "error" (with Error).
	Type   string       `json:"type"`
	Config *initConfig  `json:"config,omitempty"`
	Exec   *execConfig  `json:"exec,omitempty"`
	State  *specs.State `json:"state,omitempty"`
	Error  string       `json:"error,omitempty"`
	// NotFound marks an error that is the command not being found,
	// which an engine reports apart (gocell exits 127 for it).
	NotFound bool `json:"notFound,omitempty"`
	// NotExecutable: the command is there, but cannot be executed (126).
	NotExecutable bool `json:"notExecutable,omitempty"`
}

// errorMessage is the message that reports err.
func errorMessage(err error) message {
	return message{Type: "error", Error: err.Error(), NotFound: errors.Is(err, ErrExecutableNotFound),
		NotExecutable: errors.Is(err, ErrNotExecutable)}
}

// execFailure is the exit status of a process whose command could not
// run, as a shell's: 126 when the file is there but cannot be executed
// (execve(2) EACCES, ENOEXEC), else 127.
func execFailure(err error) int {
	if errors.Is(err, ErrNotExecutable) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOEXEC) {
		return 126
	}
	return 127
}

// remoteError is an error the container's process reported.
type remoteError struct {
	msg                     string
	notFound, notExecutable bool
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Is(target error) bool {
	return e.notFound && target == ErrExecutableNotFound || e.notExecutable && target == ErrNotExecutable
}

// initConfig is what the container's process needs to know.
type initConfig struct {
	ID      string            `json:"id"`
	Spec    *specs.Spec       `json:"spec"`
	Cgroup  map[string]string `json:"cgroup"`
	Console bool              `json:"console"`
	Keyring bool              `json:"keyring"`
	// DieWithParent: PR_SET_PDEATHSIG again after the change of user,
	// which clears it. prctl(2)
	DieWithParent bool `json:"dieWithParent,omitempty"`
	// MountFds are the sources of the bind mounts, by their index in
	// the spec's mounts: detached mounts that create made (bindSources).
	MountFds map[int]int `json:"mountFds,omitempty"`
	// CgroupNS: unshare the cgroup namespace here, now that create has
	// put us in our cgroup (cgroup v1, see procAttr).
	CgroupNS bool `json:"cgroupNS,omitempty"`
}

func send(f *os.File, m message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return err
}

func recv(f *os.File) (message, error) {
	// SOCK_SEQPACKET: one read, one message. Its size first: a peek
	// with MSG_TRUNC returns the whole message's length. recv(2)
	size := 0
	rc, err := f.SyscallConn()
	if err != nil {
		return message{}, err
	}
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		size, _, rerr = unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return message{}, err
	}
	if rerr != nil {
		return message{}, rerr
	}
	buf := make([]byte, size+1)
	n, err := f.Read(buf)
	if err != nil {
		return message{}, err
	}
	var m message
	if n == 0 {
		return m, errors.New("the other end closed the sync socket")
	}
	err = json.Unmarshal(buf[:n], &m)
	return m, err
}

// Init is the container's process: it never returns. main calls it for
// "gocell-runtime __init".
func Init() {
	noDump()
	// No garbage collection: the process lives for the set-up only, and
	// execve(2) frees everything at once.
	debug.SetGCPercent(-1)
	sync := os.NewFile(3, "sync")
	err := initContainer(sync)
	// Only a failure gets here: report it to create, which cleans up;
	// after start, create is gone, and stderr is all there is.
	if send(sync, errorMessage(err)) != nil {
		fmt.Fprintf(os.Stderr, "gocell-runtime: %v\n", err)
	}
	os.Exit(execFailure(err))
}

func initContainer(sync *os.File) error {
	m, err := recv(sync)
	if err != nil {
		return err
	}
	c := m.Config
	if m.Type != "config" || c == nil || c.Spec == nil {
		return fmt.Errorf("sync: expected the config, got %q", m.Type)
	}
	// The copy we run from (after the console socket, if any): not
	// needed any more.
	if c.Console {
		unix.Close(6)
	} else {
		unix.Close(5)
	}
	s := c.Spec
	if err := joinNamespaces(s); err != nil {
		return err
	}
	if c.CgroupNS {
		// Equivalent to: unshare --cgroup, from inside our cgroup, so
		// that it is the namespace's "/". cgroup_namespaces(7)
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("cgroup namespace: %w", err)
		}
	}
	if err := send(sync, message{Type: "ns"}); err != nil {
		return err
	}
	if m, err = recv(sync); err != nil || m.Type != "go" {
		return fmt.Errorf("sync: expected go: %v %q", err, m.Type)
	}
	state := m.State
	if c.Keyring {
		// A session keyring of the container's own, so that keys its
		// processes add are not the host's session's. keyrings(7)
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + c.ID); err != nil &&
			!errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("session keyring: %w", err)
		}
	}
	if err := setupRoot(s, c, state); err != nil {
		return err
	}
	if c.Console {
		if err := setupConsole(os.NewFile(5, "console"), s.Process.ConsoleSize, true); err != nil {
			return err
		}
	}
	// The command must be there, as runc checks too: a missing one
	// fails create, not the start that would follow.
	if _, err := lookPath(s.Process); err != nil {
		return err
	}
	if err := send(sync, message{Type: "created"}); err != nil {
		return err
	}
	sync.Close()
	if err := awaitStart(s, state); err != nil {
		return err
	}
	return execProcess(s.Process, s.Linux.Seccomp, c.DieWithParent, nil)
}

// noDump makes the process undumpable until its execve(2): until then
// it is gocell-runtime with root's capabilities, and a process of the
// container (which may have CAP_SYS_PTRACE) must not ptrace(2) it or
// open its /proc/PID files. The execve of the command makes it dumpable
// again. prctl(2) PR_SET_DUMPABLE
func noDump() {
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

// nsFlags are the setns(2) flags of the namespaces that can be joined.
var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.NetworkNamespace: unix.CLONE_NEWNET, specs.IPCNamespace: unix.CLONE_NEWIPC,
	specs.UTSNamespace: unix.CLONE_NEWUTS, specs.MountNamespace: unix.CLONE_NEWNS,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP,
}

// joinNamespaces joins the namespaces the spec gives by path, on this
// (locked) thread. A mount namespace can be joined only by a thread
// that does not share its file system information (root, cwd, umask)
// with others, which every thread of a Go program does: unshare(2)
// CLONE_FS first gives this thread its own. setns(2)
func joinNamespaces(s *specs.Spec) error {
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("join the %s namespace %s: %w", ns.Type, ns.Path, err)
		}
		if ns.Type == specs.MountNamespace {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				unix.Close(fd)
				return fmt.Errorf("unshare CLONE_FS: %w", err)
			}
		}
		err = unix.Setns(fd, nsFlags[ns.Type])
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join the %s namespace %s: %w", ns.Type, ns.Path, err)
		}
	}
	return nil
}

// rootPropagation is the propagation "/" is given first: rslave unless
// the spec says otherwise, so that nothing mounted here reaches the
// host, while the host's later mounts still reach the container, as
// runc does. mount_namespaces(7)
func rootPropagation(s *specs.Spec) (uintptr, error) {
	if s.Linux.RootfsPropagation == "" {
		return unix.MS_SLAVE | unix.MS_REC, nil
	}
	p, ok := propagations[s.Linux.RootfsPropagation]
	if !ok {
		return 0, fmt.Errorf("linux.rootfsPropagation %q", s.Linux.RootfsPropagation)
	}
	return p, nil
}

// setupRoot builds the container's root and makes it the process's,
// with everything that needs the namespaces: the mounts, the devices,
// pivot_root, the masks, the sysctls, the host name, lo.
func setupRoot(s *specs.Spec, c *initConfig, state *specs.State) error {
	prop, err := rootPropagation(s)
	if err != nil {
		return err
	}
	// Equivalent to: mount --make-rslave /
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("propagation of /: %w", err)
	}
	root := s.Root.Path
	// pivot_root(2) wants a mount point: bind the root on itself.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", root, err)
	}
	if err := mountAll(root, s, c.Cgroup, c.MountFds); err != nil {
		return err
	}
	userns, _ := hasNamespace(s, specs.UserNamespace)
	if err := makeDevices(root, s, userns); err != nil {
		return err
	}
	if s.Hooks != nil && len(s.Hooks.CreateContainer) > 0 {
		if err := runHooks("createContainer", s.Hooks.CreateContainer, state); err != nil {
			return err
		}
	}
	if err := pivot(root); err != nil {
		return err
	}
	null, err := openNull()
	if err != nil {
		return err
	}
	defer null.Close()
	// The sysctls first: readonlyPaths usually holds /proc/sys.
	for k, v := range s.Linux.Sysctl {
		// Equivalent to: sysctl -w KEY=VALUE
		path := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			return fmt.Errorf("linux.sysctl %s: %w", k, err)
		}
	}
	if err := maskPaths(s.Linux.MaskedPaths, null); err != nil {
		return err
	}
	if err := readonlyPaths(s.Linux.ReadonlyPaths); err != nil {
		return err
	}
	if uts, path := hasNamespace(s, specs.UTSNamespace); uts && path == "" {
		if s.Hostname != "" {
			if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
				return fmt.Errorf("hostname %q: %w", s.Hostname, err)
			}
		}
		if s.Domainname != "" {
			if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
				return fmt.Errorf("domainname %q: %w", s.Domainname, err)
			}
		}
	} else if s.Hostname != "" || s.Domainname != "" {
		return errors.New("hostname and domainname need a UTS namespace of the container's own")
	}
	if netns, path := hasNamespace(s, specs.NetworkNamespace); netns && path == "" {
		// A new network namespace has lo, down; runc brings it up.
		// Equivalent to: ip link set lo up
		if lo, err := netlink.LinkByName("lo"); err == nil {
			if err := netlink.LinkSetUp(lo); err != nil {
				return fmt.Errorf("lo up: %w", err)
			}
		}
	}
	if s.Root.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	if err := unix.Chdir(s.Process.Cwd); err != nil {
		return fmt.Errorf("process.cwd %s: %w", s.Process.Cwd, err)
	}
	return nil
}

// awaitStart blocks until start: open(2) of a FIFO for writing waits for
// a reader. The FIFO is reached through our descriptor of it, since its
// path is on the host's side of pivot_root. fifo(7) Then the
// startContainer hooks run, and only then the byte start waits for is
// written, so that start's poststart hooks come after them, in the
// spec's order.
func awaitStart(s *specs.Spec, state *specs.State) error {
	fd, err := unix.Open("/proc/self/fd/4", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the start FIFO (is /proc mounted?): %w", err)
	}
	// Kept open: execve(2) closes it (O_CLOEXEC), which tells start
	// that the command runs.
	unix.Close(4)
	if s.Hooks != nil && len(s.Hooks.StartContainer) > 0 {
		state.Status = specs.StateRunning
		if err := runHooks("startContainer", s.Hooks.StartContainer, state); err != nil {
			return err
		}
	}
	if _, err := unix.Write(fd, []byte{0}); err != nil {
		return fmt.Errorf("write the start FIFO: %w", err)
	}
	return nil
}
