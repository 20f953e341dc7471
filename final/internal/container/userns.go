package container

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// userIDMap is the id map of a --userns container, for uid_map and
// gid_map alike.
var userIDMap = []syscall.SysProcIDMap{{ContainerID: 0, HostID: UserNSHostID, Size: UserNSSize}}

// UsernsArg is the argument of `gocell __userns`, which only waits for
// its stdin to close: main runs HoldUserns for it.
const UsernsArg = "__userns"

// idmapNamespace returns an open user namespace with the id map of a
// --userns container, for the idmapped mounts of its layers
// (mount_setattr(2) takes a user namespace's descriptor). Making one
// takes a process: `gocell __userns`, started in a new user namespace,
// whose /proc/PID/ns/user we open before it ends. The namespace lives
// as long as the descriptor. user_namespaces(7)
func idmapNamespace() (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer w.Close()
	cmd := exec.Command("/proc/self/exe", UsernsArg)
	cmd.Args[0] = "gocell"
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER,
		UidMappings: userIDMap, GidMappings: userIDMap}
	err = cmd.Start()
	r.Close()
	if err != nil {
		return -1, fmt.Errorf("--userns: %w", err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("--userns: %w", err)
	}
	return fd, nil
}

// HoldUserns is `gocell __userns`: it waits until its stdin closes.
func HoldUserns() {
	buf := make([]byte, 1)
	os.Stdin.Read(buf)
	os.Exit(0)
}
