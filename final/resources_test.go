package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lastCPUs samples, n times over about half a second, the CPU pid last
// ran on (field 39 of /proc/PID/stat, proc(5)), and returns the distinct
// ones seen: a busy loop runs all the time, so it shows where it may.
func lastCPUs(t *testing.T, pid int, n int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		require.NoError(t, err)
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
		seen[f[36]] = true // field 39, counted from the state, field 3
		time.Sleep(500 * time.Millisecond / time.Duration(n))
	}
	return seen
}

// cgroupFile reads a file of pid's cgroup on the controller's tree (v1)
// or in its one v2 directory, whichever the machine has.
func cgroupFile(t *testing.T, pid int, controller, v1File, v2File string) string {
	t.Helper()
	dirs := celltest.ProcCgroupDirs(t, pid)
	if dir, ok := dirs[controller]; ok {
		return celltest.ReadCgroupValue(t, dir, v1File, "")
	}
	return celltest.ReadCgroupValue(t, dirs[""], v2File, "")
}

// hasCgroupFile says whether the file exists, as swap's files exist only
// where the kernel accounts swap.
func hasCgroupFile(t *testing.T, pid int, controller, v1File, v2File string) bool {
	dirs := celltest.ProcCgroupDirs(t, pid)
	dir, file := dirs[controller], v1File
	if dir == "" {
		dir, file = dirs[""], v2File
	}
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// TestResourceFlags: run's limits, each read from outside, in cgroupfs and
// in /proc/PID/status, and a busy loop pinned by --cpuset-cpus that never
// runs on another CPU; then update moves them while it runs.
func TestResourceFlags(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "busy", "--network", "none", "-m", "64M",
		"--memory-swap", "96M", "--memory-reservation", "32M", "-c", "512",
		"--cpuset-cpus", "0", "--cpuset-mems", "0", e.image, "sh", "-c", "while :; do :; done")
	require.Equal(t, 0, res.Code, res.Stderr)
	pid := pidOf(t, "busy")
	assert.Equal(t, "0", statusLine(t, pid, "Cpus_allowed_list:")[0])
	assert.Equal(t, "0", statusLine(t, pid, "Mems_allowed_list:")[0])
	assert.Equal(t, map[string]bool{"0": true}, lastCPUs(t, pid, 50), "the busy loop ran on CPU 0 only")
	assert.Equal(t, "0", cgroupFile(t, pid, "cpuset", "cpuset.cpus", "cpuset.cpus"))
	assert.Equal(t, "67108864", cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"))
	assert.Equal(t, "33554432", cgroupFile(t, pid, "memory", "memory.soft_limit_in_bytes", "memory.low"))
	if hasCgroupFile(t, pid, "memory", "memory.memsw.limit_in_bytes", "memory.swap.max") {
		// v1 keeps memory plus swap, v2 the swap alone.
		want := map[bool]string{true: "100663296", false: "33554432"}
		_, v1 := celltest.ProcCgroupDirs(t, pid)["memory"]
		assert.Equal(t, want[v1], cgroupFile(t, pid, "memory", "memory.memsw.limit_in_bytes", "memory.swap.max"))
	}
	// v1 keeps the shares; v2 a weight, by runc's map: 512 is 20.
	want := map[bool]string{true: "512", false: "20"}
	_, v1 := celltest.ProcCgroupDirs(t, pid)["cpu"]
	assert.Equal(t, want[v1], cgroupFile(t, pid, "cpu", "cpu.shares", "cpu.weight"))

	// update, while it runs: the kernel takes the new limits at once.
	res = gocell(t, "update", "-m", "128M", "--memory-swap", "-1", "--pids-limit", "20", "--cpus", "0.5", "busy")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "busy\n", res.Stdout)
	assert.Equal(t, "134217728", cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"))
	assert.Equal(t, "20", cgroupFile(t, pid, "pids", "pids.max", "pids.max"))
	assert.Equal(t, "33554432", cgroupFile(t, pid, "memory", "memory.soft_limit_in_bytes", "memory.low"),
		"what update leaves out stays")
	if v1 {
		assert.Equal(t, "50000", cgroupFile(t, pid, "cpu", "cpu.cfs_quota_us", ""))
	} else {
		assert.Equal(t, "50000 100000", cgroupFile(t, pid, "cpu", "", "cpu.max"))
	}
	r := state(t, "busy")["spec"].(map[string]any)["resources"].(map[string]any)
	assert.Equal(t, float64(134217728), r["memoryBytes"], "inspect shows the new limits")
	if runtime.NumCPU() > 1 {
		res = gocell(t, "update", "--cpuset-cpus", "1", "busy")
		require.Equal(t, 0, res.Code, res.Stderr)
		assert.Equal(t, "1", statusLine(t, pid, "Cpus_allowed_list:")[0])
		time.Sleep(100 * time.Millisecond)
		assert.Equal(t, map[string]bool{"1": true}, lastCPUs(t, pid, 50), "the busy loop moved to CPU 1")
	}

	// Refused updates change nothing, in the kernel or in the state.
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{2, "CPU 99 is not online on this machine, which has CPUs 0-", []string{"--cpuset-cpus", "99"}},
		{2, "invalid CPU list", []string{"--cpuset-cpus", "one"}},
		{2, "--cpu-shares 1: a weight from 2 to 262144", []string{"-c", "1"}},
		{125, "memory reservation 268435456 is above the memory limit 134217728", []string{"--memory-reservation", "256M"}},
		{2, "give a limit to change", []string{}},
	} {
		res := gocell(t, append(append([]string{"update"}, tc.args...), "busy")...)
		assert.Equal(t, tc.code, res.Code, "%v: %s", tc.args, res.Stderr)
		assert.Contains(t, res.Stderr, tc.want, tc.args)
		assert.Equal(t, 1, strings.Count(res.Stderr, "error:"), "%v: one error line: %s", tc.args, res.Stderr)
	}
	assert.Equal(t, "134217728", cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"))
	assert.Equal(t, "33554432", cgroupFile(t, pid, "memory", "memory.soft_limit_in_bytes", "memory.low"))
	res = gocell(t, "update", "-m", "64M", "nosuch")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "no such container: nosuch")

	// A container started without a cpuset cannot be pinned while it
	// runs; one that is not running takes any limit for its next start.
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "free", "--network", "none", e.image, "sleep", "1000").Code)
	res = gocell(t, "update", "--cpuset-cpus", "0", "free")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "started without --cpuset-cpus or --cpuset-mems")
	require.Equal(t, 0, gocell(t, "stop", "-t", "0", "free").Code)
	res = gocell(t, "update", "--cpuset-cpus", "0", "-m", "32M", "free")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Equal(t, 0, gocell(t, "start", "free").Code)
	pid = pidOf(t, "free")
	assert.Equal(t, "0", statusLine(t, pid, "Cpus_allowed_list:")[0])
	assert.Equal(t, "33554432", cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"))
}

