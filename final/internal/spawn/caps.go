package spawn

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capNames are the capabilities by name, as capabilities(7), the OCI
// runtime spec and Docker's --cap-add spell them.
var capNames = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL,
	"CAP_SETGID": unix.CAP_SETGID, "CAP_SETUID": unix.CAP_SETUID,
	"CAP_SETPCAP": unix.CAP_SETPCAP, "CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE,
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST,
	"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_NET_RAW": unix.CAP_NET_RAW,
	"CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// DefaultCaps are the capabilities of a container's processes: Docker's
// default set, less CAP_MKNOD. Without --userns, root inside is root
// outside, so everything else must go: CAP_SYS_ADMIN (mount, and much
// more), CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_NET_ADMIN… Docker keeps
// CAP_MKNOD and forbids the devices themselves with the devices cgroup.
// gocell's containers have device rules too (every device denied but
// runc's defaults), and no CAP_MKNOD besides: two locks on the host's
// disks, for a capability few programs need. capabilities(7)
var DefaultCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
	"CAP_FOWNER", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP",
	"CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE"}

// Mask turns capability names into a bit mask; an unknown name is an
// error that names it.
func Mask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		c, ok := capNames[strings.ToUpper(n)]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q (see capabilities(7))", n)
		}
		m |= 1 << c
	}
	return m, nil
}

// Names turns a bit mask back into names, in numeric order.
func Names(mask uint64) []string {
	var out []string
	for n, c := range capNames {
		if mask&(1<<c) != 0 {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return capNames[out[i]] < capNames[out[j]] })
	return out
}

// lastCap is the highest capability this kernel knows. It asks the
// kernel itself (prctl(2) PR_CAPBSET_READ fails with EINVAL past the
// last), rather than reading /proc/sys/kernel/cap_last_cap: that is a
// file, and a file in a container's root is the container's to forge.
func lastCap() int {
	c := 0
	for ; c < 64; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break
		}
	}
	return c - 1
}

// Sets are the five capability sets of a process, as masks (see Mask).
// capabilities(7)
type Sets struct {
	Bounding, Effective, Permitted, Inheritable, Ambient uint64
}

// DropBounding removes from the calling thread's bounding set every
// capability not in keep. It needs CAP_SETPCAP. prctl(2) PR_CAPBSET_DROP
func DropBounding(keep uint64) error {
	last := lastCap()
	for c := 0; c <= last; c++ {
		if keep&(1<<c) == 0 {
			if err := prctl(unix.PR_CAPBSET_DROP, uintptr(c)); err != nil {
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
			}
		}
	}
	return nil
}

// Apply sets the calling thread's permitted, effective and inheritable
// sets (capset(2), version 3: two 32-bit words per set), then raises the
// ambient ones (prctl(2) PR_CAP_AMBIENT_RAISE). The bounding set is
// DropBounding's.
//
// Why the inheritable set matters: when root execs a program, the
// kernel gives it P' = (P(inh) & F(inh)) | (F(perm) & bounding), and for
// root every file bit counts as set. So a capability left inheritable by
// whoever ran the runtime would reach the container past its bounding
// set (CVE-2022-24769). Set to the spec's (none, in gocell's), the
// command gets exactly the bounding set as its permitted and effective
// sets, and nothing inheritable or ambient it was not given.
func Apply(s Sets) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.Effective), Permitted: uint32(s.Permitted), Inheritable: uint32(s.Inheritable)},
		{Effective: uint32(s.Effective >> 32), Permitted: uint32(s.Permitted >> 32), Inheritable: uint32(s.Inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	// EINVAL: a kernel without ambient capabilities (before 4.3).
	if err := prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL); err != nil && s.Ambient != 0 {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	// The kernel raises only what is both permitted and inheritable; an
	// ambient capability that is not is left out, as runc does (its
	// default config lists ambient capabilities it does not make
	// inheritable).
	for c := 0; c < 64; c++ {
		if s.Ambient&s.Permitted&s.Inheritable&(1<<c) != 0 {
			_, _, e := unix.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT,
				unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0, 0)
			if e != 0 {
				return fmt.Errorf("raise ambient capability %d: %w", c, e)
			}
		}
	}
	return nil
}

// LastCap is the highest capability number the kernel knows.
func LastCap() int { return lastCap() }

// CloseOnExecFrom marks every descriptor from first on close-on-exec:
// with close_range(2), or one by one from /proc/self/fd on a kernel
// without its CLOSE_RANGE_CLOEXEC (before 5.11). What a child is to
// have is handed over explicitly (dup2); nothing else may leak into a
// container. fcntl(2) FD_CLOEXEC, close_range(2)
func CloseOnExecFrom(first int) error {
	if unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// Adjust is the capability set base with add and drop applied, as
// Docker's --cap-add and --cap-drop: names with or without CAP_, in any
// case, or ALL (to add: those of this process's bounding set); drop wins
// over add, as in Docker. An unknown name is an
// error that names it.
func Adjust(base, add, drop []string) ([]string, error) {
	norm := func(n string) (string, error) {
		u := strings.ToUpper(n)
		if u == "ALL" {
			return u, nil
		}
		if !strings.HasPrefix(u, "CAP_") {
			u = "CAP_" + u
		}
		if _, ok := capNames[u]; !ok {
			return "", fmt.Errorf("unknown capability %q (see capabilities(7))", n)
		}
		return u, nil
	}
	have := map[string]bool{}
	for _, n := range base {
		have[n] = true
	}
	for _, n := range add {
		u, err := norm(n)
		if err != nil {
			return nil, err
		}
		if u == "ALL" {
			// All this process may hand on: its bounding set. A
			// capability outside it would fail capset(2) at the start.
			for name, c := range capNames {
				if n, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && n == 1 {
					have[name] = true
				}
			}
			continue
		}
		have[u] = true
	}
	for _, n := range drop {
		u, err := norm(n)
		if err != nil {
			return nil, err
		}
		if u == "ALL" {
			have = map[string]bool{}
			continue
		}
		delete(have, u)
	}
	var out []string
	for n := range have {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return capNames[out[i]] < capNames[out[j]] })
	return out, nil
}
