package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/gocell/gocell/final/internal/rootfs"
	"github.com/gocell/gocell/final/internal/volume"
	"golang.org/x/sys/unix"
)

// The file descriptors the monitor gives the init, after stdin, stdout
// and stderr: the init waits on the first until the host is ready, and
// reports on the second whether the command started.
const (
	fdHostReady = 3
	fdInitReady = 4
	fdUserns    = 5 // with --userns: the user namespace of the id map
)

// RunInit is the container's process 1, started by the monitor in new
// namespaces. It never returns: it exits with the command's status.
func RunInit(s *Store, id string) {
	closeOnExec()
	report := os.NewFile(fdInitReady, "init-ready")
	fail := func(code int, err error) {
		fmt.Fprintf(report, "error %d %s\n", code, err)
		os.Exit(code)
	}
	// Wait until the monitor has put us in our cgroup (v1) and made our
	// network: a pipe, not a sleep.
	ready := os.NewFile(fdHostReady, "host-ready")
	msg, _ := io.ReadAll(ready)
	ready.Close()
	if string(msg) != "ok" {
		fail(125, errors.New("the monitor did not finish setting up"))
	}
	st, err := s.read(id)
	if err != nil {
		fail(125, err)
	}
	dir := s.Dir(id)
	if err := unix.Sethostname([]byte(st.Spec.Hostname)); err != nil {
		fail(125, fmt.Errorf("sethostname: %w", err))
	}
	// The exec socket is bound while the host's directories are still
	// reachable; the listening socket keeps working after pivot_root.
	os.Remove(filepath.Join(dir, "init.sock"))
	listener, err := listenUnix(dir, "init.sock")
	if err != nil {
		fail(125, fmt.Errorf("exec socket: %w", err))
	}
	opts := rootfs.Options{
		Layers: st.Spec.Layers,
		Upper:  filepath.Join(dir, "upper"),
		Work:   filepath.Join(dir, "work"),
		Merged: filepath.Join(dir, "merged"),
		BeforePivot: func(merged string) error {
			return s.mountVolumes(st, merged)
		},
	}
	if st.Spec.UserNS {
		// The monitor made the namespace and passed it on (holdUserns).
		opts.UsernsFD, opts.IDMapped = fdUserns, filepath.Join(dir, "idmapped")
		if cloneFlags(st.Spec.Network)&unix.CLONE_NEWNET != 0 {
			if err := unprivilegedNet(); err != nil {
				fail(125, err)
			}
		}
	}
	err = rootfs.Setup(opts)
	if st.Spec.UserNS {
		// The idmapped mounts keep their own reference to it.
		unix.Close(fdUserns)
	}
	if err != nil {
		fail(125, err)
	}
	if err := bringUpLoopback(); err != nil {
		fail(125, err)
	}

	r := newReaper()
	if r.spawner, err = newSpawner(); err != nil {
		fail(125, err)
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals)
	main, err := startProcess(st.Spec, processRequest{
		Args: st.Spec.Args, Env: st.Spec.Env, Dir: st.Spec.WorkingDir,
		User: st.Spec.User, Tty: st.Spec.Tty,
	}, []*os.File{os.Stdin, os.Stdout, os.Stderr}, r)
	if err != nil {
		code := 126
		if errors.Is(err, ErrCommandNotFound) {
			code = 127
		}
		fail(code, err)
	}
	fmt.Fprintf(report, "ok %d\n", main.pid)
	report.Close()

	go serveExec(listener, st.Spec, r)
	go func() {
		for sig := range signals {
			if sig == unix.SIGCHLD {
				r.reap()
				continue
			}
			// Pass every other signal on to the command: as process 1 we
			// would ignore what we do not handle, and so would it.
			unix.Kill(main.pid, sig.(syscall.Signal))
		}
	}()
	status := <-main.done
	os.Exit(status)
}

// userIDMap is the id map of a --userns container, for uid_map and
// gid_map alike.
var userIDMap = []syscall.SysProcIDMap{{ContainerID: 0, HostID: UserNSHostID, Size: UserNSSize}}

// holdUserns makes a user namespace with the --userns id map and returns
// it as an open file. A namespace lives while a process is in it or a
// file refers to it: `gocell __userns` is started in it with clone(2)
// CLONE_NEWUSER (Go writes its uid_map and gid_map before it runs) and
// waits on its stdin until we have the file. Its root is the namespace's
// root, or it would not pass gocell's root check. The monitor does this,
// not the init: Go writes /proc/PID/uid_map with the pid clone returned,
// and until the init mounts the container's /proc, its /proc is the
// host's, where that pid names another process.
func holdUserns() (*os.File, error) {
	cmd := exec.Command("/proc/self/exe", "__userns")
	cmd.Args[0] = "gocell"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: userIDMap, GidMappings: userIDMap, GidMappingsEnableSetgroups: true,
		Credential: &syscall.Credential{Uid: 0, Gid: 0}}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	return f, nil
}

