package cgroups

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DeviceRule allows or denies access to device nodes: Type 'c'
// (character), 'b' (block) or 'a' (all); Major and Minor, -1 for any;
// Access, letters of "rwm" (read, write, mknod).
type DeviceRule struct {
	Allow        bool
	Type         byte
	Major, Minor int64
	Access       string
}

// Check refuses what the kernel would.
func (d DeviceRule) Check() error {
	if d.Type != 'a' && d.Type != 'b' && d.Type != 'c' {
		return fmt.Errorf("device rule: type %q is not a, b or c", d.Type)
	}
	if d.Access == "" || strings.Trim(d.Access, "rwm") != "" {
		return fmt.Errorf("device rule: access %q is not letters of rwm", d.Access)
	}
	return nil
}

// v1 writes each rule into devices.allow or devices.deny, in order:
// "a" denies or allows everything, "c 1:3 rwm" one device, "*" any
// number. admin-guide/cgroup-v1/devices.rst
func (v *v1) SetDevices(rules []DeviceRule) error {
	dir, ok := v.paths["devices"]
	if !ok {
		return fmt.Errorf("%w: devices (for device rules)", ErrNoController)
	}
	for _, r := range rules {
		if err := r.Check(); err != nil {
			return err
		}
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		value := "a"
		if r.Type != 'a' {
			num := func(n int64) string {
				if n < 0 {
					return "*"
				}
				return fmt.Sprint(n)
			}
			value = fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
		}
		if err := writeFile(dir, file, value); err != nil {
			return err
		}
	}
	return nil
}

// v2 has no devices files: the rules become a small eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE, which the kernel runs on each open and
// mknod of a device by a process of the cgroup, and which answers 1
// (allow) or 0 (deny). admin-guide/cgroup-v2.rst "Device controller",
// bpf(2). It is assembled here by hand; it is a few instructions a
// rule.
func (v *v2) SetDevices(rules []DeviceRule) error {
	prog, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	fd, err := unix.Open(v.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	defer unix.Close(fd)
	return loadAndAttach(prog, fd)
}

// eBPF instructions, as the kernel reads them: opcode, registers
// (dst in the low nibble), offset, immediate. linux/bpf.h
type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

const (
	opLdxW   = 0x61 // dst = *(u32 *)(src + off)
	opMov32X = 0xbc // dst = src (32 bits)
	opAnd32K = 0x54 // dst &= imm
	opRsh32K = 0x74 // dst >>= imm
	opJneK   = 0x55 // if dst != imm, skip off instructions
	opMov64K = 0xb7 // dst = imm
	opExit   = 0x95 // return r0

	// bpf_cgroup_dev_ctx's access_type: the device's type in the low
	// 16 bits, the access asked for in the high 16.
	devBlock = 1
	devChar  = 2
	accMknod = 1
	accRead  = 2
	accWrite = 4
)

// deviceProgram assembles the rules. The context (r1) is struct
// bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}: r2 gets
// the type, r3 the access, r4 the major, r5 the minor. The rules are
// tried last first, as the last that matches decides: each one's
// conditions jump past it when they fail, and one that matches returns
// its answer. If none matches, the answer is deny.
func deviceProgram(rules []DeviceRule) ([]insn, error) {
	prog := []insn{
		{op: opLdxW, dst: 2, src: 1, off: 0},
		{op: opMov32X, dst: 3, src: 2},
		{op: opAnd32K, dst: 2, imm: 0xffff},
		{op: opRsh32K, dst: 3, imm: 16},
		{op: opLdxW, dst: 4, src: 1, off: 4},
		{op: opLdxW, dst: 5, src: 1, off: 8},
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		if err := r.Check(); err != nil {
			return nil, err
		}
		var conds []insn
		switch r.Type {
		case 'b':
			conds = append(conds, insn{op: opJneK, dst: 2, imm: devBlock})
		case 'c':
			conds = append(conds, insn{op: opJneK, dst: 2, imm: devChar})
		}
		var mask int32
		for _, a := range r.Access {
			mask |= map[rune]int32{'m': accMknod, 'r': accRead, 'w': accWrite}[a]
		}
		if mask != accMknod|accRead|accWrite {
			// The access asked for must be within the rule's:
			// (access & ~mask) == 0, computed in r6.
			conds = append(conds, insn{op: opMov32X, dst: 6, src: 3},
				insn{op: opAnd32K, dst: 6, imm: ^mask},
				insn{op: opJneK, dst: 6, imm: 0})
		}
		if r.Type != 'a' && r.Major >= 0 {
			conds = append(conds, insn{op: opJneK, dst: 4, imm: int32(r.Major)})
		}
		if r.Type != 'a' && r.Minor >= 0 {
			conds = append(conds, insn{op: opJneK, dst: 5, imm: int32(r.Minor)})
		}
		answer := int32(0)
		if r.Allow {
			answer = 1
		}
		// Each conditional jump skips the rest of the rule: the
		// conditions after it, and the two instructions that answer.
		for j := range conds {
			if conds[j].op == opJneK {
				conds[j].off = int16(len(conds) - j - 1 + 2)
			}
		}
		prog = append(prog, conds...)
		prog = append(prog, insn{op: opMov64K, dst: 0, imm: answer}, insn{op: opExit})
		if len(conds) == 0 {
			// A rule for every device and access always answers:
			// the rules before it never decide, and the verifier
			// refuses a program with instructions it cannot reach.
			return prog, nil
		}
	}
	return append(prog, insn{op: opMov64K, dst: 0, imm: 0}, insn{op: opExit}), nil
}

// encode lays the instructions out as the kernel reads them.
func encode(prog []insn) []byte {
	out := make([]byte, 8*len(prog))
	for i, in := range prog {
		b := out[8*i:]
		b[0] = in.op
		b[1] = in.dst | in.src<<4
		binary.LittleEndian.PutUint16(b[2:], uint16(in.off))
		binary.LittleEndian.PutUint32(b[4:], uint32(in.imm))
	}
	return out
}

const (
	bpfProgLoad        = 5
	bpfProgAttach      = 8
	progTypeCgroupDev  = 15
	attachCgroupDevice = 6
	attachAllowMulti   = 2 // BPF_F_ALLOW_MULTI
)

// loadAndAttach loads the program (bpf(2) BPF_PROG_LOAD) and attaches it
// to the cgroup (BPF_PROG_ATTACH, BPF_CGROUP_DEVICE). The attachment
// keeps the program alive once our descriptor is closed, until the
// cgroup goes.
func loadAndAttach(prog []insn, cgroupFd int) error {
	progFd, err := loadProgram(prog)
	if err != nil {
		return err
	}
	defer unix.Close(progFd)
	// BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, flags.
	var attach [32]byte
	binary.LittleEndian.PutUint32(attach[0:], uint32(cgroupFd))
	binary.LittleEndian.PutUint32(attach[4:], uint32(progFd))
	binary.LittleEndian.PutUint32(attach[8:], attachCgroupDevice)
	binary.LittleEndian.PutUint32(attach[12:], attachAllowMulti)
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgAttach,
		uintptr(unsafe.Pointer(&attach[0])), uintptr(len(attach)))
	if errno != 0 {
		return fmt.Errorf("cgroups: attach the device rules to the cgroup: %w", errno)
	}
	return nil
}

