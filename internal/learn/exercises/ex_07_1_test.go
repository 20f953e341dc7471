//go:build learnercheck

package main

import (
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestCPUWeight: --cpu-weight 500 is in the container's cpu cgroup, found
// through /proc/PID/cgroup: cpu.weight 500 on v2, cpu.shares 5120 on v1.
func TestCPUWeight(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--cpu-weight", "500"},
		celltest.ReadyCommand...)...)
	dirs, v2 := celltest.CgroupDirs(t, c.Pid)
	if v2["cpu"] {
		assert.Equal(t, "500", celltest.ReadCgroupValue(t, dirs["cpu"], "cpu.weight", ""))
	} else {
		assert.Equal(t, "5120", celltest.ReadCgroupValue(t, dirs["cpu"], "cpu.shares", ""))
	}
	c.Stop(t)
}

// TestBadCPUWeight: a weight out of 1 to 10000 is refused, exit 125.
func TestBadCPUWeight(t *testing.T) {
	celltest.RequirePriv(t)
	res := celltest.Run(t, "run", "--rootfs", celltest.Rootfs(t), "--cpu-weight", "20000", "true")
	assert.Equal(t, 125, res.Code, res.Stderr)
}
