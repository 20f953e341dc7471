//go:build learnercheck

package main

import (
	"os"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

func kitShmmni(t *testing.T) string {
	data, err := os.ReadFile("/proc/sys/kernel/shmmni")
	require.NoError(t, err)
	return strings.TrimSpace(string(data))
}

// TestShmmni: --shmmni 77 sets kernel.shmmni in the container's IPC
// namespace, read from outside by joining it (setns(2)); the host's does
// not change.
func TestShmmni(t *testing.T) {
	celltest.RequirePriv(t)
	host := kitShmmni(t)
	c := celltest.Start(t, append([]string{"run", "--rootfs", celltest.Rootfs(t), "--shmmni", "77"},
		celltest.ReadyCommand...)...)
	var got string
	require.NoError(t, celltest.InNamespace(c.Pid, "ipc", func() error {
		got = kitShmmni(t)
		return nil
	}))
	assert.Equal(t, "77", got, "kernel.shmmni in the container's IPC namespace")
	assert.Equal(t, host, kitShmmni(t), "the host's kernel.shmmni changed")
	c.Stop(t)
}
