//go:build learnercheck

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// kitCapSet reads a capability set of pid from /proc/PID/status.
func kitCapSet(t *testing.T, pid int, set string) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, set+":\t"); ok {
			n, err := strconv.ParseUint(v, 16, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", set, pid)
	return 0
}

// TestCapDrop: --cap-drop CAP_NET_RAW takes it out of the command's
// bounding and effective sets, as /proc/PID/status shows them; without
// it, the command has it.
func TestCapDrop(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--cap-drop", "CAP_NET_RAW"},
		celltest.ReadyCommand...)...)
	bit := uint64(1) << unix.CAP_NET_RAW
	assert.Zero(t, kitCapSet(t, c.Pid, "CapBnd")&bit, "CAP_NET_RAW in the bounding set")
	assert.Zero(t, kitCapSet(t, c.Pid, "CapEff")&bit, "CAP_NET_RAW in the effective set")
	c.Stop(t)
	c = celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t)}, celltest.ReadyCommand...)...)
	assert.NotZero(t, kitCapSet(t, c.Pid, "CapEff")&bit, "without --cap-drop, the command has it")
	c.Stop(t)
}
