package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/gocell/gocell/final/internal/names"
	"github.com/gocell/gocell/final/internal/rootfs"
	"github.com/gocell/gocell/final/internal/spawn"
	"github.com/gocell/gocell/final/internal/volume"
	"golang.org/x/sys/unix"
)

// The file descriptors the monitor gives the init, after stdin, stdout
// and stderr: the init waits on the first until the host is ready, and
// reports on the second whether the command started.
const (
	fdHostReady = 3
	fdInitReady = 4
	fdUserns    = 5 // with --userns: the socket to the spawner (userns.go)
)

// RunInit is the container's process 1, started by the monitor in new
// namespaces. It never returns: it exits with the command's status.
func RunInit(s *Store, id string) {
	closeOnExec()
	report := os.NewFile(fdInitReady, "init-ready")
	fail := func(code int, err error) {
		failedReport(code, err).send(report)
		os.Exit(code)
	}
	// Wait until the monitor has put us in our cgroup (v1) and made our
	// network: a pipe, not a sleep.
	ready := os.NewFile(fdHostReady, "host-ready")
	msg, _ := io.ReadAll(ready)
	ready.Close()
	if string(msg) != "ok" {
		fail(ExitRuntime, errors.New("the monitor did not finish setting up"))
	}
	st, err := s.read(id)
	if err != nil {
		fail(ExitRuntime, err)
	}
	// No process of the container may look into ours: not dumpable, so
	// /proc/1/mem, environ, fd and exe are root's alone, and need
	// CAP_SYS_PTRACE, which no container process has. prctl(2)
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	dir := s.Dir(id)
	stdio, err := keepStdio(dir)
	if err != nil {
		fail(ExitRuntime, err)
	}
	// The filter is compiled once, here, for every process.
	sec, err := s.spawnConfig(st)
	if err != nil {
		fail(ExitRuntime, err)
	}
	if err := unix.Sethostname([]byte(st.Spec.Hostname)); err != nil {
		fail(ExitRuntime, fmt.Errorf("sethostname: %w", err))
	}
	// The exec socket is bound while the host's directories are still
	// reachable; the listening socket keeps working after pivot_root.
	os.Remove(filepath.Join(dir, "init.sock"))
	listener, err := listenUnix(dir, "init.sock")
	if err != nil {
		fail(ExitRuntime, fmt.Errorf("exec socket: %w", err))
	}
	unlockSeeds := func() {}
	opts := rootfs.Options{
		Layers: st.Spec.Layers,
		Upper:  filepath.Join(dir, "upper"),
		Work:   filepath.Join(dir, "work"),
		Merged: filepath.Join(dir, "merged"),
		Seed: func(merged string) (err error) {
			unlockSeeds, err = s.seedVolumes(st, merged)
			return err
		},
		BeforePivot: func(merged string) error {
			return s.mountVolumes(st, merged)
		},
	}
	if cloneFlags(st.Spec.Network)&unix.CLONE_NEWNET != 0 {
		if err := netSettings(st.Spec.UserNS); err != nil {
			fail(ExitRuntime, err)
		}
	}
	r := newReaper()
	if st.Spec.UserNS {
		// The spawner's user namespace: the layers are seen through its
		// id map.
		var userns int
		if r.helper, userns, err = newSpawnerClient(fdUserns); err != nil {
			fail(ExitRuntime, err)
		}
		defer unix.Close(userns)
		opts.UsernsFD, opts.IDMapped = userns, filepath.Join(dir, "idmapped")
	}
	err = rootfs.Setup(opts)
	unlockSeeds()
	if err != nil {
		fail(ExitRuntime, err)
	}
	if err := bringUpLoopback(); err != nil {
		fail(ExitRuntime, err)
	}
	if r.helper != nil {
		err = r.helper.configure(sec)
	} else {
		r.spawner, err = spawn.New(sec)
	}
	if err != nil {
		fail(ExitRuntime, err)
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals)
	main, err := startProcess(st.Spec, processRequest{
		Args: st.Spec.Args, Env: st.Spec.Env, Dir: st.Spec.WorkingDir,
		User: st.Spec.User, Tty: st.Spec.Tty,
	}, stdio, r)
	if err != nil {
		code := ExitCannotRun
		if errors.Is(err, ErrCommandNotFound) {
			code = ExitNotFound
		}
		fail(code, err)
	}
	startedReport(main.pid).send(report)
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

// keepStdio sets aside the container's stdin, stdout and stderr, which
// the init was started with, for the command, and points the init's own
// stderr at monitor.log: if the Go runtime ever prints a crash of the
// init (a process of the container can send it SIGSEGV with
// rt_sigqueueinfo(2), which Go takes for a fault), its stacks and
// addresses go to the host's log, not to the container's output.
func keepStdio(dir string) ([]*os.File, error) {
	var out []*os.File
	for fd, name := range []string{"stdin", "stdout", "stderr"} {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("dup %s: %w", name, err)
		}
		out = append(out, os.NewFile(uintptr(dup), name))
	}
	log, err := os.OpenFile(filepath.Join(dir, "monitor.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	if err := unix.Dup3(int(log.Fd()), 2, 0); err != nil {
		return nil, fmt.Errorf("stderr: %w", err)
	}
	return out, nil
}

// netSettings sets what a container's own network namespace needs, from
// inside it: /proc/sys/net shows the settings of the writer's network
// namespace, ours, not the host's. proc(5) /proc/sys/net
//
// IPv6 is off on every interface but lo. gocell's firewall rules are
// IPv4 only, so an IPv6 address (made from a router advertisement on
// the bridge, or set by a process inside) would reach past them.
//
// With --userns, anyone in the namespace may bind ports below 1024 and
// send pings, as Docker does: the command's root has no capabilities in
// a network namespace that belongs to the host's user namespace, so
// without these a web server on port 80 could not start.
func netSettings(userns bool) error {
	settings := map[string]string{}
	if entries, err := os.ReadDir("/proc/sys/net/ipv6/conf"); err == nil {
		for _, e := range entries {
			if e.Name() != "lo" && e.Name() != "all" {
				settings["/proc/sys/net/ipv6/conf/"+e.Name()+"/disable_ipv6"] = "1"
			}
		}
	}
	if userns {
		settings["/proc/sys/net/ipv4/ip_unprivileged_port_start"] = "0"
		settings["/proc/sys/net/ipv4/ping_group_range"] = "0 2147483647"
	}
	for path, value := range settings {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("network settings: %w", err)
		}
	}
	return nil
}

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

