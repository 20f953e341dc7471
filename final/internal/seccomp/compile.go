package seccomp

import (
	"fmt"
	"runtime"
	"sort"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// How the filter looks, as the kernel runs it on every system call.
//
// The kernel hands the program a struct seccomp_data (seccomp(2)):
//
//	offset 0   int   nr                  the system call's number
//	offset 4   u32   arch                AUDIT_ARCH_X86_64, …
//	offset 8   u64   instruction_pointer
//	offset 16  u64   args[6]             the arguments, 8 bytes each
//
// and the program is classic BPF: an accumulator A, loads of 32-bit words
// from that struct, compares that jump forward, and a return whose value
// is the verdict (SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO|EPERM, …). The
// one we make reads, in this order:
//
//	A = arch
//	for each architecture of the profile:  if A == AUDIT_ARCH_… goto arch_N
//	return KILL_PROCESS                    an architecture nobody allowed
//	arch_N:
//	A = nr
//	for each system call with rules:       if A == NR goto rules_NR
//	return the default action (EPERM)
//	rules_NR:
//	for each rule: if its argument tests all pass, return its action
//	return the default action
//
// The architecture check comes first because the same number means
// different calls on different ABIs: on x86_64, 32-bit programs use the
// i386 table (number 21 is mount there, access on x86_64), so a filter
// that forgot to check could be walked around by switching ABI.
//
// Classic BPF jumps only forward, by at most 255 instructions in a
// conditional jump. A profile has hundreds of calls, so every far target
// is reached through "ja" (jump always, 32-bit offset), and conditional
// jumps only skip over the next instruction or two.

// The offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks a system call of the x32 ABI, which shares x86_64's
// audit architecture: its numbers are x86_64-like with this bit set.
const x32Bit = 0x40000000

// archFor maps the profile's architectures to their syscall tables.
var archFor = map[specs.Arch]*arch.Info{
	specs.ArchX86_64:  arch.X86_64,
	specs.ArchX86:     arch.I386,
	specs.ArchX32:     arch.X32,
	specs.ArchAARCH64: arch.AARCH64,
	specs.ArchARM:     arch.ARM,
}

// nativeArch is this machine's architecture in the profile's words.
func nativeArch() (specs.Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	case "386":
		return specs.ArchX86, nil
	case "arm":
		return specs.ArchARM, nil
	}
	return "", fmt.Errorf("seccomp: no syscall table for %s: %w", runtime.GOARCH, ErrInvalid)
}

// rule is one entry of a profile for one system call: return action if
// every argument test passes.
type rule struct {
	action uint32
	args   []specs.LinuxSeccompArg
}

// Compile turns a profile into a BPF program for this machine. Names the
// syscall tables do not know (calls of newer kernels, or of other
// architectures) are skipped, as runc and crun skip them: such a call
// gets the default action. Anything else the compiler does not implement
// is refused by name, never ignored.
func Compile(p *specs.LinuxSeccomp) (*Program, error) {
	if p.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp: listenerPath (SCMP_ACT_NOTIFY) is not "+
			"supported: %w", ErrInvalid)
	}
	def, err := actionValue(p.DefaultAction, p.DefaultErrnoRet, p.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	flags, err := filterFlags(p.Flags)
	if err != nil {
		return nil, err
	}
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	// The architectures to allow: the native one always, and those of
	// the profile that this machine can run (x86 and x32 on x86_64, arm
	// on aarch64).
	arches := []specs.Arch{native}
	for _, a := range p.Architectures {
		if a != native && runsOn(a, native) && archFor[a] != nil {
			arches = append(arches, a)
		}
	}
	a := &asm{}
	a.load(offArch)
	auditArch := map[specs.Arch]uint32{}
	var x32 bool
	for _, ar := range arches {
		if ar == specs.ArchX32 {
			x32 = true // tested inside x86_64's block, by the number
			continue
		}
		auditArch[ar] = uint32(archFor[ar].ID)
		a.jumpIfEqual(auditArch[ar], "arch:"+string(ar))
	}
	a.ret(unix.SECCOMP_RET_KILL_PROCESS)
	for _, ar := range arches {
		if ar == specs.ArchX32 {
			continue
		}
		a.label("arch:" + string(ar))
		a.load(offNr)
		if ar == specs.ArchX86_64 {
			// x32 calls carry the x32 bit: they have a table of their
			// own, or are refused like an unknown architecture.
			a.jumpIfSet(x32Bit, "x32")
		}
		if err := a.syscalls(string(ar), archFor[ar], p, def, 0); err != nil {
			return nil, err
		}
		if ar == specs.ArchX86_64 {
			a.label("x32")
			if !x32 {
				a.ret(unix.SECCOMP_RET_KILL_PROCESS)
				continue
			}
			if err := a.syscalls("x32", arch.X32, p, def, x32Bit); err != nil {
				return nil, err
			}
		}
	}
	filter, err := a.assemble()
	if err != nil {
		return nil, err
	}
	if len(filter) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: the filter has %d instructions, more "+
			"than the kernel's %d: %w", len(filter), unix.BPF_MAXINSNS, ErrInvalid)
	}
	return &Program{Filter: filter, Flags: flags}, nil
}

