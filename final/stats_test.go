package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStats: stats --no-stream shows what the kernel counts, checked
// against the container's cgroup files: its memory (20 MiB in its
// /dev/shm), its limit, its pids; a busy loop's CPU; no network traffic
// with --network none.
func TestStats(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "hog", "--network", "none", "-m", "64M", e.image,
		"sh", "-c", "dd if=/dev/zero of=/dev/shm/x bs=1M count=20 2>/dev/null; while :; do :; done")
	require.Equal(t, 0, res.Code, res.Stderr)
	dirs, v2 := celltest.CgroupDirs(t, pidOf(t, "hog"))
	memFile := limitName(v2["memory"], "memory.usage_in_bytes", "memory.current")
	require.Eventually(t, func() bool {
		n, _ := strconv.ParseInt(celltest.ReadCgroupValue(t, dirs["memory"], memFile, ""), 10, 64)
		return n >= 20<<20
	}, 10*time.Second, 50*time.Millisecond, "the 20 MiB written")

	res = gocell(t, "stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}|{{.NetIO}}", "hog")
	require.Equal(t, 0, res.Code, res.Stderr)
	f := strings.Split(strings.TrimSpace(res.Stdout), "|")
	require.Len(t, f, 5, res.Stdout)
	assert.Equal(t, "hog", f[0])
	cpu, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
	require.NoError(t, err)
	assert.Greater(t, cpu, 30.0, "a busy loop")
	usage, limit, _ := strings.Cut(f[2], " / ")
	assert.Equal(t, "64MiB", limit)
	mib, err := strconv.ParseFloat(strings.TrimSuffix(usage, "MiB"), 64)
	require.NoError(t, err, usage)
	kernel, _ := strconv.ParseInt(celltest.ReadCgroupValue(t, dirs["memory"], memFile, ""), 10, 64)
	assert.InDelta(t, float64(kernel)/(1<<20), mib, 4, "the cgroup's own count")
	assert.Equal(t, celltest.ReadCgroupValue(t, dirs["pids"], "pids.current", ""), f[3])
	assert.Equal(t, "0B / 0B", f[4], "no interface but lo")

	res = gocell(t, "stats", "--no-stream")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Regexp(t, `^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+PIDS\n[0-9a-f]{12}\s+hog\s`, res.Stdout)

	require.Equal(t, 0, gocell(t, "create", "--name", "idle", "--network", "none", e.image, "true").Code)
	res = gocell(t, "stats", "--no-stream", "idle")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "idle is created")
	res = gocell(t, "stats", "--no-stream", "nosuch")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "no such container: nosuch")
}

// limitName is a cgroup file's v1 or v2 name.
func limitName(v2 bool, v1name, v2name string) string {
	if v2 {
		return v2name
	}
	return v1name
}
