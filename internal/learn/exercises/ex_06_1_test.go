//go:build learnercheck

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestUser: with --user 1000 the command runs as uid and gid 1000 in the
// container, which the host sees through the map as 101000.
func TestUser(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--user", "1000"},
		celltest.ReadyCommand...)...)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
			assert.Equal(t, []string{"101000", "101000", "101000", "101000"}, f[1:], f[0])
		}
	}
	c.Stop(t)
}