// TestResourceFlagsBadInput: limits that are wrong, or that cannot go
// together, are refused by run with one line, and leave no container.
func TestResourceFlagsBadInput(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"--cpuset-cpus \"0-99\": CPU ", []string{"--cpuset-cpus", "0-99"}},
		{"--cpuset-mems \"7\": memory node 7 is not online", []string{"--cpuset-mems", "7"}},
		{"--memory-swap needs --memory", []string{"--memory-swap", "64M"}},
		{"memory+swap limit 33554432 is below the memory limit 67108864", []string{"-m", "64M", "--memory-swap", "32M"}},
		{"memory reservation 134217728 is above the memory limit 67108864", []string{"-m", "64M", "--memory-reservation", "128M"}},
		{"--pids-limit 5: at least 10", []string{"--pids-limit", "5"}},
	} {
		before := celltest.Snapshot(t)
		res := gocell(t, append(append([]string{"run", "--rm", "--network", "none"}, tc.args...), e.image, "true")...)
		assert.Equal(t, 2, res.Code, "%v: %s", tc.args, res.Stderr)
		assert.Contains(t, res.Stderr, tc.want, tc.args)
		assert.Equal(t, 1, strings.Count(res.Stderr, "error:"), "%v: one error line: %s", tc.args, res.Stderr)
		celltest.AssertMountsUnchanged(t, before)
	}
	assert.Empty(t, strings.TrimSpace(gocell(t, "ps", "-a", "-q").Stdout), "no container was left")
}
