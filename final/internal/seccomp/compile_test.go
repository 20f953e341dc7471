package seccomp

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set, less CAP_MKNOD as gocell.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
	"CAP_FOWNER", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP",
	"CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE"}

// vm runs a compiled filter on made-up system calls, as the kernel would.
type vm struct {
	t  *testing.T
	vm *bpf.VM
}

func newVM(t *testing.T, p *Program) *vm {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(p.Filter))
	for i, f := range p.Filter {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	require.True(t, ok, "every instruction is one the VM knows")
	m, err := bpf.NewVM(insns)
	require.NoError(t, err)
	return &vm{t, m}
}

// call returns the verdict for system call nr of architecture auditArch.
// x/net/bpf loads words big-endian, as network packets are; the kernel
// loads them in the machine's order. So each 32-bit word of the struct
// is written big-endian here, at the offset where the kernel has it.
func (v *vm) call(auditArch uint32, nr uint32, args ...uint64) uint32 {
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], auditArch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(a>>32))
	}
	out, err := v.vm.Run(data)
	require.NoError(v.t, err)
	return uint32(out)
}

// native is a call of this machine's own ABI, by name.
func (v *vm) native(name string, args ...uint64) uint32 {
	info, err := arch.GetInfo("")
	require.NoError(v.t, err)
	nr, ok := info.SyscallNames[name]
	require.True(v.t, ok, name)
	return v.call(uint32(info.ID), uint32(nr), args...)
}

const (
	allow = unix.SECCOMP_RET_ALLOW
	eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
)

func TestDefaultProfile(t *testing.T) {
	p, err := Default(dockerCaps)
	require.NoError(t, err)
	prog, err := Compile(p)
	require.NoError(t, err)
	v := newVM(t, prog)

	for _, name := range []string{"read", "write", "openat", "execve", "exit_group", "capset", "setresuid", "prctl"} {
		assert.Equal(t, uint32(allow), v.native(name), name)
	}
	// What a container must not do without CAP_SYS_ADMIN and friends.
	for _, name := range []string{"mount", "unshare", "setns", "keyctl", "add_key",
		"request_key", "bpf", "perf_event_open", "userfaultfd", "init_module", "pivot_root"} {
		assert.Equal(t, uint32(eperm), v.native(name), name)
	}
	// clone: allowed without namespace flags, refused with them.
	assert.Equal(t, uint32(allow), v.native("clone", uint64(unix.SIGCHLD)))
	assert.Equal(t, uint32(allow), v.native("clone", unix.CLONE_VM|unix.CLONE_THREAD))
	assert.Equal(t, uint32(eperm), v.native("clone", unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)))
	assert.Equal(t, uint32(eperm), v.native("clone", unix.CLONE_NEWNS))
	// clone3's flags are in memory the filter cannot read: ENOSYS makes
	// libc fall back to clone.
	assert.Equal(t, uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)), v.native("clone3"))
	// personality: only the listed values; socket: not AF_VSOCK (40).
	assert.Equal(t, uint32(allow), v.native("personality", 0))
	assert.Equal(t, uint32(allow), v.native("personality", 0xffffffff))
	assert.Equal(t, uint32(eperm), v.native("personality", 0x0040000)) // ADDR_NO_RANDOMIZE
	assert.Equal(t, uint32(allow), v.native("socket", unix.AF_INET))
	assert.Equal(t, uint32(allow), v.native("socket", unix.AF_NETLINK))
	assert.Equal(t, uint32(eperm), v.native("socket", unix.AF_VSOCK))
	// The high word counts: 2^32 + AF_INET is not AF_INET.
	assert.Equal(t, uint32(eperm), v.native("socket", 1<<32|unix.AF_INET))
	// A number no kernel has yet, and an architecture nobody allowed.
	info, _ := arch.GetInfo("")
	assert.Equal(t, uint32(eperm), v.call(uint32(info.ID), 999))
	assert.Equal(t, uint32(unix.SECCOMP_RET_KILL_PROCESS), v.call(0x12345678, 0))

	if runtime.GOARCH == "amd64" {
		// 32-bit programs: i386's numbers, checked as i386's. Number 21
		// is mount on i386 (access on x86_64).
		i386 := uint32(arch.I386.ID)
		assert.Equal(t, uint32(eperm), v.call(i386, 21), "i386 mount")
		assert.Equal(t, uint32(allow), v.call(i386, 3), "i386 read")
		assert.Equal(t, uint32(allow), v.native("access"), "x86_64 access")
		// x32: x86_64's audit architecture, numbers with the x32 bit;
		// execve is x32's own 520, never x86_64's 59, in every run.
		assert.Equal(t, uint32(allow), v.call(uint32(arch.X86_64.ID), x32Bit|0), "x32 read")
		assert.Equal(t, uint32(eperm), v.call(uint32(arch.X86_64.ID), x32Bit|165), "x32 mount")
		for i := 0; i < 5; i++ {
			prog, err := Compile(p)
			require.NoError(t, err)
			v := newVM(t, prog)
			assert.Equal(t, uint32(allow), v.call(uint32(arch.X86_64.ID), x32Bit|520), "x32 execve")
			assert.Equal(t, uint32(eperm), v.call(uint32(arch.X86_64.ID), x32Bit|59), "x32's 59")
		}
	}

	// With CAP_SYS_ADMIN the profile lets the same calls through.
	p, err = Default(append(dockerCaps, "CAP_SYS_ADMIN"))
	require.NoError(t, err)
	prog, err = Compile(p)
	require.NoError(t, err)
	v = newVM(t, prog)
	assert.Equal(t, uint32(allow), v.native("mount"))
	assert.Equal(t, uint32(allow), v.native("clone", unix.CLONE_NEWUSER))
}

