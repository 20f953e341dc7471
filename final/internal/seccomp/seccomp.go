// Package seccomp owns the system call filter of a container's
// processes: which profile applies (Docker's default, a JSON file of the
// user's, or none), its compilation into a classic BPF program, and
// installing that program on the calling thread. seccomp(2)
//
// Why a filter at all: without a user namespace, root in a container is
// root on the host, held back only by its capabilities, its mounts and
// its namespaces. Every system call is still a way into the kernel, and
// some are ways around those limits: unshare(CLONE_NEWUSER) makes a
// namespace in which the caller has every capability again (and can mount
// file systems there); keyctl reaches the kernel's keyrings, which are not
// namespaced; bpf, perf_event_open and userfaultfd have been the way in
// of many kernel exploits. Docker's default profile allows the about 370
// calls ordinary programs use and refuses the rest with EPERM; gocell
// applies the same profile, taken as data from Docker's own package
// (github.com/moby/profiles/seccomp) so that it stays Docker's.
//
// The compiler is gocell's own (compile.go), in pure Go, because it is
// short and the lesson is in it: the kernel runs a tiny program on every
// system call, looking at its number, its architecture and its
// arguments, and the program's return value says what happens. The
// syscall numbers of each architecture come from
// github.com/elastic/go-seccomp-bpf/arch, which generates them from the
// kernel's tables; libseccomp, which runc and crun use, would need cgo.
package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrInvalid means a profile cannot be used: bad JSON, an unknown action
// or operator, or a feature gocell does not implement.
var ErrInvalid = errors.New("invalid seccomp profile")

// Default is Docker's default profile for a process whose bounding set
// holds caps (names such as "CAP_CHOWN"). The profile depends on them:
// with CAP_SYS_ADMIN, for example, it allows mount(2) and clone(2) with
// namespace flags.
func Default(caps []string) (*specs.LinuxSeccomp, error) {
	p, err := profiles.GetDefaultProfile(specFor(caps))
	if err != nil {
		return nil, fmt.Errorf("seccomp: default profile: %w", err)
	}
	return p, nil
}

// Load reads a profile in Docker's JSON format (what
// `docker run --security-opt seccomp=FILE` takes), for a process whose
// bounding set holds caps.
func Load(path string, caps []string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return Parse(data, path, caps)
}

// Parse is Load of a profile already read; name says where it came from.
func Parse(data []byte, name string, caps []string) (*specs.LinuxSeccomp, error) {
	p, err := profiles.LoadProfile(string(data), specFor(caps))
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %v: %w", name, err, ErrInvalid)
	}
	if p == nil {
		return nil, fmt.Errorf("seccomp profile %s: no defaultAction and no "+
			"syscalls (use seccomp=unconfined for no filter): %w", name, ErrInvalid)
	}
	return p, nil
}

// specFor is the little of an OCI spec the profile package looks at.
func specFor(caps []string) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{
		Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
}

// Program is a compiled filter and the flags to install it with.
type Program struct {
	Filter []unix.SockFilter `json:"filter"`
	Flags  uint              `json:"flags,omitempty"`
}

// Install installs p on the calling thread only: no
// SECCOMP_FILTER_FLAG_TSYNC, since the thread is about to execve(2) and
// the new program keeps the filter of the thread that called it. The
// caller must have locked its OS thread, and must hold CAP_SYS_ADMIN or
// have set no_new_privs (prctl(2) PR_SET_NO_NEW_PRIVS), or the kernel
// refuses: otherwise a filter could trick a set-user-ID program into
// misbehaving.
func Install(p *Program) error {
	if len(p.Filter) == 0 {
		return errors.New("seccomp: empty filter")
	}
	prog := unix.SockFprog{Len: uint16(len(p.Filter)), Filter: &p.Filter[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP,
		unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags),
		uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(p)
	if errno != 0 {
		return fmt.Errorf("seccomp(2) SECCOMP_SET_MODE_FILTER: %w", errno)
	}
	return nil
}