// runsOn says whether programs of architecture a run on native.
func runsOn(a, native specs.Arch) bool {
	switch native {
	case specs.ArchX86_64:
		return a == specs.ArchX86 || a == specs.ArchX32
	case specs.ArchAARCH64:
		return a == specs.ArchARM
	}
	return false
}

// syscalls emits one architecture's part: the dispatch on the number
// (already in A), then each call's rules. bit is added to every number
// (the x32 bit).
func (a *asm) syscalls(tag string, info *arch.Info, p *specs.LinuxSeccomp,
	def uint32, bit uint32) error {
	numbers := syscallNumbers(info)
	rules := map[uint32][]rule{}
	for _, sc := range p.Syscalls {
		act, err := actionValue(sc.Action, sc.ErrnoRet, p.DefaultErrnoRet)
		if err != nil {
			return err
		}
		for _, arg := range sc.Args {
			if err := checkArg(arg); err != nil {
				return fmt.Errorf("seccomp: %v: %w", sc.Names, err)
			}
		}
		for _, name := range sc.Names {
			nr, ok := numbers[name]
			if !ok {
				continue // not a call of this architecture or kernel
			}
			k := uint32(nr) | bit
			rules[k] = append(rules[k], rule{act, sc.Args})
		}
	}
	nrs := make([]uint32, 0, len(rules))
	for nr := range rules {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	// The dispatch. A call with one unconditional rule returns at once;
	// the others jump to their rules below.
	for _, nr := range nrs {
		rs := ordered(rules[nr])
		if len(rs[0].args) == 0 {
			a.retIfEqual(nr, rs[0].action)
			continue
		}
		a.jumpIfEqual(nr, fmt.Sprintf("%s:%d", tag, nr))
	}
	a.ret(def)
	for _, nr := range nrs {
		rs := ordered(rules[nr])
		if len(rs[0].args) == 0 {
			continue
		}
		a.label(fmt.Sprintf("%s:%d", tag, nr))
		for i, r := range rs {
			next := fmt.Sprintf("%s:%d:%d", tag, nr, i+1)
			for j, arg := range r.args {
				a.argTest(arg, next, fmt.Sprintf("%s:%d:%d:%d", tag, nr, i, j))
			}
			a.ret(r.action)
			a.label(next)
		}
		a.ret(def)
	}
	return nil
}

// syscallNumbers maps names to numbers for info's table. A name can have
// two numbers: x32's table lists 13 and 512 for rt_sigaction, the first
// being the x86_64 call, not usable from x32, the second x32's own. The
// higher wins, always: the table's own name map is made by inverting
// number to name, so which one it keeps changes from run to run.
func syscallNumbers(info *arch.Info) map[string]int {
	out := make(map[string]int, len(info.SyscallNumbers))
	for nr, name := range info.SyscallNumbers {
		if old, ok := out[name]; !ok || nr > old {
			out[name] = nr
		}
	}
	return out
}

// ordered puts the rules with argument tests first, in profile order, and
// the first unconditional rule last: it catches what the others did not.
func ordered(rs []rule) []rule {
	var out []rule
	var catchAll *rule
	for i := range rs {
		switch {
		case len(rs[i].args) > 0:
			out = append(out, rs[i])
		case catchAll == nil:
			catchAll = &rs[i]
		}
	}
	if catchAll != nil {
		out = append(out, *catchAll)
	}
	if len(out) > 0 && len(out[0].args) == 0 {
		return out[:1]
	}
	return out
}

// checkArg refuses argument tests the compiler cannot express.
func checkArg(arg specs.LinuxSeccompArg) error {
	if arg.Index > 5 {
		return fmt.Errorf("argument index %d (0 to 5): %w", arg.Index, ErrInvalid)
	}
	switch arg.Op {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
		return nil
	}
	return fmt.Errorf("operator %q: %w", arg.Op, ErrInvalid)
}

// actionValue is an action as the filter returns it. errnoRet is the
// rule's errno, fallback the profile's default errno; EPERM without either.
func actionValue(act specs.LinuxSeccompAction, errnoRet, fallback *uint) (uint32, error) {
	errno := uint32(unix.EPERM)
	if fallback != nil {
		errno = uint32(*fallback)
	}
	if errnoRet != nil {
		errno = uint32(*errnoRet)
	}
	switch act {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | errno&unix.SECCOMP_RET_DATA, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | errno&unix.SECCOMP_RET_DATA, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	}
	return 0, fmt.Errorf("seccomp: action %q is not supported: %w", act, ErrInvalid)
}

// filterFlags turns the profile's flags into seccomp(2)'s.
func filterFlags(flags []specs.LinuxSeccompFlag) (uint, error) {
	var out uint
	for _, f := range flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			out |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			out |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		default:
			return 0, fmt.Errorf("seccomp: flag %q is not supported: %w", f, ErrInvalid)
		}
	}
	return out, nil
}