// TestOperators checks each comparison on both halves of 64 bits.
func TestOperators(t *testing.T) {
	errno := func(n uint) *uint { return &n }
	cases := []struct {
		op     specs.LinuxSeccompOperator
		value  uint64
		value2 uint64
		pass   []uint64
		fail   []uint64
	}{
		{specs.OpEqualTo, 5, 0, []uint64{5}, []uint64{4, 6, 1<<32 | 5}},
		{specs.OpNotEqual, 5, 0, []uint64{4, 6, 1<<32 | 5}, []uint64{5}},
		{specs.OpGreaterThan, 1<<32 | 5, 0, []uint64{1<<32 | 6, 2 << 32}, []uint64{1<<32 | 5, 1<<32 | 4, 7}},
		{specs.OpGreaterEqual, 1<<32 | 5, 0, []uint64{1<<32 | 5, 2 << 32}, []uint64{1<<32 | 4, 0xffffffff}},
		{specs.OpLessThan, 1<<32 | 5, 0, []uint64{1<<32 | 4, 0xffffffff}, []uint64{1<<32 | 5, 2 << 32}},
		{specs.OpLessEqual, 1<<32 | 5, 0, []uint64{1<<32 | 5, 7}, []uint64{1<<32 | 6, 2 << 32}},
		{specs.OpMaskedEqual, 0xff00000000f0, 0x120000000030, []uint64{0x12000000003f, 0x1200ffff0030},
			[]uint64{0x130000000030, 0x120000000040}},
	}
	for _, c := range cases {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errno(99),
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 2, Op: c.op, Value: c.value, ValueTwo: c.value2}}}}}
		prog, err := Compile(p)
		require.NoError(t, err)
		v := newVM(t, prog)
		for _, x := range c.pass {
			assert.Equal(t, uint32(allow), v.native("read", 0, 0, x), "%s %#x: %#x passes", c.op, c.value, x)
		}
		for _, x := range c.fail {
			assert.Equal(t, uint32(unix.SECCOMP_RET_ERRNO|99), v.native("read", 0, 0, x),
				"%s %#x: %#x fails", c.op, c.value, x)
		}
	}
}

// TestBadProfiles: what the compiler cannot do, it refuses by name.
func TestBadProfiles(t *testing.T) {
	_, err := Compile(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_SOMETHING"})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "SCMP_ACT_SOMETHING")
	_, err = Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/x"})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}})
	assert.ErrorContains(t, err, "argument index 6")

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte("{not json"), 0o600))
	_, err = Load(bad, dockerCaps)
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, bad)
	empty := filepath.Join(dir, "empty.json")
	require.NoError(t, os.WriteFile(empty, []byte("{}"), 0o600))
	_, err = Load(empty, dockerCaps)
	assert.ErrorContains(t, err, "unconfined")
	_, err = Load(filepath.Join(dir, "missing.json"), dockerCaps)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
