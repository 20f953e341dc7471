package cgroups

import (
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// run interprets the few instructions deviceProgram emits, as the kernel
// would run them on one access: the answer, 1 allow or 0 deny.
func run(t *testing.T, prog []insn, typ, access, major, minor uint32) int32 {
	t.Helper()
	var r [11]uint32
	ctx := [3]uint32{typ | access<<16, major, minor}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.op {
		case opLdxW:
			r[in.dst] = ctx[in.off/4]
		case opMov32X:
			r[in.dst] = r[in.src]
		case opAnd32K:
			r[in.dst] &= uint32(in.imm)
		case opRsh32K:
			r[in.dst] >>= uint32(in.imm)
		case opJneK:
			if r[in.dst] != uint32(in.imm) {
				pc += int(in.off)
			}
		case opMov64K:
			r[in.dst] = uint32(in.imm)
		case opExit:
			return int32(r[0])
		default:
			t.Fatalf("instruction %d: unknown opcode %#x", pc, in.op)
		}
	}
	t.Fatal("the program ran off its end")
	return -1
}

func TestDeviceProgram(t *testing.T) {
	rules := []DeviceRule{
		{Allow: false, Type: 'a', Major: -1, Minor: -1, Access: "rwm"},
		{Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rwm"}, // /dev/null
		{Allow: true, Type: 'c', Major: 1, Minor: -1, Access: "r"},  // reading any 1:*
		{Allow: true, Type: 'c', Major: 136, Minor: -1, Access: "rw"},
		{Allow: false, Type: 'c', Major: 136, Minor: 7, Access: "w"},
	}
	prog, err := deviceProgram(rules)
	require.NoError(t, err)
	for _, c := range []struct {
		name                      string
		typ, access, major, minor uint32
		want                      int32
	}{
		{"read /dev/null", devChar, accRead, 1, 3, 1},
		{"mknod /dev/null", devChar, accMknod, 1, 3, 1},
		{"read /dev/mem (1:1)", devChar, accRead, 1, 1, 1},
		{"write /dev/mem", devChar, accWrite, 1, 1, 0},
		{"block 1:3", devBlock, accRead, 1, 3, 0},
		{"write a pty", devChar, accWrite, 136, 2, 1},
		{"mknod a pty", devChar, accMknod, 136, 2, 0},
		{"write the pty a later rule denies", devChar, accWrite, 136, 7, 0},
		{"read the pty a later rule denies for writing", devChar, accRead, 136, 7, 1},
		{"a disk", devBlock, accRead | accWrite, 8, 0, 0},
	} {
		assert.Equal(t, c.want, run(t, prog, c.typ, c.access, c.major, c.minor), c.name)
	}

	// A rule for everything decides alone: the program ends with it,
	// as the verifier refuses instructions it cannot reach.
	all, err := deviceProgram([]DeviceRule{rules[1], {Allow: true, Type: 'a', Major: -1, Minor: -1, Access: "rwm"}})
	require.NoError(t, err)
	assert.Equal(t, int32(1), run(t, all, devBlock, accWrite, 8, 0))
	last := all[len(all)-2:]
	assert.Equal(t, []insn{{op: opMov64K, imm: 1}, {op: opExit}}, last)
	assert.Len(t, all, 6+2, "nothing after the rule that always answers")

	_, err = deviceProgram([]DeviceRule{{Type: 'x', Access: "r"}})
	assert.ErrorContains(t, err, `type 'x'`)
}

// TestDeviceProgramLoads hands programs to the kernel's verifier, which
// refuses what it cannot prove safe (an unreachable instruction, a jump
// out of the program): the unit test above cannot see that.
func TestDeviceProgramLoads(t *testing.T) {
	celltest.RequirePriv(t)
	for name, rules := range map[string][]DeviceRule{
		"none":      nil,
		"deny all":  {{Type: 'a', Major: -1, Minor: -1, Access: "rwm"}},
		"allow all": {{Allow: true, Type: 'a', Major: -1, Minor: -1, Access: "rwm"}},
		"a container's": {
			{Type: 'a', Major: -1, Minor: -1, Access: "rwm"},
			{Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rwm"},
			{Allow: true, Type: 'c', Major: 136, Minor: -1, Access: "rwm"},
			{Allow: true, Type: 'c', Major: -1, Minor: -1, Access: "m"},
			{Allow: false, Type: 'c', Major: 5, Minor: 1, Access: "rw"},
			{Allow: true, Type: 'a', Major: -1, Minor: -1, Access: "rwm"},
			{Allow: false, Type: 'b', Major: 8, Minor: 0, Access: "r"},
		},
	} {
		prog, err := deviceProgram(rules)
		require.NoError(t, err, name)
		fd, err := loadProgram(prog)
		if assert.NoError(t, err, name) {
			unix.Close(fd)
		}
	}
}
