//go:build learnercheck

package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestVolatile: with --volatile, the container's / is an overlay whose
// super block options, in its mountinfo, include volatile (or
// fsync=volatile).
func TestVolatile(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--volatile"},
		celltest.ReadyCommand...)...)
	m := celltest.MountAt(t, c.Pid, "/")
	assert.Equal(t, "overlay", m.FSType)
	// Linux 6.5 and later say it as fsync=volatile.
	opts := strings.Split(m.Super, ",")
	assert.True(t, slices.Contains(opts, "volatile") || slices.Contains(opts, "fsync=volatile"),
		"the overlay's options: %s", m.Super)
	c.Stop(t)
}
