//go:build learnercheck

package main

import (
	"os"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestIPCHost: with --ipc-host, the container is in the host's IPC
// namespace, and still in new UTS, PID and mount namespaces.
func TestIPCHost(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--ipc-host"},
		celltest.ReadyCommand...)...)
	celltest.AssertNamespaces(t, c.Pid, "uts", "pid", "mnt")
	c.Stop(t)
}

// TestIPCStillNew: without it, the IPC namespace is new, as in step 04.
func TestIPCStillNew(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t)}, celltest.ReadyCommand...)...)
	self := celltest.NamespaceOf(t, os.Getpid(), "ipc")
	assert.NotEqual(t, self, celltest.NamespaceOf(t, c.Pid, "ipc"))
	c.Stop(t)
}