// unprivilegedNet lets anyone in the container's network namespace bind
// ports below 1024 and send pings, as Docker does. With --userns the
// command's root has no capabilities there, since the namespace belongs
// to the host's user namespace, so without these a web server on port 80
// could not start. They are settings of the network namespace, and
// /proc/sys/net shows the writer's own: ours, not the host's.
func unprivilegedNet() error {
	for path, value := range map[string]string{
		"/proc/sys/net/ipv4/ip_unprivileged_port_start": "0",
		"/proc/sys/net/ipv4/ping_group_range":           "0 2147483647",
	} {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("--userns: %w", err)
		}
	}
	return nil
}

// HoldUserns is `gocell __userns`: it returns when its stdin closes.
func HoldUserns() { io.Copy(io.Discard, os.Stdin) }

// bringUpLoopback sets lo up, as `ip link set lo up` does, with an
// ioctl(2) on any socket: a new network namespace's loopback is down.
func bringUpLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// processRequest is a process to start in the container: the command
// itself, or one asked for by `gocell exec`.
type processRequest struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	User string   `json:"user"`
	Tty  bool     `json:"tty"`
}

// process is a started process whose end the reaper reports on done.
type process struct {
	pid  int
	done chan int
}

// startProcess starts a process in the container with the given stdio.
// The image's environment comes first; the request's entries override it.
func startProcess(spec Spec, req processRequest, stdio []*os.File, r *reaper) (*process, error) {
	env := mergeEnv(spec.Env, req.Env)
	path, err := lookPath(req.Args[0], env)
	if err != nil {
		return nil, err
	}
	uid, gid, err := lookupUser(req.User)
	if err != nil {
		return nil, err
	}
	dir := req.Dir
	if dir == "" {
		dir = "/"
	}
	attr := &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: gid},
		// A cgroup namespace, rooted at the container's cgroup: inside,
		// /proc/self/cgroup shows it as "/" instead of the host's path.
		// The new process makes it with unshare(2) between fork and
		// exec, alone in its new process, so it is rooted where the
		// monitor put the init; the init itself keeps the host's.
		// cgroup_namespaces(7)
		Unshareflags: unix.CLONE_NEWCGROUP,
	}
	if spec.UserNS {
		// Its own user namespace, with the id map the layers are seen
		// through: uid 0 inside is UserNSHostID outside. The init
		// stays the host's root, outside it, to serve exec requests.
		attr.Cloneflags = unix.CLONE_NEWUSER
		attr.UidMappings, attr.GidMappings = userIDMap, userIDMap
		attr.GidMappingsEnableSetgroups = true
	}
	if req.Tty {
		// A session of its own with the terminal as its controlling one,
		// so that Ctrl-C and job control work. setsid(2), TIOCSCTTY
		attr.Setsid = true
		attr.Setctty = true
		attr.Ctty = 0
	}
	// The reaper must know the pid before the process can end, so hold
	// it back from reaping while we start it.
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := r.spawner.start(path, req.Args, &os.ProcAttr{Dir: dir, Env: env, Files: stdio, Sys: attr})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", req.Args[0], err)
	}
	proc := &process{pid: p.Pid, done: make(chan int, 1)}
	r.waiting[p.Pid] = proc
	return proc, nil
}

// mergeEnv adds the entries of extra to base, replacing those with the
// same name, and makes sure there is a PATH.
func mergeEnv(base, extra []string) []string {
	var out []string
	index := map[string]int{}
	for _, kv := range append(append([]string{}, base...), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return out
}

// lookPath finds a command in the container's PATH, as a shell would.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("%w: %s", ErrCommandNotFound, name)
		}
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %q in PATH %s", ErrCommandNotFound, name, path)
}

// lookupUser turns "", "uid", "uid:gid", "name" or "name:group" into ids,
// reading the container's /etc/passwd and /etc/group for names.
func lookupUser(user string) (uint32, uint32, error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid, err := lookupID("/etc/passwd", u)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", user, err)
	}
	if hasGroup {
		gid, _, err = lookupID("/etc/group", g)
		if err != nil {
			return 0, 0, fmt.Errorf("group %q: %w", g, err)
		}
	}
	return uid, gid, nil
}

// lookupID reads a number, or finds a name in a passwd-style file, and
// returns its id (field 3) and, for passwd, the group id (field 4).
func lookupID(file, name string) (uint32, uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), uint32(n), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, fmt.Errorf("not a number, and no %s: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 || fields[0] != name {
			continue
		}
		id, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil {
			break
		}
		second := id
		if len(fields) > 3 {
			if g, err := strconv.ParseUint(fields[3], 10, 32); err == nil {
				second = g
			}
		}
		return uint32(id), uint32(second), nil
	}
	return 0, 0, fmt.Errorf("no such entry in %s", file)
}

