package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/persist"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec starts another process in a running container: in all of its
// namespaces, its cgroup and its root, with the process's own user,
// capabilities and terminal, under the container's seccomp filter.
//
// The hard part is the namespaces. setns(2) into a user namespace is
// refused to a process with more than one thread, and every Go program
// has several from its first instruction; a mount namespace needs a
// thread with file system information of its own. runc answers with
// nsexec, C code that runs before the Go runtime starts, through cgo.
// gocell-runtime is built without cgo, and asks a C program every Linux
// machine has to do the same: nsenter(1), single-threaded, joins the
// namespaces (and forks, as joining a PID namespace takes effect for
// children), then executes gocell-runtime again, as "__exec", inside
// the container. That process tells us it is there; we move it into the
// container's cgroup; it sets up the process and calls execve(2).
//
// The binary nsenter runs is a copy of ours in a sealed memfd
// (memfd_create(2), F_SEAL_WRITE), not our file: a process of the
// container could open /proc/PID/exe of it while it runs, and, were it
// our file, write to the host's gocell-runtime (CVE-2019-5736).
//
// With --detach, exec returns once the command runs; nsenter is then
// killed, so that the command is adopted by the caller's subreaper
// (conmon, containerd's shim), which waits for it. A child's new parent
// is looked for in the PID namespace of the parent that died: nsenter
// lives in the host's, where the subreaper is.

