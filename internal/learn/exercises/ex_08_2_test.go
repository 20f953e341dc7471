//go:build learnercheck

package main

import (
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestNoatime: with --noatime, the container's / is a mount whose own
// options, in its mountinfo, include noatime.
func TestNoatime(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--noatime"},
		celltest.ReadyCommand...)...)
	m := celltest.MountAt(t, c.Pid, "/")
	assert.Contains(t, strings.Split(m.Options, ","), "noatime", "the mount's options: %s", m.Options)
	c.Stop(t)
}