// argTest emits the test of one 64-bit argument: fall through when it
// passes, jump to fail when it does not. The argument is two 32-bit
// words, the low one first on little-endian machines; a 64-bit compare
// is a compare of the high words, and of the low ones when those are
// equal. prefix names the test's own labels.
func (a *asm) argTest(arg specs.LinuxSeccompArg, fail, prefix string) {
	lo := uint32(offArgs + 8*arg.Index)
	hi := lo + 4
	v := arg.Value
	vhi, vlo := uint32(v>>32), uint32(v)
	pass := prefix + ":pass"
	switch arg.Op {
	case specs.OpEqualTo:
		a.load(hi)
		a.jumpIfNotEqual(vhi, fail)
		a.load(lo)
		a.jumpIfNotEqual(vlo, fail)
	case specs.OpNotEqual:
		a.load(hi)
		a.jumpIfNotEqual(vhi, pass)
		a.load(lo)
		a.jumpIfEqual(vlo, fail)
	case specs.OpMaskedEqual:
		// (arg & Value) == ValueTwo: Value is the mask.
		mhi, mlo := vhi, vlo
		dhi, dlo := uint32(arg.ValueTwo>>32), uint32(arg.ValueTwo)
		a.load(hi)
		a.and(mhi)
		a.jumpIfNotEqual(dhi, fail)
		a.load(lo)
		a.and(mlo)
		a.jumpIfNotEqual(dlo, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual:
		// arg > v, or arg >= v; the other two are their negations.
		strict := arg.Op == specs.OpGreaterThan || arg.Op == specs.OpLessEqual
		yes, no := pass, fail
		if arg.Op == specs.OpLessThan || arg.Op == specs.OpLessEqual {
			yes, no = fail, pass
		}
		a.load(hi)
		a.jumpIfGreater(vhi, yes)
		a.jumpIfNotEqual(vhi, no)
		a.load(lo)
		if strict {
			a.jumpIfGreater(vlo, yes)
		} else {
			a.jumpIfGreaterEqual(vlo, yes)
		}
		a.jump(no)
	}
	a.label(pass)
}

// asm is a tiny assembler with named labels. Conditional jumps only skip
// the next instruction, which is a "ja" to the label: so no conditional
// offset is ever larger than 1, however far the label.
type asm struct {
	insns  []unix.SockFilter
	labels map[string]int
	jumps  map[int]string // index of a ja → its label
}

func (a *asm) emit(code uint16, jt, jf uint8, k uint32) {
	a.insns = append(a.insns, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
}

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.insns)
}

// load: A = the 32-bit word at offset. BPF_LD|BPF_W|BPF_ABS
func (a *asm) load(offset uint32) { a.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, offset) }

// and: A &= k.
func (a *asm) and(k uint32) { a.emit(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, 0, 0, k) }

// ret: return k.
func (a *asm) ret(k uint32) { a.emit(unix.BPF_RET|unix.BPF_K, 0, 0, k) }

// jump: goto label. BPF_JMP|BPF_JA
func (a *asm) jump(label string) {
	if a.jumps == nil {
		a.jumps = map[int]string{}
	}
	a.jumps[len(a.insns)] = label
	a.emit(unix.BPF_JMP|unix.BPF_JA, 0, 0, 0)
}

// cond emits "if A op k (or not, with negate) goto label".
func (a *asm) cond(op uint16, k uint32, negate bool, label string) {
	// Taken: fall into the ja; not taken: skip it.
	jt, jf := uint8(0), uint8(1)
	if negate {
		jt, jf = 1, 0
	}
	a.emit(unix.BPF_JMP|op|unix.BPF_K, jt, jf, k)
	a.jump(label)
}

func (a *asm) jumpIfEqual(k uint32, l string)        { a.cond(unix.BPF_JEQ, k, false, l) }
func (a *asm) jumpIfNotEqual(k uint32, l string)     { a.cond(unix.BPF_JEQ, k, true, l) }
func (a *asm) jumpIfGreater(k uint32, l string)      { a.cond(unix.BPF_JGT, k, false, l) }
func (a *asm) jumpIfGreaterEqual(k uint32, l string) { a.cond(unix.BPF_JGE, k, false, l) }
func (a *asm) jumpIfSet(k uint32, l string)          { a.cond(unix.BPF_JSET, k, false, l) }

// retIfEqual: if A == k return action.
func (a *asm) retIfEqual(k, action uint32) {
	a.emit(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0, 1, k)
	a.ret(action)
}

// assemble fills in the jumps' offsets: a ja's k counts the instructions
// to skip after it.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	for i, label := range a.jumps {
		target, ok := a.labels[label]
		if !ok {
			return nil, fmt.Errorf("seccomp: internal error: no label %s", label)
		}
		if target <= i {
			return nil, fmt.Errorf("seccomp: internal error: jump back to %s", label)
		}
		a.insns[i].K = uint32(target - i - 1)
	}
	return a.insns, nil
}