// startProcess starts a process in the container with the given stdio,
// from the spawner's thread (package spawn), which passes on only what a
// container's process may have. The image's environment comes first;
// the request's entries override it.
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
	if r.helper != nil {
		// --userns: the spawner, inside the user namespace, starts it.
		return r.helper.start(spawnerMsg{Path: path, Args: req.Args, Env: env, Dir: dir,
			UID: uid, GID: gid, Tty: req.Tty}, stdio)
	}
	attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
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
	p, err := r.spawner.Start(path, req.Args, &os.ProcAttr{Dir: dir, Env: env, Files: stdio, Sys: attr})
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
	f, err := openConfigFile(file)
	if err != nil {
		return 0, 0, fmt.Errorf("not a number, and no %s: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
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
	// One of the two starts the container's processes: the spawner
	// thread of the init, or with --userns the spawner process.
	spawner *spawn.Spawner
	helper  *spawnerClient
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

// seedVolumes copies into each named volume that is still empty what the
// image has at its destination (volume.SeedIn), as Docker does. It runs
// right after the overlay is mounted, before /proc, /sys and /dev: a
// destination that leads there through a symlink of the image then finds
// the image's own empty directories, never the kernel's files. Seeding
// writes into a volume that other containers may mount: one seed at a
// time, under the volume's seed.lock, and none into a volume a running
// container holds, since it could be changing it as we copy (SeedIn
// stays inside the volume even then, but the copy would be a mess);
// such a volume is mounted as it is. The locks are held until the
// caller calls the function returned, once its mounts are made.
func (s *Store) seedVolumes(st *State, merged string) (func(), error) {
	var unlocks []func()
	unlockAll := func() {
		for _, u := range unlocks {
			u()
		}
	}
	vols, err := s.Volumes()
	if err != nil {
		return unlockAll, err
	}
	for _, m := range st.Spec.Mounts {
		if !m.Named {
			continue
		}
		v, err := vols.Get(m.Source)
		if err != nil {
			return unlockAll, err
		}
		unlock, err := lockFile(filepath.Join(filepath.Dir(v.Dir), "seed.lock"))
		if err != nil {
			return unlockAll, err
		}
		unlocks = append(unlocks, unlock)
		if s.volumeInUse(st.ID, m.Source) {
			continue
		}
		if err := volume.SeedIn(v.Dir, merged, m.Destination); err != nil {
			return unlockAll, fmt.Errorf("seed volume %s: %w", m.Source, err)
		}
	}
	return unlockAll, nil
}

// mountVolumes mounts the container's volumes and bind mounts, and the
// /etc/hosts, /etc/hostname and /etc/resolv.conf the monitor wrote, into
// the merged root, safely (see the volume package).
func (s *Store) mountVolumes(st *State, merged string) error {
	vols, err := s.Volumes()
	if err != nil {
		return err
	}
	mounts := append([]volume.Mount{}, st.Spec.Mounts...)
	etc := filepath.Join(s.Dir(st.ID), "etc")
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		if _, err := os.Stat(filepath.Join(etc, name)); err == nil {
			mounts = append(mounts, volume.Mount{Source: filepath.Join(etc, name), Destination: "/etc/" + name})
		}
	}
	return volume.MountAll(merged, mounts, vols.Resolve)
}

// volumeInUse tells whether a container other than self is running (or
// paused) with the named volume name.
func (s *Store) volumeInUse(self, name string) bool {
	entries, _ := os.ReadDir(filepath.Join(s.Root, "containers"))
	for _, e := range entries {
		if e.Name() == self || !names.HexID(e.Name(), 64, 64) {
			continue
		}
		other, err := s.read(e.Name())
		if err != nil || (other.Status != Running && other.Status != Paused) ||
			!alive(other.Pid, other.PidStart) {
			continue
		}
		for _, m := range other.Spec.Mounts {
			if m.Named && m.Source == name {
				return true
			}
		}
	}
	return false
}

// openConfigFile opens a file of the image's that the init reads, such
// as /etc/passwd. The image made it, so it may be anything: a FIFO that
// would block the init forever, a device, a symlink into /proc. Only a
// regular file is read, opened without blocking and without following a
// symlink at its end; its size is bounded by the caller.
func openConfigFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, nil
}
