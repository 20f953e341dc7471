//go:build learnercheck

package main

import (
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestNested: with --nested, the command runs in a PID namespace inside
// the container's: it has three pids (NSpid in /proc/PID/status), the
// last one 1, and its PID namespace is not the container's first one.
func TestNested(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--nested"}, celltest.ReadyCommand...)...)
	kids := celltest.Children(c.Pid)
	require.Len(t, kids, 1, "the container's first process has one child, the command")
	pids := celltest.NSpid(t, kids[0])
	require.Len(t, pids, 3, "the command's NSpid: host, first namespace, second")
	assert.Equal(t, 1, pids[2])
	assert.NotEqual(t, celltest.NamespaceOf(t, c.Pid, "pid"), celltest.NamespaceOf(t, kids[0], "pid"))
	c.Stop(t)
}
