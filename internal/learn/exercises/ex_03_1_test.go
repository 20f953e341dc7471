//go:build learnercheck

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestVolume: --volume HOST:/mnt/vol is a mount point in the container's
// mount table, showing the host's directory: a file written inside is
// on the host. The host's own mount table does not change.
func TestVolume(t *testing.T) {
	celltest.RequirePriv(t)
	before := celltest.Snapshot(t)
	host := t.TempDir()
	// The mount point is made in the shared root file system (steps 03
	// to 07 write there): take away what this run adds.
	rootfs := celltest.Rootfs(t)
	for _, dir := range []string{"mnt", "mnt/vol"} {
		path := filepath.Join(rootfs, dir)
		if _, err := os.Lstat(path); os.IsNotExist(err) {
			t.Cleanup(func() { os.Remove(path) })
		}
	}
	c := celltest.Start(t, "run", "--rootfs", celltest.Rootfs(t), "--volume", host+":/mnt/vol",
		"sh", "-c", "echo inside > /mnt/vol/f; echo ready; read line || true")
	found := false
	for _, m := range celltest.Mounts(t, strconv.Itoa(c.Pid)) {
		found = found || m.MountPoint == "/mnt/vol"
	}
	assert.True(t, found, "/mnt/vol is a mount point in the container")
	data, err := os.ReadFile(filepath.Join(host, "f"))
	require.NoError(t, err, "the file written inside is on the host")
	assert.Equal(t, "inside\n", string(data))
	c.Stop(t)
	celltest.AssertNoLeaks(t, before, c)
}

// TestBadVolume: a --volume that is not HOST:CONTAINER is refused,
// exit 2.
func TestBadVolume(t *testing.T) {
	celltest.RequirePriv(t)
	res := celltest.Run(t, "run", "--rootfs", celltest.Rootfs(t), "--volume", "relative", "true")
	assert.Equal(t, 2, res.Code, res.Stderr)
}
