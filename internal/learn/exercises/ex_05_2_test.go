//go:build learnercheck

package main

import (
	"fmt"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestMTU: --mtu 1400 is the MTU of both ends of the veth pair: eth0 in
// the container's network namespace, and the host's end.
func TestMTU(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--mtu", "1400"},
		celltest.ReadyCommand...)...)
	eth0, err := celltest.NetlinkIn(t, c.Pid).LinkByName("eth0")
	require.NoError(t, err)
	assert.Equal(t, 1400, eth0.Attrs().MTU, "eth0 inside")
	host, err := netlink.LinkByName(fmt.Sprintf("veth05-%d", c.Pid))
	require.NoError(t, err)
	assert.Equal(t, 1400, host.Attrs().MTU, "the host's end")
	c.Stop(t)
	celltest.AssertNoLeaks(t, before, c)
}
