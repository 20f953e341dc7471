//go:build learnercheck

package main

import (
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestReadOnlyRoot: with --read-only, the container's / is a read-only
// mount in its mount table, and writing there fails (the command would
// say "writable" before "ready" otherwise).
func TestReadOnlyRoot(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	c := celltest.Start(t, "run", "--rootfs", celltest.Rootfs(t), "--read-only",
		"sh", "-c", "touch /probe 2>/dev/null && echo writable; echo ready; read line || true")
	m := celltest.MountAt(t, c.Pid, "/")
	assert.True(t, strings.HasPrefix(m.Options, "ro"), "/ is mounted %s", m.Options)
	res := c.Stop(t)
	assert.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertNoLeaks(t, before, c)
}
