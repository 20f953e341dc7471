package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gocell/gocell/final/internal/seccomp"
	"github.com/gocell/gocell/final/internal/spawn"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rlimits are the resource limits by their spec names. getrlimit(2)
var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE,
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// capSets turns the spec's capability names into masks. No capabilities
// object means none at all.
func capSets(c *specs.LinuxCapabilities) (spawn.Sets, error) {
	var s spawn.Sets
	if c == nil {
		return s, nil
	}
	for _, set := range []struct {
		names []string
		mask  *uint64
		what  string
	}{
		{c.Bounding, &s.Bounding, "bounding"}, {c.Effective, &s.Effective, "effective"},
		{c.Permitted, &s.Permitted, "permitted"}, {c.Inheritable, &s.Inheritable, "inheritable"},
		{c.Ambient, &s.Ambient, "ambient"},
	} {
		m, err := spawn.Mask(set.names)
		if err != nil {
			return s, fmt.Errorf("process.capabilities.%s: %w", set.what, err)
		}
		*set.mask = m
	}
	return s, nil
}

// execProcess turns the calling process into the container's process:
// the last steps before execve(2), in the order that keeps each step
// allowed by the one before. It returns only with an error. It runs on
// the main thread, locked (see init.go): capabilities, no_new_privs and
// the seccomp filter belong to a thread, and execve keeps those of the
// thread that calls it.
//
// ready, if not nil, is called last, just before execve: exec reports
// then that the command is starting.
func execProcess(p *specs.Process, sc *specs.LinuxSeccomp, dieWithParent bool, ready func() error) error {
	// Nothing but stdin, stdout and stderr reaches the command: not
	// our sync socket, and not what the caller left open without
	// close-on-exec (a descriptor of a host directory would be a way
	// out of the root). close_range(2) CLOSE_RANGE_CLOEXEC (Linux 5.11)
	// marks them all now, before the seccomp filter, to be closed by
	// the execve(2) itself.
	if err := spawn.CloseOnExecFrom(3); err != nil {
		return err
	}
	caps, err := capSets(p.Capabilities)
	if err != nil {
		return err
	}
	var filter *seccomp.Program
	if sc != nil {
		if filter, err = seccomp.Compile(sc); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	for _, rl := range p.Rlimits {
		res, ok := rlimits[rl.Type]
		if !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s %d/%d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(fmt.Sprint(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("process.oomScoreAdj: %w", err)
		}
	}
	if p.ApparmorProfile != "" {
		if err := applyAppArmor(p.ApparmorProfile); err != nil {
			return err
		}
	}
	// Without no_new_privs, installing a filter needs CAP_SYS_ADMIN,
	// which the process is about to lose: install it now, while the
	// process still has it. Docker's profile allows what follows
	// (setgroups, setresuid, capset, prctl, execve).
	if filter != nil && !p.NoNewPrivileges {
		if err := seccomp.Install(filter); err != nil {
			return err
		}
	}
	if err := spawn.DropBounding(caps.Bounding); err != nil {
		return err
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := spawn.Apply(caps); err != nil {
		return err
	}
	if dieWithParent {
		// The change of user cleared it. prctl(2) PR_SET_PDEATHSIG
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return fmt.Errorf("pdeathsig: %w", err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
		if filter != nil {
			if err := seccomp.Install(filter); err != nil {
				return err
			}
		}
	}
	if ready != nil {
		if err := ready(); err != nil {
			return err
		}
	}
	// Equivalent to: exec COMMAND
	err = unix.Exec(path, p.Args, p.Env)
	return fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// setUser takes on the process's user: supplementary groups, gid, uid,
// in that order (each needs the privilege the next one drops), and the
// umask. PR_SET_KEEPCAPS keeps the permitted set across the change of
// uid, so that a user other than root can still be given capabilities.
// setresuid(2), capabilities(7) "Effect of user ID changes"
func setUser(u specs.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	return nil
}

// lookPath finds the command in the container, after pivot_root: as
// written if it has a slash, else along the PATH of the process's own
// environment, as execvp(3) does.
func lookPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		st, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("exec %s: %w", name, ErrExecutableNotFound)
		}
		if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("exec %s: %w", name, ErrNotExecutable)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		f := filepath.Join(dir, name)
		if st, err := os.Stat(f); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("exec %s: %w in PATH %s", name, ErrExecutableNotFound, path)
}

// ErrExecutableNotFound is the error for a command that is not in the
// container, ErrNotExecutable for one that is there but is not an
// executable file. A shell exits 127 and 126 for them.
var (
	ErrExecutableNotFound = errors.New("executable file not found")
	ErrNotExecutable      = errors.New("not an executable file (permission denied)")
)

// applyAppArmor asks the kernel to confine the command with profile from
// its execve(2) on: "exec PROFILE" in /proc/self/attr/apparmor/exec
// (before Linux 5.8, /proc/self/attr/exec). apparmor(7)
func applyAppArmor(profile string) error {
	enabled, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if strings.TrimSpace(string(enabled)) != "Y" {
		return fmt.Errorf("%w: process.apparmorProfile %q: AppArmor is not enabled on this machine",
			ErrUnsupported, profile)
	}
	err := os.WriteFile("/proc/self/attr/apparmor/exec", []byte("exec "+profile), 0)
	if errors.Is(err, os.ErrNotExist) {
		err = os.WriteFile("/proc/self/attr/exec", []byte("exec "+profile), 0)
	}
	if err != nil {
		return fmt.Errorf("process.apparmorProfile %q: %w", profile, err)
	}
	return nil
}