// loadProgram hands the program to the kernel's verifier, which checks
// it (every instruction reachable, every path ending in exit) before it
// may run.
func loadProgram(prog []insn) (int, error) {
	code := encode(prog)
	license := []byte("Apache-2.0\x00")
	logBuf := make([]byte, 1<<16)
	// union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns,
	// license, log_level, log_size, log_buf, ...
	var load [128]byte
	binary.LittleEndian.PutUint32(load[0:], progTypeCgroupDev)
	binary.LittleEndian.PutUint32(load[4:], uint32(len(prog)))
	binary.LittleEndian.PutUint64(load[8:], uint64(uintptr(unsafe.Pointer(&code[0]))))
	binary.LittleEndian.PutUint64(load[16:], uint64(uintptr(unsafe.Pointer(&license[0]))))
	binary.LittleEndian.PutUint32(load[24:], 1)
	binary.LittleEndian.PutUint32(load[28:], uint32(len(logBuf)))
	binary.LittleEndian.PutUint64(load[32:], uint64(uintptr(unsafe.Pointer(&logBuf[0]))))
	// The verifier gives up with EAGAIN when a signal is pending, and
	// the Go runtime sends its threads signals (SIGURG, to preempt):
	// try again, as libbpf does.
	var progFd uintptr
	var errno unix.Errno
	for tries := 0; ; tries++ {
		progFd, _, errno = unix.Syscall(unix.SYS_BPF, bpfProgLoad,
			uintptr(unsafe.Pointer(&load[0])), uintptr(len(load)))
		if errno != unix.EAGAIN || tries == 20 {
			break
		}
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if errno != 0 {
		msg := strings.TrimRight(string(logBuf[:clen(logBuf)]), "\n")
		return -1, fmt.Errorf("cgroups: load the device rules' eBPF program: %w: %s", errno, msg)
	}
	return int(progFd), nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}
