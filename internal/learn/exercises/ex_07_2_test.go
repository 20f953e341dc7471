//go:build learnercheck

package main

import (
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestMemoryHigh: --memory-high 48M is in the container's memory cgroup:
// memory.high on v2, memory.soft_limit_in_bytes on v1, 50331648 bytes.
func TestMemoryHigh(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--memory-high", "48M"},
		celltest.ReadyCommand...)...)
	dirs, v2 := celltest.CgroupDirs(t, c.Pid)
	file := "memory.soft_limit_in_bytes"
	if v2["memory"] {
		file = "memory.high"
	}
	assert.Equal(t, "50331648", celltest.ReadCgroupValue(t, dirs["memory"], file, ""))
	c.Stop(t)
}
