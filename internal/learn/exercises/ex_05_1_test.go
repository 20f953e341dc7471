//go:build learnercheck

package main

import (
	"fmt"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestNoNetwork: with --no-network, the container has a network
// namespace of its own with lo alone, up, and no veth: none inside, and
// none on the host for it.
func TestNoNetwork(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--no-network"},
		celltest.ReadyCommand...)...)
	celltest.AssertNamespaces(t, c.Pid, "uts", "pid", "mnt", "ipc", "net")
	links, err := celltest.NetlinkIn(t, c.Pid).LinkList()
	require.NoError(t, err)
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
		if l.Attrs().Name == "lo" {
			assert.NotZero(t, l.Attrs().Flags&unix.IFF_UP, "lo is up")
		}
	}
	assert.Equal(t, []string{"lo"}, names, "the container's links")
	assert.False(t, celltest.HostLink(fmt.Sprintf("veth05-%d", c.Pid)), "a veth on the host")
	c.Stop(t)
	celltest.AssertNoLeaks(t, before, c)
}