// ExecOptions are exec's flags.
type ExecOptions struct {
	Process       *specs.Process
	Detach        bool
	PidFile       string
	ConsoleSocket string
	// Console, instead of ConsoleSocket: a connected unix socket, as
	// in CreateOptions.
	Console *os.File
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// execConfig is what the "__exec" process needs.
type execConfig struct {
	Process *specs.Process      `json:"process"`
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
	Console bool                `json:"console"`
	// CgroupNS is the descriptor of the container's cgroup namespace,
	// which __exec joins itself, or 0.
	CgroupNS int `json:"cgroupNS,omitempty"`
}

// nsenterFlags are nsenter(1)'s options for each namespace.
var nsenterFlags = map[specs.LinuxNamespaceType]string{
	specs.MountNamespace: "--mount", specs.UTSNamespace: "--uts", specs.IPCNamespace: "--ipc",
	specs.NetworkNamespace: "--net", specs.PIDNamespace: "--pid", specs.CgroupNamespace: "--cgroup",
	specs.UserNamespace: "--user", specs.TimeNamespace: "--time",
}

// SpecProcess is a copy of the container's process as its config.json
// gives it: what exec starts from when its caller gives only a command
// (runc does the same), so that the spec's rlimits, no_new_privs,
// AppArmor profile and capabilities hold for exec'd processes too.
func (r *Runtime) SpecProcess(id string) (*specs.Process, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(rec.Spec.Process)
	if err != nil {
		return nil, err
	}
	var p specs.Process
	return &p, json.Unmarshal(data, &p)
}

// Exec runs o.Process in container id, and returns its exit code (0 with
// Detach, once it runs).
func (r *Runtime) Exec(id string, o ExecOptions) (int, error) {
	rec, err := r.load(id)
	if err != nil {
		return -1, err
	}
	if st := r.status(rec); st != specs.StateRunning {
		return -1, fmt.Errorf("%s is %s: exec needs a running container", id, st)
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return -1, errors.New("exec: no command")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if !filepath.IsAbs(p.Cwd) {
		return -1, fmt.Errorf("exec: process.cwd %q: the spec wants an absolute path", p.Cwd)
	}
	if p.Capabilities == nil {
		p.Capabilities = rec.Spec.Process.Capabilities
	}
	if p.Terminal && o.ConsoleSocket == "" && o.Console == nil {
		return -1, errors.New("exec: a terminal needs --console-socket")
	}
	nsenterPath, err := exec.LookPath("nsenter")
	if err != nil {
		return -1, errors.New("exec: nsenter(1) is needed (util-linux)")
	}
	self, err := selfCopy()
	if err != nil {
		return -1, err
	}
	defer self.Close()
	// nsenter runs from a sealed copy as well: its forked child is, for
	// a moment, nsenter in the container's PID namespace, and its
	// /proc/PID/exe must not be the host's binary either.
	nsenter, err := sealedCopy(nsenterPath, "nsenter")
	if err != nil {
		return -1, err
	}
	defer nsenter.Close()
	// The mount namespace is joined by __exec itself, not by nsenter:
	// nsenter would then run the copy through the container's /proc,
	// where a process with CAP_SYS_ADMIN could have mounted anything on
	// /proc/self. Opened here, on the host, it is handed down.
	mnt, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", rec.Pid))
	if err != nil {
		return -1, fmt.Errorf("exec: the container's mount namespace: %w", err)
	}
	defer mnt.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	sync := os.NewFile(uintptr(pair[0]), "sync")
	child := os.NewFile(uintptr(pair[1]), "sync-child")
	defer sync.Close()
	files := []*os.File{self, child, mnt, nsenter}
	if p.Terminal {
		f, err := consoleFile(o.Console, o.ConsoleSocket)
		if err != nil {
			return -1, err
		}
		defer f.Close()
		files = append(files, f)
	}
	args := []string{"--target", strconv.Itoa(rec.Pid)}
	cgroupNS := 0
	for _, ns := range rec.Spec.Linux.Namespaces {
		switch {
		case ns.Type == specs.CgroupNamespace:
			// Joined by __exec too: busybox's nsenter, the one of
			// small systems, has no --cgroup. setns(2) of a cgroup
			// namespace is allowed to one thread of many.
			f, err := os.Open(fmt.Sprintf("/proc/%d/ns/cgroup", rec.Pid))
			if err != nil {
				return -1, fmt.Errorf("exec: the container's cgroup namespace: %w", err)
			}
			defer f.Close()
			cgroupNS = 3 + len(files)
			files = append(files, f)
		case ns.Type != specs.MountNamespace && nsenterFlags[ns.Type] != "":
			args = append(args, nsenterFlags[ns.Type])
		}
	}
	args = append(args, "--", "/proc/self/fd/3", execArg)
	cmd := exec.Command("/proc/self/fd/6", args...)
	cmd.Args[0] = "nsenter"
	setStdio(cmd, o.Stdin, o.Stdout, o.Stderr)
	cmd.ExtraFiles = files
	cmd.Env = []string{}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec: start nsenter: %w", err)
	}
	child.Close()
	fail := func(err error) (int, error) {
		// The process ends by itself once the sync socket closes (or
		// has, after it reported the error); nsenter, waiting for it,
		// reaps it. Killed first, nsenter would leave it to the
		// container's pid 1, which may never reap it.
		sync.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		return -1, err
	}
	cfg := &execConfig{Process: p, Seccomp: rec.Spec.Linux.Seccomp, Console: p.Terminal, CgroupNS: cgroupNS}
	if err := send(sync, message{Type: "exec", Exec: cfg}); err != nil {
		return fail(err)
	}
	if err := expect(sync, "ready"); err != nil {
		return fail(fmt.Errorf("exec: %w", err))
	}
	pid, err := childOf(cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	if err := cgroups.Load(rec.Cgroup).Apply(pid); err != nil {
		return fail(err)
	}
	if err := send(sync, message{Type: "go"}); err != nil {
		return fail(err)
	}
	// The process says when it has set everything up, and waits for a
	// last word before execve(2).
	if err := expect(sync, "exec"); err != nil {
		return fail(fmt.Errorf("exec: %w", err))
	}
	if o.Detach {
		// nsenter goes first, so that the command is the subreaper's
		// child before it can end: else nsenter would reap it, and the
		// caller (conmon) would never learn its exit status.
		cmd.Process.Kill()
		cmd.Wait()
	}
	if err := send(sync, message{Type: "go"}); err != nil {
		return fail(err)
	}
	// From here it is the command. (End of file of the socket could
	// not say when: nsenter holds it open as well.)
	awaitExecve(pid)
	if o.PidFile != "" {
		if err := persist.WriteFile(o.PidFile, []byte(strconv.Itoa(pid)), 0o644, true); err != nil {
			return fail(fmt.Errorf("--pid-file: %w", err))
		}
	}
	if o.Detach {
		return 0, nil
	}
	return ExitCode(cmd.Wait()), nil
}

// awaitExecve waits, briefly, until the process has become the command:
// its /proc/PID/exe no longer names our copy (selfCopy), or it is gone.
// Only then may exec --detach and start return: their callers read the
// process's /proc.
func awaitExecve(pid int) {
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	self, _ := os.Readlink("/proc/self/exe")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		target, err := os.Readlink(exe)
		if err != nil || !strings.HasPrefix(target, "/memfd:gocell-runtime") && target != self {
			return
		}
	}
}

// childOf finds the one child of pid (nsenter's, after its fork), from
// the parent pid in each /proc/PID/stat. proc_pid_stat(5)
func childOf(pid int) (int, error) {
	want := strconv.Itoa(pid)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			i := strings.LastIndexByte(string(data), ')')
			f := strings.Fields(string(data[i+1:]))
			if len(f) > 1 && f[1] == want {
				return strconv.Atoi(e.Name())
			}
		}
	}
	return 0, fmt.Errorf("exec: nsenter (pid %d) started no process", pid)
}

