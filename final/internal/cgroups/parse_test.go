package cgroups

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1048576},
		{"512k", 512 << 10},
		{"512K", 512 << 10},
		{"64M", 64 << 20},
		{"64m", 64 << 20},
		{"64MB", 64 << 20},
		{"64MiB", 64 << 20},
		{"1g", 1 << 30},
		{"1G", 1 << 30},
		{"2t", 2 << 40},
		{"100b", 100},
		{" 16M ", 16 << 20},
	} {
		got, err := ParseSize(tc.in)
		if assert.NoError(t, err, tc.in) {
			assert.Equal(t, tc.want, got, tc.in)
		}
	}
	for _, in := range []string{"12XB", "0", "-1", "", "M", "64i", "ib", "5bi", "1.5G", "64 M",
		"0x10", "9999999999999999999", "9000000000T", "1e6", "64MM"} {
		_, err := ParseSize(in)
		assert.Error(t, err, "%q", in)
	}
}

func TestParseCPUs(t *testing.T) {
	n := runtime.NumCPU()
	for _, in := range []string{"0.5", "1", "0.01", strconv.Itoa(n)} {
		_, err := ParseCPUs(in)
		assert.NoError(t, err, in)
	}
	got, _ := ParseCPUs("0.25")
	assert.Equal(t, 0.25, got)
	for _, in := range []string{"0", "-1", "0.001", "", "x", "NaN", "Inf",
		strconv.Itoa(n + 1)} {
		_, err := ParseCPUs(in)
		assert.Error(t, err, "%q", in)
	}
}

func TestParseList(t *testing.T) {
	for in, want := range map[string][]int{
		"0": {0}, "0-3": {0, 1, 2, 3}, "3,1": {1, 3}, "0-1,1-2,7": {0, 1, 2, 7}, " 2 ": {2},
	} {
		got, err := ParseList(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, bad := range []string{"", "a", "1-", "-1", "3-1", "1,,2", "0-70000", "1 2"} {
		_, err := ParseList(bad)
		assert.Error(t, err, bad)
	}
}

// TestCheckCPUSet: a list naming a CPU or node the machine does not have
// online is refused, with the machine's own list in the message.
func TestCheckCPUSet(t *testing.T) {
	dir := t.TempDir()
	cpus, nodes := onlineCPUs, onlineNodes
	t.Cleanup(func() { onlineCPUs, onlineNodes = cpus, nodes })
	onlineCPUs = dir + "/cpus"
	onlineNodes = dir + "/no-such-file"
	require.NoError(t, os.WriteFile(onlineCPUs, []byte("0-1\n"), 0o644))

	assert.NoError(t, CheckCPUSet("cpus", "0-1"))
	assert.NoError(t, CheckCPUSet("cpus", "1"))
	assert.EqualError(t, CheckCPUSet("cpus", "1-2"),
		"CPU 2 is not online on this machine, which has CPUs 0-1")
	assert.ErrorContains(t, CheckCPUSet("cpus", "one"), "invalid CPU list")
	assert.NoError(t, CheckCPUSet("mems", "0"), "no node directory: node 0 only")
	assert.EqualError(t, CheckCPUSet("mems", "1"),
		"memory node 1 is not online on this machine, which has memory nodes 0")
}