// reaper collects every child that ends, ours or orphans reparented to
// us: process 1 must, or they stay zombies. It reports the statuses of
// the processes it was asked to wait for. One place does all the
// waiting; os/exec's Wait would race with it.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]*process
	spawner *spawner
}

func newReaper() *reaper {
	return &reaper{waiting: map[int]*process{}}
}

// reap waits for every child that has ended. wait4(2)
func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return
		}
		if p, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			p.done <- exitCode(ws)
		}
	}
}

// exitCode is a shell's view of a wait status: the exit code, or 128+N
// after signal N.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// mountVolumes mounts the container's volumes and bind mounts, and the
// /etc/hosts, /etc/hostname and /etc/resolv.conf the monitor wrote, into
// the merged root, safely (see the volume package). A named volume that
// is still empty gets a copy of what the image has at its destination.
func (s *Store) mountVolumes(st *State, merged string) error {
	vols, err := s.Volumes()
	if err != nil {
		return err
	}
	mounts := append([]volume.Mount{}, st.Spec.Mounts...)
	for _, m := range mounts {
		if !m.Named {
			continue
		}
		v, err := vols.Get(m.Source)
		if err != nil {
			return err
		}
		if err := volume.SeedIn(v.Dir, merged, m.Destination); err != nil {
			return fmt.Errorf("seed volume %s: %w", m.Source, err)
		}
	}
	etc := filepath.Join(s.Dir(st.ID), "etc")
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		if _, err := os.Stat(filepath.Join(etc, name)); err == nil {
			mounts = append(mounts, volume.Mount{Source: filepath.Join(etc, name), Destination: "/etc/" + name})
		}
	}
	return volume.MountAll(merged, mounts, vols.Resolve)
}

// keptCapabilities are the capabilities a container's processes may have:
// Docker's default set, less CAP_MKNOD. Root inside is root outside
// (without --userns), so the rest must go: CAP_SYS_ADMIN
// (mount, and much more), CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_NET_ADMIN…
// Docker keeps CAP_MKNOD and blocks the devices with the devices cgroup;
// gocell has no devices cgroup, so a container must not make device
// nodes, through which it could open the host's disks. capabilities(7)
var keptCapabilities = map[int]bool{
	unix.CAP_CHOWN: true, unix.CAP_DAC_OVERRIDE: true, unix.CAP_FSETID: true,
	unix.CAP_FOWNER: true, unix.CAP_NET_RAW: true, unix.CAP_SETGID: true,
	unix.CAP_SETUID: true, unix.CAP_SETFCAP: true, unix.CAP_SETPCAP: true,
	unix.CAP_NET_BIND_SERVICE: true, unix.CAP_SYS_CHROOT: true,
	unix.CAP_KILL: true, unix.CAP_AUDIT_WRITE: true,
}

// spawner starts the container's processes, all from one OS thread whose
// capability bounding set holds only keptCapabilities. Capabilities belong
// to a thread, not to a process, and a child gets those of the thread
// that forked it; a program that root execs gets its bounding set as its
// capabilities. The init's other threads keep everything, which it needs
// to serve exec requests and mount nothing more; its children never do.
type spawner struct {
	requests chan spawnRequest
}

type spawnRequest struct {
	path  string
	args  []string
	attr  *os.ProcAttr
	reply chan spawnReply
}

type spawnReply struct {
	p   *os.Process
	err error
}

// newSpawner starts the spawner's thread and cuts its bounding set.
func newSpawner() (*spawner, error) {
	sp := &spawner{requests: make(chan spawnRequest)}
	ready := make(chan error)
	go func() {
		// Never unlocked: this thread is not like the others any more,
		// and no other goroutine may run on it.
		runtime.LockOSThread()
		if err := dropBoundingSet(); err != nil {
			ready <- err
			return
		}
		close(ready)
		for req := range sp.requests {
			p, err := os.StartProcess(req.path, req.args, req.attr)
			req.reply <- spawnReply{p, err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return sp, nil
}

// start starts a process from the spawner's thread.
func (sp *spawner) start(path string, args []string, attr *os.ProcAttr) (*os.Process, error) {
	reply := make(chan spawnReply)
	sp.requests <- spawnRequest{path, args, attr, reply}
	r := <-reply
	return r.p, r.err
}

// dropBoundingSet removes every capability but keptCapabilities from the
// calling thread's bounding set. prctl(2) PR_CAPBSET_DROP
func dropBoundingSet() error {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("capabilities: cap_last_cap: %w", err)
	}
	for c := 0; c <= last; c++ {
		if keptCapabilities[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("capabilities: drop %d from the bounding set: %w", c, err)
		}
	}
	return nil
}