// selfCopy is the binary the container's process, and exec's, run until
// they execute the command: a sealed copy of ours, or our own file if
// it is on a read-only mount, which no process can write through its
// /proc/PID/exe either (gocell's engine runs from one, see
// final/internal/container/exe.go), and which costs no copy.
func selfCopy() (*os.File, error) {
	if f, err := os.Open("/proc/self/exe"); err == nil {
		var fs unix.Statfs_t
		if unix.Fstatfs(int(f.Fd()), &fs) == nil && fs.Flags&unix.ST_RDONLY != 0 {
			return f, nil
		}
		f.Close()
	}
	return sealedCopy("/proc/self/exe", "gocell-runtime")
}

// sealedCopy copies a program (our own binary, /proc/self/exe, or
// nsenter) into a memfd named name and seals it, so that nothing can
// change it: F_SEAL_WRITE, SHRINK, GROW, then SEAL. memfd_create(2),
// fcntl(2) "File Sealing"
func sealedCopy(path, name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	src, err := os.Open(path)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer src.Close()
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal the copy: %w", err)
	}
	return f, nil
}

// ExecInit is the "__exec" process, in the container's namespaces but
// its mount namespace: it never returns. Its descriptors: 3 the sealed
// binary, 4 the sync socket, 5 the container's mount namespace, 6
// nsenter's sealed copy, 7 the console socket, with a terminal.
func ExecInit() {
	noDump()
	debug.SetGCPercent(-1) // as in Init

	unix.Close(3)
	unix.Close(6)
	sync := os.NewFile(4, "sync")
	err := execContainer(sync)
	if send(sync, errorMessage(err)) != nil {
		fmt.Fprintf(os.Stderr, "gocell-runtime: %v\n", err)
	}
	os.Exit(execFailure(err))
}

func execContainer(sync *os.File) error {
	m, err := recv(sync)
	if err != nil {
		return err
	}
	c := m.Exec
	if m.Type != "exec" || c == nil {
		return fmt.Errorf("sync: expected the process, got %q", m.Type)
	}
	// Equivalent to: nsenter --mount=/proc/PID/ns/mnt, on this thread
	// (joinNamespaces says why CLONE_FS first). setns(2) makes the
	// namespace's root this thread's root and working directory.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	if err := unix.Setns(5, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join the container's mount namespace: %w", err)
	}
	unix.Close(5)
	if c.CgroupNS != 0 {
		// Equivalent to: nsenter --cgroup=/proc/PID/ns/cgroup
		if err := unix.Setns(c.CgroupNS, unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("join the container's cgroup namespace: %w", err)
		}
		unix.Close(c.CgroupNS)
	}
	if err := send(sync, message{Type: "ready"}); err != nil {
		return err
	}
	if m, err = recv(sync); err != nil || m.Type != "go" {
		return fmt.Errorf("sync: expected go: %v", err)
	}
	if c.Console {
		if err := setupConsole(os.NewFile(7, "console"), c.Process.ConsoleSize, false); err != nil {
			return err
		}
	}
	if err := unix.Chdir(c.Process.Cwd); err != nil {
		return fmt.Errorf("process.cwd %s: %w", c.Process.Cwd, err)
	}
	return execProcess(c.Process, c.Seccomp, false, func() error {
		if err := send(sync, message{Type: "exec"}); err != nil {
			return err
		}
		if m, err := recv(sync); err != nil || m.Type != "go" {
			return fmt.Errorf("sync: expected go: %v", err)
		}
		return nil
	})
}
